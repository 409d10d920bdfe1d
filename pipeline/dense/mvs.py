"""Photo-consistency for the dense stage: plane-sweep depth maps (ZNCC) inside the hull, a
geometric consistency check between views, and TSDF fusion into the hull's voxel grid.

Depth hypotheses are spread per pixel between the hull's front and back depths at that pixel, so
thin parts get fine depth steps and background can never be chosen. Everything is torch on the
given device, float32, one reference view at a time (memory ~ planes x pixels).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..types import Camera
from .hull import Views, reduced_sizes


def gray_images(rgbs: list[np.ndarray], long_side: int, device):
    """(V, 1, h, w) float32 grey images in [0, 1] at reduced size, and the reduction factor."""
    import cv2

    s, per, (cw, ch) = reduced_sizes([(im.shape[1], im.shape[0]) for im in rgbs], long_side)
    out = np.zeros((len(rgbs), 1, ch, cw), np.float32)
    for i, (im, (w, h)) in enumerate(zip(rgbs, per)):
        out[i, 0, :h, :w] = cv2.resize(cv2.cvtColor(im, cv2.COLOR_RGB2GRAY), (w, h), interpolation=cv2.INTER_AREA)
    return torch.as_tensor(out, device=device) / 255.0, s


def scaled_views(views: Views, s: float, device) -> Views:
    """The same cameras with intrinsics for images reduced by factor s (integer pixel centres)."""
    from ..types import Camera

    cams = []
    for c in views.cams:
        w, h = max(8, round(c.width * s)), max(8, round(c.height * s))
        k = c.K.copy()
        k[:2] *= s
        k[0, 2] = (c.K[0, 2] + 0.5) * s - 0.5
        k[1, 2] = (c.K[1, 2] + 0.5) * s - 0.5
        cams.append(Camera(k, c.R, c.t, w, h))
    return Views(cams, device)


def choose_neighbours(cams: Sequence[Camera], centre: np.ndarray, count: int) -> list[list[int]]:
    """Per camera, the `count` cameras whose rays to the object centre differ by closest to 15 deg
    (5-45 deg allowed): enough parallax for depth, similar enough to match patches."""
    dirs = np.array([c.center - centre for c in cams])
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    ang = np.degrees(np.arccos(np.clip(dirs @ dirs.T, -1, 1)))
    out = []
    for i in range(len(dirs)):
        order = np.argsort(np.abs(ang[i] - 15.0))
        good = [j for j in order if j != i and 5.0 <= ang[i, j] <= 45.0]
        out.append(good[:count])
    return out


def hull_depth_range(views: Views, surface, margin: float, canvas: tuple[int, int]):
    """Per-view (V, h, w) near/far depth of the hull from its surface voxel centres (M, 3),
    splatted to 2x2 pixels and widened by `margin` scene units; near = inf where no hull."""
    V = len(views)
    w, h = canvas
    near = torch.full((V, h * w), float("inf"), device=surface.device)
    far = torch.full((V, h * w), -float("inf"), device=surface.device)
    uv, z, seen = views.project(surface)
    for du in (0, 1):
        for dv in (0, 1):
            u = torch.floor(uv[..., 0]).long() + du
            v = torch.floor(uv[..., 1]).long() + dv
            ok = seen & (u >= 0) & (v >= 0) & (u < w) & (v < h)
            idx = torch.where(ok, v * w + u, torch.zeros_like(u))
            zz = torch.where(ok, z, torch.full_like(z, float("inf")))
            near.scatter_reduce_(1, idx, zz, reduce="amin")
            zz = torch.where(ok, z, torch.full_like(z, -float("inf")))
            far.scatter_reduce_(1, idx, zz, reduce="amax")
    near = (near - margin).reshape(V, h, w)
    far = (far + margin).reshape(V, h, w)
    return near, far


def _box(x, r: int, border: str = "shrink"):
    """Mean over (2r+1)^2 windows of images x (N, 1, h, w). At the image border the window
    shrinks ("shrink") or the image is mirrored without repeating its edge ("reflect", as
    OpenCV's box filter does)."""
    if border == "reflect":
        x = torch.nn.functional.pad(x, (r, r, r, r), mode="reflect")
        return torch.nn.functional.avg_pool2d(x, 2 * r + 1, stride=1)
    return torch.nn.functional.avg_pool2d(x, 2 * r + 1, stride=1, padding=r, count_include_pad=False)


def window_stats(x, radius: int, border: str = "shrink"):
    """Mean and variance of images x (N, 1, h, w) over (2r+1)^2 windows (see _box for `border`)."""
    mean = _box(x, radius, border)
    return mean, (_box(x * x, radius, border) - mean * mean).clamp_min(0)


def zncc(ref, other, radius: int, ref_stats=None, border: str = "shrink"):
    """Windowed zero-mean normalised cross-correlation of images (N, 1, h, w), in [-1, 1].

    The one ZNCC of the geometry stage: it ignores a patch's brightness and contrast (exposure,
    a shadow), so it compares texture alone. `ref_stats`: `window_stats(ref, radius, border)`."""
    mr, var_r = ref_stats if ref_stats is not None else window_stats(ref, radius, border)
    mn, var_n = window_stats(other, radius, border)
    cov = _box(other * ref, radius, border) - mn * mr
    return cov / (var_r * var_n + 1e-6).sqrt()


def plane_sweep(gray, views: Views, ref: int, nbrs: list[int], near, far, planes: int, radius: int,
                min_std: float):
    """Depth (h, w) and ZNCC score (h, w) of view `ref`; depth 0 where no hull or no texture.

    Each hypothesis is scored against every neighbour; the mean of the best half of the
    neighbours is kept, which tolerates occlusion in the others."""
    h, w = gray.shape[-2:]
    valid = torch.isfinite(near[ref]) & torch.isfinite(far[ref])
    zero = torch.zeros((h, w), device=gray.device)
    if not valid.any() or not nbrs:
        return zero, zero
    ys, xs = torch.nonzero(valid, as_tuple=True)
    y0, y1 = max(int(ys.min()) - radius, 0), min(int(ys.max()) + radius + 1, h)
    x0, x1 = max(int(xs.min()) - radius, 0), min(int(xs.max()) + radius + 1, w)
    n0 = torch.where(valid, near[ref], zero)[y0:y1, x0:x1].clamp_min(1e-6)
    f0 = torch.where(valid, far[ref], zero)[y0:y1, x0:x1]
    f0 = torch.maximum(f0, n0)
    frac = torch.linspace(0, 1, planes, device=gray.device)[:, None, None]
    depth = n0[None] + (f0 - n0)[None] * frac  # (D, hh, ww)
    vv, uu = torch.meshgrid(torch.arange(y0, y1, device=gray.device, dtype=torch.float32),
                            torch.arange(x0, x1, device=gray.device, dtype=torch.float32), indexing="ij")
    K, R, t = views.K[ref], views.R[ref], views.t[ref]
    ray = torch.stack([(uu - K[0, 2]) / K[0, 0], (vv - K[1, 2]) / K[1, 1], torch.ones_like(uu)], dim=-1)
    cam_pts = depth[..., None] * ray[None]  # (D, hh, ww, 3)
    world = (cam_pts - t) @ R  # R^T (x - t), row-vector form

    ref_img = gray[ref : ref + 1, :, y0:y1, x0:x1]
    ref_stats = window_stats(ref_img, radius)
    var_r = ref_stats[1]
    textured = var_r[0, 0].sqrt() > min_std
    D, hh, ww = depth.shape
    scores = []
    for j in nbrs:
        uv, z, inside = views.project_one(world.reshape(-1, 3), j)
        gx = uv[:, 0] / (w - 1) * 2 - 1
        gy = uv[:, 1] / (h - 1) * 2 - 1
        grid = torch.stack([gx, gy], dim=-1).reshape(1, D * hh, ww, 2)
        warped = torch.nn.functional.grid_sample(gray[j : j + 1], grid, mode="bilinear", padding_mode="border",
                                                 align_corners=True).reshape(D, 1, hh, ww)
        ncc = zncc(ref_img, warped, radius, ref_stats)
        ncc = torch.where(inside.reshape(D, 1, hh, ww), ncc, torch.full_like(ncc, -1.0))
        scores.append(ncc[:, 0])
    s = torch.stack(scores)  # (N, D, hh, ww)
    keep = max(1, (len(nbrs) + 1) // 2)
    s = torch.topk(s, keep, dim=0).values.mean(dim=0)  # (D, hh, ww)
    best, k = s.max(dim=0)
    # Parabolic sub-plane refinement of the best hypothesis.
    km, kp = (k - 1).clamp_min(0), (k + 1).clamp_max(D - 1)
    sm, sp = s.gather(0, km[None])[0], s.gather(0, kp[None])[0]
    den = sm - 2 * best + sp
    off = torch.where(den < -1e-6, 0.5 * (sm - sp) / den, torch.zeros_like(den)).clamp(-0.5, 0.5)
    off = torch.where((k > 0) & (k < D - 1), off, torch.zeros_like(off))
    d = n0 + (f0 - n0) * (k.float() + off) / max(D - 1, 1)
    ok = valid[y0:y1, x0:x1] & textured
    out_d, out_s = zero.clone(), zero.clone()
    out_d[y0:y1, x0:x1] = torch.where(ok, d, torch.zeros_like(d))
    out_s[y0:y1, x0:x1] = torch.where(ok, best, torch.zeros_like(best))
    return out_d, out_s


def consistency_filter(depths, views: Views, nbrs: list[list[int]], rel_tol: float, min_agree: int):
    """Zero out depth pixels that fewer than `min_agree` neighbour depth maps confirm (V, h, w)."""
    V, h, w = depths.shape
    vv, uu = torch.meshgrid(torch.arange(h, device=depths.device, dtype=torch.float32),
                            torch.arange(w, device=depths.device, dtype=torch.float32), indexing="ij")
    out = depths.clone()
    for i in range(V):
        d = depths[i]
        ok = d > 0
        if not ok.any() or not nbrs[i]:
            out[i] = 0
            continue
        K, R, t = views.K[i], views.R[i], views.t[i]
        cam = torch.stack([(uu[ok] - K[0, 2]) / K[0, 0] * d[ok], (vv[ok] - K[1, 2]) / K[1, 1] * d[ok], d[ok]], dim=-1)
        world = (cam - t) @ R
        uv, z, inside = views.project(world)
        agree = torch.zeros(world.shape[0], device=depths.device)
        for j in nbrs[i]:
            u = uv[j, :, 0].round().long().clamp(0, w - 1)
            v = uv[j, :, 1].round().long().clamp(0, h - 1)
            dj = depths[j, v, u]
            agree += (inside[j] & (dj > 0) & ((dj - z[j]).abs() < rel_tol * z[j])).float()
        keep = torch.zeros_like(ok)
        keep[ok] = agree >= min_agree
        out[i] = torch.where(keep, d, torch.zeros_like(d))
    return out


def fuse_tsdf(depths, views: Views, points, trunc: float, chunk: int):
    """Per point (N,): truncated signed distance (positive in front of the observed surface)
    summed over the views that see the point free or near their surface, the number of those
    views, and the number of views that see a surface in front of the point (hidden there)."""
    V, h, w = depths.shape
    tsum = torch.zeros(points.shape[0], device=points.device)
    wsum = torch.zeros(points.shape[0], device=points.device)
    hidden = torch.zeros(points.shape[0], device=points.device)
    for s in range(0, points.shape[0], chunk):
        uv, z, inside = views.project(points[s : s + chunk])
        u = uv[..., 0].round().long().clamp(0, w - 1)
        v = uv[..., 1].round().long().clamp(0, h - 1)
        vi = torch.arange(V, device=points.device)[:, None].expand_as(u)
        d = depths[vi, v, u]
        sdf = d - z
        upd = inside & (d > 0) & (sdf > -trunc)
        val = (sdf / trunc).clamp(-1, 1)
        tsum[s : s + chunk] = torch.where(upd, val, torch.zeros_like(val)).sum(dim=0)
        wsum[s : s + chunk] = upd.float().sum(dim=0)
        hidden[s : s + chunk] = (inside & (d > 0) & (sdf <= -trunc)).float().sum(dim=0)
    return tsum, wsum, hidden


def carve_with_photos(photos, placed, views, grid, hull, centre, cfg, device, tick):
    """Hull field (nx, ny, nz) -> field with the concavities the depth maps show carved out.
    `cfg`: the dense stage's DenseConfig; `placed`: indices of the photos behind `views`."""
    gray, s = gray_images([photos[i].rgb for i in placed], cfg.depth_long_side, device)
    lviews = scaled_views(views, s, device)
    inside = hull < 0
    # Surface voxels: inside, with an outside 6-neighbour.
    outside = (~inside).float()[None, None]
    grown = torch.nn.functional.max_pool3d(outside, 3, stride=1, padding=1)[0, 0] > 0
    surface = grid.centres(device)[(inside & grown).reshape(-1)]
    canvas = (gray.shape[-1], gray.shape[-2])
    near, far = hull_depth_range(lviews, surface, grid.voxel, canvas)
    nbrs = choose_neighbours(views.cams, centre, cfg.neighbours)
    depths = torch.zeros((len(views), canvas[1], canvas[0]), device=device)
    for r in range(len(views)):
        d, score = plane_sweep(gray, lviews, r, nbrs[r], near, far, cfg.planes, cfg.ncc_radius,
                               cfg.min_texture)
        depths[r] = torch.where(score >= cfg.min_score, d, torch.zeros_like(d))
        tick(0.15 + 0.65 * (r + 1) / len(views), f"Checking the shape against photo {r + 1} of {len(views)}")
    depths = consistency_filter(depths, lviews, nbrs, cfg.consistency, cfg.min_agree)
    trunc = cfg.trunc_voxels * grid.voxel
    flat = hull.reshape(-1)
    near_hull = flat < trunc  # voxels well outside the hull stay outside whatever the TSDF says
    pts = grid.centres(device)[near_hull]
    tsum, wsum, hid = fuse_tsdf(depths, lviews, pts, trunc, cfg.chunk)
    sums = torch.zeros((3, flat.shape[0]), device=flat.device)
    sums[0, near_hull], sums[1, near_hull], sums[2, near_hull] = tsum, wsum, hid
    # Light 3x3x3 smoothing of the sums keeps single-view noise from pitting the surface.
    ts, ws, hid = torch.nn.functional.avg_pool3d(sums.reshape(3, 1, *grid.shape), 3, stride=1, padding=1)[:, 0]
    tsdf = ts / ws.clamp_min(1e-6) * trunc
    # Inside a solid part every view sees a surface in front of the voxel and only a stray wrong
    # depth says "empty"; inside a real concavity a good share of the views look into it.
    seen = (ws >= cfg.min_observations) & (ws >= cfg.min_free_share * (ws + hid))
    field = torch.where(seen, torch.maximum(hull, tsdf), hull)
    # Carved space must open to the outside: a pocket sealed inside the item is a wrong depth
    # (a reflection on a glossy top looks like a surface behind the real one), so refill it.
    sealed = torch.as_tensor(_sealed(field.cpu().numpy() >= 0), device=field.device)
    return torch.where(sealed & (hull < 0), hull, field)


def _sealed(empty: np.ndarray) -> np.ndarray:
    """Empty voxels not connected to the grid's border (enclosed pockets)."""
    from scipy import ndimage

    labels, n = ndimage.label(empty)
    if n == 0:
        return np.zeros_like(empty)
    border = np.unique(np.concatenate([labels[[0, -1]].ravel(), labels[:, [0, -1]].ravel(), labels[:, :, [0, -1]].ravel()]))
    return (labels > 0) & ~np.isin(labels, border)
