"""Loaders for Markdown with front matter, JSON/CSV feeds and text."""

from __future__ import annotations

import json

import pytest

from ingest.loaders import MalformedDocumentError, iter_files, load_file


def test_markdown_front_matter_becomes_metadata_and_header(tmp_path):
    p = tmp_path / "box.md"
    p.write_text("---\nid: box\ntitle: Box\ndoc_type: product\nprice_eur: 54.95\ncapacity_l: 55\n---\nTekst.\n")
    (doc,) = load_file(p)
    assert doc.doc_id == "box" and doc.title == "Box"
    assert doc.metadata["price_eur"] == 54.95
    assert "Prijs: € 54,95" in doc.text and "Inhoud: 55 liter" in doc.text
    assert doc.text.endswith("Tekst.")


def test_markdown_without_front_matter_uses_file_name(tmp_path):
    p = tmp_path / "notes.md"
    p.write_text("# Notities\nIets.")
    (doc,) = load_file(p)
    assert doc.doc_id == "notes"


@pytest.mark.parametrize(
    "content",
    ["---\nid: x\ntitle: [unclosed\n---\nbody", "---\nid: x\nno closing", "---\n- a\n- b\n---\nbody"],
)
def test_malformed_front_matter_raises_named_error(tmp_path, content):
    p = tmp_path / "bad.md"
    p.write_text(content)
    with pytest.raises(MalformedDocumentError, match=r"bad\.md"):
        load_file(p)


def test_json_feed_records_carry_feed_date(tmp_path):
    p = tmp_path / "feed.json"
    p.write_text(
        json.dumps(
            {
                "feed_date": "2026-11-26",
                "products": [
                    {"id": "a", "name": "A", "doc_type": "product", "price_eur": 1.5, "description": "Omschrijving A"},
                ],
            }
        )
    )
    (doc,) = load_file(p)
    assert doc.metadata["feed_date"] == "2026-11-26"
    assert doc.title == "A" and "Omschrijving A" in doc.text


def test_invalid_json_feed(tmp_path):
    p = tmp_path / "feed.json"
    p.write_text("{oops")
    with pytest.raises(MalformedDocumentError, match="invalid JSON"):
        load_file(p)


def test_csv_feed(tmp_path):
    p = tmp_path / "feed.csv"
    p.write_text("id,name,doc_type,price_eur,description\nb,B,product,9.95,Een borstel\n")
    (doc,) = load_file(p)
    assert doc.doc_id == "b" and "Een borstel" in doc.text


def test_iter_files_skips_readme_and_unknown(tmp_path):
    for name in ("README.md", "a.md", "b.json", "c.pdf"):
        (tmp_path / name).write_text("x")
    assert [p.name for p in iter_files(tmp_path)] == ["a.md", "b.json"]
