"""The LLM router: weighted sticky split, failover before the first token only, breaker, settings, factory."""

from __future__ import annotations

import openai
import pytest
from langchain_core.messages import HumanMessage

from core import requestctx
from core.backends import Breaker, backend_specs, make_backend_llm
from core.router import key_point
from core.routing import RoutedChatModel, make_chat_model
from core.settings import LLMBackend, Settings
from fakes_routing import Clock, Scripted, answering, two_backends

MESSAGES = [HumanMessage("Hoeveel liter is de afvalbak?")]
KEYS = [f"thread-{i}" for i in range(10_000)]


def share_of(router, name: str, keys=KEYS) -> float:
    return sum(router.pick(k).name == name for k in keys) / len(keys)


@pytest.mark.parametrize("weight", [0.1, 0.5, 0.9])
def test_split_holds_within_one_point_over_10000_threads(weight):
    router = two_backends(answering("a"), answering("b"), canary_weight=weight)
    assert abs(share_of(router, "new") - weight) <= 0.01


def test_conversation_is_sticky_and_ramp_up_only_moves_onto_the_canary():
    router = two_backends(answering("a"), answering("b"), canary_weight=0.1)
    assert {router.pick("thread-42").name for _ in range(50)} == {router.pick("thread-42").name}
    on_canary = {k for k in KEYS if router.pick(k).name == "new"}
    router.set_weight("new", 0.5)
    now_on_canary = {k for k in KEYS if router.pick(k).name == "new"}
    assert on_canary < now_on_canary  # nobody left the canary, more joined
    assert abs(len(now_on_canary) / len(KEYS) - 0.5) <= 0.01
    assert key_point("thread-42") == key_point("thread-42") and 0 <= key_point("x") < 1


def test_set_weight_moves_the_rest_to_the_other_backend_and_validates():
    router = two_backends(answering("a"), answering("b"), canary_weight=0.1)
    router.set_weight("new", 1.0)
    assert router.shares() == {"old": 0.0, "new": 1.0}
    assert share_of(router, "new", KEYS[:500]) == 1.0
    router.set_weight("new", 0.0)
    assert router.shares() == {"old": 1.0, "new": 0.0}
    with pytest.raises(KeyError):
        router.set_weight("nope", 0.5)
    with pytest.raises(ValueError, match=r"0\.\.1"):
        router.set_weight("new", 1.5)


def test_backend_out_of_rotation_hands_its_share_over_and_gets_it_back():
    router = two_backends(answering("a"), answering("b"), canary_weight=0.5)
    router.by_name["new"].healthy = False
    assert share_of(router, "old", KEYS[:2000]) == 1.0
    router.by_name["new"].healthy = True
    assert abs(share_of(router, "new", KEYS[:2000]) - 0.5) < 0.05


async def test_stream_fails_over_before_the_first_token():
    primary = Scripted(error=ConnectionError, fail_after=0)
    router = two_backends(primary, answering("van de nieuwe backend"), canary_weight=0.0)
    record: dict = {}
    token = requestctx.begin(record)
    try:
        chunks = [c.content async for c in RoutedChatModel(router=router).astream(MESSAGES)]
    finally:
        requestctx.end(token)
    assert "".join(chunks) == "van de nieuwe backend"
    assert record["backend"] == "new" and record["backend_failover"] == "old"
    assert router.by_name["old"].counters.failovers == 1 and primary.calls == 1


async def test_invoke_fails_over_on_a_5xx_like_error_and_a_stalled_first_token():
    class Status503(Exception):
        status_code = 503

    router = two_backends(Scripted(error=Status503), answering("ok"), canary_weight=0.0)
    assert (await RoutedChatModel(router=router).ainvoke(MESSAGES)).content == "ok"
    stalled = Scripted(stall_s=5.0)
    router = two_backends(answering("ok"), stalled, canary_weight=1.0)
    router.by_name["new"].spec = router.by_name["new"].spec.model_copy(update={"timeout_s": 0.05})
    chunks = [c.content async for c in RoutedChatModel(router=router).astream(MESSAGES)]
    assert "".join(chunks) == "ok" and router.by_name["new"].last_error == "TimeoutError"


async def test_no_retry_after_the_first_token_and_the_error_is_an_api_error():
    primary = Scripted(words=["een", "twee", "drie"], error=ConnectionError, fail_after=2)
    canary = Scripted(words=["nooit"])
    router = two_backends(primary, canary, canary_weight=0.0)
    seen: list[str] = []
    with pytest.raises(openai.APIError):
        async for chunk in RoutedChatModel(router=router).astream(MESSAGES):
            seen.append(str(chunk.content))
    assert "".join(seen).split() == ["een", "twee"]
    assert canary.calls == 0 and router.by_name["old"].counters.errors == 1


async def test_client_errors_are_not_retried():
    canary = Scripted()
    router = two_backends(Scripted(error=ValueError), canary, canary_weight=0.0)
    with pytest.raises(openai.APIError):
        await RoutedChatModel(router=router).ainvoke(MESSAGES)
    assert canary.calls == 0
    assert router.by_name["old"].breaker.consecutive == 0  # not the backend's fault: the breaker stays shut


async def test_breaker_opens_after_three_failed_calls_and_closes_after_cool_down():
    clock = Clock()
    flaky = Scripted(error=ConnectionError)
    router = two_backends(answering("ok"), flaky, canary_weight=1.0, clock=clock)
    model = RoutedChatModel(router=router)
    for _ in range(3):
        assert (await model.ainvoke(MESSAGES)).content == "ok"  # each failed over to the primary
    new = router.by_name["new"]
    assert new.breaker.state == "open" and not new.available() and flaky.calls == 3
    assert (await model.ainvoke(MESSAGES)).content == "ok"
    assert flaky.calls == 3  # out of rotation: not even tried
    clock.advance(10.0)
    assert new.breaker.state == "half_open" and new.available()
    flaky.error = None
    assert str((await model.ainvoke(MESSAGES)).content).strip() == "hallo wereld"
    assert new.breaker.state == "closed"


def test_breaker_half_open_failure_reopens_and_health_check_closes():
    clock = Clock()
    b = Breaker(failures=2, cooldown_s=5.0, clock=clock)
    b.record_failure()
    assert b.state == "closed"
    b.record_failure()
    assert b.state == "open"
    b.healthy_again()
    assert b.state == "open"  # still cooling down
    clock.advance(5.0)
    b.record_failure()
    assert b.state == "open"
    clock.advance(5.0)
    b.healthy_again()
    assert b.state == "closed"


def test_sync_paths_fail_over_too():
    router = two_backends(Scripted(error=ConnectionError), answering("sync ok"), canary_weight=0.0)
    model = RoutedChatModel(router=router)
    assert model.invoke(MESSAGES).content == "sync ok"
    assert "".join(str(c.content) for c in model.stream(MESSAGES)) == "sync ok"


def test_registry_defaults_to_the_llm_settings_and_validates(monkeypatch):
    s = Settings(llm_base_url="http://127.0.0.1:9/v1", llm_model="gemma3-270m")
    (only,) = backend_specs(s)
    assert (only.name, only.kind, only.role, only.weight, only.base_url) == (
        "gemma3-270m", "openai", "primary", 1.0, "http://127.0.0.1:9/v1"
    )  # fmt: skip
    assert not isinstance(make_chat_model(s), RoutedChatModel)
    monkeypatch.setenv(
        "LLM_BACKENDS",
        '[{"name": "ollama", "kind": "ollama", "base_url": "http://127.0.0.1:9", "model": "g", "weight": 0.9},'
        ' {"name": "vllm", "base_url": "http://127.0.0.1:9/v1", "model": "g", "weight": 0.1}]',
    )
    s = Settings()
    assert [b.name for b in backend_specs(s)] == ["ollama", "vllm"]  # no primary given: the first one
    routed = make_chat_model(s)
    assert isinstance(routed, RoutedChatModel)
    assert type(routed.router.by_name["ollama"].llm).__name__ == "ChatOllama"
    assert type(routed.router.by_name["vllm"].llm).__name__ == "ChatOpenAI"
    with pytest.raises(ValueError, match="unique"):
        Settings(llm_backends=[LLMBackend(name="a", base_url="x", model="m")] * 2)


def test_ollama_backend_takes_token_limit_as_num_predict_and_stop_per_call():
    spec = LLMBackend(name="o", kind="ollama", base_url="http://127.0.0.1:9", model="g")
    llm = make_backend_llm(spec, Settings())
    from core.backends import Backend

    b = Backend(spec=spec, llm=llm, breaker=Breaker(3, 1.0), weight=1.0, default_stop=["\n\n"])
    client, kw = b.client({"max_tokens": 7})
    assert kw == {} and client.num_predict == 7 and llm.num_predict != 7  # type: ignore[attr-defined]
    assert b.stop(None) == ["\n\n"] and b.stop(["\n"]) == ["\n"]


def test_unknown_kind_is_a_clear_error():
    spec = LLMBackend.model_construct(name="x", kind="grpc", base_url="x", model="m")
    with pytest.raises(ValueError, match="'openai', 'ollama'"):
        make_backend_llm(spec, Settings())


async def test_weight_change_leaves_a_stream_in_flight_on_its_backend():
    old = Scripted(words=["oud", "antwoord", "blijft", "oud"])
    router = two_backends(old, answering("nieuw antwoord"), canary_weight=0.0)
    stream = RoutedChatModel(router=router).astream(MESSAGES, config={"configurable": {"thread_id": "t-1"}})
    first = await anext(stream)
    router.set_weight("new", 1.0)  # the admin moves all traffic while the answer is streaming
    rest = [c.content async for c in stream]
    assert (str(first.content) + "".join(map(str, rest))).split() == ["oud", "antwoord", "blijft", "oud"]
    again = RoutedChatModel(router=router).astream(MESSAGES, config={"configurable": {"thread_id": "t-1"}})
    assert "".join([str(c.content) async for c in again]) == "nieuw antwoord"  # the next turn follows the weights


def test_routing_key_is_the_thread_then_the_request_id():
    from langchain_core.runnables import RunnableLambda

    from core.routing import routing_key

    key = RunnableLambda(lambda _: routing_key())
    assert key.invoke(None, {"configurable": {"thread_id": "thread-7"}}) == "thread-7"
    assert key.invoke(None, {"metadata": {"request_id": "req-9"}}) == "req-9"
    token = requestctx.begin({"request_id": "from-gate"})
    try:
        assert key.invoke(None) == "from-gate"
    finally:
        requestctx.end(token)
    assert len(key.invoke(None)) == 32  # one-off call: a random key


async def test_direct_calls_route_by_the_callers_thread_id_and_keep_the_key_out_of_backend_kwargs():
    seen: list[dict] = []

    class Recording(Scripted):
        def _stream(self, messages, stop=None, run_manager=None, **kw):
            seen.append(kw)
            yield from super()._stream(messages, stop, **kw)

    router = two_backends(Recording(words=["oud"]), Recording(words=["nieuw"]), canary_weight=0.5)
    model = RoutedChatModel(router=router)
    for key in KEYS[:100]:
        expected = "nieuw" if router.pick(key).name == "new" else "oud"
        config = {"configurable": {"thread_id": key}}
        assert str((await model.bind(max_tokens=5).ainvoke(MESSAGES, config)).content).strip() == expected
        streamed = "".join([str(c.content) async for c in model.astream(MESSAGES, config)]).strip()
        assert streamed == expected and str(model.invoke(MESSAGES, config).content).strip() == expected
    assert all("routing_key" not in kw for kw in seen) and {"max_tokens": 5} in seen
