"""Split a document into quotable lines: header lines, sentences, list items, table rows, FAQ questions.

A line is what the assistant may quote to a shopper (``text``); its ``context`` is embedded and indexed with it:
the document's title, the nearest section heading and, where there is one, the FAQ question a line answers, the
sentence that introduces a list ("… niet retourneren als de verpakking geopend is:") or a two-column table's
column names. So "Nee, alleen met de hand afwassen." is still found for "Mag de Flow 2 in de vaatwasser?".

Rules: the title is context, not a line; each product header line ("Prijs: € 54,95") is a line; Markdown headings
are context; list items are lines without their marker; table rows read "first: second" (two columns) or
"first: header2 cell2; header3 cell3"; a bold "**Question?**" is a line and the context of its answer; paragraphs
are split into sentences (not inside "54,95", "2.8", "bijv.", e-mail addresses or URLs; a sentence under
``MIN_SENTENCE_WORDS`` words joins the next; one over ``MAX_SENTENCE_WORDS`` words splits at "; "); lines without
letters or digits are dropped. The ingest stores every line with its vector next to the chunks
(``<collection>__lines``, ``ingest.pipeline``); ``core.evidence.LineIndex`` selects the lines that answer a question.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from ingest.loaders import Document

logger = logging.getLogger(__name__)

SPLIT_VERSION = 1  # part of the ingest fingerprint: bump it when the rules below change (every line is re-split)
CONTEXT_SEPARATOR = " — "
MAX_SENTENCE_WORDS = 45  # a longer sentence is split at "; "
MIN_SENTENCE_WORDS = 3  # a shorter sentence ("Ja.", "Nee, nooit.") is joined to the next one of its paragraph
TWO_COLUMNS = 2  # a two-column table row reads "first: second"; wider ones name their columns
# Abbreviations whose period does not end a sentence (lower-case, without the final period).
ABBREVIATIONS = frozenset(
    {"bijv", "bv", "ca", "o.a", "e.g", "i.e", "d.w.z", "etc", "enz", "incl", "excl", "max", "min", "nr", "vs"}
    | {"m.b.t", "t.a.v", "z.s.m", "resp", "evt", "ong", "mr", "mevr", "dhr"}
)

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*$")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+(.*)$")
_TABLE_ROW = re.compile(r"^\s*\|.*\|\s*$")
_TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(?:\|\s*:?-{2,}:?\s*)*\|?\s*$")
_FAQ_QUESTION = re.compile(r"^\s*\*\*(.+?)\*\*\s*$")
_QUOTE = re.compile(r"^\s*>\s?")
_HAS_WORD = re.compile(r"\w")
# A sentence ends at . ! ? (optionally followed by a closing quote or bracket) before white space and a capital,
# digit, quote, bracket or euro sign; "54,95", "2.8", e-mail addresses and URLs have no white space after the dot.
_SENTENCE_END = re.compile(r"(?<=[.!?])([\"')\]]?)\s+(?=[\"'(\[€A-ZÀ-Ý0-9])")
_WORD_BEFORE_DOT = re.compile(r"(\S+)\.$")


@dataclass(frozen=True, kw_only=True)
class DocLine:
    """One line of a document: ``text`` is quoted, ``context`` is embedded and indexed with it."""

    line: int  # 0-based ordinal within the document
    text: str
    context: str


def _clean(text: str) -> str:
    """Inline Markdown removed (emphasis, code, links → their text), white space collapsed."""
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)
    text = text.replace("**", "").replace("__", "").replace("`", "")
    return " ".join(text.split())


def _is_abbreviation(piece: str) -> bool:
    """True when ``piece`` ends with a known abbreviation ("bijv.", "o.a.") rather than a sentence."""
    match = _WORD_BEFORE_DOT.search(piece)
    return match is not None and match.group(1).lower().lstrip("(\"'") in ABBREVIATIONS


def split_sentences(text: str) -> list[str]:
    """Split a paragraph into sentences; numbers, abbreviations, e-mail addresses and URLs stay whole."""
    pieces: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        end = match.start() + len(match.group(1))
        piece = text[start:end]
        if _is_abbreviation(piece.rstrip("\"')]")) or text[start:end].count('"') % 2:  # inside a quotation
            continue
        pieces.append(piece)
        start = match.end()
    pieces.append(text[start:])
    out: list[str] = []
    for piece in _join_short([p.strip() for p in pieces if p.strip()]):
        if len(piece.split()) > MAX_SENTENCE_WORDS and "; " in piece:
            parts = piece.split("; ")
            out.extend(p + ";" if i < len(parts) - 1 else p for i, p in enumerate(parts))
        else:
            out.append(piece)
    return [p for p in out if p]


def _join_short(sentences: list[str]) -> list[str]:
    """Join each sentence under ``MIN_SENTENCE_WORDS`` words to the one after it (a bare "Ja." quotes nothing)."""
    out: list[str] = []
    carry = ""
    for sentence in sentences:
        sentence = f"{carry} {sentence}".strip()
        carry = sentence if len(sentence.split()) < MIN_SENTENCE_WORDS else ""
        if not carry:
            out.append(sentence)
    return [*out, carry] if carry else out


def _cells(row: str) -> list[str]:
    return [_clean(c) for c in row.strip().strip("|").split("|")]


def table_header(rows: list[str]) -> list[str]:
    """The header cells of a pipe table (the row above its ``|---|`` separator), or [] without one."""
    return _cells(rows[0]) if len(rows) > 1 and _TABLE_SEPARATOR.match(rows[1]) else []


def table_lines(rows: list[str]) -> list[str]:
    """Pipe-table rows as text: ``first: second``, or ``first: header2 cell2; header3 cell3`` for wider tables."""
    header = table_header(rows)
    if header:
        rows = rows[2:]
    out: list[str] = []
    for row in rows:
        if _TABLE_SEPARATOR.match(row):
            continue
        cells = _cells(row)
        if len(cells) == 1:  # a one-column table: the cell is the line
            out.extend(cells)
        elif len(cells) == TWO_COLUMNS:
            out.append(f"{cells[0]}: {cells[1]}")
        else:
            named = [f"{header[i]} {c}".strip() if i < len(header) else c for i, c in enumerate(cells) if i and c]
            out.append(f"{cells[0]}: {'; '.join(named)}")
    return out


class _Splitter:
    """State while walking one document's Markdown: the current heading, FAQ question, paragraph and table.

    Besides the title and heading, a line's context holds the FAQ question it answers, for a list item the
    sentence that introduces the list ("… niet retourneren als de verpakking geopend is:"), and for a row of a
    two-column table the column names.
    """

    def __init__(self, title: str) -> None:
        self.title = title
        self.heading = ""
        self.question = ""  # the bold FAQ question whose answer follows
        self.answered = False  # a line of that answer has been added
        self.lead = ""  # the sentence ending in ":" before a list, while the list lasts
        self.paragraph: list[str] = []
        self.table: list[str] = []
        self.out: list[tuple[str, str]] = []  # (text, context)

    def context(self, extra: str = "") -> str:
        return CONTEXT_SEPARATOR.join(p for p in (self.title, self.heading, self.question, extra) if p)

    def add(self, text: str, extra: str = "") -> None:
        text = _clean(text)
        if text and _HAS_WORD.search(text) and text != self.title:
            self.out.append((text, self.context(extra)))
            self.answered = bool(self.question)

    def flush(self) -> None:
        """End the open paragraph and table."""
        if self.paragraph:
            sentences = split_sentences(_clean(" ".join(self.paragraph)))
            for sentence in sentences:
                self.add(sentence)
            self.lead = sentences[-1] if sentences and sentences[-1].endswith(":") else ""
            self.paragraph = []
        if self.table:
            header = table_header(self.table)
            names = " / ".join(header) if len(header) == TWO_COLUMNS else ""
            for row in table_lines(self.table):
                self.add(row, names)
            self.table = []

    def new_block(self, question: str = "") -> None:
        """A heading or a FAQ question: what was open ends, and the question (if any) is the new context."""
        self.flush()
        self.question, self.answered, self.lead = question, False, ""

    def feed(self, raw: str) -> None:
        line = _QUOTE.sub("", raw).rstrip()
        if _TABLE_ROW.match(line):
            if not self.table:
                self.flush()
                self.lead = ""
            self.table.append(line)
            return
        if not line.strip():
            self.flush()
            if self.answered:  # a blank line after the answer ends the FAQ entry
                self.question, self.answered = "", False
            return
        if self.table:
            self.flush()
        if heading := _HEADING.match(line):
            self.new_block()
            self.heading = "" if len(heading.group(1)) == 1 else _clean(heading.group(2))  # H1 restates the title
        elif faq := _FAQ_QUESTION.match(line):
            self.new_block()
            self.add(faq.group(1))  # the question is a line too (in the section's context)
            self.question, self.answered = _clean(faq.group(1)), False
        elif item := _LIST_ITEM.match(line):
            self.flush()
            text = _clean(item.group(1))
            for piece in split_sentences(text) if len(text.split()) > MAX_SENTENCE_WORDS else [text]:
                self.add(piece, self.lead)
        else:
            self.lead = ""
            self.paragraph.append(line)


def split_lines(doc: Document) -> list[DocLine]:
    """Split ``doc`` into its quotable lines, in document order (see the module doc for the rules)."""
    rows = doc.text.split("\n")
    splitter = _Splitter(doc.title.strip())
    start = 0
    if rows and rows[0].strip() == doc.title.strip():
        start = 1
        if doc.metadata.get("doc_type") == "product":  # the product header: one line per field, up to a blank line
            while start < len(rows) and rows[start].strip():
                splitter.add(rows[start])
                start += 1
    for raw in rows[start:]:
        splitter.feed(raw)
    splitter.flush()
    return [DocLine(line=i, text=text, context=context) for i, (text, context) in enumerate(splitter.out)]


def line_passage(line: DocLine) -> str:
    """The text embedded for a line (e5 ``passage:`` side): its context, then the line itself."""
    return f"{line.context}: {line.text}" if line.context else line.text
