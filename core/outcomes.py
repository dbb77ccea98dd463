"""One outcome vocabulary for the whole service: the audit line, every response schema and the security suite.

- ``generated``: the model's own words, every sentence checked against an evidence line (``chains.claims``);
- ``extractive``: the model's answer failed the check (or was empty): the evidence lines themselves, quoted;
- ``abstained``: the evidence was too weak to answer: the route to customer service, no sources;
- ``refused``: the input guard (an attack) or the output filter refused; only attacks count as strikes;
- ``service``: a request the assistant cannot perform (account, payment, complaint, privacy): the route to
  customer service with its contact details, no LLM call (``guards.intent``, ``chains.service``);
- ``off_topic``: not about the shop: a short text saying what the assistant helps with;
- ``order``, ``other_species``, ``unknown_variant``: the scope step's fixed routes (``chains.scope``; ``order``
  also when the intent classifier finds a request about one's own order).
"""

from __future__ import annotations

from typing import Literal, get_args

Outcome = Literal[
    "generated",
    "extractive",
    "abstained",
    "refused",
    "service",
    "off_topic",
    "order",
    "other_species",
    "unknown_variant",
]
OUTCOMES: tuple[str, ...] = get_args(Outcome)
ANSWERED: frozenset[str] = frozenset({"generated", "extractive"})  # answers that state catalogue facts
ROUTED: frozenset[str] = frozenset(
    {"abstained", "service", "order", "other_species", "unknown_variant"}
)  # the route to customer service
# Why a message was routed instead of answered (the audit line's ``route.reason``).
RouteReason = Literal["account", "payment", "complaint", "privacy", "order", "off_topic"]
ROUTE_REASONS: tuple[str, ...] = get_args(RouteReason)
SERVICE_REASONS: frozenset[str] = frozenset({"account", "payment", "complaint", "privacy", "order"})
