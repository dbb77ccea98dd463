"""The sentence splitter of the claim check (``chains.claims``) and the stream guard: prefix-stable boundaries.

A boundary is decided from the characters up to the first non-space one after it, so sentences can be checked as
they stream in: the sentences of every prefix of a text are the first sentences of the text.
"""

from __future__ import annotations

from chains.lexicon import ABBREVIATIONS

__all__ = ["split_sentences"]

TERMINATORS = ".!?…"
CLOSERS = "\"'”’)]»"
SENTENCE_OPENERS = "\"'“‘(«[€-*•–"
LIST_MARKERS = "-*•–"


def split_sentences(text: str, *, final: bool) -> tuple[list[str], str]:
    """The complete sentences of ``text`` and the unfinished rest (with ``final``: the rest as a last sentence).

    Prefix-stable: a boundary is decided from the characters up to the first non-space one after it, so the
    sentences of every prefix of a text are the first sentences of the text. A boundary is ``. ! ? …`` before
    white space and a capital, digit, quote, euro sign, list marker or new line (not after "bijv.", "o.a." ...);
    or a new line before a list marker, a digit or a blank line. "54,95", "2.8", e-mail addresses and URLs have
    no white space after their dots.
    """
    sentences: list[str] = []
    start, i, n = 0, 0, len(text)
    while i < n:
        if text[i] not in TERMINATORS and text[i] != "\n":
            i += 1
            continue
        j = i + 1
        if text[i] != "\n":
            while j < n and (text[j] in TERMINATORS or text[j] in CLOSERS):
                j += 1
            if j < n and not text[j].isspace():
                i = j
                continue
        k = j
        while k < n and text[k].isspace():
            k += 1
        if k == n:  # undecided until the next non-space character
            break
        if _is_boundary(text, start, i, j, k):
            if piece := text[start:j].strip():
                sentences.append(piece)
            start = k
        i = k
    rest = text[start:]
    if final:
        return ([*sentences, rest.strip()] if rest.strip() else sentences), ""
    return sentences, rest


def _is_boundary(text: str, start: int, i: int, j: int, k: int) -> bool:
    space, nxt = text[i:k] if text[i] == "\n" else text[j:k], text[k]
    if "\n" in space and (space.count("\n") > 1 or nxt in LIST_MARKERS or nxt.isdigit()):
        return True
    if text[i] == "\n":
        return False
    if text[i] == "." and (_word_before(text, i) in ABBREVIATIONS or _list_number(text, start, i)):
        return False
    return "\n" in space or nxt.isupper() or nxt.isdigit() or nxt in SENTENCE_OPENERS


def _word_before(text: str, i: int) -> str:
    j = i
    while j > 0 and (text[j - 1].isalpha() or text[j - 1] == "."):
        j -= 1
    return text[j:i].lower()


def _list_number(text: str, start: int, i: int) -> bool:
    """True when the period at ``i`` ends a number that opens the sentence: a list item's ("1. Meld je retour aan")."""
    j = i
    while j > start and text[j - 1].isdigit():
        j -= 1
    return j < i and not text[start:j].strip()
