"""Thin parts and table pixels in the dense stage, on synthetic captures with exact ground truth.

* A plain blue ball with a 4 mm black rod sticking out sideways (a handle, an antenna), seen by
  24 cameras against a different random background in each photo. Half of the masks leave the
  rod out, as a colour segmenter does with thin parts: the vote alone drops it, the thin-part
  rule (mask share + colour agreement, see pipeline/dense/thin.py) brings it back, and adds
  nothing where there is no rod.
* A textured table with a textured block standing on it: the table-plane test
  (pipeline/dense/refine.py, table_pixels) marks the table and not the block's top.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from pipeline.types import Camera
from tests.scenes import (
    floor_grid,
    intrinsics,
    look_at,
    mask,
    orbit_eye,
    photo,
    sparse_poses,
)

W, H, F = 480, 360, 420.0


def _ring(n: int, distance: float, target: np.ndarray) -> list[Camera]:
    """n cameras round `target`, every other one higher (15 and 35 degrees up)."""
    K = intrinsics(F, W, H)
    cams = []
    for k in range(n):
        az, el = 2 * np.pi * k / n, np.radians(15 + 20 * (k % 2))
        R, t = look_at(orbit_eye(az, el, distance, target), target)
        cams.append(Camera(K, R, t, W, H))
    return cams


def _blocks(rng, h: int, w: int, cell: int) -> np.ndarray:
    """(h, w, 3) uint8 random colour blocks: confetti-like texture."""
    small = rng.integers(0, 256, size=(h // cell + 1, w // cell + 1, 3)).astype(np.uint8)
    return np.repeat(np.repeat(small, cell, 0), cell, 1)[:h, :w]


def _ball_capture(with_rod: bool):
    import trimesh

    from pipeline.dense.hull import render_silhouettes

    rng = np.random.default_rng(7)
    body = trimesh.creation.icosphere(subdivisions=4, radius=0.1)
    body.apply_translation([0, 0.1, 0])
    rod = trimesh.creation.cylinder(radius=0.004, segment=[[0.07, 0.14, 0], [0.24, 0.14, 0]], sections=12)
    cams = _ring(24, 0.75, np.array([0.05, 0.1, 0.0]))
    ball = render_silhouettes(body.vertices, body.faces, cams)
    stick = render_silhouettes(rod.vertices, rod.faces, cams) if with_rod else [np.zeros_like(b) for b in ball]
    photos, masks = [], []
    for i, (b, s) in enumerate(zip(ball, stick)):
        rgb = _blocks(rng, H, W, 6)  # another bit of room behind the item in every photo
        rgb[b] = (70, 140, 200)
        rgb[s] = (20, 20, 25)
        photos.append(photo(rgb, i))
        masks.append(mask(b | s if i % 2 == 0 else b, 0.8))  # odd photos drop the rod
    return photos, masks, sparse_poses(cams, floor_grid(0.5, 21), 0.5)


def _reach_x(shape) -> float:
    """How far the model reaches along +x (the rod's direction), frame-independent."""
    return float(shape.vertices[:, 0].max())


@pytest.mark.parametrize("with_rod", [True, False])
def test_thin_part_dropped_from_half_the_masks_comes_back_and_air_does_not(with_rod, device):
    from pipeline import dense

    photos, masks, poses = _ball_capture(with_rod)
    cfg = replace(dense.PRESETS["fast"], photo_consistency=False)
    kept, _ = dense.reconstruct_dense(photos, masks, poses, cfg, device=device)
    voted, _ = dense.reconstruct_dense(photos, masks, poses, replace(cfg, thin_share=0.0), device=device)
    if with_rod:
        assert _reach_x(voted) < 0.15, "the vote alone should drop a rod half of the masks miss"
        assert _reach_x(kept) > 0.21, f"the rod (to x = 0.24) was not brought back: {_reach_x(kept):.3f}"
    else:
        # Nothing to bring back: the plain ball must come out the same, not grown by air that
        # looks ball-coloured from most directions.
        assert _reach_x(kept) == pytest.approx(_reach_x(voted), abs=0.004)
        # 6%, not 2%: the plain vote's own face count was seen 5% lower once in a two-worker run on
        # a loaded machine (61,508 vs 58,524; alone both give 61,4xx): air would add far more.
        assert len(kept.faces) == pytest.approx(len(voted.faces), rel=0.06)


def test_table_pixels_mark_the_table_and_not_a_block_standing_on_it():
    import cv2

    from pipeline.dense.refine import table_pixels

    rng = np.random.default_rng(2)
    half, height = 0.12, 0.08  # the block's top: a textured square 0.24 wide, 8 cm above the table
    table_tex, top_tex = _blocks(rng, 512, 512, 2), _blocks(rng, 256, 256, 2)
    cams = _ring(12, 1.0, np.zeros(3))
    photos, tops = [], []
    for i, c in enumerate(cams):

        def plane_to_image(y: float, extent: float, size: int) -> np.ndarray:
            to_plane = np.array([[2 * extent / size, 0, -extent], [0, 2 * extent / size, -extent], [0, 0, 1]])
            return c.K @ np.stack([c.R[:, 0], c.R[:, 2], c.R[:, 1] * y + c.t], 1) @ to_plane

        table_h = plane_to_image(0.0, 1.2, 512)
        rgb = cv2.warpPerspective(table_tex, table_h, (W, H), flags=cv2.INTER_NEAREST)
        seen = cv2.warpPerspective(np.ones((512, 512), np.uint8), table_h, (W, H), flags=cv2.INTER_NEAREST)
        top_h = plane_to_image(height, half, 256)
        top = cv2.warpPerspective(np.ones((256, 256), np.uint8), top_h, (W, H), flags=cv2.INTER_NEAREST) > 0
        rgb[top] = cv2.warpPerspective(top_tex, top_h, (W, H), flags=cv2.INTER_NEAREST)[top]
        photos.append(photo(rgb, i))
        tops.append((top, cv2.erode(seen, np.ones((31, 31), np.uint8)) > 0))
    near = [np.ones((H, W), bool)] * len(cams)
    marks = table_pixels(photos, cams, near, np.array([0.0, 1.0, 0.0]), 0.0, rise=0.02)
    on_top = on_table = 0.0
    for m, (top, seen) in zip(marks, tops):
        inner = cv2.erode(top.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
        # Round the block, as in use (the band round an outline), off its edge (a ZNCC window there
        # holds both) and away from the table's far edge (the neighbours see past it there).
        t8 = top.astype(np.uint8)
        table = seen & (cv2.dilate(t8, np.ones((61, 61), np.uint8)) > 0) & ~(cv2.dilate(t8, np.ones((9, 9), np.uint8)) > 0)
        on_top += m[inner].mean() / len(cams)
        on_table += m[table].mean() / len(cams)
    assert on_table > 0.35, f"only {on_table:.0%} of the table marked"
    assert on_top < 0.02, f"{on_top:.1%} of the block's top taken for table"
