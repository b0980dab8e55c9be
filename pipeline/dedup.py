"""Near-duplicate fingerprints and clusters: syndicated copies of one story get one cluster.

A MinHash signature (128 permutations) over word 3-shingles of the body estimates the Jaccard
similarity of two texts. For finding candidates, the signature is cut into 16 bands of 8
values; texts with Jaccard similarity s share at least one band with probability
1 - (1 - s^8)^16 (0.98 at s = 0.8, 0.06 at s = 0.4). The database indexes the band keys (GIN)
and the signatures confirm: copies have an estimated similarity of at least SIMILARITY.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

import numpy as np

from pipeline.records import ClusterCandidate

NUM_PERM = 128
BANDS = 16
ROWS = NUM_PERM // BANDS
SIMILARITY = 0.7
MIN_WORDS = 40  # shorter texts are too alike by chance (briefs, captions)
_SEED = 20191001
_WORD = re.compile(r"\w+")


@dataclass(frozen=True, slots=True, kw_only=True)
class Fingerprint:
    signature: bytes  # NUM_PERM little-endian uint32 values
    bands: tuple[int, ...]  # BANDS signed 64-bit keys: band number in the top byte, then a hash


def fingerprint(text: str, *, shingle: int = 3) -> Fingerprint | None:
    """The text's MinHash fingerprint, or None for a text too short to judge."""
    from datasketch import MinHash

    words = _WORD.findall(text.casefold())
    if len(words) < MIN_WORDS:
        return None
    grams = {" ".join(words[i:i + shingle]).encode() for i in range(len(words) - shingle + 1)}
    permutations, scheme = _permutations()
    m = MinHash(num_perm=NUM_PERM, seed=_SEED, permutations=permutations, scheme=scheme)
    m.update_batch(list(grams))
    values = m.hashvalues.astype("<u4")
    keys = []
    for b in range(BANDS):
        digest = hashlib.blake2b(values[b * ROWS:(b + 1) * ROWS].tobytes(), digest_size=7).digest()
        keys.append((b << 56) | int.from_bytes(digest, "big"))
    return Fingerprint(signature=values.tobytes(), bands=tuple(keys))


@lru_cache(maxsize=1)
def _permutations():
    # MinHash() draws its 128 permutations from the seed on every call: most of its cost.
    from datasketch import MinHash

    template = MinHash(num_perm=NUM_PERM, seed=_SEED)
    return template.permutations, template.scheme


def similarity(a: bytes, b: bytes) -> float:
    """Estimated Jaccard similarity of two signatures."""
    va, vb = np.frombuffer(a, dtype="<u4"), np.frombuffer(b, dtype="<u4")
    return float(np.mean(va == vb))


def choose_cluster(article: ClusterCandidate, candidates: list[ClusterCandidate], *,
                   min_similarity: float = SIMILARITY) -> int | None:
    """The cluster `article` joins: that of its earliest-published near-duplicate among the
    candidates (articles sharing a band), or None when none is similar enough."""
    if article.signature is None:
        return None
    near = [c for c in candidates
            if c.signature is not None and similarity(c.signature, article.signature) >= min_similarity]
    return min(near, key=lambda c: (c.published, c.id)).cluster_id if near else None


def is_original(published: datetime, earliest_in_cluster: datetime | None) -> bool:
    """Whether an article joining a cluster is its original: published before every member."""
    return earliest_in_cluster is None or published < earliest_in_cluster
