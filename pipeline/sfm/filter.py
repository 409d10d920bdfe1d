"""Outlier rejection for the SfM stage: which image pairs and which placed photos to trust.

Product photos are often taken on patterned surfaces (planks, tiles, printed cloth) whose
pattern repeats exactly. Two photos then share a patch that is really two different places on
the table, the matches pass the ratio test and geometric verification (they fit a plane), and
the mapper bends the model to fit them. Measured on the bench: about a third of all verified
pairs were of that kind, some with hundreds of inliers. Three checks, cheapest first:

1. `consistent_pairs`: relative rotations of true pairs compose around triangles of photos
   (R_ki R_jk R_ij = I); the wrong pairs' rotations are unrelated and break that.
2. `epipolar_inliers`: once most photos are placed, keep per pair only the matches that agree
   with the placed cameras.
3. `off_axis_degrees`: a merchant points the camera at the item, so all optical axes pass
   near one point. A photo placed by a repeated pattern lands a pattern period away, looking
   past the item.

Pure numpy (plus cv2 for the essential matrix); pycolmap stays in `colmap` and `models`.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np


def relative_pose(
    x1: np.ndarray, x2: np.ndarray, K1: np.ndarray, K2: np.ndarray, max_error_px: float = 1.0
) -> tuple[np.ndarray, np.ndarray] | None:
    """(R (3, 3), unit t (3,)) with x_cam2 = R x_cam1 + t from matched pixels x1, x2 (N, 2), or None.

    A 5-point essential matrix (not COLMAP's homography decomposition, which is two-fold
    ambiguous on table-dominated pairs), so off-plane matches on the item decide.
    """
    import cv2

    if len(x1) < 8:
        return None
    f = 0.5 * (K1[0, 0] + K2[0, 0])
    cv2.setRNGSeed(0)  # same matches, same answer
    n1 = (x1 - K1[:2, 2]) / np.diag(K1)[:2]
    n2 = (x2 - K2[:2, 2]) / np.diag(K2)[:2]
    E, inl = cv2.findEssentialMat(
        n1, n2, np.eye(3), method=cv2.RANSAC, prob=0.999, threshold=max_error_px / f
    )
    if E is None or E.shape != (3, 3):
        return None
    _, R, t, _ = cv2.recoverPose(E, n1, n2, np.eye(3), mask=inl)
    return np.asarray(R, float), np.asarray(t, float).reshape(3)


def axes_meet(R: np.ndarray, t: np.ndarray, max_miss: float = 0.15, max_ratio: float = 2.0) -> bool:
    """Do two cameras (x_cam2 = R x_cam1 + t) both look at one point in front of them, at
    similar distances? True for any two photos of an item the merchant kept in the middle.

    max_miss: closest approach of the two optical axes, as a share of the baseline.
    """
    d1 = np.array([0.0, 0.0, 1.0])
    c2 = -R.T @ t
    d2 = R.T @ d1
    base = float(np.linalg.norm(c2))
    b = float(d1 @ d2)
    den = 1.0 - b * b
    if base < 1e-12 or den < 1e-9:  # parallel axes: no common point
        return False
    w = -c2
    s = (b * (d2 @ w) - (d1 @ w)) / den
    u = ((d2 @ w) - b * (d1 @ w)) / den
    miss = np.linalg.norm(s * d1 - (c2 + u * d2)) / base
    return bool(miss < max_miss and s > 0 and u > 0 and 1 / max_ratio < s / u < max_ratio)


def _angle_deg(R: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip((np.trace(R) - 1.0) / 2.0, -1.0, 1.0))))


def triangle_support(rotations: Mapping[tuple[int, int], np.ndarray], max_deg: float = 2.0) -> dict:
    """Per pair (i, j): how many photos k close the triangle i->j->k->i within `max_deg`.

    `rotations[(i, j)]` maps camera i to camera j (3, 3).
    """
    R = dict(rotations)
    R.update({(j, i): r.T for (i, j), r in rotations.items()})
    partners: dict[int, set[int]] = {}
    for i, j in rotations:
        partners.setdefault(i, set()).add(j)
        partners.setdefault(j, set()).add(i)
    support = {}
    for i, j in rotations:
        closing = partners[i] & partners[j]
        support[(i, j)] = sum(_angle_deg(R[(k, i)] @ R[(j, k)] @ R[(i, j)]) < max_deg for k in closing)
    return support


def consistent_pairs(
    rotations: Mapping[tuple[int, int], np.ndarray], min_support: int = 2, max_deg: float = 2.0
) -> set[tuple[int, int]]:
    """Pairs confirmed by at least `min_support` closing triangles (a clean core to start from)."""
    support = triangle_support(rotations, max_deg)
    return {p for p, s in support.items() if s >= min_support}


def sampson_px(F: np.ndarray, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    """First-order geometric distance (px) of matches x1 <-> x2 (N, 2) to x2^T F x1 = 0."""
    h1 = np.c_[x1, np.ones(len(x1))]
    h2 = np.c_[x2, np.ones(len(x2))]
    Fx1 = h1 @ F.T
    Ftx2 = h2 @ F
    num = np.sum(h2 * Fx1, axis=1) ** 2
    den = Fx1[:, 0] ** 2 + Fx1[:, 1] ** 2 + Ftx2[:, 0] ** 2 + Ftx2[:, 1] ** 2
    return np.sqrt(num / np.maximum(den, 1e-18))


def fundamental(K1, R1, t1, K2, R2, t2) -> np.ndarray:
    """F (3, 3) between two world->camera poses: x2^T F x1 = 0 for pixels x1, x2."""
    R = R2 @ R1.T
    t = t2 - R @ t1
    tx = np.array([[0.0, -t[2], t[1]], [t[2], 0.0, -t[0]], [-t[1], t[0], 0.0]])
    return np.linalg.inv(K2).T @ tx @ R @ np.linalg.inv(K1)


def off_axis_degrees(centres: np.ndarray, axes: np.ndarray, iterations: int = 10) -> np.ndarray:
    """Per camera, the angle (deg) between its optical axis and the direction to the point all
    axes pass nearest (found robustly, so a few stray cameras do not move it).

    centres, axes: (N, 3) camera centres and unit viewing directions in one world frame.
    """
    weights = np.ones(len(centres))
    miss = np.zeros(len(centres))
    for _ in range(iterations):
        A = np.zeros((3, 3))
        b = np.zeros(3)
        for c, d, w in zip(centres, axes, weights):
            P = np.eye(3) - np.outer(d, d)
            A += w * P
            b += w * P @ c
        target = np.linalg.lstsq(A, b, rcond=None)[0]
        v = target - centres
        dist = np.maximum(np.linalg.norm(v, axis=1), 1e-12)
        along = np.sum(v * axes, axis=1)
        miss = np.linalg.norm(v - along[:, None] * axes, axis=1) / dist
        miss = np.where(along > 0, miss, 1.0)  # looking away from it: as off as it gets
        floor = 1.4826 * float(np.median(miss)) + 1e-4
        weights = 1.0 / np.maximum(miss, floor)
    return np.degrees(np.arcsin(np.clip(miss, 0.0, 1.0)))


def stray_cameras(off_axis: np.ndarray, min_deg: float = 15.0, spread: float = 10.0) -> np.ndarray:
    """Bool (N,): cameras looking past the common target, when the capture is object-centred.

    Off by more than `min_deg` and `spread` times the median camera: a hand-held capture aims
    loosely (real photo set: median 2.5 deg, and a close-up into a hollow 24 deg off), a photo
    placed a pattern period away looks 30-50 deg past the item. Only judged when most cameras
    agree (median under min_deg / 2); a room walk-through has no common target.
    """
    med = float(np.median(off_axis)) if len(off_axis) else 0.0
    if len(off_axis) < 6 or med > min_deg / 2:
        return np.zeros(len(off_axis), bool)
    return off_axis > max(min_deg, spread * med)


def propagate_rotations(
    rotations: Mapping[tuple[int, int], np.ndarray],
    known: Mapping[int, np.ndarray],
    max_deg: float = 3.0,
    min_votes: int = 2,
) -> dict[int, np.ndarray]:
    """Extend world->camera rotations `known` to more photos through pair rotations.

    A photo is added when at least `min_votes` of its pairs with already-oriented photos
    predict the same rotation (within `max_deg`); the best-supported photo goes first, so
    a wrong pair has to outvote true ones to do harm. `rotations[(i, j)]` maps camera i to j.
    """
    rel = dict(rotations)
    rel.update({(j, i): r.T for (i, j), r in rotations.items()})
    out = {i: np.asarray(r, float) for i, r in known.items()}
    while True:
        votes: dict[int, list[np.ndarray]] = {}
        for (i, j), r in rel.items():
            if i in out and j not in out:
                votes.setdefault(j, []).append(r @ out[i])
        best, best_cluster = None, []
        for j, preds in votes.items():
            for p in preds:
                cluster = [q for q in preds if _angle_deg(q @ p.T) < max_deg]
                if len(cluster) > len(best_cluster):
                    best, best_cluster = j, cluster
        if best is None or len(best_cluster) < min_votes:
            return out
        u, _, vt = np.linalg.svd(np.sum(best_cluster, axis=0))
        out[best] = u @ np.diag([1.0, 1.0, np.linalg.det(u @ vt)]) @ vt


def rotation_consistent(
    rotations: Mapping[tuple[int, int], np.ndarray], world: Mapping[int, np.ndarray], max_deg: float = 3.0
) -> set[tuple[int, int]]:
    """Pairs whose rotation agrees with the photos' world rotations, plus pairs with a photo
    that has none (nothing to check them against)."""
    keep = set()
    for (i, j), r in rotations.items():
        if i not in world or j not in world or _angle_deg(r @ world[i] @ world[j].T) < max_deg:
            keep.add((i, j))
    return keep


def rotation_support(
    rotations: Mapping[tuple[int, int], np.ndarray], world: Mapping[int, np.ndarray], max_deg: float = 2.0
) -> dict[int, int]:
    """Per placed photo, how many of its pairs' own rotations agree with the model's (within
    `max_deg`). Judges a model without ground truth: a bent or mis-placed one agrees with fewer."""
    support = {i: 0 for i in world}
    for (i, j), r in rotations.items():
        if i in world and j in world and _angle_deg(r @ world[i] @ world[j].T) < max_deg:
            support[i] += 1
            support[j] += 1
    return support
