"""Scoring of answers: facts, citations, abstention, language, claims, modes, evidence; the report and the CLI."""

from __future__ import annotations

import json
from typing import Any

import pytest

from evals import answer_eval
from evals.answer_eval import score, summarise
from evals.answer_metrics import fact_found, summary_of_half, wilson

ITEM = {
    "qid": "t01",
    "category": "simple",
    "question": "Hoeveel liter is de afvalbak van de zelfreinigende kattenbak?",
    "lang": "nl",
    "relevant": {"purrclean-autobox-9": 2, "kattenbak-onderhoud": 1},
    "facts": ["9 liter"],
}
OUT_OF_CATALOGUE = {**ITEM, "qid": "t30", "category": "out_of_catalogue", "relevant": {}, "facts": []}


def test_correct_answer_with_supported_citation():
    row = score(ITEM, {"answer": "De afvalbak is 9 Liter groot.", "sources": [{"id": "purrclean-autobox-9"}]})
    assert row["correct"] and row["facts_found"] == 1.0 and row["citations_supported"] and row["language_ok"]


def test_missing_fact_and_unsupported_citation_are_caught():
    row = score(ITEM, {"answer": "De afvalbak is groot.", "sources": [{"id": "verzending"}]})
    assert row["correct"] is False and row["facts_found"] == 0.0 and row["citations_supported"] is False


def test_abstention_needs_the_route_and_no_sources():
    good = score(OUT_OF_CATALOGUE, {"answer": "Dat weet ik niet; neem contact op met de klantenservice."})
    invented = score(OUT_OF_CATALOGUE, {"answer": "Ja, kijk bij klantenservice.", "sources": [{"id": "x"}]})
    silent = score(OUT_OF_CATALOGUE, {"answer": "Nee."})
    assert good["abstained"] and not invented["abstained"] and not silent["abstained"]
    assert "correct" not in good


def test_english_answer_to_a_dutch_question_fails_the_language_check():
    row = score(ITEM, {"answer": "The waste bin holds 9 liter of waste.", "sources": []})
    assert row["language_ok"] is False


def test_summary_shares_ignore_questions_a_metric_does_not_apply_to():
    rows = [
        score(ITEM, {"answer": "De afvalbak is 9 liter.", "sources": [{"id": "purrclean-autobox-9"}]}),
        score(OUT_OF_CATALOGUE, {"answer": "Neem contact op met de klantenservice."}),
    ]
    s = summarise(rows)
    assert s["correct"] == 1.0 and s["abstention"] == 1.0 and s["questions"] == 2


# --- modes, claims, evidence, Wilson intervals, the summaries and the report ---------------------------------
PRICE = {
    **ITEM,
    "qid": "t02",
    "question": "Wat kost de CatCave Classic 40?",
    "relevant": {"catcave-classic-40": 2},
    "facts": ["39,95"],
}
EVIDENCE = [{"doc_id": "catcave-classic-40", "line": 3, "title": "CatCave", "text": "Prijs: € 39,95", "score": 0.9}]


def out(answer: str, *sources: str, mode: str = "generated", **extra):
    return {"answer": answer, "sources": [{"id": s, "title": s} for s in sources], "mode": mode, **extra}


def test_wilson_interval_matches_known_values():
    assert wilson(4, 4) == pytest.approx((0.510, 1.0), abs=1e-3)
    assert wilson(0, 4) == pytest.approx((0.0, 0.490), abs=1e-3)
    assert wilson(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson(0, 0) is None


def test_a_fact_with_a_decimal_comma_also_matches_a_point():
    assert fact_found("39,95", "It costs €39.95.") and fact_found("9 liter", "9  Liter")
    assert not fact_found("39,95", "It costs €39.")


def test_an_invented_price_is_an_unsupported_claim_even_when_the_facts_are_there():
    row = score(PRICE, out("De CatCave Classic 40 kost €39,95, met korting €29,95.", "catcave-classic-40"))
    assert row["correct"] and row["citations_supported"] and row["unsupported"]
    assert row["unsupported_claims"] == ["number 29.95: not in catcave-classic-40"]


def test_a_siblings_price_without_its_document_is_caught():
    row = score(PRICE, out("De CatCave Classic 55 kost €54,95.", "catcave-classic-40"))
    assert row["correct"] is False and row["unsupported"]
    assert row["unsupported_claims"] == ["number 54.95: not in catcave-classic-40"]  # the 40's page names the 55


def test_a_product_outside_the_catalogue_is_caught_on_an_out_of_catalogue_question():
    row = score(OUT_OF_CATALOGUE, out("De VitaKat Senior is er voor oudere katten.", mode="generated"))
    assert row["abstained"] is False and row["unsupported_claims"] == [
        "product 'VitaKat Senior' is not in the catalogue"
    ]


def test_an_answer_without_sources_is_unsupported_unless_it_abstained_refused_or_took_a_route():
    assert score(PRICE, out("Hij kost 39,95."))["citations_supported"] is False
    for mode in ("abstained", "refused", "unknown_variant"):
        row = score(PRICE, out("Neem contact op met de klantenservice.", mode=mode))
        assert row["citations_supported"] is None
    assert score(PRICE, out("x", mode="abstained"))["false_abstention"] is True
    assert score(PRICE, out("x", mode="refused"))["false_abstention"] is False


def test_abstention_counts_the_abstaining_modes_or_the_old_rule():
    assert score(OUT_OF_CATALOGUE, out("Dat model hebben we niet.", mode="unknown_variant"))["abstained"]
    assert score(OUT_OF_CATALOGUE, out("Vraag het de klantenservice.", mode="generated"))["abstained"]
    assert not score(OUT_OF_CATALOGUE, out("Ja, hebben we.", "verzending", mode="generated"))["abstained"]


def test_evidence_recall_uses_the_lines_the_prompt_was_given():
    assert score(PRICE, out("Hij kost 39,95.", "catcave-classic-40", evidence=EVIDENCE))["evidence_recall"] is True
    assert score(PRICE, out("Hij kost 39,95.", "catcave-classic-40", evidence=[]))["evidence_recall"] is False
    assert score(PRICE, {"answer": "Hij kost 39,95."})["evidence_recall"] is None  # a graph without evidence


def _rows():
    rows = [
        score(PRICE, out("De CatCave Classic 40 kost €39,95.", "catcave-classic-40", prompt_tokens=300)),
        score(PRICE, out("De CatCave Classic 40 kost €39,95.", "catcave-classic-40", mode="extractive")),
        score(PRICE, out("De CatCave Classic 40 kost €44,95.", "catcave-classic-40", prompt_tokens=500)),
        score(PRICE, out("Dat weet ik niet; vraag de klantenservice.", mode="abstained", evidence=[])),
        score(OUT_OF_CATALOGUE, out("Ik kan geen bestellingen inzien.", mode="order")),
    ]
    for r, seconds in zip(rows, (1.0, 2.0, 3.0, 4.0, 10.0), strict=True):
        r["seconds"] = seconds
    return rows


def test_the_summary_per_mode_and_per_category():
    s = summary_of_half(_rows())
    assert s["questions"] == 5 and s["modes"] == {"generated": 2, "extractive": 1, "abstained": 1, "order": 1}
    assert s["correct"] == 0.5 and s["correct_by_mode"] == {"generated": 0.5, "extractive": 1.0}
    assert s["unsupported_answers"] == 1 and s["unsupported_share"] == pytest.approx(0.2)
    assert s["citations_supported"] == 1.0  # the abstained answer has no sources and is not counted
    assert s["abstention"] == 1.0 and s["abstention_n"] == 1 and s["abstention_ci"][0] == pytest.approx(0.207, 1e-2)
    assert s["false_abstention"] == 0.25 and s["false_abstention_n"] == 4
    assert s["prompt_tokens_median"] == 400 and s["seconds_median"] == 3.0 and s["seconds_mean"] == 4.0
    assert s["evidence_recall"] == 0.0  # the runs that report evidence: only the abstained one, with none
    assert set(s["by_category"]) == {"simple", "out_of_catalogue"}
    assert s["by_category"]["simple"]["questions"] == 4 and s["by_category"]["simple"]["correct"] == 0.5
    assert s["by_category"]["out_of_catalogue"]["abstention"] == 1.0
    assert s["by_mode"]["generated"]["correct"] == 0.5 and s["by_mode"]["order"]["questions"] == 1


def test_the_report_has_the_tables_the_flagged_answers_and_the_plot(tmp_path):
    rows = _rows()
    result: dict[str, Any] = {"started": "now", "llm": "m", "llm_url": "u", "skipped": ["dev_ooc half skipped: x"]}
    result |= {"summary": {"test": summary_of_half(rows)}, "rows": {"test": rows}}
    md = answer_eval.markdown(result)
    for heading in ("## test half (5 questions)", "### Per category (test)", "### Per mode (test)", "dev_ooc"):
        assert heading in md
    assert "| false abstention (in catalogue) | 25 % | 1/4, 95 % CI [" in md
    assert "number 44.95: not in catcave-classic-40" in md and "abstained in the catalogue" in md
    assert answer_eval.plot(tmp_path / "answers.png", result["summary"])
    assert (tmp_path / "answers.png").stat().st_size > 1000


def _write(folder, half, items):
    (folder / f"questions_{half}.jsonl").write_text("\n".join(json.dumps(i) for i in items) + "\n", encoding="utf-8")


def test_a_missing_dev_ooc_half_is_skipped_with_a_message(tmp_path, monkeypatch, capsys):
    _write(tmp_path, "test", [PRICE])
    _write(tmp_path, "dev", [OUT_OF_CATALOGUE])
    halves, skipped = answer_eval.available(("test", "dev", "dev_ooc"), tmp_path)
    assert list(halves) == ["test", "dev"] and skipped == [
        f"dev_ooc half skipped: {tmp_path / 'questions_dev_ooc.jsonl'} does not exist"
    ]
    with pytest.raises(FileNotFoundError):  # the two frozen halves are not optional
        answer_eval.available(("test", "dev"), tmp_path / "nowhere")

    async def scripted(half, items):
        return [{**score(i, out("Vraag de klantenservice.", mode="abstained")), "seconds": 1.0} for i in items]

    monkeypatch.setattr(answer_eval, "DATA", tmp_path)
    monkeypatch.setattr(answer_eval, "run_half", scripted)
    assert answer_eval.main(["--half", "all", "--out", str(tmp_path / "out")]) == 0
    saved = json.loads((tmp_path / "out" / "answers.json").read_text(encoding="utf-8"))
    assert list(saved["summary"]) == ["test", "dev"] and saved["skipped"]
    assert (tmp_path / "out" / "answers.png").exists()
    assert "dev_ooc half skipped" in capsys.readouterr().err
    assert answer_eval.main(["--half", "dev_ooc", "--out", str(tmp_path / "none")]) == 1
    assert not (tmp_path / "none").exists()
