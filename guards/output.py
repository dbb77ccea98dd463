"""Output filter: block answers that leak the canary, the system prompt or internals.

Applied to every answer. For streams, ``StreamGuard`` holds back a small window of
characters so that nothing leaves the server before the text around it was checked.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

logger = logging.getLogger(__name__)

OVERLAP_CHARS = 40
HOLDBACK_CHARS = 48
OutputDecision = Literal["pass", "block"]

LEAK_PATTERNS: dict[str, re.Pattern[str]] = {
    "file_path": re.compile(
        r"(?<![\w.])/(?:etc|usr|var|home|root|proc|opt|tmp|srv|bin|sys|dev|work|app)/[\w.\-/]*"
        r"|\b[A-Za-z]:\\[\w\\.\- ]+|site-packages|\.venv\b|\.py\b(?=[\"':, ]|$)",
    ),
    "stack_trace": re.compile(
        r"Traceback \(most recent call last\)|File \"[^\"]+\", line \d+"
        r"|\b\w+(?:Error|Exception): |\bat [\w.$]+\(\w+\.java:\d+\)"
    ),
    "internal_host": re.compile(
        r"\b(?:localhost|127\.\d+\.\d+\.\d+|0\.0\.0\.0|10\.\d+\.\d+\.\d+|192\.168\.\d+\.\d+|172\.(?:1[6-9]|2\d|3[01])\.\d+\.\d+)"
        r"|\b[\w-]+\.(?:internal|local|lan|svc\.cluster\.local)\b|https?://(?!(?:www\.)?kattenhuis\.nl)[\w.-]+:\d{2,5}",
        re.I,
    ),
    "env_var": re.compile(r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\s*=\s*\S+|\$\{?[A-Z][A-Z0-9_]{2,}\}?|os\.environ"),
    "secret_key": re.compile(
        r"\bsk-[A-Za-z0-9_-]{16,}|\bAKIA[0-9A-Z]{16}\b|-----BEGIN [A-Z ]*PRIVATE KEY-----|\bgh[pousr]_[A-Za-z0-9]{20,}"
        r"|\bxox[abpr]-[A-Za-z0-9-]{10,}|\bBearer\s+[A-Za-z0-9._~+/-]{16,}",
    ),
}
_WS = re.compile(r"\s+")


def _norm(text: str) -> str:
    return _WS.sub(" ", text).strip().lower()


@dataclass(frozen=True, kw_only=True)
class OutputVerdict:
    """The outcome of checking an answer."""

    decision: OutputDecision
    reasons: list[str] = field(default_factory=list)


class OutputFilter:
    """Blocks answers containing the canary, secrets, a long system-prompt span or internals."""

    def __init__(self, *, canary: str, protected_texts: Iterable[str], secrets: Iterable[str] = ()) -> None:
        self.canary = canary
        self._secrets = [s for s in secrets if s and len(s) >= 8]
        self._shingles: set[str] = set()
        for text in protected_texts:
            norm = _norm(text)
            for i in range(max(0, len(norm) - OVERLAP_CHARS + 1)):
                self._shingles.add(norm[i : i + OVERLAP_CHARS])

    def _overlaps_protected(self, text: str) -> bool:
        norm = _norm(text)
        return any(norm[i : i + OVERLAP_CHARS] in self._shingles for i in range(len(norm) - OVERLAP_CHARS + 1))

    def check(self, text: str) -> OutputVerdict:
        """Return ``block`` with the reasons when ``text`` must not reach the shopper."""
        reasons: list[str] = []
        if self.canary and self.canary.lower() in text.lower():
            reasons.append("canary")
        if any(s in text for s in self._secrets):
            reasons.append("secret")
        if self._shingles and self._overlaps_protected(text):
            reasons.append("system_prompt_overlap")
        reasons.extend(name for name, pattern in LEAK_PATTERNS.items() if pattern.search(text))
        if reasons:
            logger.warning("output filter blocked an answer: %s", ",".join(reasons))
            return OutputVerdict(decision="block", reasons=reasons)
        return OutputVerdict(decision="pass")


class StreamGuard:
    """Releases streamed text only once the text around it has been checked.

    ``feed`` returns the text that may be sent now (everything but the last
    ``holdback`` characters); ``finish`` returns the rest. Once blocked, nothing more
    is released and ``blocked`` is true.
    """

    def __init__(self, output_filter: OutputFilter, holdback: int = HOLDBACK_CHARS) -> None:
        self.filter = output_filter
        self.holdback = holdback
        self.text = ""
        self.sent = 0
        self.blocked = False
        self.reasons: list[str] = []

    def _check(self) -> bool:
        verdict = self.filter.check(self.text)
        if verdict.decision == "block":
            self.blocked, self.reasons = True, verdict.reasons
        return not self.blocked

    def feed(self, token: str) -> str:
        """Add a token; return the text that is now safe to send."""
        if self.blocked:
            return ""
        self.text += token
        if not self._check():
            return ""
        safe_until = max(self.sent, len(self.text) - self.holdback)
        out, self.sent = self.text[self.sent : safe_until], safe_until
        return out

    def finish(self) -> str:
        """The stream ended: check everything and release what was held back."""
        if self.blocked or not self._check():
            return ""
        out, self.sent = self.text[self.sent :], len(self.text)
        return out
