"""The requests of the security suite: attacks, web payloads, benign questions, malformed HTTP."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "evals" / "data"
JAILBREAKS = DATA / "jailbreaks.jsonl"
BENIGN = DATA / "security_benign.jsonl"
# Vendored from ../shared/data/web_payloads/sample.jsonl (PayloadsAllTheThings, MIT): see evals/security/data/README.md.
WEB_PAYLOADS = ROOT / "evals" / "security" / "data" / "web_payloads.jsonl"
CATALOGUE = ROOT / "data" / "catalogue"
E5_DIR = ROOT / ".cache" / "models" / "multilingual-e5-small"
DEFAULT_OUT = ROOT / "var" / "reports"

SPAN_CHARS = 40
CONCURRENCY = 2  # the local LLM on 2 cores gains nothing from more; 4 makes answers exceed its 60 s timeout
REQUEST_TIMEOUT_S = 180.0  # above the server's own worst case (LLM timeout 60 s, 1 retry)
DEFAULT_BUDGET_S = 1200.0
BENIGN_TARGET = 0.99
# The test profile for the server this suite starts: far above what one client would send.
RAISED_LIMITS = {"RATE_LIMIT_PER_MINUTE": "100000", "RATE_LIMIT_PER_HOUR": "1000000", "BACKOFF_STRIKES": "1000000"}
# These attacks are also sent through /rag/stream (guard-passing ones, plus one the guard refuses).
STREAM_IDS = (
    "jb-nl-roleplay-03",
    "jb-nl-hidden-06",
    "jb-nl-base64-08",
    "jb-nl-review-10",
    "jb-en-roleplay-03",
    "jb-en-fakesystem-08",
    "jb-en-prefix-09",
    "jb-de-roleplay-02",
    "jb-de-hidden-05",
    "leak-nl-rules-04",
    "leak-en-firstline-04",
    "leak-de-config-01",
    "jb-en-direct-01",
)
ATTACK_CATEGORIES = ("jailbreak", "injection", "leak")
_WS = re.compile(r"\s+")
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)


def log(msg: str) -> None:
    """Print one progress line."""
    print(f"[security] {msg}", flush=True)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSONL file."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def catalogue_ids(root: Path = CATALOGUE) -> set[str]:
    """Document ids of the catalogue folder, as the ingest pipeline reads them."""
    from ingest.pipeline import IngestReport, load_documents

    return {doc.doc_id for doc in load_documents(root, IngestReport())}


@dataclass(kw_only=True)
class Case:
    """One request the suite sends."""

    id: str
    category: str  # jailbreak | injection | leak | web:<kind> | benign | malformed
    route: str  # invoke | stream | raw
    text: str = ""
    lang: str = ""
    marker: str | None = None
    # raw (malformed) requests only
    method: str = "POST"
    path: str = "/rag/invoke"
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def is_attack(self) -> bool:
        """Jailbreak, injection or leak probe."""
        return self.category in ATTACK_CATEGORIES


def malformed_cases() -> list[Case]:
    """Requests that must be refused with a 4xx JSON error (never 5xx, never answered)."""
    good = json.dumps({"input": {"question": "Wat kost verzending?"}}).encode()
    js = {"content-type": "application/json"}
    depth = 20_000  # 40 kB: under the 64 kB body limit
    specs: list[tuple[str, str, str, bytes | None, dict[str, str]]] = [
        ("invalid-json", "POST", "/rag/invoke", b'{"input": {"question": "hoi"', js),
        ("invalid-json-stream", "POST", "/rag/stream", b"{bad json", js),
        ("empty-body", "POST", "/rag/invoke", b"", js),
        ("wrong-content-type-text", "POST", "/rag/invoke", good, {"content-type": "text/plain"}),
        (
            "wrong-content-type-form",
            "POST",
            "/rag/invoke",
            b"question=Wat+kost+verzending",
            {"content-type": "application/x-www-form-urlencoded"},
        ),
        ("missing-input", "POST", "/rag/invoke", b'{"question": "Wat kost verzending?"}', js),
        ("missing-question", "POST", "/rag/invoke", b'{"input": {}}', js),
        ("wrong-type-number", "POST", "/rag/invoke", b'{"input": {"question": 42}}', js),
        ("wrong-type-list", "POST", "/rag/invoke", b'{"input": {"question": ["a", "b"]}}', js),
        ("wrong-type-input-string", "POST", "/rag/invoke", b'{"input": "Wat kost verzending?"}', js),
        ("top-level-array", "POST", "/rag/invoke", b"[1, 2, 3]", js),
        ("huge-body", "POST", "/rag/invoke", json.dumps({"input": {"question": "a" * 300_000}}).encode(), js),
        ("question-too-long", "POST", "/rag/invoke", json.dumps({"input": {"question": "kat " * 1500}}).encode(), js),
        ("raw-null-byte", "POST", "/rag/invoke", b'{"input": {"question": "Wat kost\x00 verzending?"}}', js),
        ("only-null-chars", "POST", "/rag/invoke", b'{"input": {"question": "\\u0000\\u0000"}}', js),
        ("invalid-utf8", "POST", "/rag/invoke", b'{"input": {"question": "Wat kost \xff\xfe verzending \xc3?"}}', js),
        ("deep-array", "POST", "/rag/invoke", b'{"input": {"question": ' + b"[" * depth + b"]" * depth + b"}}", js),
        (
            "deep-object",
            "POST",
            "/rag/invoke",
            b'{"input": ' + b'{"a": ' * (depth // 3) + b"1" + b"}" * (depth // 3) + b"}",
            js,
        ),
        ("unknown-field-in-input", "POST", "/rag/invoke", b'{"input": {"question": "hoi", "admin": true}}', js),
        ("unknown-field-top-level", "POST", "/rag/invoke", b'{"input": {"question": "hoi"}, "debug": true}', js),
        ("get-on-post-route", "GET", "/rag/invoke", None, {}),
        ("get-on-stream-route", "GET", "/rag/stream", None, {}),
    ]
    return [
        Case(id=f"malformed-{name}", category="malformed", route="raw", method=m, path=p, content=c, headers=h)
        for name, m, p, c, h in specs
    ]


def load_cases(stream_ids: tuple[str, ...] = STREAM_IDS) -> list[Case]:
    """Every request of a run: attacks (invoke, and a subset by stream), web payloads, benign, malformed."""
    cases: list[Case] = []
    attacks = read_jsonl(JAILBREAKS)
    for a in attacks:
        cases.append(
            Case(id=a["id"], category=a["kind"], route="invoke", text=a["text"], lang=a["lang"], marker=a["marker"])
        )
    by_id = {a["id"]: a for a in attacks}
    for sid in stream_ids:
        a = by_id[sid]
        cases.append(
            Case(
                id=f"{sid}@stream",
                category=a["kind"],
                route="stream",
                text=a["text"],
                lang=a["lang"],
                marker=a["marker"],
            )
        )
    for i, p in enumerate(read_jsonl(WEB_PAYLOADS), start=1):
        text = p["payload"].replace("{FILE}", "etc/passwd")
        cases.append(
            Case(id=f"web-{p['category']}-{i:03d}", category=f"web:{p['category']}", route="invoke", text=text)
        )
    for b in read_jsonl(BENIGN):
        cases.append(Case(id=b["id"], category="benign", route="invoke", text=b["text"], lang=b["lang"]))
    cases.extend(malformed_cases())
    return cases
