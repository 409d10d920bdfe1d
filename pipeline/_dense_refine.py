"""Sharpen the multi-view-consistent masks against each photo's own edges and colours.

The first geometry pass votes over the segmenter's masks, so a few wrong ones cannot break
the model, but the vote keeps every bulge that only the few grazing views could carve. Its
carved masks are consistent but soft. GrabCut, seeded with them (certain inside, a band of
doubt around the outline, certain background beyond), snaps each outline to the photo's
edges; the second pass can then trust the masks more. Measured with ground-truth cameras
(bench/dense_check.py, segmenter masks): mask IoU 0.92 -> 0.98 (avocado), 0.79 -> 0.93 (chair).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .types import Mask, Photo


def refine_mask(photo: Photo, carved: Mask, band_px: int, iterations: int = 4) -> Mask:
    """GrabCut inside a `band_px` band (working px) around the carved outline; (H, W) bool out.

    Pixels deeper than the band inside stay object, beyond it outside stay background, so a
    wrong colour model can only move the outline by the band's width.
    """
    import cv2

    m = carved.mask.astype(np.uint8)
    if m.sum() == 0 or band_px < 1:
        return carved
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band_px + 1, 2 * band_px + 1))
    inner = cv2.erode(m, kernel)
    outer = cv2.dilate(m, kernel)
    ys, xs = np.nonzero(outer)
    pad = 2 * band_px
    h, w = m.shape
    y0, y1 = max(0, ys.min() - pad), min(h, ys.max() + pad + 1)
    x0, x1 = max(0, xs.min() - pad), min(w, xs.max() + pad + 1)
    seeds = np.full((y1 - y0, x1 - x0), cv2.GC_BGD, np.uint8)
    seeds[outer[y0:y1, x0:x1] > 0] = cv2.GC_PR_BGD
    seeds[m[y0:y1, x0:x1] > 0] = cv2.GC_PR_FGD
    seeds[inner[y0:y1, x0:x1] > 0] = cv2.GC_FGD
    if not (seeds == cv2.GC_BGD).any() or not ((seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)).any():
        return carved  # the item fills the crop: no background to learn from
    bgr = np.ascontiguousarray(photo.rgb[y0:y1, x0:x1, ::-1])
    bg_model, fg_model = np.zeros((1, 65)), np.zeros((1, 65))
    cv2.grabCut(bgr, seeds, None, bg_model, fg_model, iterations, cv2.GC_INIT_WITH_MASK)
    out = np.zeros((h, w), bool)
    out[y0:y1, x0:x1] = (seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)
    return Mask(out, carved.confidence, carved.touches_border, "refined", carved.warnings)


def refine_masks(
    photos: Sequence[Photo], carved: Sequence[Mask], placed: Sequence[bool], band_share: float
) -> tuple[Mask, ...]:
    """`refine_mask` for every placed photo; band = `band_share` x the photo's long side."""
    out = []
    for photo, mask, ok in zip(photos, carved, placed):
        band = max(2, round(band_share * max(photo.rgb.shape[:2])))
        out.append(refine_mask(photo, mask, band) if ok else mask)
    return tuple(out)


def snap_allowed(carved: np.ndarray, sharp: np.ndarray, snap_px: float) -> np.ndarray | None:
    """(H, W) bool: where the sharpened outline may snap the hull. Not near a piece thicker than
    2 x snap_px that sharpening took off the first pass's outline: that is GrabCut dropping a
    part (a dark handle against a dark background), not the first pass bulging."""
    import cv2

    if snap_px <= 0 or carved.shape != sharp.shape:
        return None
    r = max(1, int(round(snap_px)))
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    lost = (carved & ~sharp).astype(np.uint8)
    dropped = cv2.morphologyEx(lost, cv2.MORPH_OPEN, disk)
    return cv2.dilate(dropped, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (4 * r + 1, 4 * r + 1))) == 0
