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
    # Evidence and the claim check (issue #15): what the model may see, and what it may say.
    evidence_budget_tokens: int = field(default_factory=lambda: _s().evidence_budget_tokens)
    evidence_max_lines: int = field(default_factory=lambda: _s().evidence_max_lines)
    prompt_max_lines: int = field(default_factory=lambda: _s().prompt_max_lines)  # best N lines in the prompt; 0: all
    min_evidence_score: float = field(default_factory=lambda: _s().min_evidence_score)  # below: abstain
    min_question_coverage: float = field(default_factory=lambda: _s().min_question_coverage)  # below: abstain
    abstain_unanswerable: bool = field(default_factory=lambda: _s().abstain_unanswerable)  # offers, comparisons
    claim_min_support: float = field(default_factory=lambda: _s().claim_min_support)
    support_top_lines: int = field(default_factory=lambda: _s().support_top_lines)  # lines that may support
    check_claims: bool = field(default_factory=lambda: _s().check_claims)  # False: no check (measurements only)
