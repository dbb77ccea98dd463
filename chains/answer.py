"""Clean-up of the model's answer: a small base model sometimes runs on into our own markup.

Gemma 3 270M (the offline default) can continue after its answer with ``<document nr="6" …>`` or
a new ``Vraag:`` line, copying the prompt's format. Everything from such a marker on is dropped, in the
stream as well (``guards.output.StreamGuard`` cuts there), and an answer that is empty after that
becomes the fixed "ask customer service" answer.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any, Protocol

# Where an answer ends at the latest: our context markup, a new question turn, or a repeated answer turn.
END_MARKERS = re.compile(
    r"</?\s*document|(?:^|\n)\s*(?:Vraag|Question)\s*:|\n\s*(?:Antwoord|Answer)\s*:", re.IGNORECASE
)
LONGEST_MARKER = 16  # characters a stream must hold back so that a marker is seen before it is sent


def cut_at_marker(text: str) -> tuple[str, bool]:
    """``text`` up to the first end marker, and whether one was found."""
    match = END_MARKERS.search(text)
    return (text[: match.start()], True) if match else (text, False)


def clean_answer(text: str) -> str:
    """The answer without run-on markup, stripped."""
    return cut_at_marker(text)[0].strip()


class Watcher(Protocol):
    """Reads the text as it streams in and says when the rest is not wanted (``guards.stream.SentenceStream``)."""

    @property
    def done(self) -> bool:
        """Nothing more will be used."""
        ...

    def feed(self, token: str) -> str:
        """Add text."""
        ...


async def read_answer(
    stream: AsyncIterator[Any], *, cut_runon: bool, until: Watcher | None = None
) -> tuple[Any | None, bool]:
    """The LLM's message assembled from its stream, and whether reading stopped early.

    With ``cut_runon`` the stream is closed at the first end marker, and with ``until`` as soon as the watcher
    has stopped (a sentence failed the claim check): what follows would be thrown away, and closing the stream
    ends the request on the server (vLLM aborts a generation whose client went away), which gives its batch slot
    back instead of generating up to ``max_tokens`` for nothing.
    """
    message = None
    try:
        async for chunk in stream:
            message = chunk if message is None else message + chunk
            if cut_runon and END_MARKERS.search(str(message.content)):
                return message, True
            if until is not None:
                until.feed(str(chunk.content))
                if until.done:
                    return message, True
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()
    return message, False
