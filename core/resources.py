"""Heavy clients (embedder, reranker, Chroma, LLM), built once and shared by every request."""

from __future__ import annotations

import logging
import secrets
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from langchain_core.language_models import BaseChatModel

from core.embeddings import Embedder, make_embedder
from core.evidence import LineIndex
from core.guard_models import check_guard_models
from core.lexical import LexicalIndex
from core.reranker import Reranker, make_reranker, reranker_kwargs
from core.routing import make_chat_model
from core.settings import Settings, get_settings
from core.vectorstore import VectorStore, open_client
from guards.classifier import ClassifierUnavailableError, InjectionClassifier, embedding_model_id
from guards.intent import IntentClassifier, IntentModelError
from guards.leaks import Embed
from guards.output import OutputFilter

if TYPE_CHECKING:
    from core.batching import ModelBatchers
    from guards.encoder_classifier import EncoderClassifier

    Classifier = InjectionClassifier | EncoderClassifier

logger = logging.getLogger(__name__)


@dataclass(kw_only=True)
class Resources:
    """Everything a request needs that is expensive to build."""

    embedder: Embedder
    reranker: Reranker
    store: VectorStore
    llm: BaseChatModel
    output_filter: OutputFilter = field(default_factory=lambda: make_output_filter(get_settings()))
    classifier: Classifier | None = None  # InjectionClassifier (logistic) or EncoderClassifier (fine-tuned)
    classifier_error: str = "no injection classifier configured"
    intent: IntentClassifier | None = None  # shop question / service request / off-topic (not a security layer)
    batchers: ModelBatchers | None = field(default=None, repr=False)  # core.batching.batchers() builds it
    lexical: LexicalIndex | None = None  # BM25 over the collection (HYBRID_BM25), built at start-up
    lines: LineIndex = field(default_factory=LineIndex)  # evidence lines of the index version in use (lazy)


def make_llm(settings: Settings) -> BaseChatModel:
    """One pooled OpenAI-compatible chat client (vLLM in production) with explicit timeouts."""
    from langchain_openai import ChatOpenAI

    from core.httpclient import openai_async_client

    return ChatOpenAI(  # type: ignore[call-arg]  # aliased pydantic fields
        base_url=settings.llm_base_url,
        model=settings.llm_model,
        api_key=settings.llm_api_key,
        temperature=settings.llm_temperature,
        max_tokens=settings.llm_max_tokens,
        frequency_penalty=settings.llm_frequency_penalty,
        stop=settings.llm_stop or None,
        timeout=settings.llm_timeout_s,
        max_retries=settings.llm_max_retries,
        streaming=True,
        stream_usage=True,
        extra_body=settings.llm_extra_body or None,
        http_async_client=openai_async_client(settings.llm_timeout_s),  # one pool per event loop (core/httpclient)
    )


def make_output_filter(settings: Settings, embed: Embed | None = None) -> OutputFilter:
    """The output filter with this deployment's canary and the secrets that must never leave.

    ``embed`` (the e5 query encoder, with ``LEAK_SIMILARITY``): also catch the system prompt translated or
    paraphrased (``guards.leaks``), at one embedding per new answer sentence.
    """
    from chains import prompts

    canary = (
        settings.prompt_canary.get_secret_value()
        if settings.prompt_canary is not None and settings.prompt_canary.get_secret_value()
        else f"KH-{secrets.token_hex(6)}"
    )
    secret_values = [
        s.get_secret_value()
        for s in (
            settings.admin_token,
            settings.audit_hmac_key,
            settings.llm_api_key,
            settings.thread_hmac_key,
            settings.database_url,
        )
        if s is not None and s.get_secret_value() not in ("", "not-needed")
    ]
    protected = [prompts.system_prompt("nl", canary), prompts.system_prompt("en", canary)]
    return OutputFilter(canary=canary, protected_texts=protected, secrets=secret_values, embed=embed)


def make_classifier(settings: Settings, embedder: Embedder) -> Classifier:
    """The guard's injection classifier of ``INJECTION_CLASSIFIER``; ``ClassifierUnavailableError`` if not built."""
    match settings.injection_classifier:
        case "encoder":
            from guards.encoder_classifier import EncoderClassifier  # torch model: loaded only when chosen

            return EncoderClassifier.load(
                settings.injection_encoder_path,
                settings.injection_encoder_runtime,
                settings.injection_encoder_onnx_precision,
            )
        case "logistic":
            return InjectionClassifier.load(settings.injection_classifier_path, embedder)


def build_resources(settings: Settings) -> Resources:
    """Build every heavy client from ``settings``; raises if the index does not fit the embedder."""
    embedder = make_embedder(
        settings.embedding_provider,
        settings.embedding_model,
        settings.embedding_device,
        settings.embedding_onnx_precision,
    )
    check_guard_models(settings, embedder.name)  # a head trained for another embedding model: refuse to start
    store = VectorStore(
        open_client(settings.chroma_path, settings.chroma_url), settings.chroma_collection, embedder.name
    )
    embedder.embed_queries(["warm-up"])  # first torch call is slow; pay it at start-up, not per request
    classifier: Classifier | None = None
    classifier_error = ""
    try:
        classifier = make_classifier(settings, embedder)
    except ClassifierUnavailableError as exc:
        # Fail closed: the guard refuses every question until a classifier is available.
        classifier_error = str(exc)
        logger.error("injection classifier unavailable, questions will be refused: %s", exc)
    intent = None
    try:
        intent = IntentClassifier.load(settings.intent_model_path, embedding_model_id(embedder.name))
    except IntentModelError as exc:
        logger.warning("intent model unavailable, every message is treated as a shop question: %s", exc)
    return Resources(
        embedder=embedder,
        reranker=make_reranker(**reranker_kwargs(settings)),
        store=store,
        llm=make_chat_model(settings),  # one backend's client, or the router over LLM_BACKENDS (issue #6)
        output_filter=make_output_filter(settings, embedder.embed_queries if settings.leak_similarity else None),
        classifier=classifier,
        classifier_error=classifier_error,
        intent=intent,
        lexical=LexicalIndex.from_store(store) if settings.hybrid_bm25 else None,
    )


_lock = threading.Lock()
_resources: Resources | None = None


def get_resources() -> Resources:
    """Return the process-wide resources, building them on first use."""
    global _resources
    with _lock:
        if _resources is None:
            _resources = build_resources(get_settings())
        return _resources


def set_resources(resources: Resources | None) -> None:
    """Install (or clear, with ``None``) the process-wide resources: tests and notebooks."""
    global _resources
    with _lock:
        _resources = resources
