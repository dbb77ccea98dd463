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
from urllib.parse import urlsplit

from chains.answer import cut_at_marker
from guards.leaks import Embed, LeakDetector

logger = logging.getLogger(__name__)

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
# Things an answer may only contain when the shop's own documents (the retrieved context) do: a code
# ("KORTING-7731", "KH-LB-1001": voucher, order or product codes) or a link/domain. Injected
# instructions and hallucinations both tend to add exactly these; grounded answers copy them.
GROUNDED_PATTERNS: dict[str, re.Pattern[str]] = {
    # upper-case ("KATZE-GRATIS-77", "USB-C") or, in any case, with a part after a hyphen that starts with two
    # digits ("korting-7731", "kh-lb-1001"; not "A4-formaat", "CO2-neutraal", "ma-vr")
    "ungrounded_code": re.compile(
        r"\b(?:[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+|[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*-\d{2,}[A-Za-z0-9]*(?:-[A-Za-z0-9]+)*)\b"
    ),
    "ungrounded_link": re.compile(
        r"\bhttps?://[^\s\"'<>)\]]+|\bwww\.[\w-]+(?:\.[\w-]+)+"
        r"|\b[\w-]+(?:\.[\w-]+)*\.(?:com|nl|be|de|eu|net|org|io|biz|info|shop|xyz|ru|cn|example)\b",
        re.I,
    ),
}
SHOP_DOMAINS = ("kattenhuis.nl",)
_CODE_TOKEN = re.compile(r"[\w-]+")


def _hostname(item: str) -> tuple[str, bool]:
    """The link's parsed host name and whether the link has nothing but a host (no user, port, path, query)."""
    try:
        parts = urlsplit(item if "://" in item else "http://" + item)
        host, port = (parts.hostname or "").rstrip("."), parts.port
    except ValueError:
        return "", False
    bare = not (parts.username or parts.password or port or parts.path.strip("/") or parts.query or parts.fragment)
    return host, bare


def _shop_link(item: str, *, partial: bool) -> bool:
    """A link to the shop's own domain (by the parsed host name, not by the text around it).

    ``partial``: the link ends the text of a stream still growing, so a bare host that is the start of the shop's
    address ("https://www.kattenh") is allowed until the next check.
    """
    host, bare = _hostname(item)
    if any(host == d or host.endswith("." + d) for d in SHOP_DOMAINS):
        return True
    prefix = any(f"www.{d}".startswith(host) or d.startswith(host) for d in SHOP_DOMAINS)
    return partial and bare and bool(host) and prefix


def _in_context(item: str, folded: str) -> bool:
    """A code occurs in the context as a whole code, not as the start of a longer one ("KH-LB-100")."""
    return re.search(rf"(?<![\w-]){re.escape(item)}(?![\w-])", folded) is not None


def ungrounded(text: str, context: str, *, partial: bool = False) -> list[str]:
    """Names of ``GROUNDED_PATTERNS`` with a match in ``text`` that ``context`` does not contain.

    Codes compare case-insensitively. Links to the shop's own domain (by the parsed host name) are always allowed;
    other links only when the context contains the link's text. ``partial``: ``text`` is a stream still growing; a
    match at its very end may be an incomplete shop address ("www.kattenhuis.n") or an incomplete grounded code
    and is then left for the next check.
    """
    folded = context.casefold()
    found = []
    for name, pattern in GROUNDED_PATTERNS.items():
        for match in pattern.finditer(text):
            item = match.group(0).casefold().rstrip(".,;:!?")
            at_end = partial and match.end() == len(text)
            if name == "ungrounded_code":
                # the whole token: all of "KH-CANARY-5e1f" where the pattern took "KH-CANARY"
                whole = _CODE_TOKEN.match(text, match.start())
                item = whole.group(0).casefold().strip("-") if whole else item
                if (item in folded) if at_end else _in_context(item, folded):
                    continue
            elif item in folded or _shop_link(item, partial=at_end):
                continue
            found.append(name)
            break
    return found


@dataclass(frozen=True, kw_only=True)
class OutputVerdict:
    """The outcome of checking an answer."""

    decision: OutputDecision
    reasons: list[str] = field(default_factory=list)


class OutputFilter:
    """Blocks answers containing the canary, secrets, the system prompt (in any form) or internals.

    ``embed`` (texts to L2-normalised rows, e.g. the e5 query encoder) adds ``system_prompt_similar``: a sentence
    that is a translation or paraphrase of the system prompt (``guards.leaks``).
    """

    def __init__(
        self,
        *,
        canary: str,
        protected_texts: Iterable[str],
        secrets: Iterable[str] = (),
        embed: Embed | None = None,
    ) -> None:
        self.canary = canary
        self._secrets = [s for s in secrets if s and len(s) >= 8]
        self.leaks = LeakDetector(canary, list(protected_texts), embed)

    def check(self, text: str, context: str | None = None, *, partial: bool = False) -> OutputVerdict:
        """Return ``block`` with the reasons when ``text`` must not reach the shopper.

        With ``context`` (the retrieved documents' text) codes and links in ``text`` must also occur in it.
        """
        reasons = self.leaks.reasons(text)
        if any(s in text for s in self._secrets):
            reasons.append("secret")
        reasons.extend(name for name, pattern in LEAK_PATTERNS.items() if pattern.search(text))
        if context is not None:
            reasons.extend(ungrounded(text, context, partial=partial))
        if reasons:
            logger.warning("output filter blocked an answer: %s", ",".join(reasons))
            return OutputVerdict(decision="block", reasons=reasons)
        return OutputVerdict(decision="pass")


class StreamGuard:
    """Releases streamed text only once the text around it has been checked.

    ``feed`` returns the text that may be sent now (everything but the last
    ``holdback`` characters); ``finish`` returns the rest. Once blocked, nothing more
    is released and ``blocked`` is true. Text from an end marker on (``chains.answer``) is never
    released: the hold-back is longer than any marker, so a marker is seen before it could be sent.
    """

    def __init__(
        self,
        output_filter: OutputFilter,
        holdback: int = HOLDBACK_CHARS,
        context: str | None = None,
        *,
        cut_runon: bool = True,
    ) -> None:
        self.filter = output_filter
        self.holdback = holdback
        self.context = context  # set once the retrieved documents are known
        self.text = ""
        self.sent = 0
        self.blocked = False
        self.ended = False  # the model ran on into our markup (chains.answer): the rest is dropped
        self.cut_runon = cut_runon
        self.reasons: list[str] = []

    def _check(self, *, partial: bool) -> bool:
        verdict = self.filter.check(self.text, self.context, partial=partial)
        if verdict.decision == "block":
            self.blocked, self.reasons = True, verdict.reasons
        return not self.blocked

    def feed(self, token: str) -> str:
        """Add a token; return the text that is now safe to send (nothing after an end marker)."""
        if self.blocked or self.ended:
            return ""
        if self.cut_runon:
            self.text, self.ended = cut_at_marker(self.text + token)
        else:
            self.text += token
        if not self._check(partial=True):
            return ""
        safe_until = max(self.sent, len(self.text) - self.holdback)
        out, self.sent = self.text[self.sent : safe_until], safe_until
        return out

    def finish(self) -> str:
        """The stream ended: check everything and release what was held back."""
        if self.blocked or not self._check(partial=False):
            return ""
        out, self.sent = self.text[self.sent :], len(self.text)
        return out
