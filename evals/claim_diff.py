"""Unsupported claims in an answer, by a plain diff against the documents it cites.

Independent of the service's own claim check (``chains.claims``, ``chains.normalize``): the evaluation must not
grade the service with the service's code. Two kinds of claim are taken from an answer:

- **numbers** (prices, sizes, weights, percentages, SKUs' digits): decimal comma and point are one
  (``54,95`` == ``54.95``), trailing zeros do not count (``119,00`` == ``119``, ``09:00`` == ``9.00``). A number is
  supported when it occurs in the text of a cited document, when the question itself says it (an echo is no
  claim), or when it is the sum or difference of two amounts with decimals of the cited documents
  (``39,95 + 4,95 = 44,90``: the catalogue's computed shipping totals; integers are too common to combine).
  Numbers written as words are out of scope; list markers (``1.``) and numbers inside a recognised product
  name are not claims.
- **product names**: the catalogue's product names (``name`` of the product sheets and the feed, matched
  case-insensitively) and capitalised "Brand Word" runs whose brand is a catalogue brand (``VitaKat Senior``,
  ``PurrClean AutoBox Pro``, ``PurrClean AutoBox 12``). Such a name is supported when its words (and model
  number, if any) begin a catalogue product's name (``VitaKat Kitten``) and that product's document is cited.
  A bare brand is no product claim.

The service's feed-date note ("Prijs en voorraad volgens onze productfeed van 26-11-2026.") is no claim: every
sentence that mentions the product feed is dropped first. Names, brands and texts are read from
``data/catalogue`` at evaluation time (``load_catalogue``), never from a list in the code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from itertools import combinations
from pathlib import Path

from core.settings import ROOT
from ingest.loaders import iter_files, load_file

CATALOGUE = ROOT / "data" / "catalogue"
_NUMBER = re.compile(r"(?<![\d.,:])\d+(?:[.,]\d+|:\d\d(?!\d))*(?:\s?%)?")  # 54,95 · 1.000 · 09:00 · 36 %
_LIST_MARKER = re.compile(r"^\s*\d+[.)]\s", re.MULTILINE)
_SENTENCE = re.compile(r"(?<=[.!?)])\s+|\n+")
_FEED_NOTE = re.compile(r"product\s?feed", re.IGNORECASE)
_TOKEN = re.compile(r"[^\W\d_]+|\d+(?:[.,]\d+)*")


@dataclass(frozen=True)
class Catalogue:
    """What the diff needs from the catalogue: every document's text, the product names and the brands."""

    texts: dict[str, str]  # doc id → document text (as ingest.loaders reads it)
    products: dict[str, str]  # doc id → product name (product documents only)
    brands: frozenset[str]


@dataclass
class ClaimDiff:
    """The claims of one answer and the ones its cited documents do not support."""

    numbers: list[str] = field(default_factory=list)  # canonical numbers claimed ("54.95", "36%")
    products: list[str] = field(default_factory=list)  # product names claimed, as written
    unsupported: list[str] = field(default_factory=list)  # one reason per unsupported claim

    @property
    def ok(self) -> bool:
        """No unsupported claim."""
        return not self.unsupported


@lru_cache(maxsize=4)
def load_catalogue(root: Path = CATALOGUE) -> Catalogue:
    """Read texts, product names and brands from the catalogue folder (Markdown front matter and feeds)."""
    texts: dict[str, str] = {}
    products: dict[str, str] = {}
    brands: set[str] = set()
    for path in iter_files(root):
        for doc in load_file(path):
            texts[doc.doc_id] = doc.text
            if doc.metadata.get("name") and doc.metadata.get("doc_type", "product") == "product":
                products[doc.doc_id] = str(doc.metadata["name"])
            if doc.metadata.get("brand"):
                brands.add(str(doc.metadata["brand"]))
    return Catalogue(texts=texts, products=products, brands=frozenset(brands))


def canonical_number(raw: str) -> str:
    """``"€ 54,95"``-style digits as one spelling: ``"54,95"`` → ``"54.95"``, ``"119,00"`` → ``"119"``."""
    digits = raw.rstrip("% ").strip().replace(":", ".")  # a time: 09:00 == 09.00 == 9
    if "," in digits and "." in digits:  # 1.234,50 or 1,234.50: the last separator is the decimal one
        cut = max(digits.rfind(","), digits.rfind("."))
        digits = re.sub(r"[.,]", "", digits[:cut]) + "." + digits[cut + 1 :]
    elif digits.count(",") + digits.count(".") > 1:  # 1.000.000: thousands only
        digits = re.sub(r"[.,]", "", digits)
    else:
        digits = digits.replace(",", ".")
    try:
        value = format(Decimal(digits).normalize(), "f")
    except InvalidOperation:
        value = digits
    return value + "%" if raw.rstrip().endswith("%") else value


def numbers_in(text: str) -> list[str]:
    """The canonical numbers of ``text`` in order (percentages keep their ``%``)."""
    return [canonical_number(m.group()) for m in _NUMBER.finditer(text)]


def strip_feed_note(text: str) -> str:
    """``text`` without the sentences that mention the product feed (the service's date note)."""
    return "\n".join(s for s in _SENTENCE.split(text) if s and not _FEED_NOTE.search(s))


def _tokens(text: str) -> list[str]:
    return [canonical_number(t) if t[0].isdigit() else t for t in _TOKEN.findall(text.casefold())]


def _brand_runs(brands: Iterable[str]) -> re.Pattern[str]:
    """A catalogue brand, then capitalised words, then at most one model number: ``PurrClean AutoBox 12``."""
    alternatives = "|".join(re.escape(b) for b in sorted(brands, key=len, reverse=True))
    space = r"[^\S\n]+"  # within one line
    return re.compile(rf"\b(?i:{alternatives})(?:{space}[A-Z][\w-]*)+(?:{space}\d+(?:[.,]\d+)?)?(?![\w.,]\d)")


def _matching(claim: str, catalogue: Catalogue) -> list[str]:
    """The products whose names begin with the "Brand Word … [number]" run ``claim`` (``[]``: no such product)."""
    tokens = _tokens(claim)
    number = tokens.pop() if tokens and tokens[-1][0].isdigit() else None
    names = {doc_id: _tokens(name) for doc_id, name in catalogue.products.items()}
    found = [d for d, n in names.items() if n[: len(tokens)] == tokens]  # "PurrClean AutoBox Pro": none
    if number is not None:  # "PurrClean AutoBox 12": the line exists, the model does not
        found = [d for d in found if names[d][len(tokens) : len(tokens) + 1] == [number]]
    return found


def product_claims(answer: str, catalogue: Catalogue) -> list[tuple[str, list[str], tuple[int, int]]]:
    """The product names ``answer`` states: (name as written, matching product ids, span)."""
    claims: list[tuple[str, list[str], tuple[int, int]]] = []
    folded = answer.casefold()
    for doc_id, name in catalogue.products.items():
        for m in re.finditer(re.escape(name.casefold()), folded):
            claims.append((answer[m.start() : m.end()], [doc_id], m.span()))
    if catalogue.brands:
        for m in _brand_runs(catalogue.brands).finditer(answer):
            if not any(s <= m.start() < e for _, _, (s, e) in claims):
                claims.append((m.group(), _matching(m.group(), catalogue), m.span()))
    return sorted(claims, key=lambda c: c[2])


def _computed(number: str, pool: set[str]) -> bool:
    """The sum or difference of two amounts with decimals of the cited documents (``39,95 + 4,95``)."""
    if number.endswith("%"):
        return False
    target = Decimal(number)
    values = sorted({Decimal(n) for n in pool if "." in n and not n.endswith("%")})
    return any(a + b == target or abs(a - b) == target for a, b in combinations(values, 2))


def diff_claims(answer: str, cited: Iterable[str], catalogue: Catalogue, question: str = "") -> ClaimDiff:
    """The numbers and product names of ``answer`` that the documents ``cited`` do not support."""
    cited = [c for c in cited if c]
    text = strip_feed_note(_LIST_MARKER.sub(" ", answer))
    result = ClaimDiff()
    products = product_claims(text, catalogue)
    for name, ids, _ in products:
        result.products.append(name)
        named = any(name.casefold() in catalogue.texts.get(doc_id, "").casefold() for doc_id in cited)
        if named:  # a cited document names it: quoted, not invented ("PurrClean Home", the AutoBox's app)
            continue
        if not ids:
            result.unsupported.append(f"product {name!r} is not in the catalogue")
        elif not set(ids) & set(cited):  # a catalogue product is supported by its own cited document
            result.unsupported.append(f"product {name!r} ({', '.join(ids)}) is not cited")
    spans = [span for _, _, span in products]
    for m in _NUMBER.finditer(text):
        if not any(s <= m.start() < e for s, e in spans):
            result.numbers.append(canonical_number(m.group()))
    pool = {n for doc_id in cited for n in numbers_in(catalogue.texts.get(doc_id, ""))}
    pool |= {n.rstrip("%") for n in pool}  # "36%" in a document supports "36" in the answer, and back
    echoed = set(numbers_in(question)) | {n.rstrip("%") for n in numbers_in(question)}
    for number in dict.fromkeys(result.numbers):
        if number in pool or number.rstrip("%") in pool or number in echoed or _computed(number, pool):
            continue
        where = "no document is cited" if not cited else f"not in {', '.join(cited)}"
        result.unsupported.append(f"number {number}: {where}")
    return result
