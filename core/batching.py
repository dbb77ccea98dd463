"""Micro-batching of the CPU-bound models (query embeddings, reranking) across concurrent requests.

Concurrent callers each ``await batcher.run(item)``; a per-event-loop worker gathers the items
that arrive within ``max_wait_ms`` (or until ``max_batch`` are waiting), runs the model once on
the whole batch in a bounded thread pool (never on the event loop) and routes each result back
to its caller. While one batch runs, the next one fills up, so batches grow with concurrency.
An exception from the model reaches every caller of that batch; a caller that is cancelled
(timeout, client gone) is dropped without affecting the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np

from core.metrics import BATCH_SIZE
from core.settings import get_settings

if TYPE_CHECKING:
    from core.reranker import Reranker
    from core.resources import Resources

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def model_pool() -> ThreadPoolExecutor:
    """The process-wide, bounded thread pool that runs model batches (``BATCH_THREADS`` workers)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=get_settings().batch_threads, thread_name_prefix="model-batch")
        return _pool


@dataclass
class _Waiting(Generic[T, R]):
    item: T
    future: asyncio.Future[R]
    since: float


@dataclass
class _LoopState(Generic[T, R]):
    queue: list[_Waiting[T, R]] = field(default_factory=list)
    full: asyncio.Event = field(default_factory=asyncio.Event)
    worker: asyncio.Task[None] | None = None


class MicroBatcher(Generic[T, R]):
    """Run ``fn(items) -> results`` (same length, same order) once per batch of concurrent calls."""

    def __init__(
        self,
        fn: Callable[[list[T]], Sequence[R]],
        *,
        name: str,
        max_batch: int,
        max_wait_ms: float,
        executor: ThreadPoolExecutor | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.fn = fn
        self.name = name
        self.max_batch = max_batch
        self.max_wait_s = max(0.0, max_wait_ms) / 1000
        self._executor = executor
        self._states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState[T, R]] = (
            weakref.WeakKeyDictionary()
        )

    async def run(self, item: T) -> R:
        """Queue ``item`` for the next batch and wait for its result."""
        loop = asyncio.get_running_loop()
        state = self._states.get(loop)
        if state is None:
            state = self._states[loop] = _LoopState()
        waiting: _Waiting[T, R] = _Waiting(item, loop.create_future(), loop.time())
        state.queue.append(waiting)
        if len(state.queue) >= self.max_batch:
            state.full.set()
        if state.worker is None or state.worker.done():
            state.worker = loop.create_task(self._work(state), name=f"batcher-{self.name}")
        return await waiting.future

    async def _work(self, state: _LoopState[T, R]) -> None:
        loop = asyncio.get_running_loop()
        try:
            while state.queue:
                # Wait for more callers, but never longer than max_wait after the oldest arrived.
                wait = self.max_wait_s - (loop.time() - state.queue[0].since)
                if len(state.queue) < self.max_batch and wait > 0:
                    state.full.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(state.full.wait(), wait)
                batch = [w for w in state.queue[: self.max_batch] if not w.future.done()]
                del state.queue[: self.max_batch]
                if batch:
                    await self._run_batch(loop, batch)
        except BaseException as exc:  # the worker itself was cancelled (loop shutting down)
            for w in state.queue:
                if not w.future.done():
                    w.future.set_exception(RuntimeError(f"{self.name} batcher stopped: {type(exc).__name__}"))
            state.queue.clear()
            raise

    async def _run_batch(self, loop: asyncio.AbstractEventLoop, batch: list[_Waiting[T, R]]) -> None:
        BATCH_SIZE.labels(model=self.name).observe(len(batch))
        items = [w.item for w in batch]
        try:
            results = await loop.run_in_executor(self._executor or model_pool(), self._call, items)
        except Exception as exc:
            for w in batch:
                if not w.future.done():
                    w.future.set_exception(exc)
            return
        for w, result in zip(batch, results, strict=True):
            if not w.future.done():
                w.future.set_result(result)

    def _call(self, items: list[T]) -> list[R]:
        results = list(self.fn(items))
        if len(results) != len(items):
            raise RuntimeError(f"{self.name}: model returned {len(results)} results for {len(items)} inputs")
        return results


RerankRequest = tuple[str, list[str], list[float]]


def score_many(reranker: Reranker, requests: Sequence[RerankRequest]) -> list[list[float]]:
    """Score several (question, passages, prior) requests: one model call when the reranker can."""
    batch_fn: Any = getattr(reranker, "score_batch", None)
    if callable(batch_fn):
        return [list(s) for s in batch_fn(list(requests))]
    return [reranker.score(q, passages, prior) for q, passages, prior in requests]


class ModelBatchers:
    """The batchers of one ``Resources``: query embeddings and reranking."""

    def __init__(self, res: Resources) -> None:
        settings = get_settings()
        # Look the models up at call time so that tests can swap them on the resources.
        self.embed = MicroBatcher[str, np.ndarray](
            lambda texts: list(res.embedder.embed_queries(texts)),
            name="embedder",
            max_batch=settings.batch_max_size,
            max_wait_ms=settings.batch_max_wait_ms,
        )
        self.rerank = MicroBatcher[RerankRequest, list[float]](
            lambda reqs: score_many(res.reranker, reqs),
            name="reranker",
            max_batch=settings.batch_max_size,
            max_wait_ms=settings.batch_max_wait_ms,
        )

    async def embed_queries(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Query vectors for ``texts`` (each text joins the current batch)."""
        return list(await asyncio.gather(*(self.embed.run(t) for t in texts)))

    async def score(self, question: str, passages: list[str], prior: list[float]) -> list[float]:
        """Rerank scores for one question's passages."""
        return await self.rerank.run((question, passages, prior))


def batchers(res: Resources) -> ModelBatchers:
    """The batchers of ``res``, built on first use."""
    if res.batchers is None:
        res.batchers = ModelBatchers(res)
    return res.batchers
