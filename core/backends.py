"""The LLM backend registry (issue #6): named backends from settings, one client each, breaker and health state.

``LLM_BACKENDS`` lists the backends (OpenAI-compatible servers such as vLLM and llama.cpp, or Ollama's
native API). Unset, the registry is a single OpenAI-compatible backend built from the ``LLM_*``
settings, named after ``LLM_MODEL``, so nothing changes for a one-backend deployment.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel

from core.settings import LLMBackend, Settings

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
BreakerState = Literal["closed", "open", "half_open"]


def backend_specs(settings: Settings) -> list[LLMBackend]:
    """The configured backends, the primary first; one backend from ``LLM_*`` when ``LLM_BACKENDS`` is empty."""
    if not settings.llm_backends:
        return [
            LLMBackend(
                name=settings.llm_model,
                kind="openai",
                base_url=settings.llm_base_url,
                model=settings.llm_model,
                api_key=settings.llm_api_key,
                timeout_s=settings.llm_timeout_s,
                weight=1.0,
                role="primary",
            )
        ]
    specs = list(settings.llm_backends)
    if not any(s.role == "primary" for s in specs):
        specs[0] = specs[0].model_copy(update={"role": "primary"})
    return sorted(specs, key=lambda s: s.role != "primary")  # stable: configured order otherwise


def make_backend_llm(spec: LLMBackend, settings: Settings) -> BaseChatModel:
    """One chat client for ``spec``, with the generation settings of ``LLM_*`` (temperature, tokens, stops)."""
    match spec.kind:
        case "openai":
            from core.resources import make_llm  # late: core.resources builds the router from this module

            return make_llm(
                settings.model_copy(
                    update={
                        "llm_base_url": spec.base_url,
                        "llm_model": spec.model,
                        "llm_api_key": spec.api_key,
                        "llm_timeout_s": spec.timeout_s,
                    }
                )
            )
        case "ollama":
            from langchain_ollama import ChatOllama

            from core.httpclient import ollama_async_client_kwargs

            key = spec.api_key.get_secret_value()
            headers = {"Authorization": f"Bearer {key}"} if key and key != "not-needed" else {}
            # No client-level stop: ChatOllama refuses a per-call stop (the rewrite step's) on top of it;
            # the router passes LLM_STOP per call instead.
            return ChatOllama(
                model=spec.model,
                base_url=spec.base_url,
                temperature=settings.llm_temperature,
                num_predict=settings.llm_max_tokens,
                client_kwargs={"timeout": spec.timeout_s, "headers": headers},
                async_client_kwargs=ollama_async_client_kwargs(),  # one pool per event loop (core/httpclient)
            )
        case _:
            raise ValueError(f"unknown backend kind {spec.kind!r}: expected one of 'openai', 'ollama'")


class Breaker:
    """Circuit breaker over real calls: opens after ``failures`` in a row; after ``cooldown_s`` it half-opens.

    Half-open, the backend is back in rotation: a successful call or health check closes the breaker, a
    failed call opens it again at once.
    """

    def __init__(self, failures: int, cooldown_s: float, clock: Clock = time.monotonic) -> None:
        self.failures = failures
        self.cooldown_s = cooldown_s
        self.clock = clock
        self.consecutive = 0
        self.opened_at: float | None = None

    @property
    def state(self) -> BreakerState:
        """``closed``, ``open`` or ``half_open`` (cooled down, waiting for a successful call or health check)."""
        if self.opened_at is None:
            return "closed"
        return "half_open" if self.clock() - self.opened_at >= self.cooldown_s else "open"

    def allows(self) -> bool:
        """Whether the backend may take new conversations."""
        return self.state != "open"

    def record_success(self) -> None:
        """A call succeeded: close."""
        if self.opened_at is not None:
            logger.info("circuit breaker closed after a successful call")
        self.consecutive = 0
        self.opened_at = None

    def record_failure(self) -> None:
        """A call failed: count it, and open (again) at the threshold or after a failed half-open trial."""
        self.consecutive += 1
        if self.consecutive >= self.failures or self.opened_at is not None:
            self.opened_at = self.clock()

    def healthy_again(self) -> None:
        """A health check passed: close once the cool-down is over (a flapping server stays out a while)."""
        if self.state == "half_open":
            self.record_success()


@dataclass
class Counters:
    """Calls since start, for ``GET /admin/backends``."""

    requests: int = 0
    errors: int = 0
    failovers: int = 0  # calls of this backend that failed before the first token and went to another one


@dataclass
class Backend:
    """One registered backend: its spec, its client (built once) and its live state."""

    spec: LLMBackend
    llm: BaseChatModel
    breaker: Breaker
    weight: float
    default_stop: list[str] = field(default_factory=list)
    healthy: bool = True  # from the health checks; True until the first check says otherwise
    restarts: list[float] = field(default_factory=list)  # times the backend came back after being down
    last_check: float | None = None
    last_error: str = ""
    counters: Counters = field(default_factory=Counters)

    @property
    def name(self) -> str:
        """The backend's name (metric label, audit field)."""
        return self.spec.name

    def available(self) -> bool:
        """In rotation: healthy and the breaker not open."""
        return self.healthy and self.breaker.allows()

    def client(self, kwargs: dict[str, Any]) -> tuple[BaseChatModel, dict[str, Any]]:
        """The client and call kwargs for one call; Ollama takes the token limit as ``num_predict``."""
        if self.spec.kind == "ollama" and "max_tokens" in kwargs:
            rest = dict(kwargs)
            limit = rest.pop("max_tokens")
            return self.llm.model_copy(update={"num_predict": limit}), rest  # shares the built HTTP clients
        return self.llm, kwargs

    def stop(self, stop: list[str] | None) -> list[str] | None:
        """Ollama clients carry no stop list of their own: the per-call one, else ``LLM_STOP``."""
        if stop is not None or self.spec.kind != "ollama":
            return stop
        return self.default_stop or None


def build_backends(settings: Settings, clock: Clock = time.monotonic) -> list[Backend]:
    """Every configured backend with its client, built once."""
    return [
        Backend(
            spec=spec,
            llm=make_backend_llm(spec, settings),
            breaker=Breaker(settings.backend_breaker_failures, settings.backend_breaker_cooldown_s, clock),
            weight=spec.weight,
            default_stop=list(settings.llm_stop),
        )
        for spec in backend_specs(settings)
    ]
