"""Tamper-evident audit log: one JSON line per request, chained by SHA-256, IPs as keyed HMACs.

Each line carries ``prev`` (the hash of the previous line of the same chain) and ``chain``
(one per process or replica), so deleting or editing a line breaks verification.
Lines are written by a background thread (``QueueListener``) into rotated files.
``python -m guards.audit verify var/log/audit.jsonl*`` checks the chains.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import logging
import logging.handlers
import os
import queue
import sys
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

GENESIS = "0" * 64
# Never written, whatever a caller puts in a record.
FORBIDDEN_KEYS = frozenset({"ip", "client_ip", "question", "system_prompt", "authorization", "token", "api_key"})


def hash_ip(ip: str, key: bytes) -> str:
    """Keyed HMAC-SHA256 of an IP (a plain hash of IPv4 space is trivially reversible)."""
    return hmac.new(key, ip.encode(), hashlib.sha256).hexdigest()[:32]


def line_hash(line: str) -> str:
    """SHA-256 of one serialised line."""
    return hashlib.sha256(line.encode()).hexdigest()


class AuditLog:
    """Writes chained JSON lines through a queue to a rotating file."""

    def __init__(self, path: Path, hmac_key: bytes, *, max_bytes: int = 10_000_000, backups: int = 10) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.hmac_key = hmac_key
        self.chain = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._prev = GENESIS
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(message)s"))
        self._queue: queue.Queue[logging.LogRecord] = queue.Queue(-1)
        self._listener = logging.handlers.QueueListener(self._queue, handler)
        self._handler = handler
        self._listener.start()

    def write(self, record: dict[str, Any]) -> str:
        """Serialise ``record`` (minus forbidden keys) into the chain; return the line's hash."""
        clean = {k: v for k, v in record.items() if k not in FORBIDDEN_KEYS}
        clean["chain"] = self.chain
        clean["prev"] = self._prev
        line = json.dumps(clean, ensure_ascii=False, sort_keys=True, default=str)
        self._prev = line_hash(line)
        self._queue.put_nowait(logging.LogRecord("audit", logging.INFO, "", 0, line, None, None))
        return self._prev

    def close(self) -> None:
        """Flush the queue and close the file."""
        self._listener.stop()
        self._handler.close()


def _ordered_files(paths: Iterable[Path]) -> list[Path]:
    """Rotated files oldest first: ``audit.jsonl.3``, ``.2``, ``.1``, then ``audit.jsonl``."""

    def key(p: Path) -> tuple[str, int]:
        base, _, n = p.name.rpartition(".")
        return (base, -int(n)) if n.isdigit() else (p.name, 0)

    return sorted(paths, key=key)


def verify(paths: Iterable[Path]) -> tuple[bool, int, str]:
    """Check every chain across ``paths``; return (ok, lines checked, first problem)."""
    last: dict[str, str] = {}
    n = 0
    for path in _ordered_files(paths):
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            n += 1
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                return False, n, f"{path}:{lineno}: not JSON"
            chain, prev = rec.get("chain"), rec.get("prev")
            expected = last.get(chain)
            # The first line seen of a chain is its anchor (older rotated files may be gone).
            if expected is not None and prev != expected:
                return False, n, f"{path}:{lineno}: chain {chain} broken (line removed or edited before it)"
            last[chain] = line_hash(line)
    return True, n, ""


def main(argv: list[str] | None = None) -> int:
    """``python -m guards.audit verify FILE...``."""
    parser = argparse.ArgumentParser(prog="python -m guards.audit")
    sub = parser.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("verify", help="verify the hash chains of audit files (rotated ones included)")
    v.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    ok, n, problem = verify(args.files)
    print(f"{'OK' if ok else 'TAMPERED'}: {n} lines checked" + (f"; {problem}" if problem else ""))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
