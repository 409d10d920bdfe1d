"""The item found in 3D when the 2D masks disagree (pipeline/dense/locate.py).

The scene: a textured 0.4 x 0.3 x 0.2 block standing on a textured table, 18 cameras on two rings
(ray cast here, exact). Sparse points sit on the table and on the block's visible faces, as
structure from motion gives them. A third of the masks are wrong: a disc of table beside the
block. The vote alone finds no item (the wrong masks leave it out); the sparse points find it,
the wrong masks lose their vote, and the model is the block at its size, not a heap of table.
With no points standing on the table the capture is refused with re-shoot advice.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from pipeline.types import Camera
from tests.scenes import intrinsics, look_at, mask, orbit_eye, photo, sparse_poses

W, H, F = 192, 144, 180.0
HALF = np.array([0.2, 0.15, 0.1])  # the block's half sizes; it spans y in [0, 0.3]
CENTRE = np.array([0.0, 0.15, 0.0])
WRONG = (1, 4, 7, 10, 13, 16)  # a third of the 18 masks


def _cameras() -> list[Camera]:
    cams = []
    for k in range(18):
        az, el = 2 * np.pi * k / 18, np.radians(20 if k % 2 == 0 else 40)
        R, t = look_at(orbit_eye(az, el, 1.6, CENTRE), CENTRE)
        cams.append(Camera(intrinsics(F, W, H), R, t, W, H))
    return cams


def _texture(p: np.ndarray, cell: float, seed: int) -> np.ndarray:
    """(N, 3) uint8 colours of 3D points from a random block-noise table (confetti-like)."""
    table = np.random.default_rng(seed).integers(20, 235, size=(32, 32, 32, 3)).astype(np.uint8)
    idx = np.floor(p / cell).astype(np.int64) % 32
    return table[idx[:, 0], idx[:, 1], idx[:, 2]]


def _render(cam: Camera) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) uint8 photo and (H, W) bool true mask: the block (slab test) and the table y = 0."""
    v, u = np.mgrid[0:H, 0:W].astype(float)
    d = np.stack([(u - (W - 1) / 2) / F, (v - (H - 1) / 2) / F, np.ones_like(u)], -1).reshape(-1, 3) @ cam.R
    o = cam.center
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = (CENTRE - HALF - o) / d, (CENTRE + HALF - o) / d
        near, far = np.minimum(t1, t2).max(axis=1), np.maximum(t1, t2).min(axis=1)
        t_floor = np.where(d[:, 1] < 0, -o[1] / d[:, 1], np.inf)
    hit = (near <= far) & (far > 0)
    p_obj = o + near[:, None] * d
    p_floor = o + np.where(np.isfinite(t_floor), t_floor, 0.0)[:, None] * d
    rgb = np.where(hit[:, None], _texture(p_obj, 0.03, 1), _texture(p_floor, 0.05, 2))
    rgb[~hit & ~np.isfinite(t_floor)] = (150, 170, 200)
    return rgb.reshape(H, W, 3), hit.reshape(H, W)


@pytest.fixture(scope="module")
def capture():
    rng = np.random.default_rng(5)
    cams = _cameras()
    photos, masks = [], []
    yy, xx = np.mgrid[0:H, 0:W]
    for i, cam in enumerate(cams):
        rgb, m = _render(cam)
        if i in WRONG:  # the segmenter picked a patch of table beside the item
            cx, cy = (0.15 if i % 2 else 0.85) * W, 0.8 * H
            m = np.hypot(xx - cx, yy - cy) < 0.12 * W
        photos.append(photo(rgb, i, f"{i}.jpg"))
        masks.append(mask(m, 0.7))
    ang, rad = rng.uniform(0, 2 * np.pi, 1500), np.sqrt(rng.uniform(0.1, 1.2, 1500))
    table = np.stack([rad * np.cos(ang), np.zeros(1500), rad * np.sin(ang)], 1)
    table = table[np.any(np.abs(table - CENTRE) > HALF, axis=1)]
    face = rng.uniform(-1, 1, size=(400, 3)) * HALF
    axis = rng.integers(0, 3, 400)
    face[np.arange(400), axis] = np.where(rng.random(400) < 0.5, -1, 1) * HALF[axis]
    block = (face + CENTRE)[face[:, 1] > -HALF[1] + 1e-6]  # the underside is unseen
    return photos, masks, cams, table, block


def _fast():
    from pipeline import dense

    return replace(dense.PRESETS["fast"], grid=64, refine=False)


def test_a_third_of_the_masks_wrong_still_gives_the_item_at_its_size(capture, device):
    from pipeline import dense

    photos, masks, cams, table, block = capture
    poses = sparse_poses(cams, np.concatenate([table, block]), 0.3)
    shape, carved = dense.reconstruct_dense(photos, masks, poses, _fast(), device=device)
    up = shape.up
    assert abs(up @ np.array([0.0, 1.0, 0.0])) > 0.99
    # In the scene frame (the cameras are the true ones): the block, not a heap of table.
    lo, hi = shape.vertices.min(axis=0), shape.vertices.max(axis=0)
    assert np.all(np.abs((hi - lo) - 2 * HALF) < 0.25 * 2 * HALF), (lo, hi)
    assert np.all(np.abs(0.5 * (lo + hi) - CENTRE)[[0, 2]] < 0.03)
    # The report names the photos whose outline was left out.
    left_out = [n for n in shape.notes if "left out" in n]
    assert len(left_out) == 1 and "6 photos" in left_out[0]
    assert all(f"{i}.jpg" in left_out[0] for i in WRONG) and "0.jpg" not in left_out[0].replace("10.jpg", "")
    # The right photos' carved masks match the true outline; the wrong ones are corrected.
    for i in (0, 1, 4):
        truth = _render(cams[i])[1]
        got = carved[i].mask
        assert (got & truth).sum() / (got | truth).sum() > 0.8, i


def test_the_vote_drops_masks_that_leave_out_the_item_in_3d(capture):
    from pipeline.dense.frame import capture_frame
    from pipeline.dense.locate import judge_masks, locate_object

    _, masks, cams, table, block = capture
    frame = capture_frame(cams, list(cams), np.concatenate([table, block]), None, np.random.default_rng(0))
    box = locate_object(cams, np.concatenate([table, block]), frame)
    assert box is not None and box.on_table
    world = np.array([box.lo, box.hi]) @ frame.axes + frame.centre
    assert world[:, 1].min() == pytest.approx(0.0, abs=0.01)  # down to the table
    assert 0.3 < world[:, 1].max() < 0.45  # the block's top and a margin
    votes = judge_masks(cams, [m.mask for m in masks], box, frame)
    assert [not v.keep for v in votes] == [i in WRONG for i in range(18)]
    # A mask that takes in a wide patch of table around the item spills out of the box.
    big = np.zeros((H, W), bool)
    big[10:-10, 10:-10] = True
    assert not judge_masks(cams[:1], [big], box, frame)[0].keep


def test_no_item_standing_on_the_table_is_refused_with_advice(capture, device):
    from pipeline import dense
    from pipeline.errors import CaptureError

    photos, _, cams, table, _ = capture
    yy, xx = np.mgrid[0:H, 0:W]
    # Outlines that point at different places, and only table points: nothing to build.
    moved = [mask(np.hypot(xx - W * (0.2 + 0.6 * ((k * 7) % 18) / 17), yy - H * 0.5) < 0.08 * W, 0.7)
             for k in range(18)]
    with pytest.raises(CaptureError) as err:
        dense.reconstruct_dense(photos, moved, sparse_poses(cams, table, 0.3), _fast(), device=device)
    assert "could not be found in 3D" in err.value.message and "20-80 photos" in err.value.advice
