"""Layer (b), variant: a fine-tuned multilingual-e5-small that scores the question itself.

The alternative to ``guards.classifier.InjectionClassifier`` (logistic regression on frozen e5 vectors): the
whole encoder was fine-tuned on the guard's training rows by ``python -m modelprep.guard_encoder``. It reads
the sanitised question with e5's ``query: `` prefix, mean-pools the last hidden states (as e5 was trained)
and a linear head gives one logit; the attack probability is its sigmoid. A saved model is a folder::

    config.json, model.safetensors   the encoder (transformers ``AutoModel``)
    tokenizer.json, ...              its tokenizer
    head.safetensors                 the linear head (``weight`` 1 x hidden, ``bias`` 1)
    guard.json                       threshold, training rows fingerprint, date, settings, metrics
    .complete                        written last: the folder is whole
    onnx/                            encoder + pooling + head as one ONNX graph, fp32 and int8 (``make models``,
                                     ``python -m modelprep.onnx_export --guard``), for ``runtime="onnx"``

It costs a forward pass of its own per question (it cannot reuse the retriever's e5 vector), so
``is_injection`` ignores ``vector``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import torch

from core.settings import OnnxPrecision
from guards.classifier import ClassifierUnavailableError
from guards.input import sanitize

logger = logging.getLogger(__name__)

MARKER = ".complete"
META_FILE = "guard.json"
HEAD_FILE = "head.safetensors"
QUERY_PREFIX = "query: "
MAX_LENGTH = 128


class MeanPoolClassifier(torch.nn.Module):
    """An encoder, mean pooling over the attention mask, and a linear head giving one logit per text."""

    def __init__(self, encoder: torch.nn.Module, hidden_size: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = torch.nn.Linear(hidden_size, 1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Logits of shape ``(batch,)``."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return self.head(pooled).squeeze(-1)


class Tokenizer(Protocol):
    """The part of a transformers tokenizer the classifier calls."""

    def __call__(self, texts: list[str], **kwargs: Any) -> Any:
        """Return a mapping with ``input_ids`` and ``attention_mask`` tensors."""


def encode(tokenizer: Tokenizer, texts: list[str], max_length: int = MAX_LENGTH) -> Any:
    """Tokenise sanitised ``texts`` as e5 queries (prefixed, truncated, padded to the longest)."""
    return tokenizer(
        [QUERY_PREFIX + t for t in texts], truncation=True, max_length=max_length, padding=True, return_tensors="pt"
    )


class EncoderClassifier:
    """Scores questions for prompt-injection / jailbreak / prompt-leak intent (1 = attack)."""

    uses_vector = False  # a forward pass of its own: run it beside the retriever's embedding, in a thread

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Tokenizer,
        threshold: float,
        meta: dict[str, Any] | None = None,
        max_length: int = MAX_LENGTH,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.threshold = float(threshold)
        self.meta: dict[str, Any] = dict(meta or {})
        self.max_length = int(max_length)
        self._lock = threading.Lock()  # one forward pass at a time (torch and the fast tokenizer share state)

    def predict_proba(self, texts: list[str], batch_size: int = 32) -> list[float]:
        """Attack probability for each text (sanitised like ``guards.input`` does)."""
        clean = [sanitize(t) for t in texts]
        out: list[float] = []
        for i in range(0, len(clean), batch_size):
            with self._lock, torch.inference_mode():
                batch = encode(self.tokenizer, clean[i : i + batch_size], self.max_length)
                logits = self.model(batch["input_ids"], batch["attention_mask"])
                out += torch.sigmoid(logits.float()).tolist()
        return out

    def is_injection(self, text: str, vector: Any = None) -> tuple[bool, float]:
        """Return ``(flagged, probability)``; flagged when the probability reaches the threshold.

        ``vector`` is accepted for the same call shape as ``InjectionClassifier`` and ignored.
        """
        proba = self.predict_proba([text])[0]
        return proba >= self.threshold, proba

    @classmethod
    def load(
        cls, path: str | Path, runtime: Literal["torch", "onnx"] = "torch", precision: OnnxPrecision = "fp32"
    ) -> EncoderClassifier:
        """Load a model folder written by ``modelprep.guard_encoder``; ``runtime="onnx"``: its ONNX export.

        Raises ``ClassifierUnavailableError`` when the folder, its ``.complete`` marker or ``guard.json`` is
        missing (or, for ONNX, the export), or when a part cannot be read.
        """
        folder = Path(path)
        hint = "train it with `python -m modelprep.guard_encoder`"
        if not folder.is_dir():
            raise ClassifierUnavailableError(f"guard encoder folder {folder} is missing; {hint}")
        for name in (MARKER, META_FILE, HEAD_FILE):
            if not (folder / name).is_file():
                raise ClassifierUnavailableError(f"guard encoder {folder} has no {name} (incomplete); {hint}")
        if runtime == "onnx":
            return OnnxEncoderClassifier.load_export(folder, precision)
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        from transformers import AutoModel, AutoTokenizer

        try:
            meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
            threshold = float(meta["threshold"])
            if not 0.0 <= threshold <= 1.0:
                raise ValueError(f"threshold {threshold} is outside [0, 1]")
            encoder = AutoModel.from_pretrained(str(folder), local_files_only=True)
            tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            model = MeanPoolClassifier(encoder, int(encoder.config.hidden_size))
            model.head.load_state_dict(load_file(str(folder / HEAD_FILE)))
        except (OSError, ValueError, KeyError, TypeError, RuntimeError, SafetensorError) as exc:
            raise ClassifierUnavailableError(f"cannot read guard encoder {folder}: {exc}") from exc
        logger.info("loaded guard encoder %s (threshold %.4f)", folder, threshold)
        return cls(model, tokenizer, threshold, meta=meta, max_length=int(meta.get("max_length", MAX_LENGTH)))


class OnnxEncoderClassifier(EncoderClassifier):
    """The same classifier from its ONNX graph (encoder + mean pooling + head), run with ONNX Runtime."""

    def __init__(self, session: Any, tokenizer: Any, threshold: float, meta: dict[str, Any], precision: str) -> None:
        self.session = session
        self.tokenizer = tokenizer  # a ``tokenizers.Tokenizer`` that truncates to max_length and pads
        self.threshold = float(threshold)
        self.meta = dict(meta)
        self.max_length = int(meta.get("max_length", MAX_LENGTH))
        self.precision = precision
        self._lock = threading.Lock()  # one run at a time: its intra-op threads already use the cores

    def predict_proba(self, texts: list[str], batch_size: int = 32) -> list[float]:
        """Attack probability for each text (sanitised like ``guards.input`` does)."""
        from core.embeddings import onnx_inputs

        clean = [QUERY_PREFIX + sanitize(t) for t in texts]
        out: list[float] = []
        for i in range(0, len(clean), batch_size):
            with self._lock:
                logits = self.session.run(["logits"], onnx_inputs(self.tokenizer, clean[i : i + batch_size]))[0]
            out += (1.0 / (1.0 + np.exp(-logits.astype(np.float64)))).tolist()
        return out

    @classmethod
    def load_export(cls, folder: Path, precision: OnnxPrecision) -> OnnxEncoderClassifier:
        """Load ``folder``'s ONNX export of ``precision``; it must come from the folder's current weights."""
        from core.embeddings import fast_tokenizer, load_onnx_export, onnx_session

        try:
            meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
            onnx_path, export = load_onnx_export(folder, precision)
            if export.get("trained_at") != meta.get("trained_at"):
                raise ValueError(f"{onnx_path} was exported from another training run; re-export it")
            tokenizer = fast_tokenizer(folder, int(meta.get("max_length", MAX_LENGTH)), int(export["pad_id"]))
            session = onnx_session(onnx_path)
            threshold = float(meta["threshold"])
        except (ImportError, OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise ClassifierUnavailableError(f"cannot load the ONNX guard encoder of {folder}: {exc}") from exc
        logger.info("loaded guard encoder %s, ONNX %s (threshold %.4f)", folder, precision, threshold)
        return cls(session, tokenizer, threshold, meta, precision)


def save_model(model: MeanPoolClassifier, tokenizer: Any, folder: Path, meta: dict[str, Any]) -> Path:
    """Write a model folder atomically (a temporary sibling renamed into place); ``.complete`` last."""
    from safetensors.torch import save_file

    tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.encoder.save_pretrained(str(tmp))  # type: ignore[operator]
    tokenizer.save_pretrained(str(tmp))
    save_file({k: v.contiguous() for k, v in model.head.state_dict().items()}, str(tmp / HEAD_FILE))
    (tmp / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (tmp / MARKER).write_text(json.dumps({k: meta.get(k) for k in ("data_fingerprint", "trained_at")}) + "\n")
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)
    logger.info("saved guard encoder to %s (threshold %.4f)", folder, float(meta["threshold"]))
    return folder
