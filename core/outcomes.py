"""One outcome vocabulary for the whole service: the audit line, every response schema and the security suite.

- ``generated``: the model's own words, every sentence checked against an evidence line (``chains.claims``);
- ``extractive``: the model's answer failed the check (or was empty): the evidence lines themselves, quoted;
- ``abstained``: the evidence was too weak to answer: the route to customer service, no sources;
- ``refused``: the input guard or the output filter refused;
- ``order``, ``other_species``, ``unknown_variant``: the scope step's fixed routes (``chains.scope``).
"""

from __future__ import annotations

from typing import Literal, get_args

Outcome = Literal["generated", "extractive", "abstained", "refused", "order", "other_species", "unknown_variant"]
OUTCOMES: tuple[str, ...] = get_args(Outcome)
ANSWERED: frozenset[str] = frozenset({"generated", "extractive"})  # answers that state catalogue facts
ROUTED: frozenset[str] = frozenset({"abstained", "order", "other_species", "unknown_variant"})  # customer service
