"""The keyed audit chain (issue #17 item 5): a clean log verifies, each kind of tampering is caught with its
reason, rotation keeps the chain, one file per process, anchors in the shared store or a local file."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from core.settings import get_settings
from core.shared_state import Entry, LocalState
from guards.audit import GENESIS, AuditLog, canonical, key_id, line_mac
from guards.audit_anchor import FileAnchors, anchor_key, anchor_store, anchoring, anchors_file, publish
from guards.audit_verify import main, verify_files

KEY = b"chain-key-for-tests-0123456789"
ROOT = Path(__file__).resolve().parents[3]


def write_log(path: Path, n: int, key: bytes = KEY, **kw: Any) -> AuditLog:
    """An audit log at ``path`` with ``n`` lines written and flushed (still open)."""
    log = AuditLog(path, b"h" * 32, chain_key=key, **kw)
    for i in range(n):
        log.write({"route": "/rag/invoke", "i": i, "status": 200, "ip": "1.2.3.4"})
    log.flush()
    return log


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def put(path: Path, recs: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in recs))


def check(path: Path | list[Path], store: Any = None) -> tuple[int, str]:
    report = verify_files(path if isinstance(path, list) else [path], [KEY], store)
    bad = next((f for f in report.files if f.problem), None)
    return (bad.bad_line, bad.problem) if bad else (0, "")


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    path = tmp_path / "audit" / "audit.jsonl"
    write_log(path, 6).close()
    return path


def test_clean_log_verifies_and_names_its_segment(log_path: Path) -> None:
    recs = lines(log_path)
    report = verify_files([log_path], [KEY])
    assert report.ok and report.lines == 6, report.problem
    first = recs[0]
    assert first["seq"] == 0 and first["prev"] == GENESIS and first["start"]["key_id"] == key_id(KEY)
    assert {"pid", "host", "at"} <= set(first["start"]) and first["start"]["prev_segment"] is None
    assert [r["seq"] for r in recs] == list(range(6)) and all("start" not in r for r in recs[1:])
    assert all(r["prev"] == p["mac"] for p, r in itertools.pairwise(recs))
    assert all(r["mac"] == line_mac(KEY, r["prev"], r) for r in recs)
    assert "1.2.3.4" not in log_path.read_text() and KEY.decode() not in log_path.read_text()


def test_edited_field_is_a_mac_mismatch(log_path: Path) -> None:
    recs = lines(log_path)
    recs[3]["status"] = 403
    put(log_path, recs)
    assert check(log_path) == (4, "mac mismatch (line edited, or the chain recomputed without the chain key)")


def test_deleted_middle_line_is_a_seq_gap(log_path: Path) -> None:
    recs = lines(log_path)
    put(log_path, recs[:2] + recs[3:])
    line, why = check(log_path)
    assert line == 3 and why.startswith("seq gap: 3 after 1") and "broken" in why


def test_deleted_head_is_detected(log_path: Path) -> None:
    put(log_path, lines(log_path)[1:])
    line, why = check(log_path)
    assert line == 1 and why.startswith("head deleted")


def test_head_with_seq_renumbered_still_needs_its_start(log_path: Path) -> None:
    recs = lines(log_path)[1:]
    recs[0]["seq"] = 0  # the attacker renumbers without the key: no start, and the mac breaks anyway
    put(log_path, recs)
    assert check(log_path)[1].startswith("head deleted")


def test_reordered_lines_are_detected(log_path: Path) -> None:
    recs = lines(log_path)
    put(log_path, [*recs[:2], recs[3], recs[2], *recs[4:]])
    line, why = check(log_path)
    assert line == 3 and why.startswith("seq gap")  # seq 3 after 1; the swapped-back line would be "out of order"
    put(log_path, [*recs[:3], recs[2], *recs[3:]])  # a replayed (duplicated) line
    assert check(log_path)[1].startswith("line out of order or duplicated")


def _recompute(recs: list[dict[str, Any]], mac: Any) -> list[dict[str, Any]]:
    prev = GENESIS
    for r in recs:
        r["prev"] = prev
        r["mac"] = prev = mac(prev, r)
    return recs


def test_recomputed_chain_with_a_wrong_key_is_detected(log_path: Path) -> None:
    recs = lines(log_path)
    recs[2]["status"] = 500
    put(log_path, _recompute(recs, lambda prev, r: line_mac(b"attacker-key-0123456789", prev, r)))
    assert check(log_path) == (1, "mac mismatch (line edited, or the chain recomputed without the chain key)")
    recs[0]["start"]["key_id"] = key_id(b"attacker-key-0123456789")  # naming its own key does not help
    put(log_path, _recompute(recs, lambda prev, r: line_mac(b"attacker-key-0123456789", prev, r)))
    assert check(log_path)[1].startswith("unknown chain key id")


def test_recomputed_chain_with_plain_sha256_is_detected(log_path: Path) -> None:
    sha = lambda prev, r: hashlib.sha256((prev + canonical(r)).encode()).hexdigest()  # noqa: E731
    put(log_path, _recompute(lines(log_path), sha))
    assert check(log_path)[1].startswith("mac mismatch")


def test_not_json_and_foreign_lines(log_path: Path) -> None:
    with log_path.open("a") as f:
        f.write("{half a line\n")
    assert check(log_path) == (7, "not JSON")
    put(log_path, [{"route": "/x", "chain": "old", "prev": GENESIS}])
    assert check(log_path)[1].startswith("not a chained audit line")


def test_truncated_tail_after_an_anchor(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    store = LocalState()
    log = write_log(path, 5)
    assert asyncio.run(publish(log, store, None, 1.0)) == log.head
    log.close()
    anchored = asyncio.run(store.get(anchor_key(log.segment)))
    assert anchored is not None and anchored.value["seq"] == 4 and anchored.value["file"] == "audit.jsonl"
    assert check(path, store) == (0, "")
    put(path, lines(path)[:3])
    assert check(path) == (0, "")  # without anchors a clean cut is invisible...
    line, why = check(path, store)  # ...with them it is not
    assert line == 3 and why == f"tail truncated: segment {log.segment} anchored at seq 4, the files end at seq 2"


def test_anchor_mismatch_when_the_tail_is_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    store = LocalState()
    log = write_log(path, 3)
    asyncio.run(publish(log, store, None, 1.0))
    log.close()
    recs = lines(path)
    asyncio.run(store.set(anchor_key(log.segment), {"seq": 2, "mac": "f" * 64}, "x"))
    put(path, recs)
    assert check(path, store)[1].startswith("anchor mismatch")


def test_rotation_keeps_the_chain_across_files(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = write_log(path, 30, max_bytes=1500, backups=20)
    store = LocalState()
    asyncio.run(publish(log, store, None, 1.0))
    log.close()
    files = sorted(tmp_path.glob("audit.jsonl*"))
    assert len(files) >= 3
    report = verify_files(list(reversed(files)), [KEY], store)  # any order: rotated files sorted oldest first
    assert report.ok and report.lines == 30, report.problem
    newest, older = lines(path), lines(path.with_name("audit.jsonl.1"))
    start = newest[0]["start"]
    assert newest[0]["seq"] == 0 and start["prev_segment"] == older[-1]["segment"] != newest[0]["segment"]
    assert newest[0]["prev"] == older[-1]["mac"]
    # The oldest files rotated away: the rest still verifies, with a note.
    report = verify_files(files[:2], [KEY])  # audit.jsonl and .1
    assert report.ok and any("not among the files" in n for n in report.notes)
    # A newer file deleted: its segment is anchored but absent.
    assert check(files[1:], store)[1].endswith("absent: a newer file deleted?")
    # The older file's tail cut: the next file's link breaks.
    put(files[1], lines(files[1])[:-1])
    assert "link to previous segment" in check(files[:2])[1]


def test_two_processes_write_two_files(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    mine = write_log(path, 2)  # claims audit.jsonl
    script = textwrap.dedent(f"""
        import os
        from pathlib import Path
        from guards.audit import AuditLog
        log = AuditLog(Path({str(path)!r}), b"h" * 32, chain_key={KEY!r}, host="other")
        log.write({{"route": "/x"}}); log.write({{"route": "/y"}}); log.close()
        print(log.path.name, os.getpid())
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    name, pid = out.stdout.split()
    assert name == f"audit-other-{pid}.jsonl"
    mine.write({"route": "/z"})
    mine.close()
    theirs = tmp_path / name
    assert [r["route"] for r in lines(theirs)] == ["/x", "/y"] and len(lines(path)) == 3
    assert lines(theirs)[0]["start"]["pid"] == int(pid) and lines(path)[0]["start"]["pid"] != int(pid)
    assert verify_files([path, theirs], [KEY]).ok


def test_a_restarted_process_starts_a_new_segment_in_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 2).close()
    write_log(path, 2).close()  # the claim was given back at close
    recs = lines(path)
    assert [r["seq"] for r in recs] == [0, 1, 0, 1] and recs[0]["segment"] != recs[2]["segment"]
    assert verify_files([path], [KEY]).ok


def test_anchoring_loop_and_shutdown_anchor_to_local_state(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, b"h" * 32, chain_key=KEY)
    store = LocalState()

    async def run() -> tuple[Entry | None, Entry | None]:
        async with anchoring(log, store, every_s=0.02):
            log.write({"route": "/a"})
            log.flush()
            await asyncio.sleep(0.1)
            early = await store.get(anchor_key(log.segment))
            log.write({"route": "/b"})  # written after the last round: the shutdown anchor covers it
        return early, await store.get(anchor_key(log.segment))

    early, final = asyncio.run(run())
    log.close()
    assert early is not None and early.value["seq"] == 0
    assert final is not None and final.value == {"segment": log.segment, "seq": 1, "mac": lines(path)[1]["mac"],
                                                 "file": "audit.jsonl"}  # fmt: skip


def test_local_anchor_file_and_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    monkeypatch.setenv("AUDIT_CHAIN_KEY", KEY.decode())
    get_settings.cache_clear()
    path = tmp_path / "audit.jsonl"
    store = anchor_store(LocalState(), path)
    assert isinstance(store, FileAnchors) and store.path == anchors_file(path) == tmp_path / "audit.anchors.jsonl"
    log = write_log(path, 4)

    async def run() -> None:
        async with anchoring(log, store, every_s=60):
            pass  # no round within the test: the anchor written at exit

    asyncio.run(run())
    log.close()
    assert main(["verify", *map(str, tmp_path.glob("audit*.jsonl*")), "--anchors", "file"]) == 0
    assert "OK " in capsys.readouterr().out  # the anchor file the glob caught was skipped
    put(path, lines(path)[:2])
    assert main(["verify", str(path), "--anchors", "file"]) == 1
    out = capsys.readouterr().out
    assert "first bad line 2: tail truncated" in out and "TAMPERED: 2 lines checked in 1 files" in out


class DownStore:
    """A shared store that is unreachable (raises) or hangs."""

    kind = "redis"

    def __init__(self, hang: bool = False) -> None:
        self.hang, self.calls = hang, 0

    async def get(self, key: str) -> Entry | None:
        raise ConnectionError("store down")

    async def set(self, key: str, value: dict[str, Any], by: str) -> Entry:
        self.calls += 1
        if self.hang:
            await asyncio.sleep(10)
        raise ConnectionError("store down")


@pytest.mark.parametrize("hang", [False, True])
def test_a_down_store_never_breaks_writing(tmp_path: Path, caplog: pytest.LogCaptureFixture, hang: bool) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, b"h" * 32, chain_key=KEY)
    store = DownStore(hang)
    assert anchor_store(store, path) is store  # a Redis store is used as it is

    async def run() -> None:
        async with anchoring(log, store, every_s=0.01, timeout_s=0.05):
            for i in range(3):
                log.write({"route": "/a", "i": i})
                await asyncio.sleep(0.03)

    with caplog.at_level(logging.WARNING, logger="guards.audit_anchor"):
        asyncio.run(asyncio.wait_for(run(), 2))
    log.close()
    assert store.calls >= 1 and "audit anchor not published" in caplog.text
    assert len(lines(path)) == 3 and verify_files([path], [KEY]).ok


def test_cli_old_keys_file_and_an_unreachable_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 1).close()
    (tmp_path / "audit.anchors.jsonl").write_text("not json\n")  # unreadable lines are skipped with a warning
    assert main(["verify", str(path), "--anchors", "file"]) == 1  # the current key (random here) is not the log's
    assert "unknown chain key id" in capsys.readouterr().out
    (tmp_path / "old-keys").write_text(KEY.decode() + "\n")
    assert main(["verify", str(path), "--anchors", "file", "--keys-file", str(tmp_path / "old-keys")]) == 0
    assert "no anchor yet" in capsys.readouterr().out  # no anchor for the segment: a note, not a problem
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    get_settings.cache_clear()
    assert main(["verify", str(path), "--anchors", "redis", "--keys-file", str(tmp_path / "old-keys")]) == 2
    assert capsys.readouterr().out.startswith("ERROR: anchor store or file unreadable")


def test_chain_fields_cannot_be_set_by_a_caller(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, b"h" * 32, chain_key=KEY)
    log.write({"route": "/a", "seq": 99, "mac": "x", "segment": "forged", "start": {"key_id": "x"}})
    log.close()
    rec = lines(path)[0]
    assert rec["seq"] == 0 and rec["segment"] != "forged" and rec["start"]["key_id"] == key_id(KEY)
    assert verify_files([path], [KEY]).ok


def test_the_app_writes_a_keyed_chain_and_anchors_it_at_shutdown(tmp_path: Path, monkeypatch, capsys) -> None:
    from fastapi.testclient import TestClient

    from core.resources import set_resources
    from fakes import fake_resources

    monkeypatch.setenv("AUDIT_CHAIN_KEY", KEY.decode())
    get_settings.cache_clear()
    set_resources(fake_resources(tmp_path, "Verzending kost 4,95 euro."))
    import server

    with TestClient(server.create_app()) as c:
        assert c.get("/health").status_code == 200
        assert c.get("/health").status_code == 200
    path = tmp_path / "audit" / "audit.jsonl"
    anchors = [json.loads(x) for x in anchors_file(path).read_text().splitlines()]
    assert anchors[-1]["value"]["seq"] == lines(path)[-1]["seq"] and anchors[-1]["value"]["file"] == "audit.jsonl"
    assert main(["verify", str(path), "--anchors", "file"]) == 0, capsys.readouterr().out
