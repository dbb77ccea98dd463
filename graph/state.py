"""Graph state: what goes in, what comes out, and what the nodes pass along."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import BaseMessage
from typing_extensions import TypedDict

from core.outcomes import Outcome


class Source(TypedDict):
    """A cited catalogue document."""

    id: str
    title: str


class Evidence(TypedDict):
    """One evidence line given to the model (``core.evidence.EvidenceLine`` as a plain mapping)."""

    doc_id: str
    line: int
    title: str
    text: str
    score: float
    version: str
    product: str
    asked: str  # the FAQ question the line answers, "" for other lines


class InputState(TypedDict):
    """What a caller sends."""

    question: str


class OutputState(TypedDict, total=False):
    """What a caller gets back."""

    answer: str
    sources: list[Source]
    refused: bool
    language: str
    mode: Outcome  # core.outcomes: generated, extractive, abstained, refused or a scope route
    evidence: list[Evidence]  # the lines the answer was allowed to use (Studio, the admin stream, evals)
    cut: bool  # the claim check ended the model's text early (a sentence failed)


class State(InputState, OutputState, total=False):
    """Full working state of one question."""

    queries: list[str]
    candidates: list[dict[str, Any]]
    chunks: list[dict[str, Any]]
    messages: list[BaseMessage]
    guard_reasons: list[str]
    query_vector: list[float]
    quote: str  # graph.trust: the extractive quote after a checked answer that lacks the value asked for
    feed_note: str  # chains.freshness: appended to answers about price or stock
    route_note: str  # graph.intent: the customer-service route for the request part of a mixed message
    scope: str  # chains.scope: catalogue, or the fixed route taken before retrieval
    draft: str  # the model's text before the claim check (never shown as it is)
    truncated: bool  # the model stopped at its token limit: the draft's last sentence is cut
