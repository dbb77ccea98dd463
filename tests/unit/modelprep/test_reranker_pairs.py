"""Fast tests of the reranker's training-pair generator (no model is loaded or trained)."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

from modelprep import reranker as rr

ROOT = Path(__file__).resolve().parents[3]
PRODUCT = """---
id: snoepbox-3
title: SnoepBox 3 voerbak
doc_type: product
sku: KH-TST-0003
name: SnoepBox 3
category: voerbakken
brand: SnoepCo
price_eur: 12.5
capacity_l: 0.4
---

# SnoepBox 3

De SnoepBox 3 is een voerbak van keramiek met een antislipring onder de bodem.
Hij mag in de vaatwasser en blijft ook bij drukke eters op zijn plek staan.

## Onderhoud

Spoel de bak dagelijks om en laat hem goed drogen voordat je nieuw voer geeft.
"""
POLICY = """---
id: bezorging
title: Bezorging en afhalen
---

# Bezorging

Bestellingen die voor vijf uur binnen zijn gaan dezelfde dag nog de deur uit met de koerier.
Afhalen in de winkel in Utrecht kan op werkdagen tussen negen en zes uur zonder extra kosten.
"""
GUIDE = """---
id: speelgids
title: Gids voor spelen met je kat
---

# Spelen

Een kat die elke dag tien minuten jaagt op een hengel slaapt 's nachts veel rustiger door.
Wissel het speelgoed elke week af zodat je kat nieuwsgierig blijft naar de veren en balletjes.
"""


def _catalogue(tmp_path: Path) -> Path:
    root = tmp_path / "catalogue"
    root.mkdir()
    for name, text in {"snoepbox-3.md": PRODUCT, "bezorging.md": POLICY, "speelgids.md": GUIDE}.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


def _words(text: str) -> int:
    return len(text.split())


def _chunks(root: Path) -> list[rr.Chunk]:
    return rr.load_chunks(root, _words, chunk_tokens=40, overlap=5)


def test_pairs_are_well_formed(tmp_path: Path) -> None:
    chunks = _chunks(_catalogue(tmp_path))
    assert {c.doc_id for c in chunks} == {"snoepbox-3", "bezorging", "speelgids"}
    pairs = rr.generate_pairs(chunks, seed=1, negatives=2)
    by_query: dict[str, list[rr.Pair]] = {}
    for p in pairs:
        assert p.query.strip() and p.passage.strip() and p.label in (0.0, 1.0)
        by_query.setdefault(p.query, []).append(p)
    texts = {c.text: c.doc_id for c in chunks}
    for group in by_query.values():
        positives = [p for p in group if p.label == 1.0]
        assert len(positives) >= 1
        pos_docs = {p.doc_id for p in positives}
        for p in group:
            assert texts[p.passage] == p.doc_id  # every passage is a chunk of the catalogue, as indexed
            if p.label == 0.0:
                assert p.doc_id not in pos_docs  # negatives come from other documents only
    assert any("SnoepBox 3" in q or "snoepbox 3" in q.lower() for q in by_query)  # product-fact queries
    assert sum(p.label == 0.0 for p in pairs) == 2 * sum(p.label == 1.0 for p in pairs)


def test_generation_is_deterministic(tmp_path: Path) -> None:
    chunks = _chunks(_catalogue(tmp_path))
    a = rr.generate_pairs(chunks, seed=7, negatives=2)
    assert a == rr.generate_pairs(chunks, seed=7, negatives=2)
    assert a != rr.generate_pairs(chunks, seed=8, negatives=2)


def test_dense_negatives_are_used(tmp_path: Path) -> None:
    chunks = _chunks(_catalogue(tmp_path))
    guide = next(i for i, c in enumerate(chunks) if c.doc_id == "speelgids")
    pairs = rr.generate_pairs(chunks, seed=3, negatives=2, dense=lambda qs: [[guide] for _ in qs])
    groups = [pairs[i : i + 3] for i in range(0, len(pairs), 3)]  # one positive, then its two negatives
    assert all(g[0].label == 1.0 and [p.label for p in g[1:]] == [0.0, 0.0] for g in groups)
    for g in groups:
        if g[0].doc_id != "speelgids":  # the dense pick of another document is always among the negatives
            assert chunks[guide].text in {p.passage for p in g[1:]}


def test_typos_and_keywords() -> None:
    rng = random.Random(0)
    assert rr.add_typo("kattenbak", rng) != "kattenbak"
    assert rr.add_typo("a b c", rng) == "a b c"  # nothing long enough to misspell
    kw = rr.keywords("De afvalbak van de kattenbak heeft een koolstoffilter", random.Random(1))
    assert kw and not set(kw.split()) & {"de", "van", "een"}


def _norm(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def test_no_evaluation_question_leaks_into_the_real_catalogue_pairs() -> None:
    source = Path(rr.__file__).read_text(encoding="utf-8")
    assert "questions_" not in source and "evals" not in source  # the generator never opens the eval sets
    chunks = rr.load_chunks(ROOT / "data" / "catalogue", _words, chunk_tokens=300, overlap=30)
    queries = {_norm(p.query) for p in rr.generate_pairs(chunks, seed=13, negatives=1) if p.label == 1.0}
    questions = [
        _norm(json.loads(line)["question"])
        for half in ("dev", "test")
        for line in (ROOT / "evals" / "data" / f"questions_{half}.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    assert len(queries) > 100 and len(questions) > 50
    assert not queries & set(questions)


def test_inputs_hash_follows_catalogue_and_settings(tmp_path: Path) -> None:
    root = _catalogue(tmp_path)
    e5 = tmp_path / "e5"
    e5.mkdir()
    (e5 / rr.MARKER).write_text("{}")
    first = rr.inputs_hash(root, e5, {"layers": 6})
    assert first == rr.inputs_hash(root, e5, {"layers": 6})
    assert first != rr.inputs_hash(root, e5, {"layers": 4})
    (root / "speelgids.md").write_text(GUIDE.replace("tien", "twintig"), encoding="utf-8")
    assert first != rr.inputs_hash(root, e5, {"layers": 6})
