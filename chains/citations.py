"""Which of the context's documents an answer rests on: post-hoc attribution by shared content terms.

The prompt gets up to five chunks, but an answer usually uses one or two of them. Citing every document
of the context sends the shopper to pages that do not say what the answer says. After generation, each
context document is scored by the answer's content terms it contains (numbers, product names, rare
words; stop words dropped), weighted by how few of the context's documents share the term (IDF over the
context). The documents within ``MIN_SHARE`` of the best score are cited, in retrieval order. An answer
that shares no content term with any document was not taken from the catalogue ("not grounded"): the
generate node then keeps the context's sources as before and marks the audit line ``ungrounded_answer``.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

MIN_SHARE = 0.5  # cite documents whose support is at least this share of the best document's
_WORD = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+(?:-[^\W\d_]+)*", re.UNICODE)
_STOPWORDS = """
    aan al alle als bij dan dat de deze die dit doen door een en er gaat geen heb hebben heeft het hier hij hoe
    hun ik in is je jij jou jouw kan kun kunt maar me meer met mijn na naar niet nog nu of om ook op over per
    te tot u uit uw van veel voor wat we wel welke wij wordt worden zal ze zich zij zijn zo zoals
    about all also an and any are as at be been but by can do does for from has have how if in into is it its
    may more no not of on or our so than that the their then there these they this to up was we what when
    which will with you your
"""
STOPWORDS = frozenset(_STOPWORDS.split())


def content_terms(text: str) -> set[str]:
    """Lower-cased words of three or more letters and all numbers, without stop words."""
    terms = set()
    for match in _WORD.finditer(text.lower()):
        word = match.group()
        if word[0].isdigit() or (len(word) >= 3 and word not in STOPWORDS):
            terms.add(word.replace(",", "."))
    return terms


def support(answer: str, documents: dict[str, str]) -> dict[str, float]:
    """Per document id: the IDF-weighted answer terms it contains (IDF over ``documents``)."""
    wanted = content_terms(answer)
    terms = {doc: content_terms(text) & wanted for doc, text in documents.items()}
    df = Counter(t for found in terms.values() for t in found)
    n = len(documents)
    return {doc: sum(math.log(1 + n / df[t]) for t in found) for doc, found in terms.items()}


def attributed(
    answer: str, chunks: Sequence[dict[str, Any]], sources: Iterable[Mapping[str, Any]]
) -> tuple[list[Any], bool]:
    """The ``sources`` (dicts with an ``id``) the answer rests on, in their order, and whether it is grounded.

    An answer without any content term ("Ja.") cannot be attributed: it keeps every source. An answer with
    content terms of which none occurs in the context is not grounded: no sources, ``False``.
    """
    sources = list(sources)
    if not content_terms(answer):
        return sources, True
    ids = {s["id"] for s in sources}
    documents: dict[str, str] = {}
    for c in chunks:  # only the citable documents: the answer must rest on one of them
        if c["doc_id"] in ids:
            documents[c["doc_id"]] = f"{documents.get(c['doc_id'], '')}\n{c.get('title', '')}\n{c['text']}"
    scores = support(answer, documents)
    best = max(scores.values(), default=0.0)
    if best <= 0:
        return [], False
    return [s for s in sources if scores.get(s["id"], 0.0) >= MIN_SHARE * best], True
