"""Find the item in 3D from the sparse points, and judge each photo's 2D mask against it.

The 2D masks are one vote among several, not the hull itself: a segmenter that took the table's
pattern into the outline, or lost the item in a busy photo, would otherwise decide the shape. The
3D evidence is what structure from motion already found: the table plane (frame.py), the camera
ring and the point its photos converge on, and the sparse points standing above the table near
the ring's axis. The item is the cluster of those points standing at the capture's centre; its
box bounds the hull, and a mask that leaves out most of the item's points, or spills far outside
the box, is dropped from the vote.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from typing import Sequence

from ..errors import CaptureError
from ..geom import project
from ..types import Camera, Mask, Poses
from .config import STAGE, DenseConfig
from .frame import CaptureFrame


@dataclass(frozen=True)
class ObjectBox:
    """The item as the sparse points show it, in the capture frame's local coordinates
    (local = (x - frame.centre) @ frame.axes.T, y up; scene units)."""

    lo: np.ndarray  # (3,) box corner, grown by a margin, down to the table when there is one
    hi: np.ndarray  # (3,)
    points: np.ndarray  # (M, 3) world (SfM frame) sparse points of the item
    on_table: bool  # the cluster stands on the table plane (False: no table, or it floats)


@dataclass(frozen=True)
class MaskVote:
    """How one photo's 2D mask agrees with the item found in 3D."""

    recall: float  # share of the item's sparse points (seen in the photo) inside the mask, 0..1
    spill: float  # share of the mask's area outside the item's projected box, 0..1
    keep: bool  # the mask votes in the hull


def locate_object(cams: list[Camera], points: np.ndarray, frame: CaptureFrame, cell: float = 0.025,
                  min_points: int = 12) -> ObjectBox | None:
    """The cluster of sparse points (N, 3) standing above the table nearest the ring's axis.

    `cell`: clustering cell, share of the capture's scale (median camera distance); points closer
    than about two cells are one cluster. None when no cluster of at least `min_points` points is
    near the centre (a textureless item, or photos that do not converge on one thing).
    """
    from scipy import ndimage

    pts = np.asarray(points, float).reshape(-1, 3)
    if len(pts) < min_points:
        return None
    local = (pts - frame.centre) @ frame.axes.T
    cam_local = (np.array([c.center for c in cams]) - frame.centre) @ frame.axes.T
    ring = float(np.median(np.hypot(cam_local[:, 0], cam_local[:, 2])))
    scale = frame.scale
    axis_dist = np.hypot(local[:, 0], local[:, 2])
    if frame.ground_y is not None and ring > 0.3 * scale:
        # Above the table's noise (the plane's RANSAC band is 0.004 of the scale), inside the ring
        # and below the cameras' mean height: an item is photographed from around and above.
        height = local[:, 1] - frame.ground_y
        near = (height > 0.012 * scale) & (axis_dist < 0.6 * ring) & (local[:, 1] < cam_local[:, 1].mean())
    else:
        # No table, or the photos all taken from one side: the points round where they converge.
        near = np.linalg.norm(local, axis=1) < 0.5 * scale
    cand = local[near]
    if len(cand) < min_points:
        return None
    step = cell * scale
    idx = np.floor((cand - cand.min(axis=0)) / step).astype(np.int64)
    occ = np.zeros(tuple(idx.max(axis=0) + 1), bool)
    occ[tuple(idx.T)] = True
    labels, n = ndimage.label(ndimage.binary_dilation(occ, iterations=1), structure=np.ones((3, 3, 3)))
    lab = labels[tuple(idx.T)]
    best, best_w = 0, 0.0
    for j in range(1, n + 1):
        sel = cand[lab == j]
        if len(sel) < min_points:
            continue
        # Many points near the axis: the item; a patch of table noise or a distant prop is small
        # or off-centre.
        d = float(np.median(np.hypot(sel[:, 0], sel[:, 2])))
        w = len(sel) * np.exp(-((d / (0.25 * max(ring, 0.3 * scale))) ** 2))
        if w > best_w:
            best, best_w = j, w
    if best == 0:
        return None
    sel = cand[lab == best]
    lo, hi = np.percentile(sel, 1.0, axis=0), np.percentile(sel, 99.0, axis=0)
    margin = 0.1 * (hi - lo) + 1.5 * step
    lo, hi = lo - margin, hi + margin
    on_table = False
    if frame.ground_y is not None:
        # An item stands on the table: its box reaches down to it (the points near its foot are
        # the fewest, hidden in the contact shadow).
        on_table = bool(lo[1] - frame.ground_y < 0.5 * (hi[1] - lo[1]) + 3 * step)
        lo[1] = frame.ground_y
    world = sel @ frame.axes + frame.centre
    return ObjectBox(lo, hi, world, on_table)


def grown(box: ObjectBox, share: float) -> ObjectBox:
    """The box grown by `share` of its size on every side but the bottom (the table stays)."""
    pad = share * (box.hi - box.lo)
    lo = box.lo - pad
    if box.on_table:
        lo[1] = box.lo[1]
    return ObjectBox(lo, box.hi + pad, box.points, box.on_table)


def box_corners(box: ObjectBox, frame: CaptureFrame) -> np.ndarray:
    """(8, 3) world corners of the box."""
    c = np.array([[x, y, z] for x in (box.lo[0], box.hi[0]) for y in (box.lo[1], box.hi[1])
                  for z in (box.lo[2], box.hi[2])])
    return c @ frame.axes + frame.centre


def box_silhouette(box: ObjectBox, frame: CaptureFrame, cam: Camera) -> np.ndarray:
    """(H, W) bool: the box's projection in `cam` (the convex hull of its corners)."""
    import cv2

    uv, z = project(cam, box_corners(box, frame))
    out = np.zeros((cam.height, cam.width), np.uint8)
    if np.any(z <= 0):  # the camera is inside or beside the box: it bounds nothing here
        out[:] = 1
        return out.astype(bool)
    hull = cv2.convexHull(np.round(uv * 4).astype(np.int32))
    cv2.fillConvexPoly(out, hull, 1, lineType=cv2.LINE_8, shift=2)
    return out.astype(bool)


def judge_masks(cams: list[Camera], masks: list[np.ndarray], box: ObjectBox, frame: CaptureFrame,
                min_recall: float = 0.6, max_spill: float = 0.5) -> list[MaskVote]:
    """Per placed photo, does its mask (H, W) bool agree with the item in 3D?

    A mask is kept when it holds at least `min_recall` of the item's sparse points (within a
    1.5%-of-the-frame tolerance: points sit on the outline too) and at most `max_spill` of its
    area lies outside the item's projected box. The box is a loose bound (a margin round the
    points' 1-99% extent, the whole height down to the table), so a right mask spills little.
    """
    import cv2

    votes = []
    for cam, m in zip(cams, masks):
        uv, z = project(cam, box.points)
        ok = (z > 0) & (uv[:, 0] >= 0) & (uv[:, 1] >= 0) & (uv[:, 0] <= cam.width - 1) & (uv[:, 1] <= cam.height - 1)
        r = max(1, round(0.015 * max(cam.width, cam.height)))
        grown = cv2.dilate(m.astype(np.uint8), np.ones((2 * r + 1, 2 * r + 1), np.uint8)) > 0
        px = np.round(uv[ok]).astype(np.int64)
        recall = float(grown[px[:, 1], px[:, 0]].mean()) if ok.sum() >= 5 else 1.0
        area = int(m.sum())
        spill = float((m & ~box_silhouette(box, frame, cam)).sum() / area) if area else 1.0
        votes.append(MaskVote(recall, spill, recall >= min_recall and spill <= max_spill))
    return votes


@dataclass(frozen=True)
class Item:
    """The item found among the sparse points, and which photos' masks agree with it."""

    box: ObjectBox
    frame: CaptureFrame
    keep: tuple[bool, ...]  # per photo: its mask agrees (False for unplaced photos too)
    kept: int
    placed: int


def item_in_3d(masks: Sequence[Mask], poses: Poses, cfg: DenseConfig) -> Item | None:
    """The item found in 3D (see locate.py) and the masks' votes; None when no cluster of sparse
    points stands at the capture's centre (or fewer than 3 photos are placed)."""
    from .frame import capture_frame

    placed = [i for i, c in enumerate(poses.cameras) if c is not None]
    if len(placed) < 3 or len(masks) != len(poses.cameras):
        return None
    cams = [poses.cameras[i] for i in placed]
    frame = capture_frame(cams, list(poses.cameras), poses.points, poses.first_view_axis,
                          np.random.default_rng(cfg.seed))
    box = locate_object(cams, poses.points, frame, cfg.locate_cell, cfg.locate_min_points)
    if box is None:
        return None
    votes = judge_masks(cams, [fit_mask(masks[i].mask, c) for i, c in zip(placed, cams)], box, frame,
                        cfg.locate_min_recall, cfg.locate_max_spill)
    keep = [False] * len(masks)
    for i, v in zip(placed, votes):
        keep[i] = v.keep
    return Item(box, frame, tuple(keep), sum(keep), len(placed))


def bounded_by_item(masks: Sequence[Mask], poses: Poses, item: Item | None, cfg: DenseConfig):
    """The outlines do not meet in 3D: keep the masks that agree with the item found in 3D
    (clipped to its box) and give the others no vote. Returns (masks, per photo whether its mask
    votes, the box the hull may not leave) or raises CaptureError with re-shoot advice."""
    if item is None:
        raise CaptureError(STAGE, f"The item could not be found in 3D: the outlines in the {poses.placed} photos "
                           "that were placed do not meet, and no item stands out at the centre of the photos.",
                           RESHOOT) from None
    if item.kept < max(3, cfg.locate_min_agree * item.placed):
        raise CaptureError(STAGE, f"The item could not be found consistently: only {item.kept} of the "
                           f"{item.placed} photos that were placed outline the item found in 3D.", RESHOOT) from None
    # The sparse points thin out at an item's edges (a chair's top rail): room beyond them.
    bound = grown(item.box, cfg.locate_room)
    out = list(masks)
    for i, cam in enumerate(poses.cameras):
        if item.keep[i]:
            out[i] = replace(masks[i], mask=fit_mask(masks[i].mask, cam) & box_silhouette(bound, item.frame, cam))
    return tuple(out), item.keep, bound


RESHOOT = ("Take 20-80 photos walking all around the item, keeping all of it in the middle of every photo, "
           "on a plain, uncluttered table.")


def fit_mask(mask: np.ndarray, cam) -> np.ndarray:
    """The mask at the camera's size (segmenters may work at another size)."""
    if mask.shape == (cam.height, cam.width):
        return mask.astype(bool)
    import cv2

    return cv2.resize(mask.astype(np.uint8), (cam.width, cam.height), interpolation=cv2.INTER_NEAREST) > 0
