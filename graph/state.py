"""Graph state: what goes in, what comes out, and what the nodes pass along."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import BaseMessage
from typing_extensions import TypedDict


class Source(TypedDict):
    """A cited catalogue document."""

    id: str
    title: str


class InputState(TypedDict):
    """What a caller sends."""

    question: str


class OutputState(TypedDict, total=False):
    """What a caller gets back."""

    answer: str
    sources: list[Source]
    refused: bool
    language: str


class State(InputState, OutputState, total=False):
    """Full working state of one question."""

    queries: list[str]
    candidates: list[dict[str, Any]]
    chunks: list[dict[str, Any]]
    messages: list[BaseMessage]
    guard_reasons: list[str]
    query_vector: list[float]
    feed_note: str  # chains.freshness: appended to answers about price or stock
    scope: str  # chains.scope: catalogue, or the fixed route taken before retrieval
    fallback: bool  # generate replaced the model's answer by the fixed one (empty, or not from the catalogue)
