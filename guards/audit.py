"""Tamper-evident audit log: one JSON line per request, chained by a keyed HMAC, IPs as keyed HMACs.

Each line carries ``segment``, ``seq`` (0, 1, 2, ... within the segment), ``prev`` (the previous line's
``mac``) and ``mac = HMAC-SHA256(AUDIT_CHAIN_KEY, prev || canonical JSON of the line without mac)``. The
first line of a segment (``seq`` 0) also carries ``start``: pid, host, start time, the chain key's id (never
the key) and, after a rotation by the same process, ``prev_segment`` (its ``prev`` is then that segment's last
mac). A process starts a new segment at start-up and at every rotation (about ``AUDIT_MAX_BYTES``).

One file per process: a process claims ``AUDIT_LOG_PATH`` with an exclusive lock (``<stem>.lock``); another
process running at the same time with the same setting writes ``<stem>-<host>-<pid><suffix>`` beside it, so
two processes never share a file. Lines are written by a background thread (``QueueListener``).
``guards.audit_anchor`` publishes the written head to the anchor store; ``python -m guards.audit verify``
(``guards.audit_verify``) checks files, chains and anchors.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import logging
import logging.handlers
import os
import queue
import secrets
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from core.settings import Settings

logger = logging.getLogger(__name__)

GENESIS = "0" * 64
# Never written, whatever a caller puts in a record.
FORBIDDEN_KEYS = frozenset({"ip", "client_ip", "question", "system_prompt", "authorization", "token", "api_key"})
# The chain's own fields: a caller's record cannot set them.
CHAIN_KEYS = frozenset({"segment", "seq", "prev", "mac", "start"})
_DEV_CHAIN_KEY = secrets.token_bytes(32)  # AUDIT_CHAIN_KEY unset (development): random per process
_claims: dict[Path, tuple[IO[str], int]] = {}
_claims_lock = threading.Lock()


def hash_ip(ip: str, key: bytes) -> str:
    """Keyed HMAC-SHA256 of an IP (a plain hash of IPv4 space is trivially reversible)."""
    return hmac.new(key, ip.encode(), hashlib.sha256).hexdigest()[:32]


def canonical(line: dict[str, Any]) -> str:
    """The JSON the mac covers: sorted keys, no spaces, ``mac`` left out."""
    body = {k: v for k, v in line.items() if k != "mac"}
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def line_mac(key: bytes, prev: str, line: dict[str, Any]) -> str:
    """``HMAC-SHA256(key, prev || canonical(line))``."""
    return hmac.new(key, prev.encode() + canonical(line).encode(), hashlib.sha256).hexdigest()


def key_id(key: bytes) -> str:
    """A public name for a chain key (an HMAC under it, not the key): verify picks the key of a segment by it."""
    return hmac.new(key, b"audit-chain-key-id", hashlib.sha256).hexdigest()[:16]


def chain_key(settings: Settings) -> bytes:
    """``AUDIT_CHAIN_KEY``, or (development) a random key per process with a warning."""
    if settings.audit_chain_key is not None and settings.audit_chain_key.get_secret_value():
        return settings.audit_chain_key.get_secret_value().encode()
    logger.warning("AUDIT_CHAIN_KEY is not set: random per-process chain key (the audit log cannot be verified later)")
    return _DEV_CHAIN_KEY


def process_file(path: Path, host: str, pid: int) -> Path:
    """The per-process name beside ``path``: ``audit-<host>-<pid>.jsonl``."""
    return path.with_name(f"{path.stem}-{host}-{pid}{path.suffix}")


def _claim(path: Path) -> bool:
    """Take the exclusive lock on ``path`` for this process (re-entrant within it); False: another holds it."""
    lock = path.with_suffix(".lock").resolve()
    with _claims_lock:
        if lock in _claims:
            fh, n = _claims[lock]
            _claims[lock] = (fh, n + 1)
            return True
        fh = lock.open("a")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            return False
        _claims[lock] = (fh, 1)
        return True


def _release(path: Path) -> None:
    lock = path.with_suffix(".lock").resolve()
    with _claims_lock:
        fh, n = _claims.pop(lock, (None, 0))
        if fh is not None and n > 1:
            _claims[lock] = (fh, n - 1)
        elif fh is not None:
            fh.close()  # closing the file releases the lock


@dataclass(frozen=True)
class Head:
    """The last line written to disk: what an anchor publishes."""

    segment: str
    seq: int
    mac: str
    file: str


class _SegmentFileHandler(logging.handlers.RotatingFileHandler):
    """Rotates exactly where the writer starts a new segment, and remembers the last line written."""

    head: Head | None = None

    def shouldRollover(self, record: logging.LogRecord) -> bool:
        return bool(getattr(record, "rollover", False)) and self.stream is not None and self.stream.tell() > 0

    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)
        self.head = getattr(record, "head", None)


class AuditLog:
    """Writes chained, keyed JSON lines through a queue to this process's rotating file."""

    def __init__(
        self,
        path: Path,
        hmac_key: bytes,
        *,
        chain_key: bytes | None = None,
        max_bytes: int = 10_000_000,
        backups: int = 10,
        host: str | None = None,
        pid: int | None = None,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.hmac_key = hmac_key
        self.chain_key = chain_key if chain_key is not None else _DEV_CHAIN_KEY
        self.host = (host or socket.gethostname()).replace("/", "_") or "host"
        self.pid = os.getpid() if pid is None else pid
        self._claimed = path if _claim(path) else None
        self.path = path if self._claimed else process_file(path, self.host, self.pid)
        if self._claimed is None:
            logger.info("audit: %s is written by another process; this one writes %s", path.name, self.path.name)
        self.run = f"{self.host}-{self.pid}-{uuid.uuid4().hex[:6]}"
        self.max_bytes = max_bytes
        self._n = -1  # segment number within this run
        self._seq = 0
        self._prev = GENESIS
        self._segment = ""
        self._size = self.path.stat().st_size if self.path.exists() else 0
        self._lock = threading.Lock()
        self._handler = _SegmentFileHandler(self.path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        self._handler.setFormatter(logging.Formatter("%(message)s"))
        self._queue: queue.Queue[logging.LogRecord] = queue.Queue(-1)
        self._listener = logging.handlers.QueueListener(self._queue, self._handler)
        self._listener.start()
        self._running = True

    @property
    def segment(self) -> str:
        """The current segment id (``<host>-<pid>-<random>.<n>``; empty before the first line)."""
        return self._segment

    @property
    def head(self) -> Head | None:
        """The last line the background thread has written to disk (``None`` before the first)."""
        return self._handler.head

    def _start(self, rollover: bool) -> dict[str, Any]:
        previous = self._segment or None
        self._n += 1
        self._segment, self._seq = f"{self.run}.{self._n}", 0
        if not rollover:
            previous, self._prev = None, GENESIS  # a new process starts a new chain
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        start = {"pid": self.pid, "host": self.host, "at": at, "key_id": key_id(self.chain_key)}
        return start | {"prev_segment": previous, "file": self.path.name}

    def write(self, record: dict[str, Any]) -> str:
        """Serialise ``record`` (minus forbidden and chain keys) into the chain; return the line's mac."""
        clean = {k: v for k, v in record.items() if k not in FORBIDDEN_KEYS and k not in CHAIN_KEYS}
        with self._lock:
            rollover = self._size >= self.max_bytes and self._size > 0
            if rollover or not self._segment:
                clean["start"] = self._start(rollover)
                self._size = 0 if rollover else self._size
            clean |= {"segment": self._segment, "seq": self._seq, "prev": self._prev}
            clean["mac"] = mac = line_mac(self.chain_key, self._prev, clean)
            line = json.dumps(clean, ensure_ascii=False, sort_keys=True, default=str)
            head = Head(self._segment, self._seq, mac, self.path.name)
            self._prev, self._seq = mac, self._seq + 1
            self._size += len(line.encode()) + 1
            entry = logging.LogRecord("audit", logging.INFO, "", 0, line, None, None)
            entry.rollover, entry.head = rollover, head
            self._queue.put_nowait(entry)
        return mac

    def flush(self) -> None:
        """Wait until the background thread has written every queued line."""
        if self._running:
            self._queue.join()

    def close(self) -> None:
        """Flush the queue, close the file and give up the claim on it (once)."""
        if not self._running:
            return
        self._running = False
        self._listener.stop()
        self._handler.close()
        if self._claimed is not None:
            _release(self._claimed)
            self._claimed = None


def verify(paths: Iterable[Path], keys: Iterable[bytes] | None = None) -> tuple[bool, int, str]:
    """Check the chains across ``paths`` without anchors; (ok, lines checked, first problem)."""
    from guards.audit_verify import verify_files

    report = verify_files(list(paths), list(keys) if keys is not None else None)
    return report.ok, report.lines, report.problem


if __name__ == "__main__":
    from guards.audit_verify import main

    sys.exit(main())
