"""The catalogue's product names and brands (``CatalogueNames``) for the claim check (``chains.claims``).

A sentence may name only products the catalogue has; ``CatalogueNames`` finds the products a sentence names, by
full name, model or brand, and the product-like names it invents ("VitaKat Senior", "AutoBox 12").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence

from chains.lexicon import MEASURE_UNITS

__all__ = ["CatalogueNames", "fold"]

MAX_NAME_WORDS = 3  # words after a brand that can belong to a product name ("VitaKat Adult Kip")


def fold(text: str) -> str:
    """Lower case without accents, one character for one: positions stay those of ``text``."""
    out = []
    for c in text:
        low = c.lower()
        out.append(unicodedata.normalize("NFKD", low)[0] if len(low) == 1 else c)
    return "".join(out)


def _alias_pattern(tokens: Sequence[str]) -> str:
    return r"\s+".join(re.escape(t) for t in tokens)


class CatalogueNames:
    """The catalogue's product names and brands: which products a sentence names, and which it invents.

    A product is named by its full name ("CatCave Classic 55"), without its brand ("Classic 55"), by its line and
    model number ("AutoBox 9"), for a product without a model number by brand and first word ("VitaKat Adult"),
    and a brand alone ("CatCave") names all the brand's products.
    """

    def __init__(self, products: Mapping[str, str] | Iterable[tuple[str, str]], brands: Iterable[str] = ()) -> None:
        """``products``: (name, doc_id) pairs or a name → doc_id mapping; ``brands``: the brand names."""
        pairs = list(products.items()) if isinstance(products, Mapping) else list(products)
        names = [(fold(name).split(), doc_id) for name, doc_id in pairs if name.split()]
        self.brands = {fold(b).strip() for b in brands} | {tokens[0] for tokens, _ in names}
        self.models: dict[str, set[str]] = {}  # product-line word → its model numbers ("autobox" → {"9"})
        self.prefixes: set[tuple[str, ...]] = set()  # leading words of names: product lines ("catcave classic")
        aliases: dict[str, list[str]] = {}
        firsts = [tuple(tokens[:2]) for tokens, _ in names]
        for tokens, doc_id in names:
            found = [tokens, tokens[1:] if tokens[0] in self.brands and len(tokens) > 1 else []]
            model = next((i for i, t in enumerate(tokens) if i and t.isdigit()), None)
            after = tokens[model + 1] if model is not None and model + 1 < len(tokens) else ""
            if model is not None and after not in MEASURE_UNITS and after not in ("x", "×"):
                self.models.setdefault(tokens[model - 1], set()).add(tokens[model])
                found += [tokens[model - 1 : model + 1], tokens[1 : model + 1]]
            elif firsts.count(tuple(tokens[:2])) == 1:
                found.append(tokens[:2])
            self.prefixes.update(tuple(tokens[:k]) for k in range(2, len(tokens) + 1))
            for alias in [*found, tokens[:1]]:  # the brand alone names all its products
                if alias and doc_id not in aliases.setdefault(" ".join(alias), []):
                    aliases[" ".join(alias)].append(doc_id)
        self._aliases = aliases
        ordered = sorted(aliases, key=len, reverse=True)
        self._pattern = re.compile(rf"(?<!\w)(?:{'|'.join(_alias_pattern(a.split()) for a in ordered)})(?!\w)")

    def mention_spans(self, sentence: str) -> list[tuple[int, int, list[str]]]:
        """Where ``sentence`` names catalogue products: (start, end, doc_ids) of each name."""
        if not self._aliases:
            return []
        found = self._pattern.finditer(fold(sentence))
        return [(m.start(), m.end(), self._aliases[" ".join(m.group().split())]) for m in found]

    def mentions(self, sentence: str) -> list[str]:
        """The doc_ids of the catalogue products ``sentence`` names, in order of mention."""
        return list(dict.fromkeys(d for _s, _e, ids in self.mention_spans(sentence) for d in ids))

    def unknown_products(self, sentence: str) -> list[str]:
        """Product-like names in ``sentence`` the catalogue lacks ("VitaKat Senior", "AutoBox 12")."""
        folded = fold(sentence)
        spans = self.mention_spans(sentence)
        tokens = list(re.finditer(r"\w[\w-]*", sentence))
        out: list[str] = []
        for j, tok in enumerate(tokens):
            if folded[tok.start() : tok.end()] in self.brands:
                name = [tok]
                for nxt in tokens[j + 1 : j + 1 + MAX_NAME_WORDS]:
                    joined = not sentence[name[-1].end() : nxt.start()].strip()
                    word = folded[nxt.start() : nxt.end()]
                    if not joined or not (nxt.group()[0].isupper() or word.isdigit() or word in self.models):
                        break
                    name.append(nxt)
                if len(name) == 1:
                    continue
                number = next((t for t in name if t.group().isdigit()), None)
                need = (number or name[1]).end()
                if any(s <= tok.start() and e >= need for s, e, _ in spans):
                    continue
                if number is None and tuple(folded[t.start() : t.end()] for t in name) in self.prefixes:
                    continue
                out.append(sentence[tok.start() : name[-1].end()])
            elif (line := folded[tok.start() : tok.end()]) in self.models and j + 1 < len(tokens):
                nxt = tokens[j + 1]
                named = f"{tok.group()} {nxt.group()}"
                if (
                    nxt.group().isdigit()
                    and nxt.group() not in self.models[line]
                    and not any(o.endswith(named) for o in out)
                ):
                    out.append(named)
        return out
