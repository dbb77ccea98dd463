"""Fine-tune multilingual-e5-small as the prompt-injection classifier and compare it with today's LR head.

Usage: ``HF_HUB_OFFLINE=1 python -m modelprep.guard_encoder [--out .cache/models/guard-encoder-e5-small]``

Trains on exactly the ``"train"`` rows of ``guards.train_classifier.load_examples()`` (deepset included when
present) minus a validation slice (15 %, stratified by source and label, seeded) that only picks the threshold:
the lowest one with benign false positives <= 0.5 % on it. Encoder (word embeddings frozen: 96M of 118M
weights, kept as e5 learnt them for the many languages and words the rows never show) -> mean pooling -> one
logit, class-balanced BCE, AdamW, linear warm-up/decay, 2 torch threads, fixed seeds. The held-out
``"eval"``/``"dev"`` rows of ``guards/data`` and the project's external sets are only reported on, side by side
with the LR (``.cache/guards/injection.npz``), each OR'd with the rules (``guards.input.check_question``) as the
service runs them. ``evals/data/customer_traffic_test.jsonl`` and ``questions_test.jsonl`` are never read.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from core.settings import ROOT
from guards.input import InvalidQuestionError, check_question, sanitize
from guards.train_classifier import DATA_DIR, NOT_QUESTIONS, Example, data_fingerprint, load_examples
from guards.train_classifier import threshold_for_fpr as lowest_threshold

SETTINGS: dict[str, Any] = dict(  # epochs 3 beat 2 on the validation slice; the new head learns faster (head_lr)
    epochs=3, batch_size=16, lr=3e-5, head_lr=1e-3, weight_decay=0.01, warmup=0.1, max_length=128, seed=13, threads=2
)
SELECTION: dict[str, Any] = {"val_fraction": 0.15, "max_fpr": 0.005}
EVALS = ROOT / "evals" / "data"


def split_validation(rows: Sequence[Example], fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """``(train, validation)``: ``fraction`` of each (source, label) stratum, drawn with ``seed``."""
    rng, train, val = random.Random(seed), [], []
    for stratum in sorted({(r.source, r.label) for r in rows}):
        group = [r for r in rows if (r.source, r.label) == stratum]
        rng.shuffle(group)
        k = round(fraction * len(group))
        val += group[:k]
        train += group[k:]
    return train, val


def batches(lengths: Sequence[int], size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar token length (less padding): sorted within windows of 8 batches."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    out: list[list[int]] = []
    for w in range(0, len(order), size * 8):
        window = sorted(order[w : w + size * 8], key=lambda i: lengths[i])
        out += [window[j : j + size] for j in range(0, len(window), size)]
    rng.shuffle(out)
    return out


def fit(rows: Sequence[Example], e5_dir: Path, s: dict[str, Any], log: Callable[[str], None]) -> tuple[Any, Any, float]:
    """Fine-tune e5 + a linear head on ``rows``; return ``(model, tokenizer, seconds)``."""
    import torch
    from transformers import AutoModel, AutoTokenizer, get_linear_schedule_with_warmup

    from guards.encoder_classifier import MeanPoolClassifier, encode

    random.seed(s["seed"])
    torch.manual_seed(s["seed"])
    tokenizer = AutoTokenizer.from_pretrained(str(e5_dir), local_files_only=True)
    encoder = AutoModel.from_pretrained(str(e5_dir), local_files_only=True)  # the folder's root is a BertModel
    model = MeanPoolClassifier(encoder, encoder.config.hidden_size)
    encoder.embeddings.word_embeddings.weight.requires_grad_(False)
    texts = [r.text for r in rows]
    y = torch.tensor([float(r.label) for r in rows])
    n, n_pos = len(rows), float(y.sum())
    weight = torch.where(y == 1, n / (2 * n_pos), n / (2 * (n - n_pos)))  # class-balanced
    lengths = [len(ids) for ids in encode(tokenizer, texts, s["max_length"])["input_ids"]]
    body = [p for name, p in model.named_parameters() if p.requires_grad and not name.startswith("head.")]
    groups = [{"params": body, "lr": s["lr"]}, {"params": list(model.head.parameters()), "lr": s["head_lr"]}]
    opt = torch.optim.AdamW(groups, weight_decay=s["weight_decay"])
    steps = s["epochs"] * -(-n // s["batch_size"])
    sched = get_linear_schedule_with_warmup(opt, int(s["warmup"] * steps), steps)
    model.train()
    t0, step, losses = time.monotonic(), 0, list[float]()
    for epoch in range(s["epochs"]):
        for idx in batches(lengths, s["batch_size"], random.Random(s["seed"] + epoch)):
            enc = encode(tokenizer, [texts[i] for i in idx], s["max_length"])
            logits = model(enc["input_ids"], enc["attention_mask"])
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y[idx], weight=weight[idx])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step(), sched.step(), opt.zero_grad()
            step, losses = step + 1, [*losses, loss.item()]
            if step % 20 == 0 or step == steps:
                took, load, mean_loss = time.monotonic() - t0, os.getloadavg()[0], float(np.mean(losses[-20:]))
                log(f"  step {step}/{steps} (epoch {epoch + 1}) loss {mean_loss:.4f} {took:.0f} s (load {load:.1f})")
    return model.eval(), tokenizer, time.monotonic() - t0


def report_sets() -> list[tuple[str, int, list[str]]]:
    """``(name, label, raw texts)`` of the held-out rows of ``guards/data`` (per source) and the external sets."""
    held: dict[tuple[str, int], list[str]] = {}
    for path in sorted(p for p in DATA_DIR.glob("*.jsonl") if not p.name.startswith(NOT_QUESTIONS)):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip() and (r := json.loads(line)).get("split") in {"eval", "dev"}:
                held.setdefault((f"{path.stem} {r['split']}", r["label"]), []).append(r["text"])

    def read(name: str, field: str, keep: Callable[[dict], bool] = lambda r: True) -> list[str]:
        rows = [json.loads(x) for x in (EVALS / name).read_text(encoding="utf-8").splitlines() if x.strip()]
        return [r[field] for r in rows if keep(r)]

    sets = [(f"held-out attacks: {k[0]}", 1, v) for k, v in sorted(held.items()) if k[1] == 1]
    sets.insert(0, ("held-out attacks (all)", 1, [t for k, v in sorted(held.items()) if k[1] == 1 for t in v]))
    sets.append(("held-out benign (all)", 0, [t for k, v in sorted(held.items()) if k[1] == 0 for t in v]))
    sets += [(f"held-out benign: {k[0]}", 0, v) for k, v in sorted(held.items()) if k[1] == 0]
    in_catalogue = read("questions_dev.jsonl", "question", lambda r: r["category"] != "out_of_catalogue")
    sets += [("jailbreaks.jsonl", 1, read("jailbreaks.jsonl", "text"))]
    return [
        *sets,
        ("security_benign.jsonl", 0, read("security_benign.jsonl", "text")),
        ("questions_dev in-catalogue", 0, in_catalogue),
    ]


def compare(enc: Any, lr: Any, embedder: Any, log: Callable[[str], None]) -> dict[str, Any]:
    """Print and return rules / LR / encoder on every report set, each classifier OR'd with the rules."""
    from guards.train_classifier import embed_cached

    sets, verdicts = report_sets(), {}
    for _, _, texts in sets:
        for raw in texts:
            try:
                v = check_question(raw)
                verdicts[raw] = (v.decision == "refuse", v.question)
            except InvalidQuestionError:  # rejected before the classifier (empty or too long)
                verdicts[raw] = (True, sanitize(raw) or " ")
    raws = list(verdicts)
    questions = [verdicts[r][1] for r in raws]
    p_enc = dict(zip(raws, enc.predict_proba(questions), strict=True))
    vectors = embed_cached(embedder, questions, ROOT / ".cache" / "guards")  # the LR trainer's cache
    p_lr = dict(zip(raws, lr.predict_proba_vectors(vectors), strict=True))
    cols = ("rules", "LR", "LR+rules", "enc", "enc+rules")
    log(f"\n{'set':<44}{'n':>5}  {'metric':<12}" + "".join(f"{c:>10}" for c in cols))
    table: dict[str, Any] = {}
    errors: list[str] = []
    for name, label, texts in sets:
        rules = np.array([verdicts[t][0] for t in texts])
        lr_f = np.array([p_lr[t] >= lr.threshold for t in texts])
        enc_f = np.array([p_enc[t] >= enc.threshold for t in texts])
        flags = {"rules": rules, "LR": lr_f, "LR+rules": lr_f | rules, "enc": enc_f, "enc+rules": enc_f | rules}
        table[name] = {"n": len(texts), "metric": "detection" if label else "false_refusal"}
        table[name].update({c: round(float(f.mean()), 4) for c, f in flags.items()})
        metric = "detection" if label else "false ref."
        log(f"{name:<44}{len(texts):>5}  {metric:<12}" + "".join(f"{table[name][c]:>10.3f}" for c in cols))
        for c in ("LR+rules", "enc+rules") if not name.endswith("(all)") else ():  # the two guards' errors
            wrong = [t for t, f in zip(texts, flags[c], strict=True) if bool(f) != bool(label)]
            what = "missed" if label else "refused"
            errors += [f"  [{name}] {c} {what} (LR p={p_lr[t]:.3f}, enc p={p_enc[t]:.3f}): {t[:160]!r}" for t in wrong]
    log("\n".join(errors))
    return table


def latency(enc: Any, lr: Any, embedder: Any, n: int = 100) -> dict[str, dict[str, float]]:
    """p50/p95 ms of one question at a time, the two runs interleaved (the load of a shared machine varies)."""
    texts = [r.text for r in load_examples() if r.split == "eval"]
    random.Random(7).shuffle(texts)
    runs: dict[str, Callable[[str], object]] = {
        "encoder (is_injection)": enc.is_injection,
        "LR: e5 embed + head": lambda q: lr.predict_proba_vectors(embedder.embed_queries([q])),
    }
    ms: dict[str, list[float]] = {name: [] for name in runs}
    for i, q in enumerate(texts[: 10 + n]):
        for name, fn in runs.items():
            t0 = time.perf_counter()
            fn(q)
            ms[name] += [1000 * (time.perf_counter() - t0)] if i >= 10 else []  # 10 warm-up questions
    return {k: {f"p{q}": round(float(np.percentile(v, q)), 2) for q in (50, 95)} for k, v in ms.items()}


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: train, pick the threshold, compare, time, save."""
    ap = argparse.ArgumentParser(prog="python -m modelprep.guard_encoder", description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / ".cache/models/guard-encoder-e5-small")
    ap.add_argument("--e5", type=Path, default=ROOT / ".cache/models/multilingual-e5-small")
    ap.add_argument("--lr-model", type=Path, default=ROOT / ".cache/guards/injection.npz", help="the LR to compare")
    ap.add_argument("--epochs", type=int, default=SETTINGS["epochs"])
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from core.embeddings import make_embedder, model_identity
    from guards.classifier import InjectionClassifier
    from guards.encoder_classifier import EncoderClassifier, save_model

    def log(m: str) -> None:
        print(m, flush=True)

    s = {**SETTINGS, **SELECTION, "epochs": args.epochs}
    torch.set_num_threads(s["threads"])
    rows = load_examples()
    train_rows, val = split_validation([r for r in rows if r.split == "train"], s["val_fraction"], s["seed"])
    log(f"training rows {len(train_rows)}, validation {len(val)}: {Counter(f'{r.source}:{r.label}' for r in val)}")
    model, tokenizer, train_s = fit(train_rows, args.e5, s, log)
    enc = EncoderClassifier(model, tokenizer, 0.5, max_length=s["max_length"])
    p_val = np.array(enc.predict_proba([r.text for r in val]))
    y_val = np.array([r.label for r in val])
    enc.threshold = lowest_threshold(p_val[y_val == 0], s["max_fpr"])
    val_metrics = {k: float((p_val[y_val == v] >= enc.threshold).mean()) for k, v in (("detection", 1), ("fpr", 0))}
    log(
        f"trained in {train_s:.0f} s; threshold {enc.threshold:.4f} (lowest with validation benign FPR <= "
        f"{s['max_fpr']:.1%}): validation detection {val_metrics['detection']:.3f}, FPR {val_metrics['fpr']:.4f}"
    )
    embedder = make_embedder("sentence-transformers", str(args.e5))
    lr = InjectionClassifier.load(args.lr_model, embedder)
    if lr.meta.get("data_fingerprint") != data_fingerprint(rows):
        log(f"warning: the LR {args.lr_model} was trained on other rows; retrain it for a fair comparison")
    log(f"LR threshold {lr.threshold:.4f}, encoder threshold {enc.threshold:.4f}")
    table = compare(enc, lr, embedder, log)
    timing = latency(enc, lr, embedder)
    log(f"\nlatency (ms), 100 questions one by one, {torch.get_num_threads()} threads, load {os.getloadavg()[0]:.1f}:")
    for name, t in timing.items():
        log(f"  {name:<26} p50 {t['p50']:>7.2f}   p95 {t['p95']:>7.2f}")
    metrics = {k: {c: v[c] for c in ("n", "metric", "LR+rules", "enc+rules")} for k, v in table.items()}
    counts = {"train": Counter(f"{r.source}:{r.label}" for r in train_rows), "validation": len(val)}
    meta = dict(
        format_version=1, base_model=model_identity(str(args.e5)), threshold=enc.threshold, max_length=s["max_length"]
    )
    meta |= dict(data_fingerprint=data_fingerprint(rows), counts=counts, settings=s, train_s=round(train_s, 1))
    meta |= dict(trained_at=datetime.now(UTC).isoformat(timespec="seconds"), latency_ms=timing)
    save_model(model, tokenizer, args.out, {**meta, "metrics": {"validation": val_metrics, **metrics}})
    loaded = EncoderClassifier.load(args.out)
    check = [r.text for r in val[:8]]
    assert np.allclose(loaded.predict_proba(check), enc.predict_proba(check), atol=1e-5), "saved model differs"
    log(f"saved {args.out} (reloaded and checked)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
