"""Evidence lines: the sentences, list items, table rows and product-header lines of the indexed documents.

The ingest splits each document into lines (``ingest.lines``) and stores every line with its vector in a
sibling collection of the chunk collection (``<version>__lines``), versioned with it. At run time the
``evidence`` node picks the few lines of the retrieved documents that answer the question; only those go
into the prompt, and the claim check (``chains.claims``) accepts a generated sentence only when one of them
supports it.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from core.lexical import tokenize
from core.vectorstore import VectorStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class EvidenceLine:
    """One line of a catalogue document, as selected for a question."""

    doc_id: str
    line: int  # the line's number within its document (0-based, in document order)
    title: str  # the document's title
    text: str  # the line as it is quoted ("Inhoud: 55 liter")
    score: float = 0.0  # how well it answers the question (selection score)
    version: str = ""  # the index version (collection name) it was read from
    product: str = ""  # the product name when the document is a product sheet, else ""
    asked: str = ""  # the FAQ question this line answers (the question line just before it), else ""

    @property
    def is_question(self) -> bool:
        """An FAQ's question ("Kan ik …?"): it asserts nothing, so it neither supports a claim nor is quoted."""
        return self.text.rstrip().endswith("?")

    @property
    def rendered(self) -> str:
        """The line as the prompt and the extractive answer show it: an FAQ answer after its question."""
        return f"{self.asked} {self.text}".strip() if self.asked else self.text

    @property
    def line_id(self) -> str:
        """``<doc_id>:<line>``: what the audit line records (never the text)."""
        return f"{self.doc_id}:{self.line}"


# Token estimate of the prompt's evidence block (chains.context.format_evidence): the lines' text, and per document
# its title plus the markup around it.
CHARS_PER_TOKEN = 3.5
DOC_OVERHEAD_TOKENS = 10  # '<document nr="1" titel="">', '</document>' and the line breaks
LOAD_PAGE = 1000  # records per read when loading a lines collection
BM25_K1 = 1.2
BM25_B = 0.75
_I = re.IGNORECASE
_PERIOD = (
    r"\b\d+(\s*(tot|to|-)\s*\d+)?\s*(werk|working\s|business\s)?"
    r"(dagen|dag|weken|week|maanden|maand|jaar|jaren|minuten|uur|days?|weeks?|months?|years?|minutes?|hours?)\b"
)
_NUMBER = r"\d+(?:[,.]\d+)?"
_CONTACT = r"@|\b0\d{2,3}-?\d{6,7}\b"  # an e-mail address or a Dutch phone number
# Answer types: a question that asks for a price, a duration, a frequency, an amount or a measure (weight, size,
# loudness, volume, temperature) or for contact details favours lines that hold one. Measures are written the
# catalogue's way ("Gewicht: 18,5 kg", "Ingang: 17 x 19 cm", "Geluid: max. 30 dB"); the question may be English.
ANSWER_TYPES = (
    (r"\b(kost|kosten|prijs|prijzen|duur|goedkoop|price|cost|costs|betaal|betalen|pay)\b", r"€|\beuro\b|\bprijs\b"),
    (r"\b(hoe ?lang|how long|garantie|warranty|hoeveel (dagen|weken|maanden)|how many (days|weeks|months))\b", _PERIOD),
    (r"\b(hoe vaak|how often)\b", r"\b(elke|iedere|om de|per (dag|week|maand))\b"),
    (r"\b(hoeveel|how much|how many|inhoud|capacity)\b", r"\d"),
    (r"\b(zwaar|gewicht|weegt|wegen|heavy|weight|weigh|weighs)\b", rf"\b{_NUMBER}\s*(kg|kilo|gram|g)\b"),
    (
        r"\b(hoe groot|hoe hoog|hoe breed|hoe diep|afmeting(en)?|formaat|maat|lengte|hoogte|breedte|ingang|"
        r"how big|how tall|how high|how wide|how deep|how long is|size|dimensions?|length|height|width|entrance)\b",
        rf"\b{_NUMBER}\s*(x\s*{_NUMBER}\s*)*(cm|mm|m|meter)\b",
    ),
    (r"\b(luid|lawaai|geluid|herrie|stil|loud|noise|noisy|quiet|silent)\b", r"\bdb\b|decibel"),
    (r"\b(liter|litre|liters|litres|volume)\b", rf"\b{_NUMBER}\s*(l|liter|ml)\b"),
    (r"\b(graden|temperatuur|warm|heet|degrees|temperature|hot)\b", r"°|\bgraden\b"),
    (
        r"\b(e-?mail|mailen|mail|bellen|bel|telefoon|telefoonnummer|nummer|phone|call|contact)\b",
        _CONTACT,
    ),
)
_ANSWER_TYPES = tuple((re.compile(q, _I), re.compile(line, _I)) for q, line in ANSWER_TYPES)


@dataclass(frozen=True)
class SelectionWeights:
    """Weights of the line score (tuned on the dev half with ``python -m evals.evidence_eval --grid``).

    score = cosine(line, question) + ``centred`` × cosine(line − its document's mean line, question)
    + ``lexical`` × BM25 of the question over the candidates' text and section (0..1)
    + ``answer_type`` × (the line holds what the question asks for: a price, a duration, an amount)
    − ``rank`` × the document's rank among the retrieved documents (0 for the best).
    """

    centred: float = 1.0  # what sets a line apart within its document (not the title all its lines share)
    lexical: float = 0.1
    answer_type: float = 0.15  # 0.04 → 0.15 and centred 0.5 → 1.0: dev top-2 recall 52 % → 63 % (top-8 unchanged)
    rank: float = 0.01


def line_tokens(text: str) -> int:
    """Estimated prompt tokens of one line."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def doc_tokens(title: str) -> int:
    """Estimated prompt tokens a document adds besides its lines: its title and markup."""
    return math.ceil(len(title) / CHARS_PER_TOKEN) + DOC_OVERHEAD_TOKENS


def estimate_tokens(lines: Sequence[EvidenceLine]) -> int:
    """Estimated prompt tokens of ``lines``: every line, plus each document's title overhead once."""
    titles = {line.doc_id: line.title for line in lines}
    return sum(line_tokens(line.rendered) for line in lines) + sum(doc_tokens(t) for t in titles.values())


def bm25_scores(query: Sequence[str], docs: Sequence[Sequence[str]]) -> np.ndarray:
    """BM25 of the ``query`` terms over the small collection ``docs`` (term lists), scaled to 0..1."""
    scores = np.zeros(len(docs), dtype=np.float32)
    if not query or not docs:
        return scores
    lengths = np.array([len(d) for d in docs], dtype=np.float32)
    norm = BM25_K1 * (1 - BM25_B + BM25_B * lengths / max(float(lengths.mean()), 1.0))
    counts = [Counter(d) for d in docs]
    for term in set(query):
        tf = np.array([c.get(term, 0) for c in counts], dtype=np.float32)
        df = int((tf > 0).sum())
        if df:
            scores += math.log(1 + (len(docs) - df + 0.5) / (df + 0.5)) * tf * (BM25_K1 + 1) / (tf + norm)
    top = float(scores.max())
    return scores / top if top > 0 else scores


def answer_types(question: str, texts: Sequence[str]) -> np.ndarray:
    """1.0 for each text that holds a kind of answer the question asks for (a price, a duration…), else 0.0."""
    wanted = [line for q, line in _ANSWER_TYPES if q.search(question)]
    return np.array([float(any(p.search(t) for p in wanted)) for t in texts], dtype=np.float32)


def lacks_asked_value(question: str, answer: str, lines: Sequence[str]) -> bool:
    """The question asks for kinds of value (a price, a duration, a measure…) that ``lines`` hold and ``answer`` lacks.

    A small model's checked answer can be true and still not answer: "De CatCave Classic 55 is een overdekte
    kattenbak." for "Wat kost de CatCave Classic 55?" while the price line is in the evidence.
    """
    wanted = [line for q, line in _ANSWER_TYPES if q.search(question)]
    held = [p for p in wanted if any(p.search(t) for t in lines)]
    return not all(p.search(answer) for p in held)  # "hoeveel liter": a digit of "AutoBox 9" is no volume


def _unit(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.where(norms == 0, 1.0, norms)).astype(np.float32)


@dataclass(frozen=True)
class _Snapshot:
    """The lines of one index version, immutable: a selection reads it whole while a refresh builds the next."""

    version: str  # "" before the first load
    lines: tuple[EvidenceLine, ...]
    vectors: np.ndarray  # one normalised row per line
    centred: np.ndarray  # the same minus the mean of its document's rows, normalised
    terms: tuple[tuple[str, ...], ...]  # core.lexical.tokenize of each line's section and text
    by_doc: dict[str, np.ndarray]  # doc_id -> its rows, in line order
    products: dict[str, str]  # product name -> doc_id
    brands: frozenset[str]


def _snapshot(version: str, texts: list[str], metas: list[Any], vectors: np.ndarray) -> _Snapshot:
    """Lines sorted by document and line number, with their normalised vectors and the catalogue names."""
    order = sorted(range(len(texts)), key=lambda i: (str(metas[i].get("doc_id", "")), int(metas[i].get("line", 0))))
    lines: list[EvidenceLine] = []
    terms: list[tuple[str, ...]] = []
    products: dict[str, str] = {}
    by_doc: dict[str, list[int]] = {}
    for row, i in enumerate(order):
        meta = metas[i]
        doc_id, title, product = str(meta.get("doc_id", "")), str(meta.get("title", "")), str(meta.get("product", ""))
        text, number = texts[i] or "", int(meta.get("line", 0))
        lines.append(EvidenceLine(doc_id=doc_id, line=number, title=title, text=text, version=version, product=product))
        terms.append(tuple(tokenize(f"{str(meta.get('context', '')).removeprefix(title)} {text}")))
        by_doc.setdefault(doc_id, []).append(row)
        if product:
            products[product] = doc_id
    matrix = _unit(np.asarray(vectors, dtype=np.float32)[order]) if order else np.zeros((0, 0), dtype=np.float32)
    centred = matrix.copy()
    for rows in by_doc.values():
        centred[rows] -= matrix[rows].mean(axis=0)
    return _Snapshot(
        version=version,
        lines=tuple(lines),
        vectors=matrix,
        centred=_unit(centred) if order else centred,
        terms=tuple(terms),
        by_doc={d: np.asarray(rows, dtype=np.int64) for d, rows in by_doc.items()},
        products=products,
        brands=frozenset(str(m["brand"]) for m in metas if m.get("brand")),
    )


def _load(store: VectorStore, collection: Any) -> _Snapshot:
    """Read every line of ``collection``'s lines collection, page by page."""
    source, texts, metas, vectors = store.lines_collection(collection), [], [], []
    for offset in itertools.count(0, LOAD_PAGE):
        got = source.get(include=["embeddings", "documents", "metadatas"], limit=LOAD_PAGE, offset=offset)
        texts += list(got["documents"])
        metas += [m or {} for m in got["metadatas"]]
        vectors += list(got["embeddings"]) if len(got["ids"]) else []
        if len(got["ids"]) < LOAD_PAGE:
            break
    return _snapshot(str(collection.name), texts, metas, np.asarray(vectors, dtype=np.float32))


_DECIMAL_POINT = re.compile(r"(?<=\d)\.(?=\d{1,2}(?!\d))")


def _same_text(text: str) -> str:
    """A line's text up to case, spacing and decimal sign: "Prijs: € 29,95" (header) and "Prijs: €29.95" (table)."""
    return _DECIMAL_POINT.sub(",", "".join(text.casefold().split()))


def _faq_pairs(candidates: Sequence[EvidenceLine], scores: np.ndarray) -> dict[int, str]:
    """Give each FAQ question's score to its answer, the next line of its document; drop the question itself.

    A shopper's question resembles the FAQ's question more than its answer ("Hebben jullie kortingscodes?" vs
    "Nieuwe klanten krijgen 10 % …"), so the question line scores high but answers nothing. Returns the answer rows
    with the question they answer; ``scores`` is changed in place (question rows to -inf).
    """
    asked: dict[int, str] = {}
    for i, line in enumerate(candidates):
        if not line.is_question:
            continue
        nxt = i + 1
        if nxt < len(candidates):
            answer = candidates[nxt]
            if answer.doc_id == line.doc_id and answer.line == line.line + 1 and not answer.is_question:
                scores[nxt] = max(scores[nxt], scores[i])
                asked[nxt] = line.text.strip()
        scores[i] = -np.inf
    return asked


class LineIndex:
    """The evidence lines of one index version in memory; ``refresh`` follows the version. Thread-safe."""

    def __init__(self, weights: SelectionWeights | None = None) -> None:
        self.weights = weights or SelectionWeights()
        self._lock = threading.Lock()
        self._snap = _snapshot("", [], [], np.zeros((0, 0), dtype=np.float32))

    @classmethod
    def from_store(cls, store: VectorStore, collection: Any = None) -> LineIndex:
        """Load the lines of ``collection`` (default: the store's current version)."""
        index = cls()
        index.refresh(store, collection if collection is not None else store.current())
        return index

    @property
    def version(self) -> str:
        """Name of the chunk collection (index version) the lines were loaded from; "" before the first load."""
        return self._snap.version

    def __len__(self) -> int:
        return len(self._snap.lines)

    def refresh(self, store: VectorStore, collection: Any) -> bool:
        """Load the lines of ``collection`` if it is another version than the loaded one (blocking: use a thread)."""
        name = getattr(collection, "name", None)
        if name is None or name == self._snap.version:
            return False
        with self._lock:
            if name == self._snap.version:
                return False
            self._snap = _load(store, collection)
        logger.info("evidence lines loaded: %d lines of %s", len(self), name)
        return True

    def lines_of(self, doc_id: str) -> list[EvidenceLine]:
        """Every line of ``doc_id``, in document order."""
        snap = self._snap
        return [snap.lines[int(r)] for r in snap.by_doc.get(doc_id, ())]

    def products(self) -> dict[str, str]:
        """Product name → doc_id of every product sheet in the index version."""
        return dict(self._snap.products)

    def brands(self) -> set[str]:
        """The brands of the products in the index version."""
        return set(self._snap.brands)

    def select(
        self,
        query_vector: np.ndarray,
        question: str,
        doc_ids: Sequence[str],
        *,
        budget_tokens: int = 300,
        max_lines: int = 8,
        terms: Sequence[str] | None = None,
    ) -> list[EvidenceLine]:
        """The lines of ``doc_ids`` (ranked, best first) that best answer ``question``, best first, within budget.

        Scored as ``SelectionWeights`` says (BM25 over ``terms``, default the question's own tokens); lines are taken
        in score order while the estimated tokens (``estimate_tokens``) stay within ``budget_tokens``, at most
        ``max_lines``; a line whose text was already taken (the same sentence in two documents) is skipped. An FAQ's
        question line answers nothing: it is never taken itself, and its score goes to its answer (the next line of
        its document), which carries the question along in ``asked``.
        """
        snap, w = self._snap, self.weights
        ranked = [d for d in dict.fromkeys(doc_ids) if d in snap.by_doc]
        if not ranked or max_lines <= 0:
            return []
        rows = np.concatenate([snap.by_doc[d] for d in ranked])
        ranks = np.concatenate([np.full(len(snap.by_doc[d]), r, dtype=np.float32) for r, d in enumerate(ranked)])
        query = np.asarray(query_vector, dtype=np.float32).reshape(-1)
        query = query / (float(np.linalg.norm(query)) or 1.0)
        candidates = [snap.lines[int(r)] for r in rows]
        query_terms = list(terms) if terms is not None else tokenize(question)
        scores = (
            snap.vectors[rows] @ query
            + w.centred * (snap.centred[rows] @ query)
            + w.lexical * bm25_scores(query_terms, [snap.terms[int(r)] for r in rows])
            + w.answer_type * answer_types(question, [line.text for line in candidates])
            - w.rank * ranks
        )
        asked = _faq_pairs(candidates, scores)
        chosen: list[EvidenceLine] = []
        texts, docs, used = set(), set(), 0
        for i in np.argsort(-scores, kind="stable"):
            if not np.isfinite(scores[i]):
                break  # only FAQ questions are left
            line = replace(candidates[int(i)], score=float(scores[i]), asked=asked.get(int(i), ""))
            cost = line_tokens(line.rendered) + (0 if line.doc_id in docs else doc_tokens(line.title))
            if _same_text(line.text) in texts or used + cost > budget_tokens:
                continue
            chosen.append(line)
            texts.add(_same_text(line.text))
            docs.add(line.doc_id)
            used += cost
            if len(chosen) >= max_lines:
                break
        return chosen
