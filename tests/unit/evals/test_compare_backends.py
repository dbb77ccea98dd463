"""``make compare``: the same questions through the full graph per backend, summary and per-question report."""

from __future__ import annotations

import pytest

from core.resources import get_resources, set_resources
from core.settings import LLMBackend
from evals.compare_backends import compare, load_questions
from evals.compare_report import markdown
from fakes import fake_resources
from fakes_serving import free_port, standin_server


@pytest.fixture
def standin():
    with standin_server("--first-token-ms", "10") as base:
        yield base


# Questions the small test catalogue has evidence for, so that the model is asked (without evidence the graph
# abstains before the model and a backend that is down would never be noticed).
ANSWERABLE = [
    {"qid": "t1", "question": "Wat kost verzending?", "facts": ["4,95"]},
    {"qid": "t2", "question": "Hoeveel liter is de afvalbak?", "facts": ["9 liter"]},
    {"qid": "t3", "question": "Hoe lang kan ik retourneren?", "facts": ["30 dagen"]},
    {"qid": "t4", "question": "Hoeveel kost de CatCave Classic 40?", "facts": ["39,95"]},
]


def test_load_questions_takes_those_with_facts():
    questions = load_questions("dev", 4)
    assert len(questions) == 4 and all(q["facts"] for q in questions)


async def test_compare_reports_each_backend_and_the_differences(tmp_path, standin):
    set_resources(fake_resources(tmp_path))
    questions = ANSWERABLE
    specs = [
        LLMBackend(name="up", base_url=standin, model="standin", role="primary"),
        LLMBackend(name="down", base_url=f"http://127.0.0.1:{free_port()}/v1", model="standin", timeout_s=5),
    ]
    report = await compare(specs, questions, concurrency=3)
    up, down = report["summary"]
    assert up["sequential"]["success_rate"] == 1.0 and up["concurrent"]["success_rate"] == 1.0
    assert up["sequential"]["p50_s"] is not None and up["mean_words"] > 0
    assert down["sequential"]["success_rate"] == 0.0 and down["concurrent"]["p95_s"] is None
    assert all(r["error"] for r in report["runs"][1]["sequential"])
    text = markdown(report)
    assert "| up |" in text and "| down |" in text
    assert all(f"| {q['qid']} |" in text for q in questions) and text.count("| yes |") == 4
    assert get_resources().llm is not None  # the original resources are back after the run
