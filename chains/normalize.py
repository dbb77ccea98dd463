"""The facts of a text (amounts, prices, dates, contacts, codes, model numbers), normalised across Dutch and English.

The claim check (``chains.claims``) accepts a generated sentence only when its facts occur in its supporting
evidence line. Both sides are reduced to canonical facts first: "€54.95", "54,95 euro" and "€ 54,95" are one
price, "9 liter" and "9 l" one volume, "2 years" and "2 jaar" one duration, "22.00 uur" and "22:00" one time.
Units are never converted into each other ("12 maanden" is not "1 jaar"); only spelling, number and language
are. "een" and "one" are no numbers (an article, a pronoun); "één" is 1. A range is one fact: "10 tot 15 liter",
"10-15 l" and "between 10 and 15 litres" are "10-15 l", which states neither "10 l" nor "15 l".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Literal, cast

from chains.lexicon import DURATION_UNITS, MEASURE_UNITS, MONTHS, NUMBER_WORDS, STOP_WORDS

FactKind = Literal["money", "number", "percent", "duration", "date", "email", "phone", "link", "code", "model"]
NUMERIC_KINDS: frozenset[FactKind] = frozenset({"money", "number", "percent", "duration"})
THOUSANDS_GROUP = 3  # digits after a thousands separator ("1.000", "1,000")
DUTCH_COUNTRY_CODES = ("+31", "0031")  # "+31 20 …" is "020 …"
MAX_MONTH = 12
YEAR_DIGITS = 4
BOTH_SEPARATORS = 2  # "1.234,56": the last separator is the decimal one
# "ten minste", "ten slotte": the Dutch preposition "ten" is no English "ten".
_DUTCH_TEN = r"(?!(?<=ten)\s+(?:minste|slotte|opzichte|behoeve|einde|gevolge|koste|aanzien|tijde)\b)"


@dataclass(frozen=True)
class Fact:
    """One fact of a text: its kind, its canonical value ("54.95", "9 l", "2 year", "2026-11-26") and its text."""

    kind: FactKind
    value: str
    raw: str


def normalise_text(text: str) -> str:
    """Case-folded, accents stripped, white space collapsed: for lexical comparison."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).split())


def _alternation(words: Sequence[str]) -> str:
    return "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in sorted(words, key=len, reverse=True))


_NOT_LETTER_AFTER = r"(?![^\W\d_])"
_DIGITS = r"\d+(?:[.,]\d+)*"
_NUM = rf"(?:(?<![^\W_]){_DIGITS}|\b(?:{_alternation(list(NUMBER_WORDS))}){_NOT_LETTER_AFTER}{_DUTCH_TEN})"
_UNITS = {**MEASURE_UNITS, **DURATION_UNITS}
_UNIT = rf"(?:{_alternation(list(_UNITS))}){_NOT_LETTER_AFTER}"
_SAFE_MONTH = _alternation([m for m in MONTHS if m != "may"])  # "the AutoBox 9 may ..." is no date
_RANGE_SEP = r"(?:-|–|—|tot\s+en\s+met|tot|to|t/m|à)"  # "10 tot 15 liter": one range
_SEP = rf"(?:{_RANGE_SEP}|of|or|x|×)"  # "58 x 45 x 46 cm", "2 of 3 weken": one fact each
_RANGE_GAP = re.compile(rf"\s*{_RANGE_SEP}\s*", re.IGNORECASE)
_BETWEEN = re.compile(r"\b(?:tussen|between)\s+$", re.IGNORECASE)  # "tussen 3 en 4 liter"
_BETWEEN_GAP = re.compile(r"\s+(?:en|and)\s+", re.IGNORECASE)
_END = r"[^\s<>()\"'.,;:!?]"  # a link does not end with punctuation
_PATTERN = re.compile(
    r"(?P<email>[\w.+-]+@[\w-]+(?:\.[\w-]+)+)"
    rf"|(?P<link>(?:https?://|www\.)[^\s<>()\"']*{_END}"
    rf"|\b[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*\.(?:nl|be|com|eu|org|net|de|fr)\b(?:/[^\s<>()\"']*{_END})?)"
    r"|(?P<date>(?<!\d)\d{4}-\d{1,2}-\d{1,2}(?!\d)|(?<![\d.,])\d{1,2}[-/.]\d{1,2}[-/.]\d{4}(?!\d)"
    rf"|(?<!\d)\d{{1,2}}\s+(?:{_SAFE_MONTH}|may(?=\s+\d{{4}}))(?:\s+\d{{4}})?\b"
    rf"|\b(?:{_SAFE_MONTH})\s+\d{{1,2}}(?:st|nd|rd|th)?(?!\d)(?:,?\s+\d{{4}})?\b"
    rf"|\b(?:{_alternation(list(MONTHS))})\s+\d{{4}}\b)"
    r"|(?P<phone>(?<![\w+])(?:\+|00)\d{2}[\s-]?(?:\(0\)[\s-]?)?\d{1,3}(?:[\s-]?\d){6,9}(?!\d)"
    r"|(?<![\w+.,])0\d{1,3}(?:[\s-]?\d){6,9}(?!\d))"
    rf"|(?P<money>(?:€|\beur\b|\beuro\b)\s*(?P<m1>{_DIGITS})(?:,-|,–|\.-)?|(?P<m2>{_NUM})\s*(?:euro's|euros?\b|eur\b|€(?!\s*\d)))"
    rf"|(?P<percent>(?P<pnum>{_NUM})\s*(?:%|procent\b|percent\b|pct\b))"
    r"|(?P<time>(?<![\d.,:])(?:[01]?\d|2[0-3]):[0-5]\d(?![\d:])"
    r"|(?<![\d.,])(?:[01]?\d|2[0-3])\.[0-5]\d(?=\s*(?:uur\b|u\b|h\b|–|-\s*\d|tot\b))"
    rf"|(?<![\d.,])(?:[01]\d|2[0-3])\.(?:00|15|30|45)(?!\d|[.,]\d|\s*(?:{_UNIT}|%|euro|eur\b|€)))"
    rf"|(?P<measure>{_NUM}(?:\s*{_SEP}\s*{_NUM})*\s*(?P<unit>{_UNIT}|°\s*c\b))"
    r"|(?P<code>\b[a-z]{2,4}(?:-[a-z]{1,4})*-\d{3,}\b|\b[a-z]{2,3}\d{5,}\b)"
    r"|(?P<model>(?-i:\b(?P<mword>[A-Z][\w-]*[^\W\d_]))\s+(?P<mnum>\d{1,4})(?!\d|[.,]\d)"
    rf"(?!\s*(?:{_UNIT}|%|x\b|×|[-–]\s*\d|tot\s+\d|to\s+\d)))"
    rf"|(?P<number>{_NUM}(?![\d.,]*[^\W\d_]))",
    re.IGNORECASE,
)
_KINDS = ("email", "link", "date", "phone", "money", "percent", "time", "measure", "code", "model", "number")
_LABEL_UNIT = re.compile(rf"^[^:()]*\((?P<unit>{_UNIT})\)\s*:", re.IGNORECASE)  # "Afmetingen (cm): 58 x 45 x 46"
_NOT_MODEL_WORDS = STOP_WORDS | set(NUMBER_WORDS) | set(MONTHS) | set(_UNITS)


def canonical_number(raw: str) -> str | None:
    """A number in canonical form: "54,95", "54.95" → "54.95"; "1.234,56" → "1234.56"; "49,00" → "49"; "twee" → "2"."""
    word = raw.strip().casefold()
    if word in NUMBER_WORDS:
        return str(NUMBER_WORDS[word])
    digits = re.sub(r"\s", "", raw).rstrip(",.-–")
    seps = [c for c in digits if c in ".,"]
    if len(set(seps)) == BOTH_SEPARATORS:
        last = max(digits.rfind("."), digits.rfind(","))
        digits = re.sub(r"[.,]", "", digits[:last]) + "." + digits[last + 1 :]
    elif len(seps) > 1:
        digits = re.sub(r"[.,]", "", digits)
    elif seps:
        whole, frac = re.split(r"[.,]", digits)
        thousands = len(frac) == THOUSANDS_GROUP and whole.lstrip("0") != ""
        digits = whole + frac if thousands else f"{whole}.{frac}"
    try:
        value = Decimal(digits)
    except InvalidOperation:
        return None
    text = format(value.normalize(), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _date_value(raw: str) -> str:
    low = normalise_text(raw)
    if m := re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", low):
        year, month, day = (int(g) for g in m.groups())
    elif m := re.fullmatch(r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})", low):
        day, month, year = (int(g) for g in m.groups())
        if month > MAX_MONTH >= day:  # 11/26/2026
            day, month = month, day
    else:
        month = next((MONTHS[w] for w in re.findall(r"[a-z]+", low) if w in MONTHS), 1)
        numbers = re.findall(r"\d+", low)
        year = next((int(n) for n in numbers if len(n) == YEAR_DIGITS), 0)
        day = next((int(n) for n in numbers if len(n) < YEAR_DIGITS), 0)
        if not day:
            return f"{year:04d}-{month:02d}"
    return f"{year:04d}-{month:02d}-{day:02d}" if year else f"{month:02d}-{day:02d}"


def _phone_value(raw: str) -> str:
    compact = re.sub(r"[\s\-()]", "", raw.replace("(0)", ""))
    for code in DUTCH_COUNTRY_CODES:
        if compact.startswith(code):
            return "0" + compact[len(code) :]
    return "00" + compact[1:] if compact.startswith("+") else compact


def _link_value(raw: str) -> str:
    return re.sub(r"^(?:https?://)?(?:www\.)?", "", raw.casefold()).rstrip("/")


def _unit_facts(raw: str, unit: str, numbers: list[str], *, is_range: bool = False) -> list[Fact]:
    canon = _UNITS.get(re.sub(r"\s+", " ", normalise_text(unit)).replace("° ", "°"), "°c")
    kind: FactKind = "duration" if canon in DURATION_UNITS.values() else "number"
    values = [n for n in (canonical_number(x) for x in numbers) if n is not None]
    if is_range and _ascending(values):
        return [Fact(kind, f"{'-'.join(values)} {canon}", raw)]
    return [Fact(kind, f"{n} {canon}", raw) for n in values]


def _ascending(values: Sequence[str]) -> bool:
    """True for the two ends of a range, low to high ("10", "15"); "2026", "3" are two numbers."""
    return len(values) == 2 and "-" not in "".join(values) and Decimal(values[0]) < Decimal(values[1])


_VALUES = {"email": str.casefold, "link": _link_value, "date": _date_value, "phone": _phone_value, "code": str.upper}


def _facts_of(m: re.Match[str], kind: str, label: re.Match[str] | None) -> list[Fact]:
    raw = m.group(kind)
    if kind in _VALUES:
        return [Fact(cast(FactKind, kind), _VALUES[kind](raw), raw)]
    if kind == "time":
        hours, minutes = re.split(r"[.:]", raw)
        return [Fact("date", f"{int(hours):02d}:{minutes}", raw)]
    if kind == "model":
        return [Fact("model", f"{normalise_text(m.group('mword'))} {m.group('mnum')}", raw)]
    if kind == "measure":  # "10 tot 15 liter" is one range, "58 x 45 x 46 cm" three amounts
        head = raw[: m.start("unit") - m.start()]
        ends = list(re.finditer(_NUM, head, re.IGNORECASE))
        is_range = len(ends) == 2 and _RANGE_GAP.fullmatch(head[ends[0].end() : ends[1].start()]) is not None
        return _unit_facts(raw, m.group("unit"), [e.group() for e in ends], is_range=is_range)
    if kind == "number" and label is not None and m.start() >= label.end():  # a bare number under a "(cm)" label
        return _unit_facts(raw, label.group("unit"), [raw])
    value = canonical_number({"money": m.group("m1") or m.group("m2"), "percent": m.group("pnum")}.get(kind, raw))
    return [Fact(cast(FactKind, kind), value, raw)] if value is not None else []


def fact_spans(text: str) -> list[tuple[Fact, int, int]]:
    """The facts of ``text`` with the start and end of their text (what ``extract_facts`` returns, located)."""
    label = _LABEL_UNIT.match(text)
    out: list[tuple[Fact, int, int]] = []
    pos = 0
    while m := _PATTERN.search(text, pos):
        kind = next(k for k in _KINDS if m.group(k) is not None)
        if kind == "model" and normalise_text(m.group("mword")) in _NOT_MODEL_WORDS:
            pos = m.start("mnum")  # "Binnen 30", "In 2026": the number is a number of its own
            continue
        for fact in _facts_of(m, kind, label):
            _add(text, out, fact, m.start(), m.end())
        pos = m.end()
    return out


def _add(text: str, out: list[tuple[Fact, int, int]], fact: Fact, start: int, end: int) -> None:
    """Append a fact to ``out``; the end of a range ("15 liter" after "10 tot") joins its start into one fact."""
    low, low_start, low_end = out[-1] if out else (fact, start, end)
    gap = text[low_end:start]
    between = _BETWEEN.search(text[:low_start]) and _BETWEEN_GAP.fullmatch(gap)  # "tussen 3 en 4 liter"
    joined = _range_fact(low, fact, text[low_start:end]) if between or _RANGE_GAP.fullmatch(gap) else None
    if joined and low_end <= start:
        out[-1] = (joined, low_start, end)
    else:
        out.append((fact, start, end))


def _range_fact(low: Fact, high: Fact, raw: str) -> Fact | None:
    """A range "10" (or "10 l") to "15 liter" as one fact, "10-15 l"; a price may end in a bare number ("€10-15")."""
    (a, _, low_unit), (b, _, unit) = low.value.partition(" "), high.value.partition(" ")
    kind = high.kind if (low.kind, low_unit) in (("number", ""), (high.kind, unit)) else None
    if low.kind == "money" and (high.kind, unit) == ("number", ""):
        kind = "money"
    if kind is None or kind not in NUMERIC_KINDS or not _ascending([a, b]):
        return None
    return Fact(kind, f"{a}-{b} {unit}".strip(), raw)


def extract_facts(text: str) -> list[Fact]:
    """The facts of ``text``, in order of appearance.

    Amounts with units, prices, percentages, durations, dates and times (kind ``date``), e-mail addresses, phone
    numbers, links, article codes, model numbers ("AutoBox 9") and bare numbers.
    """
    return [fact for fact, _start, _end in fact_spans(text)]


def numeric_part(fact: Fact) -> str | None:
    """The number of an amount, price, percentage, duration or model number; None for other kinds."""
    if fact.kind in NUMERIC_KINDS:
        return fact.value.split(" ", 1)[0]
    return fact.value.rsplit(" ", 1)[-1] if fact.kind == "model" else None


def fact_matches(claim: Fact, found: Fact) -> bool:
    """True when ``found`` (a fact of an evidence line) states ``claim`` (a fact of a generated sentence).

    A bare number is stated by the same number with any unit; a number with a unit only by the same number with
    the same unit; a day without a year by that day in any year, a month by any day in it; a domain by a link or
    e-mail address on it.
    """
    if claim.kind == "number" and " " not in claim.value:
        return numeric_part(found) == claim.value
    if claim.kind == "date" == found.kind and re.fullmatch(r"\d\d-\d\d", claim.value):  # a day without a year
        return found.value == claim.value or found.value.endswith("-" + claim.value)
    if claim.kind == "date" == found.kind and re.fullmatch(r"\d{4}-\d\d", claim.value):  # a month
        return found.value.startswith(claim.value)
    if claim.kind == "link" and "/" not in claim.value:
        host = found.value.split("/", 1)[0] if found.kind == "link" else found.value.rsplit("@", 1)[-1]
        return found.kind in ("link", "email") and host == claim.value
    return claim.kind == found.kind and claim.value == found.value


def supported_by(claim: Fact, found: Sequence[Fact]) -> bool:
    """True when one of ``found`` states ``claim``."""
    return any(fact_matches(claim, f) for f in found)
