"""The local OpenAI-compatible LLM servers (vLLM on CPU and llama.cpp), end to end.

For each engine the module-scoped fixture makes sure the server runs on its default port
(``deploy/llm/llmctl.sh start <engine>``; stopped again afterwards only if the fixture started it),
then asks Dutch questions in exactly the app's message format (``chains.prompts`` +
``chains.context.format_context``) through the ``openai`` client.

Prerequisites: ``deploy/llm/install_vllm.sh`` and ``python -m modelprep.llm --engine vllm`` for
vLLM; nothing beyond ``.venv`` for llama.cpp. ``LLM_TEST_ENGINES=llamacpp`` limits the engines.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest

from chains.context import format_context
from chains.prompts import SYSTEM_PROMPT_NL, USER_TEMPLATE_NL

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
LLMCTL = ROOT / "deploy" / "llm" / "llmctl.sh"
SERVED_NAME = os.environ.get("LLM_SERVED_NAME", "gemma3-270m")
PORTS = {
    "vllm": int(os.environ.get("VLLM_PORT", "8001")),
    "llamacpp": int(os.environ.get("LLAMACPP_PORT", "8002")),
}
ENGINES = [e.strip() for e in os.environ.get("LLM_TEST_ENGINES", "vllm,llamacpp").split(",") if e.strip()]

# The request parameters recommended for the local base model (deploy/llm/README.md).
SAMPLING = {
    "temperature": 0.0,
    "max_tokens": 128,
    "frequency_penalty": 0.5,
    "stop": ["\n\n", "\nVraag:", "<document", "</document"],
}

DOCS = {
    "kattenbak": {
        "doc_id": "p-101",
        "title": "Kattenbak Deluxe",
        "text": "De Kattenbak Deluxe is een zelfreinigende kattenbak met een afvallade van 9 liter. "
        "De lade hoeft maar eens per week geleegd te worden. Geschikt voor katten tot 8 kg.",
    },
    "verzending": {
        "doc_id": "faq-verzending",
        "title": "Verzendkosten",
        "text": "Bestellingen vanaf €49 verzenden we gratis. Onder de €49 betaal je €4,95 verzendkosten. "
        "Op werkdagen voor 22:00 besteld is morgen in huis.",
    },
    "retour": {
        "doc_id": "faq-retour",
        "title": "Retourneren",
        "text": "Je hebt 30 dagen bedenktijd. Binnen 30 dagen na ontvangst kun je een product kosteloos "
        "retourneren via je account.",
    },
}

QUESTIONS = [
    ("Hoeveel liter past er in de afvallade van de Kattenbak Deluxe?", ["kattenbak", "verzending"], "9 liter"),
    ("Hoe lang heb ik om een product te retourneren?", ["retour", "verzending"], "30 dagen"),
]


def app_messages(question: str, doc_keys: list[str]) -> list[dict[str, str]]:
    """The messages exactly as the app sends them."""
    chunks = [DOCS[k] for k in doc_keys]
    user = USER_TEMPLATE_NL.format(context=format_context(chunks), question=question)
    return [{"role": "system", "content": SYSTEM_PROMPT_NL}, {"role": "user", "content": user}]


def _healthy(base_url: str) -> bool:
    try:
        r = httpx.get(f"{base_url}/v1/models", timeout=3)
    except httpx.HTTPError:
        return False
    return r.status_code == 200 and SERVED_NAME in r.text


def _llmctl(action: str, engine: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LLMCTL), action, engine], cwd=ROOT, capture_output=True, text=True, timeout=420, check=False
    )


@pytest.fixture(scope="module", params=ENGINES)
def server(request):
    """(engine, base_url) of a healthy server; started (and later stopped) here if it was not running."""
    engine = request.param
    base_url = f"http://127.0.0.1:{PORTS[engine]}"
    started = False
    if not _healthy(base_url):
        res = _llmctl("start", engine)
        if res.returncode != 0:
            pytest.fail(f"llmctl start {engine} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
        started = True
    yield engine, base_url
    if started:
        _llmctl("stop", engine)


@pytest.fixture(scope="module")
def client(server):
    from openai import OpenAI

    _, base_url = server
    return OpenAI(base_url=f"{base_url}/v1", api_key="not-needed", timeout=300, max_retries=0)


def test_models_lists_served_name(client):
    ids = [m.id for m in client.models.list().data]
    assert SERVED_NAME in ids


@pytest.mark.parametrize(("question", "doc_keys", "fact"), QUESTIONS, ids=["9-liter", "30-dagen"])
def test_dutch_answer_contains_fact(client, question, doc_keys, fact):
    resp = client.chat.completions.create(model=SERVED_NAME, messages=app_messages(question, doc_keys), **SAMPLING)
    answer = resp.choices[0].message.content or ""
    assert fact in answer, f"expected {fact!r} in {answer!r}"
    assert resp.usage is not None and resp.usage.completion_tokens <= SAMPLING["max_tokens"]
    assert "<document" not in answer  # the stop sequences end the answer before the model invents documents


def test_streaming_yields_several_chunks(client):
    question, doc_keys, fact = QUESTIONS[0]
    stream = client.chat.completions.create(
        model=SERVED_NAME, messages=app_messages(question, doc_keys), stream=True, **SAMPLING
    )
    pieces = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
    assert len(pieces) >= 3, pieces
    assert fact in "".join(pieces)
