"""Loaders for the formats a shop really has: Markdown with front matter, JSON/CSV feeds, text."""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

logger = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".md", ".markdown", ".json", ".csv", ".txt")
SCALAR_META = (
    "doc_type",
    "sku",
    "name",
    "category",
    "brand",
    "price_eur",
    "dimensions_cm",
    "capacity_l",
    "weight_kg",
    "compatibility",
    "stock",
    "updated",
    "feed_date",
)
_LABELS = {
    "name": "Product",
    "sku": "Artikelnummer (SKU)",
    "brand": "Merk",
    "category": "Categorie",
    "price_eur": "Prijs",
    "dimensions_cm": "Afmetingen (cm)",
    "capacity_l": "Inhoud",
    "weight_kg": "Gewicht",
    "compatibility": "Geschikt voor",
    "stock": "Voorraad",
    "feed_date": "Prijs en voorraad volgens de productfeed van",
}


class MalformedDocumentError(ValueError):
    """A file that cannot be parsed into documents."""


@dataclass(kw_only=True)
class Document:
    """One catalogue document, before chunking."""

    doc_id: str
    title: str
    text: str
    source: str
    metadata: dict[str, Any] = field(default_factory=dict)


def _fmt(key: str, value: Any) -> str:
    if key == "price_eur":
        return f"€ {float(value):.2f}".replace(".", ",")
    if key == "capacity_l":
        return f"{value} liter"
    if key == "weight_kg":
        return f"{value} kg"
    if key == "stock":
        return f"{value} op voorraad"
    return str(value)


def product_header(meta: dict[str, Any]) -> str:
    """Structured product facts as readable lines, so they are retrievable and quotable."""
    return "\n".join(f"{label}: {_fmt(k, meta[k])}" for k, label in _LABELS.items() if meta.get(k) not in (None, ""))


def _clean_meta(meta: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in SCALAR_META:
        value = meta.get(key)
        if isinstance(value, str | int | float | bool) and value != "":
            out[key] = value
        elif value is not None and value != "":
            out[key] = str(value)
    return out


def _document(meta: dict[str, Any], body: str, source: Path) -> Document:
    doc_id = str(meta.get("id") or source.stem).strip()
    title = str(meta.get("title") or meta.get("name") or doc_id).strip()
    if not doc_id or not body.strip():
        raise MalformedDocumentError(f"{source}: document without id or text")
    clean = _clean_meta(meta)
    header = product_header(clean) if clean.get("doc_type") == "product" else ""
    text = f"{title}\n{header}\n\n{body.strip()}" if header else f"{title}\n\n{body.strip()}"
    return Document(doc_id=doc_id, title=title, text=text, source=str(source), metadata=clean)


def load_markdown(path: Path) -> list[Document]:
    """A Markdown file with optional YAML front matter between ``---`` lines."""
    raw = path.read_text(encoding="utf-8")
    meta: dict[str, Any] = {}
    body = raw
    if raw.startswith("---"):
        parts = raw.split("\n---", 1)
        if len(parts) != 2:
            raise MalformedDocumentError(f"{path}: front matter is not closed with '---'")
        try:
            meta = yaml.safe_load(parts[0].removeprefix("---")) or {}
        except yaml.YAMLError as exc:
            raise MalformedDocumentError(f"{path}: invalid front matter: {exc}") from exc
        if not isinstance(meta, dict):
            raise MalformedDocumentError(f"{path}: front matter must be a mapping")
        body = parts[1].split("\n", 1)[1] if "\n" in parts[1] else ""
    return [_document(meta, body, path)]


def _records_to_docs(records: list[Any], extra: dict[str, Any], path: Path) -> list[Document]:
    docs = []
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise MalformedDocumentError(f"{path}: record {i} is not an object")
        meta = {**extra, **rec}
        docs.append(_document(meta, str(rec.get("description") or rec.get("text") or ""), path))
    return docs


def load_json_feed(path: Path) -> list[Document]:
    """A product feed: ``{"feed_date": ..., "products": [...]}`` or a bare list of products."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise MalformedDocumentError(f"{path}: invalid JSON: {exc}") from exc
    if isinstance(data, dict):
        records = data.get("products")
        extra = {"feed_date": data["feed_date"]} if "feed_date" in data else {}
    else:
        records, extra = data, {}
    if not isinstance(records, list):
        raise MalformedDocumentError(f"{path}: expected a list of products")
    return _records_to_docs(records, extra, path)


def load_csv_feed(path: Path) -> list[Document]:
    """A CSV product feed with a header row (``id``, ``title`` or ``name``, ``description``, …)."""
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise MalformedDocumentError(f"{path}: empty CSV feed")
    return _records_to_docs(rows, {}, path)


def load_text(path: Path) -> list[Document]:
    """Plain text: the first line is the title."""
    raw = path.read_text(encoding="utf-8")
    title = raw.strip().splitlines()[0] if raw.strip() else path.stem
    return [_document({"id": path.stem, "title": title}, raw, path)]


def load_file(path: Path) -> list[Document]:
    """Dispatch on the file suffix."""
    match path.suffix.lower():
        case ".md" | ".markdown":
            return load_markdown(path)
        case ".json":
            return load_json_feed(path)
        case ".csv":
            return load_csv_feed(path)
        case ".txt":
            return load_text(path)
        case _:
            raise MalformedDocumentError(f"{path}: unsupported file type")


def iter_files(root: Path) -> Iterator[Path]:
    """Every supported file under ``root`` (README files excluded), sorted."""
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix.lower() in SUPPORTED_SUFFIXES and path.stem.lower() != "readme":
            yield path
