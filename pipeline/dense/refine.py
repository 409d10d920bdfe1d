"""Sharpen the multi-view-consistent masks against each photo's own edges and colours.

The first geometry pass votes over the segmenter's masks, so a few wrong ones cannot break
the model, but the vote keeps every bulge that only the few grazing views could carve. Its
carved masks are consistent but soft. GrabCut, seeded with them (certain inside, a band of
doubt around the outline, certain background beyond), snaps each outline to the photo's
edges; the second pass can then trust the masks more. Measured with ground-truth cameras
(bench/dense_check.py, segmenter masks): mask IoU 0.92 -> 0.98 (avocado), 0.79 -> 0.93 (chair).

A contact shadow under the item is the one thing colour cannot tell from the item (GrabCut keeps
it), but its texture lies on the table plane: `table_pixels` finds such outline pixels by
plane-induced matching between neighbouring photos, and they seed GrabCut as background. True
cameras, segmenter masks: banana F@1% 0.875 -> 0.934, the others unchanged (+-0.005).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

import numpy as np

from ..types import Camera, Mask, Photo


def refine_mask(photo: Photo, carved: Mask, band_px: int, iterations: int = 4,
                table: np.ndarray | None = None) -> Mask:
    """GrabCut inside a `band_px` band (working px) around the carved outline; (H, W) bool out.

    Pixels deeper than the band inside stay object, beyond it outside stay background, so a
    wrong colour model can only move the outline by the band's width. `table` (H, W) bool: pixels
    that show the table top (see table_pixels); in the band they are certain background.
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
    if table is not None and table.shape == m.shape:
        seeds[table[y0:y1, x0:x1] & (seeds != cv2.GC_FGD)] = cv2.GC_BGD
    if not (seeds == cv2.GC_BGD).any() or not ((seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)).any():
        return carved  # the item fills the crop: no background to learn from
    bgr = np.ascontiguousarray(photo.rgb[y0:y1, x0:x1, ::-1])
    bg_model, fg_model = np.zeros((1, 65)), np.zeros((1, 65))
    cv2.setRNGSeed(0)  # GrabCut's k-means draws from this thread's generator: the same photo, the same outline
    cv2.grabCut(bgr, seeds, None, bg_model, fg_model, iterations, cv2.GC_INIT_WITH_MASK)
    out = np.zeros((h, w), bool)
    out[y0:y1, x0:x1] = (seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)
    return Mask(out, carved.confidence, carved.touches_border, "refined", carved.warnings)


def refine_masks(
    photos: Sequence[Photo], carved: Sequence[Mask], placed: Sequence[bool], band_share: float,
    tables: Sequence[np.ndarray | None] | None = None,
    on_photo: Callable[[int], None] | None = None,
) -> tuple[Mask, ...]:
    """`refine_mask` for every placed photo; band = `band_share` x the photo's long side.
    `on_photo(i)` after photo i (for progress)."""
    def one(i: int) -> Mask:
        if not placed[i]:
            return carved[i]
        table = None if tables is None else tables[i]
        return refine_mask(photos[i], carved[i], band_px(photos[i], band_share), table=table)

    out = []
    # GrabCut runs on one core and lets go of the GIL: one photo per core.
    pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1)
    try:
        for i, mask in enumerate(pool.map(one, range(len(photos)))):
            out.append(mask)
            if on_photo is not None:
                on_photo(i)  # may raise to cancel: the photos not started are dropped
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return tuple(out)


def band_px(photo: Photo, band_share: float) -> int:
    """The refinement band in pixels: `band_share` x the photo's long side, at least 2."""
    return max(2, round(band_share * max(photo.rgb.shape[:2])))


def outline_band(mask: np.ndarray, px: int) -> np.ndarray:
    """(H, W) bool: pixels within `px` of the mask's outline, on either side."""
    import cv2

    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    m = mask.astype(np.uint8)
    return (cv2.dilate(m, kernel) > 0) & ~(cv2.erode(m, kernel) > 0)


def table_pixels(
    photos: Sequence[Photo],
    cams: Sequence[Camera | None],
    near: Sequence[np.ndarray | None],
    up: np.ndarray,
    offset: float,
    rise: float,
    neighbours: int = 4,
    radius: int = 3,
    min_score: float = 0.6,
    margin: float = 0.2,
    min_texture: float = 0.015,
) -> list[np.ndarray | None]:
    """Per photo, (H, W) bool: pixels within `near` (H, W) bool whose patch matches the
    neighbouring photos through the table plane (up . x = offset) clearly better than through
    the planes `rise` and 2 x `rise` above it: they show the table, not the item.

    A contact shadow is table seen darker: colour alone (the segmenter, GrabCut) takes it for the
    item, but its texture lies on the table plane. The raised planes stop a patch that matches
    any plane (an edge along the direction of parallax, a smooth part) from counting; ZNCC
    (best half of the neighbours) ignores the shadow's darkening and occlusion in a few views.
    """
    import cv2
    import torch

    from .frame import look_at_point
    from .mvs import choose_neighbours, window_stats, zncc

    placed = [i for i, c in enumerate(cams) if c is not None]
    placed_cams = [cams[i] for i in placed]
    nbrs_of = choose_neighbours(placed_cams, look_at_point(placed_cams), neighbours)
    grays = {i: cv2.cvtColor(photos[i].rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0 for i in placed}
    k = 2 * radius + 1

    def one(a: int, i: int) -> np.ndarray | None:
        if near[i] is None or not near[i].any():
            return None
        nbrs = [placed[b] for b in nbrs_of[a]]
        if len(nbrs) < 2:
            return None
        ys, xs = np.nonzero(near[i])
        h, w = grays[i].shape
        y0, y1 = max(ys.min() - k, 0), min(ys.max() + k + 1, h)
        x0, x1 = max(xs.min() - k, 0), min(xs.max() + k + 1, w)
        ref = torch.from_numpy(np.ascontiguousarray(grays[i][y0:y1, x0:x1]))[None, None]
        ref_stats = window_stats(ref, radius, "reflect")
        vr = ref_stats[1][0, 0].numpy()
        shift = np.array([[1, 0, x0], [0, 1, y0], [0, 0, 1]], float)  # crop px -> photo px

        def score(height: float) -> np.ndarray:
            per = []
            for j in nbrs:
                hom = _plane_homography(cams[i], cams[j], up, offset + height) @ shift
                warped = cv2.warpPerspective(grays[j], hom, (x1 - x0, y1 - y0),
                                             flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderValue=-1.0)
                per.append(zncc(ref, torch.from_numpy(warped)[None, None], radius, ref_stats, "reflect")[0, 0].numpy())
            per = np.sort(np.stack(per), axis=0)
            return per[-max(1, len(nbrs) // 2):].mean(axis=0)

        flat = score(0.0)
        raised = np.maximum(score(rise), score(2 * rise))
        hit = (flat > min_score) & (flat > raised + margin) & (np.sqrt(vr) > min_texture)
        # A window that straddles the outline matches the table when the table fills most of it:
        # shrink the hits by the window's radius so they stop where the window reaches the item.
        hit = cv2.erode(hit.astype(np.uint8), np.ones((k, k), np.uint8)) > 0
        full = np.zeros((h, w), bool)
        full[y0:y1, x0:x1] = hit
        return full & near[i]

    out: list[np.ndarray | None] = [None] * len(cams)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # the warps run on one core each
        for i, found in zip(placed, pool.map(one, range(len(placed)), placed)):
            out[i] = found
    return out


def _plane_homography(ci: Camera, cj: Camera, n: np.ndarray, d: float) -> np.ndarray:
    """(3, 3) pixel of view i -> pixel of view j, through the plane n . x = d (world frame)."""
    r = cj.R @ ci.R.T
    t = cj.t - r @ ci.t
    nc = ci.R @ n  # the plane in camera i: nc . x_cam = dc
    dc = d + nc @ ci.t
    return cj.K @ (r + np.outer(t, nc) / dc) @ np.linalg.inv(ci.K)


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
