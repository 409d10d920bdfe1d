"""Small torch rasteriser and image fill helpers, shared by the texture and export (poster) stages.

Pixel centres are at integer coordinates (the project's image convention). Rasterisation
enumerates each triangle's pixel bounding box in chunks, so its cost is the sum of the triangles'
bounding-box areas: fine for decimated meshes (<= 100k triangles) at <= 2048 px.
"""

from __future__ import annotations

import numpy as np
import torch

#: Candidate pixels handled per chunk (bounds peak memory at a few hundred MB).
_CHUNK = 3_000_000


def _candidates(xy: torch.Tensor, width: int, height: int):
    """Yield (face index, px, py) int64 tensors of the pixels inside each face's bounding box."""
    lo = torch.ceil(xy.amin(dim=1)).long()
    hi = torch.floor(xy.amax(dim=1)).long()
    lo[:, 0].clamp_(0, width)
    lo[:, 1].clamp_(0, height)
    hi[:, 0].clamp_(-1, width - 1)
    hi[:, 1].clamp_(-1, height - 1)
    w = (hi[:, 0] - lo[:, 0] + 1).clamp(min=0)
    h = (hi[:, 1] - lo[:, 1] + 1).clamp(min=0)
    n = w * h
    faces = torch.nonzero(n > 0).squeeze(1)
    if faces.numel() == 0:
        return
    counts = n[faces]
    ends = torch.cumsum(counts, 0)
    start = 0
    while start < faces.numel():
        # Take as many faces as fit in one chunk (at least one, however large).
        base = ends[start - 1] if start > 0 else torch.zeros((), dtype=torch.long, device=xy.device)
        stop = int(torch.searchsorted(ends, base + _CHUNK, right=True))
        stop = max(stop, start + 1)
        f = faces[start:stop]
        c = counts[start:stop]
        rep = torch.repeat_interleave(torch.arange(f.numel(), device=xy.device), c)
        offs = torch.cumsum(c, 0) - c
        k = torch.arange(int(c.sum()), device=xy.device) - offs[rep]
        fi = f[rep]
        px = lo[fi, 0] + k % w[fi]
        py = lo[fi, 1] + torch.div(k, w[fi], rounding_mode="floor")
        yield fi, px, py
        start = stop


def _edge_coefficients(xy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per face (F, 3, 3) affine maps pixel (x, y, 1) -> barycentrics, and a valid flag (F,)."""
    a, b, c = xy[:, 0], xy[:, 1], xy[:, 2]
    den = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1])
    ok = den.abs() > 1e-12
    inv = 1.0 / torch.where(ok, den, torch.ones_like(den))
    coef = torch.empty((xy.shape[0], 3, 3), dtype=xy.dtype, device=xy.device)
    # Barycentric of corner i is the edge function of the opposite edge (j, k), normalised.
    for i, (j, k) in enumerate(((1, 2), (2, 0), (0, 1))):
        pj, pk = xy[:, j], xy[:, k]
        coef[:, i, 0] = (pj[:, 1] - pk[:, 1]) * inv
        coef[:, i, 1] = (pk[:, 0] - pj[:, 0]) * inv
        coef[:, i, 2] = (pj[:, 0] * pk[:, 1] - pk[:, 0] * pj[:, 1]) * inv
    return coef, ok


def _barycentric(coef: torch.Tensor, ok: torch.Tensor, fi: torch.Tensor, px: torch.Tensor, py: torch.Tensor):
    """Barycentric coordinates (N, 3) of pixels in their faces, and an inside flag (N,)."""
    c = coef[fi]
    bary = c[:, :, 0] * px[:, None] + c[:, :, 1] * py[:, None] + c[:, :, 2]
    inside = ok[fi] & (bary.amin(dim=1) >= -1e-5)  # inclusive edges: no cracks between triangles
    return bary, inside


def rasterize(
    xy: torch.Tensor, width: int, height: int, depth: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rasterise triangles given in pixel coordinates.

    xy: (F, 3, 2) float pixel positions of each corner; depth: (F, 3) per-corner depth or None
    (then any covering face wins, fine for non-overlapping UV charts).
    Returns face index (H, W) int64 (-1 = empty), barycentrics (H, W, 3) float32 and depth (H, W)
    (inf where empty; zeros when `depth` is None). Only faces with all depths > 0 are drawn.
    """
    dev = xy.device
    face_id = torch.full((height * width,), -1, dtype=torch.long, device=dev)
    bary_out = torch.zeros((height * width, 3), dtype=torch.float32, device=dev)
    zbuf = torch.full((height * width,), float("inf"), dtype=torch.float32, device=dev)
    if depth is not None:
        keep = (depth > 0).all(dim=1)
        xy = torch.where(keep[:, None, None], xy, torch.full_like(xy, -1e9))
    coef, ok = _edge_coefficients(xy)
    for fi, px, py in _candidates(xy, width, height):
        bary, inside = _barycentric(coef, ok, fi, px.to(xy.dtype), py.to(xy.dtype))
        fi, bary = fi[inside], bary[inside]
        pix = (py[inside] * width + px[inside]).long()
        if depth is None:
            face_id[pix] = fi
            bary_out[pix] = bary.float()
            continue
        z = (bary * depth[fi]).sum(1).float()
        zbuf.scatter_reduce_(0, pix, z, reduce="amin")
        win = z <= zbuf[pix]
        face_id[pix[win]] = fi[win]
        bary_out[pix[win]] = bary[win].float()
    if depth is None:
        zbuf.zero_()
    return face_id.view(height, width), bary_out.view(height, width, 3), zbuf.view(height, width)


def push_pull(image: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Fill invalid pixels of a float image (H, W, C) smoothly from valid ones (pyramid push-pull).

    Valid pixels are returned unchanged; holes get a smooth blend of the nearest valid colours.
    """
    import cv2

    img = image.astype(np.float32) * valid[..., None]
    w = valid.astype(np.float32)
    levels = [(img, w)]
    while min(img.shape[:2]) > 1:
        h2, w2 = max(1, (img.shape[0] + 1) // 2), max(1, (img.shape[1] + 1) // 2)
        img = cv2.resize(img, (w2, h2), interpolation=cv2.INTER_AREA)
        w = cv2.resize(w, (w2, h2), interpolation=cv2.INTER_AREA)
        if img.ndim == 2:
            img = img[..., None]
        levels.append((img, w))
    # Pull: from coarse to fine, normalise by coverage and fill the holes of each finer level.
    img, w = levels[-1]
    filled = img / np.maximum(w, 1e-8)[..., None]
    for img, w in reversed(levels[:-1]):
        up = cv2.resize(filled, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_LINEAR)
        if up.ndim == 2:
            up = up[..., None]
        cov = np.clip(w, 0, 1)[..., None]
        filled = img / np.maximum(w, 1e-8)[..., None] * cov + up * (1 - cov)
        filled = np.where(w[..., None] > 0, filled, up)
    return np.where(valid[..., None], image, filled).astype(np.float32)
