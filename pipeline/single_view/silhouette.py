"""Silhouette measures and the revolve profile (helper of `single_view`). Pixel units throughout."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_AREA_PX = 200  # fewer object pixels than this is no object
KEEP_PIECE = 0.05  # mask pieces smaller than 5% of the biggest are segmentation noise
FILL_HOLE = 0.01  # holes smaller than 1% of the object area are noise, not real openings
END_SLOPE = 0.3  # |d radius / d row| below this: the end of the curved rim of a revolve profile
RIM_RATIO = 0.45  # a curved end shorter than this x its radius is a rim seen from above (< ~27 deg)
RIM_SIN = 0.26  # but only sin(15 deg) x radius of it is the rim ellipse (photos are taken near level);
# the rest of the curve is a real rounded edge and stays in the profile


@dataclass(frozen=True)
class Silhouette:
    """The cleaned object mask and the measures `choose_kind` uses."""

    mask: np.ndarray  # (H, W) bool, noise removed, real holes kept
    filled: np.ndarray  # (H, W) bool, all holes filled (the outer outline)
    bbox: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive) in pixels
    area: float  # object pixels (mask)
    rectangularity: float  # outline area / its min-area rectangle area
    rect_corners: np.ndarray  # (4, 2) min-area rectangle corners (x, y)
    frame_fill: float  # min-area rectangle area / photo area
    ellipse_fit: float  # IoU of the outline with its least-squares ellipse
    symmetry: float  # IoU of the outline with its mirror about `axis_x`
    axis_x: float  # vertical symmetry axis (pixel x)
    openings: float  # share of the outline's area that is real holes (gaps between chair legs)

    @property
    def width(self) -> int:
        return self.bbox[2] - self.bbox[0]

    @property
    def height(self) -> int:
        return self.bbox[3] - self.bbox[1]


def analyse(mask: np.ndarray) -> Silhouette | None:
    """Clean a (H, W) bool mask and measure its outline; None when there is no usable object."""
    import cv2

    m = mask.astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    if n < 2:
        return None
    areas = stats[1:, cv2.CC_STAT_AREA]
    if areas.max() < MIN_AREA_PX:
        return None
    keep = np.nonzero(areas >= KEEP_PIECE * areas.max())[0] + 1
    m = np.isin(labels, keep)

    # Holes: background pieces that do not touch the border.
    inv = np.pad(~m, 1, constant_values=True).astype(np.uint8)
    nb, blabels, bstats, _ = cv2.connectedComponentsWithStats(inv, connectivity=4)
    outside = blabels[0, 0]  # the padding ring joins everything that touches the border
    blabels = blabels[1:-1, 1:-1]
    hole_ids = np.setdiff1d(np.arange(1, nb), [outside])
    area = float(m.sum())
    small = hole_ids[bstats[hole_ids, cv2.CC_STAT_AREA] < FILL_HOLE * area]
    filled = m | np.isin(blabels, hole_ids)
    m = m | np.isin(blabels, small)
    area = float(m.sum())

    ys, xs = np.nonzero(filled)
    bbox = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    fu8 = filled.astype(np.uint8)
    contours, _ = cv2.findContours(fu8, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    pts = np.concatenate([c.reshape(-1, 2) for c in contours], 0).astype(np.float32)
    rect = cv2.minAreaRect(pts)
    # pixel centres lie half a pixel inside the outline: grow the rectangle to the pixel edges
    rect = (rect[0], (rect[1][0] + 1.0, rect[1][1] + 1.0), rect[2])
    filled_area = float(filled.sum())
    rect_area = max(1.0, rect[1][0] * rect[1][1])
    h, w = mask.shape

    biggest = max(contours, key=len)
    ellipse_fit = 0.0
    if len(biggest) >= 5:
        ell = cv2.fitEllipse(biggest)
        e = np.zeros_like(fu8)
        cv2.ellipse(e, ell, 1, -1)
        ellipse_fit = _iou(filled, e.astype(bool))

    axis_x = _axis(filled, bbox)
    return Silhouette(
        mask=m,
        filled=filled,
        bbox=bbox,
        area=area,
        rectangularity=min(1.0, filled_area / rect_area),
        rect_corners=cv2.boxPoints(rect).astype(np.float64),
        frame_fill=min(1.0, rect_area / float(h * w)),
        ellipse_fit=ellipse_fit,
        symmetry=_mirror_iou(filled, bbox, axis_x),
        axis_x=axis_x,
        openings=1.0 - area / max(filled_area, 1.0),
    )


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def _row_extents(filled: np.ndarray, bbox) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row of the bbox: leftmost and rightmost object pixel, and whether the row has any."""
    x0, y0, x1, y1 = bbox
    crop = filled[y0:y1, x0:x1]
    has = crop.any(1)
    left = np.argmax(crop, 1) + x0
    right = crop.shape[1] - 1 - np.argmax(crop[:, ::-1], 1) + x0
    return left.astype(float), right.astype(float), has


def _axis(filled: np.ndarray, bbox) -> float:
    left, right, has = _row_extents(filled, bbox)
    return float(np.median(((left + right) / 2.0)[has]))


def _mirror_iou(filled: np.ndarray, bbox, axis_x: float) -> float:
    import cv2

    x0, y0, x1, y1 = bbox
    pad = (x1 - x0) // 2 + 2
    crop = np.pad(filled[y0:y1, x0:x1], ((0, 0), (pad, pad))).astype(np.uint8)
    c = axis_x - x0 + pad
    m = np.float32([[-1, 0, 2 * c], [0, 1, 0]])
    mirrored = cv2.warpAffine(crop, m, (crop.shape[1], crop.shape[0]), flags=cv2.INTER_NEAREST)
    return _iou(crop.astype(bool), mirrored.astype(bool))


def revolve_profile(
    sil: Silhouette, rows: int, rim_sin: float | None = None
) -> tuple[float, np.ndarray, np.ndarray, list[str]]:
    """Radius per row of a revolved shape: (axis x, ys (R,) top to bottom, radii (R,), flattened ends).

    The radius of a row is its half-width about the axis, but a one-sided bump (a handle, a strap)
    only counts up to 10% beyond the other side. A short curved end is (partly) the rim of a circular
    end seen slightly from above or below, an ellipse in the photo: the profile ends flat at the
    ellipse centre (at most RIM_SIN x radius above the outline's end), so cylinders get flat bottoms
    instead of domes.
    """
    from scipy.ndimage import median_filter

    rim_sin = RIM_SIN if rim_sin is None else rim_sin
    x0, y0, x1, y1 = sil.bbox
    left, right, has = _row_extents(sil.filled, sil.bbox)
    ys = np.arange(y0, y1, dtype=float)
    ys, left, right = ys[has], left[has], right[has]
    axis = sil.axis_x
    half = (right - left + 1.0) / 2.0
    side = np.minimum(axis - left, right - axis) + 0.5
    radius = np.maximum(np.minimum(half, 1.1 * np.maximum(side, 0.0)), 0.5)
    if len(radius) >= 5:
        radius = median_filter(radius, size=3, mode="nearest")

    flattened: list[str] = []
    n = len(radius)
    k = max(2, int(round(0.01 * n)))
    top_px, bottom_px = ys[0] - 0.5, ys[-1] + 0.5
    lo, hi = 0, n - 1
    i = n - 1
    while i - k >= 0 and (radius[i - k] - radius[i]) / k > END_SLOPE:
        i -= 1
    if 0 < (n - 1 - i) <= RIM_RATIO * radius[i] and i > n // 2:
        hi = n - 1 - int(round(min(n - 1 - i, rim_sin * radius[i])))
        bottom_px = ys[hi]
        flattened.append("bottom")
    i = 0
    while i + k < n and (radius[i + k] - radius[i]) / k > END_SLOPE:
        i += 1
    if 0 < i <= RIM_RATIO * radius[i] and i < n // 2:
        lo = int(round(min(i, rim_sin * radius[i])))
        top_px = ys[lo]
        flattened.append("top")
    ys, radius = ys[lo : hi + 1], radius[lo : hi + 1]
    ys = ys.copy()
    ys[0], ys[-1] = top_px, bottom_px
    out_y = np.linspace(top_px, bottom_px, max(3, rows))
    return axis, out_y, np.interp(out_y, ys, radius), flattened
