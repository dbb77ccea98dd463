"""Reciprocal rank fusion of several ranked lists, de-duplicated by chunk id."""

from __future__ import annotations

from collections.abc import Sequence

from core.vectorstore import Hit

RRF_K = 60


def reciprocal_rank_fusion(rankings: Sequence[Sequence[Hit]], k: int = RRF_K) -> list[tuple[Hit, float]]:
    """Fuse ranked lists: each hit scores ``sum(1 / (k + rank))``; one entry per chunk id.

    The returned hit for a chunk is the one with the best raw score among the lists.
    """
    fused: dict[str, float] = {}
    best: dict[str, Hit] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking, start=1):
            fused[hit.chunk_id] = fused.get(hit.chunk_id, 0.0) + 1.0 / (k + rank)
            if hit.chunk_id not in best or hit.score > best[hit.chunk_id].score:
                best[hit.chunk_id] = hit
    order = sorted(fused, key=lambda cid: (-fused[cid], -best[cid].score, cid))
    return [(best[cid], fused[cid]) for cid in order]
