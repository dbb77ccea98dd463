"""Request model, checks and response bodies of the OpenAI-compatible chat endpoint.

What a caller sends is judged here, before anything runs:

- The question is the **last** message, which must have role ``user``. Earlier messages and
  every ``system``/``developer``/``assistant``/``tool``/``function`` message are **ignored**, not
  rejected: ordinary chat clients always send their own system prompt and the whole history, and
  none of it may reach our prompt (the server builds the prompt; history comes from its own thread).
- Rejected with 400: ``n`` > 1, ``tools``/``functions``/a forced ``tool_choice``, ``logprobs``,
  a ``response_format`` other than text, non-text content parts, an empty or too long question.
- Capped: ``max_tokens`` / ``max_completion_tokens`` at the server's ``LLM_MAX_TOKENS``.
- Ignored (listed in the audit line by name): sampling knobs (``temperature``, ``top_p``, penalties,
  ``seed``, ``stop``), ``user``, ``metadata``, ``stream_options`` and any other field.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.settings import Settings
from guards.input import sanitize

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]
# OpenAI chat parameters that are accepted and ignored. Only these names go into the audit line: any
# other key is text the caller chose (it could carry personal data), so unknown keys are only counted.
KNOWN_IGNORED_PARAMS = frozenset(
    "audio frequency_penalty logit_bias metadata modalities parallel_tool_calls prediction presence_penalty"  # noqa: SIM905
    " prompt_cache_key reasoning_effort safety_identifier seed service_tier stop store stream_options"
    " temperature top_p user verbosity web_search_options".split()
)


class ContentPart(BaseModel):
    """One part of a message's content; only ``text`` parts are accepted."""

    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    """One chat message as OpenAI clients send it."""

    model_config = ConfigDict(extra="allow")

    role: Role
    content: str | list[ContentPart] | None = None


class ChatCompletionRequest(BaseModel):
    """``POST /v1/chat/completions``; unknown fields are accepted and ignored."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "model": "kattenhuis-assistant",
                    "messages": [{"role": "user", "content": "Hoeveel liter is de afvalbak van de AutoBox 9?"}],
                }
            ]
        },
    )

    model: str
    messages: list[ChatMessage] = Field(..., min_length=1)
    stream: bool = False
    n: int | None = Field(default=None, ge=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    tools: list[Any] | None = None
    functions: list[Any] | None = None
    tool_choice: Any = None
    function_call: Any = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    response_format: dict[str, Any] | None = None


class RequestRejectedError(ValueError):
    """A request the endpoint will not run (400)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class Prepared:
    """What the pipeline gets from a chat request."""

    question: str
    max_tokens: int
    ignored_roles: list[str]
    ignored_params: list[str]


def _text(message: ChatMessage) -> str:
    if message.content is None:
        return ""
    if isinstance(message.content, str):
        return message.content
    parts = []
    for part in message.content:
        if part.type != "text" or part.text is None:
            raise RequestRejectedError(f"only text content is supported, not {part.type!r}", "messages")
        parts.append(part.text)
    return "\n".join(parts)


def prepare(req: ChatCompletionRequest, settings: Settings) -> Prepared:
    """Check ``req`` and extract the question; raises ``RequestRejectedError``."""
    if req.n is not None and req.n > 1:
        raise RequestRejectedError("n > 1 is not supported: one answer per request", "n")
    if req.tools or req.functions or req.tool_choice not in (None, "none", "auto") or req.function_call:
        raise RequestRejectedError("tools and function calling are not supported", "tools")
    if req.logprobs or req.top_logprobs:
        raise RequestRejectedError("logprobs are not supported", "logprobs")
    if req.response_format is not None and req.response_format.get("type", "text") != "text":
        raise RequestRejectedError("only text responses are supported", "response_format")
    last = req.messages[-1]
    if last.role != "user":
        raise RequestRejectedError("the last message must be the user's question (role 'user')", "messages")
    question = sanitize(_text(last))
    if not question:
        raise RequestRejectedError("the question is empty", "messages")
    if len(question) > settings.max_question_chars:
        raise RequestRejectedError(f"the question is longer than {settings.max_question_chars} characters", "messages")
    asked = [t for t in (req.max_completion_tokens, req.max_tokens) if t is not None]
    return Prepared(
        question=question,
        max_tokens=min([settings.llm_max_tokens, *asked]),
        ignored_roles=sorted({m.role for m in req.messages[:-1]}),
        ignored_params=_audit_names(req.model_extra or {}),
    )


def _audit_names(extra: dict[str, Any]) -> list[str]:
    """Names of the ignored known parameters, and how many unknown keys there were (never their names)."""
    unknown = sum(1 for k in extra if k not in KNOWN_IGNORED_PARAMS)
    return sorted(k for k in extra if k in KNOWN_IGNORED_PARAMS) + ([f"<{unknown} unknown>"] if unknown else [])


def openai_error(message: str, type_: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error body."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def model_card(settings: Settings) -> dict[str, Any]:
    """The one model this service lists."""
    return {"id": settings.served_model_name, "object": "model", "created": 0, "owned_by": "kattenhuis"}


def completion(
    cid: str, model: str, answer: str, finish: str, extra: dict[str, Any], usage: dict[str, int] | None
) -> dict[str, Any]:
    """A ``chat.completion`` body with our extra fields (``sources``, ``refused``)."""
    body: dict[str, Any] = {
        "id": cid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer, "refusal": None},
                "finish_reason": finish,
                "logprobs": None,
            }
        ],
        **extra,
    }
    if usage is not None:
        body["usage"] = usage
    return body


def chunk(cid: str, created: int, model: str, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    """A ``chat.completion.chunk`` body."""
    return {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }


def usage_of(record: dict[str, Any] | None) -> dict[str, int] | None:
    """Token counts the generate node put on the audit record, when the backend reported them."""
    tokens = (record or {}).get("tokens") or {}
    prompt, completion_ = tokens.get("prompt"), tokens.get("completion")
    if not isinstance(prompt, int) or not isinstance(completion_, int):
        return None
    return {"prompt_tokens": prompt, "completion_tokens": completion_, "total_tokens": prompt + completion_}
