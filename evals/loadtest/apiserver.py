"""The API under load test, with two timers the service itself does not keep (load-test profile only).

``python -m evals.loadtest.apiserver --host 127.0.0.1 --port N`` runs ``server:app`` under uvicorn after
wrapping, in this process only:

- the LangGraph checkpointers' ``aget_tuple``/``aput``/``aput_writes`` (SQLite and PostgreSQL): their wall
  time per request is added to the audit line as ``loadtest.checkpoint_ms`` (and ``checkpoint_calls``);
- the guard's classifier call and the micro-batcher behind it: the time its question vectors waited
  (batching window, earlier batches, the model thread pool) is ``loadtest.guard_queue_ms``, the time the
  embedding model ran for their batch is ``loadtest.guard_model_ms``, the whole call ``loadtest.guard_classify_ms``.

Nothing else changes; the wrappers cost microseconds per call.
"""

from __future__ import annotations

import argparse
import contextvars
import functools
import logging
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

_IN_GUARD: contextvars.ContextVar[bool] = contextvars.ContextVar("loadtest_in_guard", default=False)
SAVER_METHODS = ("aget_tuple", "aput", "aput_writes")


def _slot() -> dict[str, Any] | None:
    from core import requestctx

    record = requestctx.current()
    return None if record is None else record.setdefault("loadtest", {})


def add_ms(key: str, ms: float, *, how: str = "sum") -> None:
    """Add (or take the max of) ``ms`` under ``loadtest.<key>`` of the current request's audit line."""
    slot = _slot()
    if slot is None:
        return
    old = float(slot.get(key, 0.0))
    slot[key] = round(old + ms if how == "sum" else max(old, ms), 2)


def _wrap_saver_method(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return await fn(*args, **kwargs)
        finally:
            add_ms("checkpoint_ms", (time.perf_counter() - t0) * 1000)
            slot = _slot()
            if slot is not None:
                slot["checkpoint_calls"] = int(slot.get("checkpoint_calls", 0)) + 1

    return wrapper


def patch_checkpointers() -> list[str]:
    """Time the async checkpointers' reads and writes; returns the classes patched."""
    patched = []
    for module, name in (
        ("langgraph.checkpoint.sqlite.aio", "AsyncSqliteSaver"),
        ("langgraph.checkpoint.postgres.aio", "AsyncPostgresSaver"),
    ):
        try:
            cls = getattr(__import__(module, fromlist=[name]), name)
        except ImportError:
            continue
        for method in SAVER_METHODS:
            if method in vars(cls):
                setattr(cls, method, _wrap_saver_method(vars(cls)[method]))
        patched.append(name)
    return patched


def patch_guard() -> None:
    """Split the guard's classifier call into queue wait and model time (the query-embedding batcher)."""
    import graph.conversation  # noqa: F401  (binds the unwrapped classify: the rewrite's screening is no guard)
    from core import batching
    from graph import gates

    batcher = batching.MicroBatcher
    original_classify, original_call = gates.classify, batcher._call
    original_run_batch, original_run = batcher._run_batch, batcher.run

    @functools.wraps(original_classify)
    async def classify(*args: Any, **kwargs: Any) -> Any:
        token = _IN_GUARD.set(True)
        t0 = time.perf_counter()
        try:
            return await original_classify(*args, **kwargs)
        finally:
            add_ms("guard_classify_ms", (time.perf_counter() - t0) * 1000)
            _IN_GUARD.reset(token)

    def call(self: Any, items: list[Any]) -> list[Any]:  # in the model thread; one batch per batcher at a time
        t0 = time.monotonic()
        try:
            return original_call(self, items)
        finally:
            self._loadtest_model = (t0, time.monotonic())

    async def run_batch(self: Any, loop: Any, batch: list[Any]) -> None:
        self._loadtest_model = None
        await original_run_batch(self, loop, batch)
        if self._loadtest_model is not None:
            stamps = self.__dict__.setdefault("_loadtest_stamps", {})
            for w in batch:
                if not w.future.cancelled():
                    stamps.setdefault(id(w.item), []).append(self._loadtest_model)

    async def run(self: Any, item: Any) -> Any:
        queued = time.monotonic()  # the original queues the item before its first await
        try:
            return await original_run(self, item)
        finally:
            stamps = self.__dict__.get("_loadtest_stamps", {})
            found = stamps.get(id(item))
            stamp = found.pop(0) if found else None
            if found is not None and not found:
                del stamps[id(item)]
            if stamp is not None and _IN_GUARD.get():
                start, end = stamp
                add_ms("guard_queue_ms", (start - queued) * 1000, how="max")  # the guard's texts wait side by side
                add_ms("guard_model_ms", (end - start) * 1000, how="max")

    gates.classify = classify  # type: ignore[assignment]
    batcher._call = call  # type: ignore[method-assign]
    batcher._run_batch = run_batch  # type: ignore[method-assign]
    batcher.run = run  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> None:
    """Patch, then serve ``server:app``."""
    p = argparse.ArgumentParser(prog="python -m evals.loadtest.apiserver", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args(argv)
    import uvicorn

    savers = patch_checkpointers()
    patch_guard()
    print(f"load-test timers: checkpointers {', '.join(savers) or 'none'}; guard queue/model split", flush=True)
    uvicorn.run("server:app", host=args.host, port=args.port, access_log=False, backlog=4096)


if __name__ == "__main__":
    main()
