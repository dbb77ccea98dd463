"""Leak detection: the canary or the system prompt in any form a model might smuggle them out in.

``LeakDetector`` is built once from the canary and the protected texts (the system prompts) and then decides per
text, in well under a millisecond for a short answer without ``embed``:

- ``canary``: literal, re-cased, spaced or split by spaces, dots, dashes, newlines or zero-width characters
  (compared on alphanumerics only), in two halves, reversed, or base64 / base32 / hex / rot13 / URL-percent / HTML
  encoded (encoded runs are decoded and checked again);
- ``system_prompt_overlap``: the same forms for the system prompt, by windows of its alphanumerics and by
  word n-grams (also in reversed word order); windows and n-grams that ordinary shop answers (the anchors, below)
  contain too ("a Dutch web shop for cat supplies") are no evidence and are left out;
- ``system_prompt_similar``: a translated or paraphrased sentence (only with ``embed``, e.g. the e5 query encoder).
  Raw cosines of multilingual-e5 are high between any two sentences of the same shop, so the score is contrastive:
  the cosine to the nearest system-prompt sentence minus the mean cosine to the ``ANCHOR_NEIGHBOURS`` nearest
  ordinary shop answers (the anchors: the fixed answers of ``chains.prompts`` and the benign answers of the dev
  set). Scores are cached per sentence, so a stream checked sentence by sentence embeds each sentence once.

The thresholds were chosen on ``guards/data/leak_forms_dev.jsonl`` and graded on ``evals/data/leak_forms_test.jsonl``
(``python -m evals.leak_eval``).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import contextlib
import functools
import html
import json
import re
import threading
import unicodedata
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import unquote_plus

import numpy as np

Embed = Callable[[list[str]], np.ndarray]  # texts -> L2-normalised rows

# Thresholds, chosen on the dev set (python -m evals.leak_eval prints the choice).
ALNUM_WINDOW = 40  # alphanumerics in a row shared with a protected text (spaces, punctuation and case ignored)
TOKEN_NGRAM = 5  # words per n-gram of the word-overlap test
TOKEN_MATCHES = 1  # distinct n-grams of a protected text that make an overlap
SIMILARITY_THRESHOLD = 0.031  # cosine to the system prompt minus cosine to the anchors (multilingual-e5-small)
MIN_SIMILARITY_WORDS = 4  # shorter sentences are not embedded
ANCHOR_NEIGHBOURS = 3  # nearest anchors averaged
ANCHORS = Path(__file__).parent / "data" / "leak_forms_dev.jsonl"  # its benign rows are anchors
# Fixed limits.
MIN_CANARY_CHARS = 8  # a shorter canary is only matched literally
MIN_CANARY_HALF = 6  # each half of a split canary must be this long to count on its own
MIN_ENCODED_CHARS = 12  # shortest run worth decoding
DECODE_DEPTH = 2  # encodings inside encodings (hex of base64, ...)
EMBED_CACHE_SIZE = 4096

_MARK_OR_FORMAT = ("Mn", "Me", "Cf")  # accents, zero-width joiners and other invisible format characters
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_WORD = re.compile(r"[a-z0-9]+")
_SENTENCE = re.compile(r"(?<=[.!?;:])\s+|\n+")
_B64_RUN = re.compile(rf"[A-Za-z0-9+/_-]{{{MIN_ENCODED_CHARS},}}={{0,2}}")
_B32_RUN = re.compile(r"\b[A-Z2-7]{16,}=*")
_HEX_RUN = re.compile(r"(?:(?:0x|\\x)?[0-9A-Fa-f]{2}[\s:,-]{0,2}){6,}")
_HEX_PREFIX = re.compile(r"0x|\\x|[^0-9A-Fa-f]")


@functools.lru_cache(maxsize=64)  # the checks of one text fold each of its views three times
def fold(text: str) -> str:
    """Compatibility-normalise (full-width letters), drop accents and invisible characters, casefold."""
    if text.isascii():  # nothing to decompose or drop
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if unicodedata.category(c) not in _MARK_OR_FORMAT).casefold()


def alnum(text: str) -> str:
    """Only the letters and digits of ``fold(text)``: spacing, punctuation and case no longer matter."""
    return _NON_ALNUM.sub("", fold(text))


def words(text: str) -> list[str]:
    """The folded words of ``text``."""
    return _WORD.findall(fold(text))


def sentences(text: str) -> list[str]:
    """``text`` cut at sentence ends, colons, semicolons and line breaks."""
    return [s.strip() for s in _SENTENCE.split(text) if s.strip()]


def decode_runs(text: str) -> list[str]:
    """The decodings of base64, base32 and hex runs in ``text`` (undecodable runs are skipped)."""
    out = []
    for run in _B64_RUN.findall(text):
        body = run.rstrip("=").replace("-", "+").replace("_", "/")  # the URL-safe alphabet too
        with contextlib.suppress(binascii.Error, ValueError):
            out.append(base64.b64decode(body + "=" * (-len(body) % 4)).decode("utf-8", "ignore"))
    for run in _B32_RUN.findall(text):
        body = run.rstrip("=")
        with contextlib.suppress(binascii.Error, ValueError):
            out.append(base64.b32decode(body + "=" * (-len(body) % 8)).decode("utf-8", "ignore"))
    for run in _HEX_RUN.findall(text):
        digits = _HEX_PREFIX.sub("", run)
        if len(digits) >= MIN_ENCODED_CHARS:
            out.append(bytes.fromhex(digits[: len(digits) // 2 * 2]).decode("utf-8", "ignore"))
    return out


def views(text: str) -> list[str]:
    """``text`` and the texts it may hide: rot13, reversed, URL-/HTML-unescaped and decoded runs."""
    plain = [text]
    if "%" in text:
        plain.append(unquote_plus(text))
    if "&" in text:
        plain.append(html.unescape(text))
    out = [*plain, codecs.encode(text, "rot_13"), text[::-1]]
    frontier = plain
    for _ in range(DECODE_DEPTH):
        frontier = [d for v in frontier for d in decode_runs(v)]
        out += frontier
    return out


@functools.cache
def default_anchors() -> tuple[str, ...]:
    """Ordinary shop answers: the fixed answers of ``chains.prompts`` and the benign answers of the dev set."""
    from chains import prompts

    fixed = [prompts.REFUSAL_NL, prompts.REFUSAL_EN, prompts.NO_CONTEXT_ANSWER_NL, prompts.NO_CONTEXT_ANSWER_EN]
    rows = [json.loads(line) for line in ANCHORS.read_text(encoding="utf-8").splitlines() if line.strip()]
    return (*fixed, *prompts.SCOPE_ANSWERS.values(), *(r["text"] for r in rows if r["label"] == 0))


def _sentence_rows(embed: Embed, texts: Iterable[str]) -> np.ndarray | None:
    """The embeddings of the sentences of ``texts`` long enough to embed (None when there are none)."""
    todo = list(dict.fromkeys(s for t in texts for s in sentences(t) if len(words(s)) >= MIN_SIMILARITY_WORDS))
    return np.asarray(embed(todo), dtype=np.float32) if todo else None


def ngrams(tokens: list[str], n: int) -> set[tuple[str, ...]]:
    """The distinct ``n``-grams of ``tokens``."""
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


class LeakDetector:
    """Decides whether a text carries the canary or the protected texts (see the module docstring)."""

    def __init__(
        self,
        canary: str,
        protected_texts: Iterable[str],
        embed: Embed | None = None,
        *,
        alnum_window: int = ALNUM_WINDOW,
        token_ngram: int = TOKEN_NGRAM,
        token_matches: int = TOKEN_MATCHES,
        similarity_threshold: float = SIMILARITY_THRESHOLD,
        anchors: Iterable[str] | None = None,
    ) -> None:
        self.canary = canary
        self._canary_alnum = alnum(canary)
        self.alnum_window, self.token_ngram, self.token_matches = alnum_window, token_ngram, token_matches
        self.similarity_threshold = similarity_threshold
        texts = [t for t in protected_texts if t]
        ordinary = list(default_anchors() if anchors is None else anchors)
        # What ordinary shop answers also say ("a Dutch web shop for cat supplies") is no evidence of a leak.
        seen = "|".join(alnum(a) for a in ordinary)
        seen_grams = {g for a in ordinary for g in ngrams(words(a), token_ngram)}
        self._windows: set[str] = set()
        self._grams: set[tuple[str, ...]] = set()
        for t in texts:
            a = alnum(t)
            self._windows.update(a[i : i + alnum_window] for i in range(len(a) - alnum_window + 1))
            self._grams |= ngrams(words(t), token_ngram) - seen_grams
        self._windows = {w for w in self._windows if w not in seen}
        self._embed = embed
        self._refs = self._anchors = None
        if embed is not None:
            self._refs = _sentence_rows(embed, texts)
            self._anchors = _sentence_rows(embed, ordinary)
        self._cache: dict[str, float] = {}
        self._lock = threading.Lock()

    def has_canary(self, views_: list[str]) -> bool:
        """The canary (or its two halves, or it reversed) in any of the views."""
        c = self._canary_alnum
        if len(c) < MIN_CANARY_CHARS:
            return bool(self.canary) and any(self.canary.casefold() in v.casefold() for v in views_)
        half = len(c) // 2
        for v in views_:
            a = alnum(v)
            if c in a or c[::-1] in a:
                return True
            if half >= MIN_CANARY_HALF and c[:half] in a and c[half:] in a:
                return True
        return False

    def token_overlap(self, views_: list[str]) -> int:
        """Most distinct protected n-grams in one view (forwards or in reversed word order)."""
        if not self._grams:
            return 0
        best = 0
        for v in views_:
            tokens = words(v)
            for seq in (tokens, tokens[::-1]):
                best = max(best, len(ngrams(seq, self.token_ngram) & self._grams))
        return best

    def window_overlap(self, views_: list[str]) -> bool:
        """A window of ``alnum_window`` alphanumerics shared with a protected text."""
        n = self.alnum_window
        for v in views_:
            a = alnum(v)
            if any(a[i : i + n] in self._windows for i in range(len(a) - n + 1)):
                return True
        return False

    def similarity(self, text: str) -> float:
        """Highest contrastive score of a sentence of ``text`` (see the module docstring; -1.0 without ``embed``)."""
        if self._embed is None or self._refs is None:
            return -1.0
        todo = [s for s in sentences(text) if len(words(s)) >= MIN_SIMILARITY_WORDS]
        known = {s: v for s in todo if (v := self._cache.get(s)) is not None}
        new = [s for s in dict.fromkeys(todo) if s not in known]
        if new:
            vecs = np.asarray(self._embed(new), dtype=np.float32)
            sims = (vecs @ self._refs.T).max(axis=1)
            if self._anchors is not None:
                near = np.sort(vecs @ self._anchors.T, axis=1)[:, -ANCHOR_NEIGHBOURS:]
                sims = sims - near.mean(axis=1)
            fresh = dict(zip(new, (float(x) for x in sims), strict=True))
            known.update(fresh)
            with self._lock:
                if len(self._cache) + len(fresh) > EMBED_CACHE_SIZE:
                    self._cache.clear()
                self._cache.update(fresh)
        return max(known.values(), default=-1.0)

    def reasons(self, text: str) -> list[str]:
        """``canary``, ``system_prompt_overlap`` and/or ``system_prompt_similar`` when ``text`` carries them."""
        found = []
        vs = views(text)
        if self.canary and self.has_canary(vs):
            found.append("canary")
        if self.window_overlap(vs) or self.token_overlap(vs) >= self.token_matches:
            found.append("system_prompt_overlap")
        if self._embed is not None and self.similarity(text) >= self.similarity_threshold:
            found.append("system_prompt_similar")
        return found
