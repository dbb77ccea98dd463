"""``python -m guards.audit verify FILE... [--anchors redis|file]``: check audit files, chains and anchors.

Per line: the mac under the segment's chain key (an edited line, or a chain recomputed without the key, fails),
``seq`` one after the previous line of its segment and ``prev`` its mac (a deleted or reordered line fails),
and a segment's first line is its start (``seq`` 0, ``start`` present: a deleted head fails). With anchors,
each segment's anchored ``seq`` must be in the files with the anchored mac (a truncated tail fails), and no
later segment of the same run may be anchored but absent (a deleted newer file fails). Exit status 1 on any
problem. Limits: docs/operations.md, "Audit log".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.settings import get_settings
from guards.audit import _DEV_CHAIN_KEY, GENESIS, key_id, line_mac
from guards.audit_anchor import AnchorFiles, AnchorStore, anchor_key


@dataclass
class FileReport:
    """One file: lines checked, and the first bad line (0: none) and why."""

    path: Path
    lines: int = 0
    bad_line: int = 0
    problem: str = ""


@dataclass
class Report:
    """Every file's report, plus notes that are not problems (unanchored segments, rotated-away links)."""

    files: list[FileReport]
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No file has a problem."""
        return not any(f.problem for f in self.files)

    @property
    def lines(self) -> int:
        """Lines checked in all files."""
        return sum(f.lines for f in self.files)

    @property
    def problem(self) -> str:
        """The first problem as ``path:line: why`` (empty: none)."""
        bad = next((f for f in self.files if f.problem), None)
        return f"{bad.path}:{bad.bad_line}: {bad.problem}" if bad else ""


@dataclass
class _Segment:
    key: bytes
    file: FileReport
    last_line: int
    seq: int = 0
    mac: str = ""
    macs: dict[int, str] = field(default_factory=dict)


def ordered_files(paths: Iterable[Path]) -> list[Path]:
    """Rotated files oldest first: ``audit.jsonl.3``, ``.2``, ``.1``, then ``audit.jsonl``."""

    def key(p: Path) -> tuple[str, int]:
        base, _, n = p.name.rpartition(".")
        return (base, -int(n)) if n.isdigit() else (p.name, 0)

    return sorted(paths, key=key)


def default_keys() -> list[bytes]:
    """``AUDIT_CHAIN_KEY``, or this process's random development key when it is unset."""
    secret = get_settings().audit_chain_key
    value = secret.get_secret_value() if secret is not None else ""
    return [value.encode()] if value else [_DEV_CHAIN_KEY]


def _check(rec: dict[str, Any], segs: dict[str, _Segment], keys: dict[str, bytes], notes: list[str]) -> str:
    """Why line ``rec`` breaks the chain (empty: it does not); records it in ``segs`` when fine."""
    seg_id, seq, prev, mac = rec.get("segment"), rec.get("seq"), rec.get("prev"), rec.get("mac")
    if not (isinstance(seg_id, str) and isinstance(seq, int) and isinstance(prev, str) and isinstance(mac, str)):
        return "not a chained audit line (segment, seq, prev or mac missing)"
    seg = segs.get(seg_id)
    start = rec.get("start")
    if seg is None:
        if seq != 0 or not isinstance(start, dict):
            return f"head deleted: first line of segment {seg_id} has seq {seq}, not a segment start"
        key = keys.get(str(start.get("key_id")))
        if key is None:
            return f"unknown chain key id {start.get('key_id')} (a rotated key? pass it with --keys-file)"
        before = start.get("prev_segment")
        if before is None and prev != GENESIS:
            return "segment start does not begin a chain (prev is not the genesis value)"
        if isinstance(before, str) and before in segs and segs[before].mac != prev:
            return f"link to previous segment {before} broken (its tail truncated or edited)"
        if isinstance(before, str) and before not in segs:
            notes.append(f"segment {seg_id} follows {before}, which is not among the files (rotated away?)")
    else:
        key = seg.key
        if start is not None or seq <= seg.seq:
            return f"line out of order or duplicated (seq {seq} after {seg.seq} in segment {seg_id})"
        if seq != seg.seq + 1:
            return f"seq gap: {seq} after {seg.seq} (lines deleted; chain broken)"
        if prev != seg.mac:
            return "prev is not the previous line's mac (chain broken)"
    if line_mac(key, prev, rec) != mac:
        return "mac mismatch (line edited, or the chain recomputed without the chain key)"
    return ""


def _read_file(
    path: Path, rep: FileReport, segs: dict[str, _Segment], keys: dict[str, bytes], notes: list[str]
) -> None:
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        rep.lines = lineno
        try:
            rec = json.loads(raw)
        except json.JSONDecodeError:
            rec = None
        why = _check(rec, segs, keys, notes) if isinstance(rec, dict) else "not JSON"
        if why:
            rep.bad_line, rep.problem = lineno, why
            return
        assert isinstance(rec, dict)
        seg_id = str(rec["segment"])
        if seg_id not in segs:
            key = keys[str(rec["start"]["key_id"])]
            segs[seg_id] = _Segment(key, rep, lineno)
        seg = segs[seg_id]
        seg.seq, seg.mac, seg.file, seg.last_line = int(rec["seq"]), str(rec["mac"]), rep, lineno
        seg.macs[seg.seq] = seg.mac


def _fail(rep: FileReport, line: int, why: str) -> None:
    if not rep.problem:
        rep.bad_line, rep.problem = line, why


async def _check_anchors(segs: dict[str, _Segment], store: AnchorStore, notes: list[str]) -> None:
    runs: dict[str, tuple[int, _Segment]] = {}
    for seg_id, seg in segs.items():
        run, _, num = seg_id.rpartition(".")
        if num.isdigit() and (run not in runs or int(num) > runs[run][0]):
            runs[run] = (int(num), seg)
        entry = await store.get(anchor_key(seg_id))
        if entry is None:
            notes.append(f"segment {seg_id}: no anchor yet (lines after the last anchor are not protected)")
            continue
        a_seq, a_mac = int(entry.value.get("seq", -1)), str(entry.value.get("mac", ""))
        if a_seq > seg.seq:
            why = f"tail truncated: segment {seg_id} anchored at seq {a_seq}, the files end at seq {seg.seq}"
            _fail(seg.file, seg.last_line, why)
        elif seg.macs.get(a_seq) != a_mac:
            _fail(seg.file, seg.last_line, f"anchor mismatch: segment {seg_id} seq {a_seq} has another mac (rewritten)")
    for run, (n, seg) in runs.items():
        later = await store.get(anchor_key(f"{run}.{n + 1}"))
        if later is not None:
            why = f"segment {run}.{n + 1} is anchored (seq {later.value.get('seq')}) but absent: a newer file deleted?"
            _fail(seg.file, seg.last_line, why)


async def _anchors(segs: dict[str, _Segment], store: AnchorStore, notes: list[str]) -> None:
    try:
        await _check_anchors(segs, store, notes)
    finally:
        close = getattr(store, "close", None)
        if close is not None:
            await close()


def verify_files(paths: list[Path], keys: list[bytes] | None = None, store: AnchorStore | None = None) -> Report:
    """Verify ``paths`` (any order: rotated files are sorted oldest first) under ``keys``, against ``store``."""
    by_id = {key_id(k): k for k in (keys if keys is not None else default_keys())}
    segs: dict[str, _Segment] = {}
    report = Report([])
    for path in ordered_files(paths):
        if path.name.endswith(".anchors.jsonl"):  # a shell glob like audit*.jsonl* catches the anchor file too
            report.notes.append(f"{path.name}: an anchor file, not checked as a log")
            continue
        report.files.append(rep := FileReport(path))
        _read_file(path, rep, segs, by_id, report.notes)
    if store is not None:
        asyncio.run(_anchors(segs, store, report.notes))
    else:
        report.notes.append("no anchor store given (--anchors): a truncated tail cannot be detected")
    return report


def _store(kind: str | None, files: list[Path], anchors_file: list[Path]) -> AnchorStore | None:
    if kind == "file":
        found = anchors_file or sorted({p for f in files for p in f.parent.glob("*.anchors.jsonl")})
        return AnchorFiles(found)
    if kind == "redis":
        from core.shared_state import RedisState

        settings = get_settings()
        if not settings.redis_url:
            raise SystemExit("--anchors redis needs REDIS_URL")
        return RedisState.from_url(settings.redis_url, settings.shared_state_prefix)
    return None


def main(argv: list[str] | None = None) -> int:
    """``python -m guards.audit verify FILE... [--anchors redis|file] [--keys-file F]``; 1 on any problem."""
    parser = argparse.ArgumentParser(prog="python -m guards.audit")
    sub = parser.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("verify", help="verify the keyed chains (rotated files included) and their anchors")
    v.add_argument("files", nargs="+", type=Path)
    v.add_argument("--anchors", choices=["redis", "file"], help="check the heads anchored in this store")
    v.add_argument("--anchors-file", type=Path, action="append", default=[], help="local anchor file(s)")
    v.add_argument("--keys-file", type=Path, help="older chain keys, one per line (after a rotation)")
    args = parser.parse_args(argv)
    keys = default_keys()
    if args.keys_file:
        keys += [x.strip().encode() for x in args.keys_file.read_text().splitlines() if x.strip()]
    try:
        report = verify_files(args.files, keys, _store(args.anchors, args.files, args.anchors_file))
    except Exception as exc:  # the Redis store down, a file unreadable
        print(f"ERROR: anchor store or file unreadable: {type(exc).__name__}: {exc}")
        return 2
    for f in report.files:
        tail = f"; first bad line {f.bad_line}: {f.problem}" if f.problem else ""
        print(f"{'BAD' if f.problem else 'OK '} {f.path}: {f.lines} lines checked{tail}")
    for note in report.notes:
        print(f"note: {note}")
    print(f"{'OK' if report.ok else 'TAMPERED'}: {report.lines} lines checked in {len(report.files)} files")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
