"""Unicode hygiene for the input guard: invisible characters, confusable skeletons, mixed-script words.

- ``strip_ignorable`` drops what a reader cannot see: every Default_Ignorable_Code_Point (Unicode
  DerivedCoreProperties: soft hyphen, zero-width and bidi controls, variation selectors, tag characters, …),
  every format (Cf) character and the C0/C1 controls except tab and newline.
- ``skeleton`` is the confusable skeleton of Unicode TR39 (NFD, map each character to its prototype, NFD),
  from the confusables data that the ``confusable-homoglyphs`` package ships (Unicode's confusables.txt as
  JSON). TR39 maps some plain ASCII too (``m`` → ``rn``, ``I`` → ``l``, ``0`` → ``O``), so the guard uses
  ``fold_confusables``, which maps only the non-ASCII characters and keeps ASCII text readable.
- ``fold_mixed_script`` folds only the words that mix scripts (Latin with Cyrillic look-alikes, say);
  pure Cyrillic or Greek words stay as they are.
"""

from __future__ import annotations

import json
import re
import unicodedata
from functools import lru_cache
from importlib import resources

# Default_Ignorable_Code_Point (DerivedCoreProperties.txt), as inclusive code point ranges.
DEFAULT_IGNORABLE_RANGES: tuple[tuple[int, int], ...] = (
    (0x00AD, 0x00AD),  # soft hyphen
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x061C, 0x061C),  # Arabic letter mark
    (0x115F, 0x1160),  # Hangul choseong / jungseong fillers
    (0x17B4, 0x17B5),  # Khmer inherent vowels
    (0x180B, 0x180F),  # Mongolian free variation selectors, vowel separator
    (0x200B, 0x200F),  # zero-width space, ZWNJ, ZWJ, LRM, RLM
    (0x202A, 0x202E),  # bidi embeddings and overrides
    (0x2060, 0x206F),  # word joiner, invisible operators, bidi isolates, deprecated format characters
    (0x3164, 0x3164),  # Hangul filler
    (0xFE00, 0xFE0F),  # variation selectors 1-16
    (0xFEFF, 0xFEFF),  # zero-width no-break space (BOM)
    (0xFFA0, 0xFFA0),  # halfwidth Hangul filler
    (0xFFF0, 0xFFF8),  # unassigned specials
    (0x1BCA0, 0x1BCA3),  # shorthand format controls
    (0x1D173, 0x1D17A),  # musical symbol format controls
    (0xE0000, 0xE0FFF),  # tag characters ("ASCII smuggling") and variation selectors 17-256
)
KEPT_CONTROLS = "\t\n"
FORMAT_CATEGORY = "Cf"
NONSPACING_MARK = "Mn"
TAG_OFFSET = 0xE0000  # U+E0020..U+E007E are invisible copies of ASCII 0x20..0x7E
TAG_ASCII = (0xE0020, 0xE007E)
CONFUSABLES_PACKAGE = "confusable_homoglyphs"
CONFUSABLES_FILE = "confusables.json"
# Marks that the package's data put around right-to-left glyphs (for display); they are no part of a glyph.
DISPLAY_MARKS = "\u200e\u200f"
# Scripts that are no script of their own (punctuation, digits, combining marks).
NEUTRAL_SCRIPTS = frozenset({"COMMON", "INHERITED", "Unknown"})
SCRIPT_CACHE_SIZE = 4096  # distinct characters whose script is remembered
# Scripts written together in one word as a matter of course (TR39's Jpan/Kore): counted as one.
SCRIPT_GROUPS = {"HAN": "CJK", "HIRAGANA": "CJK", "KATAKANA": "CJK", "HANGUL": "CJK", "BOPOMOFO": "CJK"}


def _ignorable_class() -> str:
    controls = "".join(chr(c) for c in [*range(0x00, 0x20), *range(0x7F, 0xA0)] if chr(c) not in KEPT_CONTROLS)
    ranges = "".join(f"{chr(a)}-{chr(b)}" for a, b in DEFAULT_IGNORABLE_RANGES)
    return "[" + re.escape(controls) + ranges + "]"


_IGNORABLE = re.compile(_ignorable_class())
_WORD = re.compile(r"\S+")


def strip_ignorable(text: str) -> str:
    """``text`` without default-ignorable, format (Cf) and control characters; tab and newline stay."""
    text = _IGNORABLE.sub("", text)
    if text.isascii():
        return text
    return "".join(ch for ch in text if unicodedata.category(ch) != FORMAT_CATEGORY)


def space_ignorable(text: str) -> str:
    """``text`` with each run of invisible characters replaced by one space (a zero-width space between words)."""
    return _IGNORABLE.sub(" ", text)


def decode_tags(text: str) -> str:
    """The ASCII text that Unicode tag characters in ``text`` spell (invisible when rendered), else ""."""
    lo, hi = TAG_ASCII
    return "".join(chr(ord(ch) - TAG_OFFSET) for ch in text if lo <= ord(ch) <= hi)


@lru_cache(maxsize=1)
def prototypes() -> dict[str, str]:
    """Character → TR39 prototype, built once from the confusables data of ``confusable-homoglyphs``.

    The package stores each confusables.txt line ``source → prototype`` in both directions, in file order.
    A source has exactly one prototype and is never a prototype itself, so a key with one entry is a source,
    except in a one-to-one pair, where the source is the key that came first (its line created both keys).
    """
    path = resources.files(CONFUSABLES_PACKAGE).joinpath(CONFUSABLES_FILE)
    data: dict[str, list[dict[str, str]]] = json.loads(path.read_text(encoding="utf-8"))
    order = {key: i for i, key in enumerate(data)}
    table: dict[str, str] = {}
    for key, entries in data.items():
        if len(entries) != 1:
            continue  # a prototype with several look-alikes
        target = entries[0]["c"]
        if len(data.get(target, ())) == 1 and order[target] < order[key]:
            continue  # the prototype of a one-to-one pair
        source = key.strip(DISPLAY_MARKS)
        if len(source) == 1:
            table[source] = target.replace(DISPLAY_MARKS[0], "").replace(DISPLAY_MARKS[1], "")
    return table


@lru_cache(maxsize=1)
def _ascii_by_skeleton() -> dict[str, str]:
    """Multi-character skeletons of single ASCII characters (``rn`` ← ``m``), back to that character."""
    table = prototypes()
    return {table[ch]: ch for ch in map(chr, range(0x80)) if len(table.get(ch, "")) > 1}


def skeleton(text: str) -> str:
    """The TR39 confusable skeleton of ``text``: NFD, every character mapped to its prototype, NFD."""
    table = prototypes()
    mapped = "".join(table.get(ch, ch) for ch in unicodedata.normalize("NFD", text))
    return unicodedata.normalize("NFD", mapped)


def fold_confusables(text: str, *, drop_marks: bool = False) -> str:
    """``text`` with its non-ASCII characters replaced by their TR39 prototypes; ASCII stays as it is.

    A character whose prototype is the skeleton of an ASCII character (``rn`` for an ``m`` look-alike) becomes
    that character. With ``drop_marks``, combining marks go as well (``ïgnore`` → ``ignore``). NFC result.
    """
    table = prototypes()
    back = _ascii_by_skeleton()
    nfd = unicodedata.normalize("NFD", text)
    folded = "".join(ch if ch.isascii() else back.get(t := table.get(ch, ch), t) for ch in nfd)
    if drop_marks:  # after mapping: a prototype may bring marks of its own (η → n̩)
        nfd = unicodedata.normalize("NFD", folded)
        folded = "".join(ch for ch in nfd if unicodedata.category(ch) != NONSPACING_MARK)
    return unicodedata.normalize("NFC", folded)


@lru_cache(maxsize=SCRIPT_CACHE_SIZE)
def script_of(ch: str) -> str:
    """The Unicode script of ``ch`` (Scripts.txt via ``confusable-homoglyphs``), e.g. LATIN, CYRILLIC, COMMON."""
    from confusable_homoglyphs import categories  # loads the package's small script table on first use

    script: str = categories.alias(ch)
    return SCRIPT_GROUPS.get(script, script)


def scripts_of(word: str) -> set[str]:
    """The scripts of the letters of ``word``, leaving out common and inherited characters."""
    return {s for ch in word if ch.isalpha() and (s := script_of(ch)) not in NEUTRAL_SCRIPTS}


def fold_mixed_script(text: str) -> str:
    """``text`` with each word that mixes scripts replaced by its folded skeleton; other words stay.

    ``ignоre`` (Latin with a Cyrillic о) becomes ``ignore``; ``привет`` and ``ignore`` stay as they are.
    """
    if text.isascii():
        return text

    def fold(match: re.Match[str]) -> str:
        word = match.group(0)
        return fold_confusables(word) if not word.isascii() and len(scripts_of(word)) > 1 else word

    return _WORD.sub(fold, text)
