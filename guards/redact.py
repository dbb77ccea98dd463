"""Redaction of personal data before it is stored (conversation history, feedback) or logged.

E-mail addresses, phone numbers (Dutch national and international formats), the shop's order
numbers (``KH`` + 8 digits, and any number after "ordernummer"/"order number"/"bestelnummer")
and conversation handles are replaced by fixed placeholders. Product codes such as
``KH-LB-1001`` are not personal data and stay.
"""

from __future__ import annotations

import logging
import re
from typing import Any

EMAIL = "[e-mail]"
PHONE = "[telefoonnummer]"
ORDER = "[ordernummer]"
IBAN = "[iban]"
HANDLE = "[gesprek]"

# Order numbers: the shop's format, and whatever follows the word for it (also used by chains.scope).
SHOP_ORDER_NUMBER = re.compile(r"\bKH[\s-]?\d{8}\b", re.I)
LABELLED_ORDER_NUMBER = re.compile(
    r"\b(?P<label>(?:order|bestelling|bestel)(?:[\s-]?(?:nummer|number|nr|no))?\.?\s*[:#]?\s*)"
    r"(?=[A-Z0-9-]*\d)[A-Z0-9][A-Z0-9-]{3,19}\b",
    re.I,
)

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"[\w.+%-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE), EMAIL),
    # Conversation handles (see core/threads.py) are bearer secrets: never in logs.
    (re.compile(r"\bth_[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{22}"), HANDLE),
    (re.compile(r"\b[A-Z]{2}\d{2}\s?[A-Z]{4}(?:\s?\d{4}){2}\s?\d{2}\b"), IBAN),
    (SHOP_ORDER_NUMBER, ORDER),
    (LABELLED_ORDER_NUMBER, r"\g<label>" + ORDER),
    # International: +31 6 12345678, 0031 (0)20 123 4567, +32 470 12 34 56 (9 to 14 digits after the +).
    (re.compile(r"(?<![\w+])(?:\+|00)[1-9](?:[\s().-]{0,3}\d){8,13}(?!\d)"), PHONE),
    # Dutch national, exactly ten digits: 0612345678, 06-1234 5678, 020-123 45 67, (020) 1234567.
    (re.compile(r"(?<![\w+])\(?0(?:[\s()-]{0,2}\d){9}(?!\d)"), PHONE),
]


def redact(text: str) -> str:
    """``text`` with e-mail addresses, phone numbers, order numbers, IBANs and handles replaced."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_obj(value: Any) -> Any:
    """Redact every string inside nested dicts, lists and tuples (keys stay as they are)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_obj(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_obj(v) for v in value)
    return value


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the formatted message of every record it sees."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace the record's message by its redacted rendering (never drops a record)."""
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: let the handler report it as usual
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install_log_redaction(logger_names: tuple[str, ...] = ("", "uvicorn", "uvicorn.error", "uvicorn.access")) -> None:
    """Attach one ``RedactingFilter`` to every handler of these loggers (idempotent)."""
    for name in logger_names:
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(RedactingFilter())
