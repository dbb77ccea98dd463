"""Formatting of retrieved documents into a delimited, escaped context block.

Retrieved text is data, never instructions: it goes into the user turn inside
``<documenten>`` tags, and anything in it that looks like one of our tags is escaped
so that a document cannot close the block and speak as the system.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

_TAG_LIKE = re.compile(r"<\s*/?\s*(documenten|document|system|systeem|instructies?)\b[^>]*>", re.I)


def escape_tags(text: str) -> str:
    """Neutralise tag-like text that could close or open our delimiters."""
    return _TAG_LIKE.sub(lambda m: m.group(0).replace("<", "&lt;").replace(">", "&gt;"), text)


def format_context(chunks: Sequence[dict[str, Any]]) -> str:
    """Render chunks as a numbered, delimited block.

    Each chunk is a mapping with ``doc_id``, ``title`` and ``text``.
    """
    parts = ["<documenten>"]
    for i, chunk in enumerate(chunks, start=1):
        title = escape_tags(str(chunk.get("title", ""))).replace('"', "'")
        parts.append(f'<document nr="{i}" titel="{title}">')
        parts.append(escape_tags(str(chunk.get("text", ""))).strip())
        parts.append("</document>")
    parts.append("</documenten>")
    return "\n".join(parts)


def format_evidence(lines: Sequence[Any]) -> str:
    """Render evidence lines (``core.evidence.EvidenceLine``) as a delimited block, grouped by document.

    Documents keep the order of their best line; each line is one row of plain text.
    """
    groups: dict[str, list[Any]] = {}
    for line in lines:
        groups.setdefault(line.doc_id, []).append(line)
    parts = ["<documenten>"]
    for i, group in enumerate(groups.values(), start=1):
        title = escape_tags(str(group[0].title)).replace('"', "'")
        parts.append(f'<document nr="{i}" titel="{title}">')
        parts.extend(escape_tags(" ".join(str(getattr(line, "rendered", line.text)).split())) for line in group)
        parts.append("</document>")
    parts.append("</documenten>")
    return "\n".join(parts)


def grounding_text(chunks: Sequence[dict[str, Any]]) -> str:
    """All text of the retrieved chunks (titles, body, metadata values): what an answer may quote."""
    return "\n".join(str(v) for chunk in chunks for v in chunk.values() if isinstance(v, str | int | float))
