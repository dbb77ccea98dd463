"""The extractive answer: the evidence lines themselves, quoted as plain text with their source.

When the model's answer fails the claim check (``chains.claims``) or is empty, the shopper gets the best one or
two evidence lines instead ("Volgens <titel>: …"; for an English question "According to <title> (Dutch page):
…"), at most ``MAX_WORDS`` words. Every fact in it is in the shop's documents by construction.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from chains.coverage import topic_words
from chains.lexicon import in_vocabulary, words
from chains.normalize import normalise_text
from core.evidence import EvidenceLine

MAX_LINES = 2
# Added to a line's selection score: the share of the question's topic words its text and title hold (dev + dev2:
# facts of 49 → 52 of 89 questions in the quoted lines; BENCHMARKS.md, session 10).
COVERAGE_WEIGHT = 0.05
MAX_WORDS = 60
INTRO_NL = "Volgens {title}: "
INTRO_EN = "According to {title} (Dutch page): "
_END = ".!?…:;"


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text if text[-1:] in _END else f"{text}."


def _clip(text: str, words: int) -> str:
    parts = text.split()
    return text if len(parts) <= words else " ".join(parts[:words]) + " …"


def _held(asked: list[str], line: EvidenceLine) -> set[str]:
    """The question's topic words that ``line`` (its text, FAQ question and title) holds."""
    if not asked:
        return set()
    vocabulary = frozenset(words(normalise_text(f"{line.rendered} {line.title}")))
    return {w for w in asked if in_vocabulary(w, vocabulary)}


def extractive_answer(
    evidence: Sequence[EvidenceLine],
    language: str,
    *,
    max_lines: int = MAX_LINES,
    max_words: int = MAX_WORDS,
    same_document: bool = True,
    question: str = "",
    named: Collection[str] = (),
) -> tuple[str, list[EvidenceLine]]:
    """The quoted answer from the first ``max_lines`` lines of ``evidence`` (best first), and the lines used.

    With ``same_document`` (the default) the second line comes from the best line's document only: a line of another
    document was chosen on a weaker score and sends the shopper to a page that does not answer (dev: citations
    supported 61 % → 78 %, correct unchanged). Lines of one document share one introduction. The quoted text never
    exceeds ``max_words`` words (the introductions not counted); a line that does not fit whole is cut at a word and
    marked with "…" only when it is the first one, else left out. Questions (an FAQ's "Kan ik …?") are never
    quoted: they answer nothing. With the ``question``, lines are ordered by their score plus ``COVERAGE_WEIGHT``
    × the share of its topic words they hold, and a line of another document may follow the first when it holds
    topic words the first lacks ("… en wat kost verzending naar België?": the product's price, then the shipping
    page's line; dev + dev2: facts of 52 → 56 of 89 questions quoted, 16 of them from a second document). When
    the question names catalogue products (``named``: their doc_ids) and the best line is another product's, the
    first quoted line is the best of the named products' instead ("the entrance of the Classic 40" is not the
    55's); a guide's or policy's best line stays first.
    """
    intro = INTRO_EN if language == "en" else INTRO_NL
    lines = [line for line in evidence if line.text.strip() and not line.is_question]
    asked = topic_words(question) if question else []
    held = {id(line): _held(asked, line) for line in lines}
    if asked:
        lines.sort(key=lambda line: -(line.score + COVERAGE_WEIGHT * len(held[id(line)]) / len(asked)))
    sibling = bool(lines) and bool(lines[0].product) and lines[0].doc_id not in named
    if named and sibling and (first := next((line for line in lines if line.doc_id in named), None)):
        lines = [first, *(line for line in lines if line is not first)]  # the product asked about, not its sibling
    used: list[EvidenceLine] = []
    budget = max_words
    for line in lines:
        if len(used) >= max_lines or budget <= 0:
            break
        if same_document and used and line.doc_id != used[0].doc_id and not held[id(line)] - held[id(used[0])]:
            continue  # one source (the best line's document) unless another adds what the question asks
        n = len(line.rendered.split())
        if n > budget and used:
            continue
        used.append(line)
        budget -= n
    parts: list[str] = []
    left = max_words
    previous = ""
    for line in used:
        text = _sentence(_clip(line.rendered, left))  # an FAQ answer with its question: "Kan ik …? Ja, …"
        left -= len(line.rendered.split())
        parts.append(text if line.doc_id == previous else intro.format(title=line.title) + text)
        previous = line.doc_id
    return " ".join(parts), used
