"""Closing the LLM stream early (the generate node does at run-on markup) stops the generation on vLLM."""

from __future__ import annotations

import asyncio
import re

import httpx
from langchain_core.messages import HumanMessage

from chains.answer import read_answer
from core.resources import make_llm
from core.settings import Settings

MAX_TOKENS = 300


def _generated_tokens(base_url: str) -> float:
    text = httpx.get(base_url.removesuffix("/v1") + "/metrics", timeout=10).text
    return sum(float(m) for m in re.findall(r"^vllm:generation_tokens_total\{[^}]*\} (\S+)", text, re.MULTILINE))


class _StopAfter:
    """A stream wrapper that yields a run-on marker after ``n`` chunks (as the small model does)."""

    def __init__(self, stream, n: int) -> None:  # type: ignore[no-untyped-def]
        self.stream, self.n = stream, n

    def __aiter__(self):  # type: ignore[no-untyped-def]
        return self._gen()

    async def _gen(self):  # type: ignore[no-untyped-def]
        i = 0
        async for chunk in self.stream:
            i += 1
            if i == self.n:
                chunk.content = str(chunk.content) + '\n<document nr="2">'
            yield chunk

    async def aclose(self) -> None:
        await self.stream.aclose()


async def _run(base_url: str, cut: bool) -> tuple[str, float]:
    # No stop strings, no end of sequence: reading to the end always takes MAX_TOKENS.
    settings = Settings(
        llm_base_url=base_url, llm_max_tokens=MAX_TOKENS, llm_stop=[], llm_extra_body={"ignore_eos": True}
    )
    llm = make_llm(settings)
    before = _generated_tokens(base_url)
    stream = _StopAfter(llm.astream([HumanMessage("Schrijf een lang verhaal over katten.")]), 5)
    message, stopped = await read_answer(stream, cut_runon=cut)
    assert stopped is cut and message is not None
    await asyncio.sleep(3)  # the engine's counters catch up
    return str(message.content), _generated_tokens(base_url) - before


async def test_closing_the_stream_at_run_on_markup_stops_the_generation(vllm_server):
    _, full = await _run(vllm_server, cut=False)
    _, cut = await _run(vllm_server, cut=True)
    print(f"tokens generated: read to the end {full:.0f}, closed at the marker {cut:.0f}")
    assert full == MAX_TOKENS
    assert cut < MAX_TOKENS / 4, "the server stopped generating soon after the client closed the stream"
