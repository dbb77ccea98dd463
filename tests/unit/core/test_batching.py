"""Micro-batching across concurrent callers: one model call per batch, results routed back, errors, cancellation."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from core.batching import MicroBatcher, batchers, score_many
from core.reranker import CrossEncoderReranker, LexicalReranker
from fakes import fake_resources


class CountingModel:
    """Doubles numbers; records each call's batch and the thread it ran on."""

    def __init__(self, delay_s: float = 0.0, fail: bool = False) -> None:
        self.calls: list[list[int]] = []
        self.threads: list[str] = []
        self.delay_s = delay_s
        self.fail = fail

    def __call__(self, items: list[int]) -> list[int]:
        self.calls.append(list(items))
        self.threads.append(threading.current_thread().name)
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.fail:
            raise ValueError("model exploded")
        return [2 * i for i in items]


@pytest.fixture
def pool():
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="test-pool") as ex:
        yield ex


async def test_concurrent_calls_become_one_model_call_with_results_routed_back(pool):
    model = CountingModel()
    batcher = MicroBatcher(model, name="t", max_batch=16, max_wait_ms=50, executor=pool)
    results = await asyncio.gather(*(batcher.run(i) for i in range(10)))
    assert results == [2 * i for i in range(10)]
    assert model.calls == [list(range(10))]
    assert model.threads[0].startswith("test-pool")  # not on the event loop's thread


async def test_full_batch_is_sent_without_waiting_for_the_window(pool):
    model = CountingModel()
    batcher = MicroBatcher(model, name="t", max_batch=4, max_wait_ms=5_000, executor=pool)
    t0 = time.perf_counter()
    results = await asyncio.gather(*(batcher.run(i) for i in range(8)))
    assert time.perf_counter() - t0 < 2.0  # two full batches, the 5 s window never ran out
    assert results == [2 * i for i in range(8)]
    assert model.calls == [[0, 1, 2, 3], [4, 5, 6, 7]]


async def test_callers_arriving_while_a_batch_runs_form_the_next_batch(pool):
    model = CountingModel(delay_s=0.2)
    batcher = MicroBatcher(model, name="t", max_batch=32, max_wait_ms=0, executor=pool)
    first = asyncio.ensure_future(batcher.run(0))
    await asyncio.sleep(0.05)  # the first batch ([0]) is running now
    rest = await asyncio.gather(*(batcher.run(i) for i in range(1, 6)))
    assert await first == 0 and rest == [2, 4, 6, 8, 10]
    assert model.calls == [[0], [1, 2, 3, 4, 5]]


async def test_exception_reaches_every_caller_of_the_batch(pool):
    batcher = MicroBatcher(CountingModel(fail=True), name="t", max_batch=8, max_wait_ms=20, executor=pool)
    results = await asyncio.gather(*(batcher.run(i) for i in range(5)), return_exceptions=True)
    assert len(results) == 5
    assert all(isinstance(r, ValueError) and str(r) == "model exploded" for r in results)
    # The batcher keeps working after a failed batch.
    ok = MicroBatcher(CountingModel(), name="t2", max_batch=8, max_wait_ms=0, executor=pool)
    assert await ok.run(3) == 6


async def test_wrong_number_of_results_is_an_error_for_all_callers(pool):
    batcher = MicroBatcher(lambda items: items[:-1], name="t", max_batch=8, max_wait_ms=20, executor=pool)
    results = await asyncio.gather(*(batcher.run(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) and "2 results for 3 inputs" in str(r) for r in results)


async def test_cancelled_caller_waiting_in_the_queue_is_dropped_others_answered(pool):
    model = CountingModel()
    batcher = MicroBatcher(model, name="t", max_batch=16, max_wait_ms=100, executor=pool)
    tasks = [asyncio.ensure_future(batcher.run(i)) for i in range(4)]
    await asyncio.sleep(0.01)
    tasks[1].cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(done[1], asyncio.CancelledError)
    assert [done[0], done[2], done[3]] == [0, 4, 6]
    assert model.calls == [[0, 2, 3]]  # the cancelled item never reached the model


async def test_cancelled_caller_during_a_running_batch_does_not_break_the_others(pool):
    model = CountingModel(delay_s=0.2)
    batcher = MicroBatcher(model, name="t", max_batch=16, max_wait_ms=10, executor=pool)
    tasks = [asyncio.ensure_future(batcher.run(i)) for i in range(3)]
    await asyncio.sleep(0.08)  # batch [0, 1, 2] is in the model now
    tasks[0].cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(done[0], asyncio.CancelledError)
    assert done[1:] == [2, 4]
    assert await batcher.run(7) == 14  # and the next call still works


async def test_timeout_of_one_caller_via_wait_for(pool):
    model = CountingModel(delay_s=0.3)
    batcher = MicroBatcher(model, name="t", max_batch=16, max_wait_ms=10, executor=pool)
    slow = asyncio.ensure_future(batcher.run(1))
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(batcher.run(2), 0.05)
    assert await slow == 2


async def test_model_batchers_embed_in_one_call_and_match_single_embeddings(tmp_path):
    res = fake_resources(tmp_path)
    calls: list[int] = []
    inner = res.embedder.embed_queries

    def counting(texts):
        calls.append(len(texts))
        return inner(texts)

    res.embedder.embed_queries = counting  # type: ignore[method-assign]
    texts = ["wat kost verzending", "hoeveel liter", "retourneren binnen dagen"]
    vectors = await asyncio.gather(*(batchers(res).embed_queries([t]) for t in texts))
    assert calls == [3]
    for t, (v,) in zip(texts, vectors, strict=True):
        np.testing.assert_allclose(v, inner([t])[0])
    assert batchers(res) is batchers(res)


async def test_model_batchers_rerank_matches_direct_scores(tmp_path):
    res = fake_resources(tmp_path)
    rr = LexicalReranker()
    reqs = [
        ("afvalbak liter", ["9 liter afvalbak", "verzending"], [0.5, 0.4]),
        ("verzending", ["gratis verzending"], [0.1]),
    ]
    scores = await asyncio.gather(*(batchers(res).score(q, p, s) for q, p, s in reqs))
    assert scores == [rr.score(q, p, s) for q, p, s in reqs]


def test_score_many_uses_one_call_when_the_reranker_can_batch():
    class Batching:
        name = "b"
        calls = 0

        def score(self, question, passages, prior):
            raise AssertionError("score_batch should be used")

        def score_batch(self, requests):
            Batching.calls += 1
            return [[float(len(p)) for p in passages] for _, passages, _ in requests]

    out = score_many(Batching(), [("q1", ["aa", "b"], [0, 0]), ("q2", ["ccc"], [0])])
    assert out == [[2.0, 1.0], [3.0]] and Batching.calls == 1


def test_cross_encoder_score_batch_is_one_predict_split_per_question():
    class FakeCrossEncoder:
        def __init__(self):
            self.calls = []

        def predict(self, pairs, batch_size):
            self.calls.append(list(pairs))
            return [float(len(q) + len(p)) for q, p in pairs]

    rr = object.__new__(CrossEncoderReranker)
    rr._model = FakeCrossEncoder()
    rr._lock = threading.Lock()
    out = rr.score_batch([("ab", ["c", "dd"], [0, 0]), ("x", [], []), ("xyz", ["p"], [0])])
    assert out == [[3.0, 4.0], [], [4.0]]
    assert len(rr._model.calls) == 1
    assert out[0] == rr.score("ab", ["c", "dd"], [0, 0])
