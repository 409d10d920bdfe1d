"""Outline sharpening between the two geometry passes (pipeline.dense.refine)."""

from __future__ import annotations

import numpy as np

from pipeline.dense.refine import refine_mask, refine_masks, snap_allowed
from pipeline.types import Mask
from tests.scenes import photo as make_photo


def _scene(seed: int = 0):
    """A red disc (radius 80 px) on grey-green noise; returns (photo, true mask)."""
    rng = np.random.default_rng(seed)
    h, w = 300, 400
    rgb = rng.integers(60, 140, size=(h, w, 3)).astype(np.uint8)
    rgb[..., 1] = np.clip(rgb[..., 1].astype(int) + 40, 0, 255)
    yy, xx = np.mgrid[0:h, 0:w]
    disc = (xx - 200) ** 2 + (yy - 150) ** 2 <= 80**2
    rgb[disc] = (200, 40, 40) + rng.integers(-15, 15, size=(disc.sum(), 3))
    return make_photo(rgb, name="disc.jpg"), disc


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_a_soft_outline_snaps_to_the_object():
    photo, disc = _scene()
    yy, xx = np.mgrid[0:300, 0:400]
    soft = (xx - 205) ** 2 + (yy - 150) ** 2 <= 90**2  # 10 px too big and off-centre
    refined = refine_mask(photo, Mask(soft, 0.9, False, "carved"), band_px=15)
    assert _iou(soft, disc) < 0.85
    assert _iou(refined.mask, disc) > 0.97
    assert refined.method == "refined"


def test_the_band_limits_how_far_an_outline_can_move():
    photo, disc = _scene(1)
    yy, xx = np.mgrid[0:300, 0:400]
    wrong = (xx - 200) ** 2 + (yy - 150) ** 2 <= 140**2  # far too big: mostly background
    refined = refine_mask(photo, Mask(wrong, 0.9, False, "carved"), band_px=10)
    inner = (xx - 200) ** 2 + (yy - 150) ** 2 <= 128**2
    assert refined.mask[inner].all()  # deeper than the band inside: kept, whatever the colours
    beyond = (xx - 200) ** 2 + (yy - 150) ** 2 > 151**2
    assert not refined.mask[beyond].any()  # nor more than the band outside


def test_unplaced_photos_and_empty_masks_pass_through():
    photo, disc = _scene(2)
    empty = Mask(np.zeros_like(disc), 0.0, False, "carved")
    kept = Mask(disc, 0.5, False, "carved")
    out = refine_masks([photo, photo], [empty, kept], [True, False], band_share=0.03)
    assert out[0] is empty and out[1] is kept


def test_snap_allowed_along_a_trimmed_rim_but_not_where_a_part_was_dropped():
    _, disc = _scene()
    h, w = disc.shape
    yy, xx = np.mgrid[0:h, 0:w]
    sharp = (xx - 200) ** 2 + (yy - 150) ** 2 <= 77**2  # 3 px trimmed all round: a bulge fixed
    ok = snap_allowed(disc, sharp, 5)
    assert ok.all()
    dropped = sharp.copy()
    dropped[140:170, 100:140] = False  # a 30 x 30 px piece of the item dropped by GrabCut
    ok = snap_allowed(disc, dropped, 5)
    assert not ok[150, 125] and not ok[150, 145]  # in the piece and next to it
    assert ok[150, 278] and ok[71, 200]  # the rest of the rim may still snap
    assert snap_allowed(disc, sharp, 0) is None
