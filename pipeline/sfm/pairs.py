"""Which photo pairs to match: neighbours along the walk plus look-alikes found by retrieval.

Matching every pair costs n(n-1)/2 matches and verifications (630 at 36 photos) when each
photo overlaps with perhaps ten others. Two cheap sources of likely partners:

* the capture order: a merchant walks round the item, so photos taken one after another
  overlap (useless when the photos arrive in another order, hence the second source);
* retrieval: a preview match (`preview_scores`): a few hundred descriptors drawn from each
  photo, matched between every two photos (mutual nearest neighbours with a ratio test); each
  photo is paired with the photos it shares most such matches with. It finds the neighbours on
  the other rings of a multi-ring capture, and all neighbours of a shuffled one. (A bag of
  visual words built on the fly kept about 34% of banana's good pairs, the preview about 47%.)

Pure numpy; the descriptors come from whichever feature pass runs (SIFT or XFeat).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def window_pairs(n: int, window: int) -> set[tuple[int, int]]:
    """Each photo with its `window` successors in capture order, wrapping round (a walk
    around the item ends where it started). Pairs are (i, j) with i < j."""
    pairs = set()
    for i in range(n):
        for d in range(1, min(window, n - 1) + 1):
            j = (i + d) % n
            pairs.add((min(i, j), max(i, j)))
    return pairs


def _root(desc: np.ndarray) -> np.ndarray:
    """Descriptors (N, D) as unit float32 rows; non-negative ones (SIFT) as RootSIFT (the
    square root of the L1-normalised histogram compares better under a dot product)."""
    d = np.asarray(desc, np.float32)
    if len(d) and d.min() >= 0:
        d = np.sqrt(d / np.maximum(d.sum(axis=1, keepdims=True), 1e-12))
    return d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)


def preview_scores(descriptors: Sequence[np.ndarray], per_photo: int, ratio: float = 0.8,
                   seed: int = 0) -> np.ndarray:
    """(n, n) symmetric counts of likely matches between every two photos, from `per_photo`
    descriptors drawn from each: mutual nearest neighbours that pass the ratio test.

    A quick preview of full matching at (per_photo / N)^2 of its cost: true neighbours share
    tens of such matches, unrelated photos a few. `descriptors`: per photo (N_i, D).
    """
    rng = np.random.default_rng(seed)
    subs = []
    for d in descriptors:
        pick = rng.choice(len(d), min(per_photo, len(d)), replace=False) if len(d) else np.zeros(0, int)
        subs.append(_root(np.asarray(d)[np.sort(pick)]))
    n, dim = len(subs), max((s.shape[1] for s in subs if s.ndim == 2 and len(s)), default=1)
    m = max((len(s) for s in subs), default=0)
    if n < 2 or m == 0:
        return np.zeros((n, n))
    # pad every photo to m rows; a zero row is nobody's neighbour (similarity 0 < any true match)
    stack = np.zeros((n, m, dim), np.float32)
    for i, s in enumerate(subs):
        stack[i, : len(s)] = s
    flat = stack.reshape(n * m, dim)
    scores = np.zeros((n, n))
    rows = np.arange(m)
    for i in range(n):
        sim = (stack[i] @ flat.T).reshape(m, n, m)  # [row of i, photo j, row of j]
        best = sim.argmax(axis=2)  # (m, n): i's row r -> its nearest row in photo j
        back = sim.argmax(axis=0)  # (n, m): j's row -> its nearest row in photo i
        first = np.take_along_axis(sim, best[:, :, None], axis=2)[:, :, 0]
        np.put_along_axis(sim, best[:, :, None], -np.inf, axis=2)
        second = sim.max(axis=2)
        # ratio test on distances of unit vectors: |a - b| = sqrt(2 - 2 a.b)
        d1 = np.sqrt(np.maximum(2.0 - 2.0 * first, 0.0))
        d2 = np.sqrt(np.maximum(2.0 - 2.0 * second, 0.0))
        mutual = back[np.arange(n)[None, :], best] == rows[:, None]
        ok = mutual & (d1 < ratio * d2) & (first > 0)
        scores[i] = ok.sum(axis=0)
    np.fill_diagonal(scores, 0)
    return np.minimum(scores, scores.T)  # the two directions can differ by ties; take the sure one


def retrieval_pairs(scores: np.ndarray, k: int) -> set[tuple[int, int]]:
    """Each photo with the `k` photos it scores highest with ((n, n) similarity)."""
    n = len(scores)
    if n < 2 or k < 1:
        return set()
    sim = np.array(scores, float)
    np.fill_diagonal(sim, -np.inf)
    nearest = np.argsort(-sim, axis=1, kind="stable")[:, : min(k, n - 1)]
    return {(min(i, int(j)), max(i, int(j))) for i in range(n) for j in nearest[i]}


def select_pairs(descriptors: Sequence[np.ndarray], window: int, retrieval: int,
                 preview: int = 256) -> list[tuple[int, int]]:
    """The photo pairs (i < j) to match: all of them for a set small enough that the window and
    retrieval would pick almost all anyway, else window pairs plus retrieval pairs.

    `descriptors`: per photo (N_i, D) local descriptors (uint8 SIFT or float XFeat).
    """
    n = len(descriptors)
    if n - 1 <= window + retrieval:
        return [(i, j) for i in range(n) for j in range(i + 1, n)]
    pairs = window_pairs(n, window) | retrieval_pairs(preview_scores(descriptors, preview), retrieval)
    return sorted(pairs)
