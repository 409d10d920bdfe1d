"""SfM outlier checks (pipeline.sfm.filter) on synthetic camera rings with planted wrong pairs."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.geom import frame_from_up_front
from pipeline.sfm import filter as filt
from tests.scenes import ring_rotations


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip((np.trace(a @ b.T) - 1) / 2, -1, 1))))


def _random_rotation(rng) -> np.ndarray:
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def _pairs(Rs: np.ndarray, wrong: set[tuple[int, int]], seed: int = 1) -> dict:
    """All pairs up to 3 apart along the ring; the `wrong` ones get an unrelated rotation."""
    rng = np.random.default_rng(seed)
    n = len(Rs)
    out = {}
    for i in range(n):
        for d in (1, 2, 3):
            j = (i + d) % n
            key = (min(i, j), max(i, j))
            out[key] = Rs[key[1]] @ Rs[key[0]].T
    for key in wrong:
        out[key] = _random_rotation(rng)
    return out


def test_triangles_reject_planted_wrong_pairs():
    Rs, _ = ring_rotations()
    wrong = {(0, 3), (4, 6), (7, 10)}
    pairs = _pairs(Rs, wrong)
    kept = filt.consistent_pairs(pairs, min_support=2)
    assert not kept & wrong
    assert len(kept) >= len(pairs) - len(wrong) - 6  # true pairs next to a wrong one may lose support
    support = filt.triangle_support(pairs)
    assert all(support[p] == 0 for p in wrong)


def test_propagation_recovers_rotations_despite_wrong_pairs():
    Rs, _ = ring_rotations(n=16)
    wrong = {(1, 4), (5, 7), (9, 12), (13, 15)}
    pairs = _pairs(Rs, wrong, seed=4)
    known = {0: Rs[0], 1: Rs[1]}
    world = filt.propagate_rotations(pairs, known)
    assert set(world) == set(range(16))
    assert max(_angle(world[i], Rs[i]) for i in world) < 1e-4
    kept = filt.rotation_consistent(pairs, world)
    assert kept == set(pairs) - wrong
    support = filt.rotation_support(pairs, world)
    assert sum(support.values()) == 2 * (len(pairs) - len(wrong))


def test_propagation_stops_without_two_agreeing_votes():
    Rs, _ = ring_rotations(n=6)
    pairs = {(0, 1): Rs[1] @ Rs[0].T, (1, 2): Rs[2] @ Rs[1].T}  # a chain: one vote each
    assert set(filt.propagate_rotations(pairs, {0: Rs[0]})) == {0}
    assert set(filt.propagate_rotations(pairs, {0: Rs[0]}, min_votes=1)) == {0, 1, 2}


def test_a_camera_placed_a_pattern_period_away_is_a_stray():
    Rs, Cs = ring_rotations(n=24, jitter_deg=1.0)
    axes = Rs[:, 2, :]
    moved = Cs.copy()
    a = 2 * np.pi * 5 / 24
    moved[5] += 0.6 * np.array([np.cos(a), 0.0, -np.sin(a)])  # same orientation, shifted sideways
    off = filt.off_axis_degrees(moved, axes)
    assert off[5] > 25
    assert np.median(off) < 2
    stray = filt.stray_cameras(off)
    assert stray[5] and stray.sum() == 1


def test_loose_aim_and_scenes_without_a_target_flag_nothing():
    Rs, Cs = ring_rotations(n=24, jitter_deg=4.0, seed=2)
    assert not filt.stray_cameras(filt.off_axis_degrees(Cs, Rs[:, 2, :])).any()
    # A walk along a shelf: every camera looks the same way, no common target.
    centres = np.array([[x, 0.0, 0.0] for x in np.linspace(0, 5, 12)])
    axes = np.tile([0.0, 0.0, 1.0], (12, 1))
    assert not filt.stray_cameras(filt.off_axis_degrees(centres, axes)).any()


@pytest.mark.parametrize("j, expected", [(1, True), (6, True), (3, True)])
def test_axes_meet_for_ring_pairs(j, expected):
    Rs, Cs = ring_rotations(n=12)
    R = Rs[j] @ Rs[0].T
    t = Rs[j] @ (np.zeros(3) - Cs[j]) - R @ (Rs[0] @ (np.zeros(3) - Cs[0]))
    assert filt.axes_meet(R, t / np.linalg.norm(t)) is expected


def test_axes_do_not_meet_when_one_camera_looks_away():
    Rs, Cs = ring_rotations(n=12)
    away = frame_from_up_front(np.array([0.0, 1.0, 0.0]), Cs[2] / np.linalg.norm(Cs[2]))
    R2 = np.stack([away[:, 0], -away[:, 1], away[:, 2]])  # rows; looking outwards from the ring
    t2 = -R2 @ Cs[2]
    t1 = -Rs[0] @ Cs[0]
    R = R2 @ Rs[0].T
    assert not filt.axes_meet(R, t2 - R @ t1)


def test_sampson_is_zero_for_true_matches_and_large_for_shifted_ones():
    Rs, Cs = ring_rotations(n=12)
    K = np.array([[800.0, 0, 512], [0, 800.0, 384], [0, 0, 1]])
    ts = [-R @ c for R, c in zip(Rs, Cs)]
    F = filt.fundamental(K, Rs[0], ts[0], K, Rs[1], ts[1])
    rng = np.random.default_rng(0)
    X = rng.uniform(-0.2, 0.2, size=(50, 3))

    def proj(R, t):
        x = (K @ (X @ R.T + t).T).T
        return x[:, :2] / x[:, 2:]

    x1, x2 = proj(Rs[0], ts[0]), proj(Rs[1], ts[1])
    assert filt.sampson_px(F, x1, x2).max() < 1e-6
    assert np.median(filt.sampson_px(F, x1, x2 + np.array([0.0, 25.0]))) > 5

