"""Run-time knobs of the graph (LangGraph ``context_schema``), defaulting to the settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.settings import get_settings


def _s():  # type: ignore[no-untyped-def]
    return get_settings()


@dataclass(kw_only=True)
class Context:
    """Per-run configuration. Unset fields take the service settings."""

    retrieve_k: int = field(default_factory=lambda: _s().retrieve_k)
    rerank_top_n: int = field(default_factory=lambda: _s().rerank_top_n)
    min_relevance: float = field(default_factory=lambda: _s().min_relevance)
    max_question_chars: int = field(default_factory=lambda: _s().max_question_chars)
    hybrid_bm25: bool = field(default_factory=lambda: _s().hybrid_bm25)  # fuse BM25 with dense retrieval
    expand_queries: bool = True
    max_tokens: int | None = None  # a lower output limit than LLM_MAX_TOKENS (OpenAI endpoint)
