"""Voting visual hull as a continuous field, voxel grids and silhouette rendering (torch, any device).

The hull is not a binary carve: each view contributes the signed distance of a point's projection
to its mask outline (pixels, positive outside), converted to scene units at the point's depth. The
hull value is the (k+1)-th largest of these over the views that see the point, k = the number of
views allowed to disagree, so a few bad masks cannot remove real parts or add background. The zero
level set is then placed with sub-voxel accuracy by marching cubes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..geom import project, project_torch
from ..types import Camera
from .config import DenseConfig


@dataclass(frozen=True)
class Grid:
    """Regular voxel grid in a box aligned with gravity: world = origin + (ijk * voxel) @ axes."""

    origin: np.ndarray  # (3,) world position of voxel (0, 0, 0)'s centre
    axes: np.ndarray  # (3, 3) rows: world directions of the grid's i, j, k axes (j = up)
    voxel: float  # edge length, scene units
    shape: tuple[int, int, int]

    def centres(self, device) -> "torch.Tensor":
        """(nx*ny*nz, 3) float32 world centres, C order (i slowest)."""
        ii = [torch.arange(n, device=device, dtype=torch.float32) * self.voxel for n in self.shape]
        g = torch.stack(torch.meshgrid(*ii, indexing="ij"), dim=-1).reshape(-1, 3)
        axes = torch.as_tensor(self.axes, dtype=torch.float32, device=device)
        return g @ axes + torch.as_tensor(self.origin, dtype=torch.float32, device=device)

    def to_world(self, ijk: np.ndarray) -> np.ndarray:
        """Continuous voxel coordinates (N, 3) -> world (N, 3) float64."""
        return self.origin + (np.asarray(ijk, float) * self.voxel) @ self.axes


def make_grid(lo: np.ndarray, hi: np.ndarray, axes: np.ndarray, frame_origin: np.ndarray, longest: int,
              voxel: float | None = None) -> Grid:
    """Grid covering the box [lo, hi] given in the local frame (world = frame_origin + local @ axes),
    `longest` voxels along its longest side unless the `voxel` size is given."""
    size = np.maximum(hi - lo, 1e-9)
    voxel = float(size.max() / (longest - 1)) if voxel is None else voxel
    shape = tuple(int(np.ceil(s / voxel)) + 1 for s in size)
    return Grid(frame_origin + lo @ axes, axes, voxel, shape)  # type: ignore[arg-type]


class Views:
    """The placed cameras as stacked torch tensors (full-resolution pixels)."""

    def __init__(self, cams: list[Camera], device):
        f32 = dict(dtype=torch.float32, device=device)
        self.cams = cams
        self.R = torch.as_tensor(np.stack([c.R for c in cams]), **f32)
        self.t = torch.as_tensor(np.stack([c.t for c in cams]), **f32)
        self.K = torch.as_tensor(np.stack([c.K for c in cams]), **f32)
        self.W = torch.as_tensor([c.width for c in cams], **f32)
        self.H = torch.as_tensor([c.height for c in cams], **f32)

    def __len__(self) -> int:
        return len(self.cams)

    def project(self, x):
        """World points (N, 3) -> pixels (V, N, 2), depth (V, N), inside-image flag (V, N)."""
        uv, z = project_torch(self.K, self.R, self.t, x)
        u, v = uv[..., 0], uv[..., 1]
        inside = (z > 1e-9) & (u >= -0.5) & (v >= -0.5) & (u <= self.W[:, None] - 0.5) & (v <= self.H[:, None] - 0.5)
        return uv, z, inside

    def project_one(self, x, j: int):
        """World points (N, 3) -> pixels (N, 2), depth (N,), inside flag (N,) in view j."""
        uv, z = project_torch(self.K[j], self.R[j], self.t[j], x)
        u, v = uv[:, 0], uv[:, 1]
        inside = (z > 1e-9) & (u >= -0.5) & (v >= -0.5) & (u <= self.W[j] - 0.5) & (v <= self.H[j] - 0.5)
        return uv, z, inside


def sample_maps(maps, uv, scale: float, mode: str = "bilinear"):
    """Sample per-view maps (V, C, h, w) at full-resolution pixels uv (V, N, 2) -> (V, C, N).

    Maps hold each view at `scale` times its full size, top-left aligned (integer pixel centres)."""
    h, w = maps.shape[-2:]
    gx = ((uv[..., 0] + 0.5) * scale - 0.5) / max(w - 1, 1) * 2 - 1
    gy = ((uv[..., 1] + 0.5) * scale - 0.5) / max(h - 1, 1) * 2 - 1
    grid = torch.stack([gx, gy], dim=-1)[:, None]
    out = torch.nn.functional.grid_sample(maps, grid, mode=mode, padding_mode="border", align_corners=True)
    return out[:, :, 0]


def reduced_sizes(sizes: list[tuple[int, int]], long_side: int) -> tuple[float, list[tuple[int, int]], tuple[int, int]]:
    """One reduction factor for all views (so maps stack), the per-view (w, h) and the canvas (w, h)."""
    s = min(1.0, long_side / max(max(w, h) for w, h in sizes))
    per = [(max(8, round(w * s)), max(8, round(h * s))) for w, h in sizes]
    return s, per, (max(w for w, _ in per), max(h for _, h in per))


def mask_distance_maps(masks: list[np.ndarray], long_side: int) -> tuple[np.ndarray, float]:
    """Signed distance to the mask outline, (V, 1, h, w) float32 in full-resolution pixels
    (negative inside), computed at reduced size; also returns the reduction factor."""
    import cv2

    s, per, (cw, ch) = reduced_sizes([(m.shape[1], m.shape[0]) for m in masks], long_side)
    out = np.full((len(masks), 1, ch, cw), 1e4, np.float32)
    for i, (m, (w, h)) in enumerate(zip(masks, per)):
        small = cv2.resize(m.astype(np.uint8) * 255, (w, h), interpolation=cv2.INTER_AREA) >= 128
        inside = cv2.distanceTransform(small.astype(np.uint8), cv2.DIST_L2, 5)
        outside = cv2.distanceTransform((~small).astype(np.uint8), cv2.DIST_L2, 5)
        # An all-object (or empty) mask has no outline: OpenCV then returns huge distances, so cap
        # them at the same 1e4 px that pads the canvas.
        inside, outside = np.minimum(inside, 1e4 * s), np.minimum(outside, 1e4 * s)
        out[i, 0, :h, :w] = np.where(small, 0.5 - inside, outside - 0.5) / s
    return out, s


def mask_maps(masks: list[np.ndarray], long_side: int) -> np.ndarray:
    """(V, 1, h, w) float32 masks (1 = set) at the same reduced size as `mask_distance_maps`."""
    import cv2

    s, per, (cw, ch) = reduced_sizes([(m.shape[1], m.shape[0]) for m in masks], long_side)
    out = np.zeros((len(masks), 1, ch, cw), np.float32)
    for i, (m, (w, h)) in enumerate(zip(masks, per)):
        out[i, 0, :h, :w] = cv2.resize(m.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
    return out


def hull_field(views: Views, dist_maps, scale: float, points, tolerance: float, max_bad: int, far_value: float,
               chunk: int, snap_px: float = 0.0, snap_maps=None, voters=None):
    """Voting hull value at world points (N, 3): scene units, negative inside. (N,) tensor.

    A point seen by fewer than 3 views counts as outside (it cannot be confirmed).

    `snap_px` > 0: near the voted surface (within snap_px inside it), a single view that sees the
    point outside its mask by at most snap_px carves it. The vote needs several views to agree,
    but a smooth side is seen edge-on by only a few, so the vote leaves it bulging by a few
    pixels; one view's small disagreement there is the outline, not a segmentation error. A bad
    mask's bite or blob is far bigger, and deep inside the item no single view carves at all.
    `snap_maps` (V, 1, h, w), like `dist_maps`: where a view may snap (1) or not (0); None: everywhere.
    `voters` (V,) bool tensor: the views whose masks vote (a mask that disagrees with the item
    found in 3D has none: it counts as not seeing the point); None: all."""
    out = torch.empty(points.shape[0], dtype=torch.float32, device=points.device)
    for s in range(0, points.shape[0], chunk):
        x = points[s : s + chunk]
        uv, z, inside = views.project(x)
        if voters is not None:
            inside = inside & voters[:, None]
        d_px = sample_maps(dist_maps, uv, scale)[:, 0]  # (V, N) pixels
        per_px = z / views.K[:, 0, 0, None]  # scene units per pixel at the point's depth
        d = torch.where(inside, d_px * per_px, torch.full_like(d_px, -float("inf")))
        ordered, _ = torch.sort(d, dim=0, descending=True)
        n_vote = inside.sum(dim=0)
        # Few disagreeing views are allowed even with many views: a flat face is carved only by the
        # couple of views that see it edge-on.
        k = torch.floor(n_vote.float() * tolerance).long().clamp(max=min(max_bad, len(views) - 1))
        val = ordered.gather(0, k[None])[0]
        if snap_px > 0:
            small = inside & (d_px > 0) & (d_px <= snap_px)
            if snap_maps is not None:
                small &= sample_maps(snap_maps, uv, scale)[:, 0] > 0.5
            snap = torch.where(small, d, torch.full_like(d, -float("inf"))).max(dim=0).values
            unit = torch.where(inside, per_px, torch.zeros_like(per_px)).sum(0) / n_vote.clamp_min(1)
            val = torch.where(val > -snap_px * unit, torch.maximum(val, snap), val)
        val = torch.where(n_vote >= 3, val, torch.full_like(val, far_value))
        out[s : s + chunk] = val
    return out


class HullVote:
    """The voting hull of one pass on any grid: the views, their masks' distance maps and the
    vote's settings, with the table cut applied (the table is never part of the item)."""

    def __init__(self, views: Views, dist_maps, scale: float, cfg: DenseConfig, device,
                 ground_y: float | None, centre: np.ndarray, up: np.ndarray, snap_maps=None, voters=None):
        self.views, self.dist, self.scale, self.cfg, self.device = views, dist_maps, scale, cfg, device
        self.ground_y, self.centre, self.up, self.snap_maps = ground_y, centre, up, snap_maps
        self.voters = voters  # (V,) bool tensor or None, see hull_field

    def at(self, points, grid: Grid):
        """(N,) hull values at world points (N, 3) tensor, with the pass's tolerance and snapping."""
        cfg = self.cfg
        return hull_field(self.views, self.dist, self.scale, points, cfg.vote_tolerance, cfg.max_bad_views,
                          grid.voxel * 10, cfg.chunk, cfg.snap_px, self.snap_maps, self.voters)

    def loose(self, grid: Grid):
        """(nx, ny, nz) field of the loose vote that thin parts may reach: inside where at least
        `thin_share` of the views' masks hold the point."""
        cfg = self.cfg
        val = hull_field(self.views, self.dist, self.scale, grid.centres(self.device), 1.0 - cfg.thin_share,
                         len(self.views), grid.voxel * 10, cfg.chunk, voters=self.voters)
        return self.cut(val.reshape(grid.shape), grid)

    def on_grid(self, grid: Grid, band: bool = False):
        """(nx, ny, nz) hull field on `grid`. `band`: exact values only near the surface of a
        half-resolution pass (8x fewer views x voxels), interpolated elsewhere."""
        if not band:
            return self.cut(self.at(grid.centres(self.device), grid).reshape(grid.shape), grid)
        half = Grid(grid.origin, grid.axes, 2 * grid.voxel, tuple((n + 2) // 2 for n in grid.shape))
        coarse_val = self.on_grid(half)
        full = [2 * (n - 1) + 1 for n in half.shape]
        val = torch.nn.functional.interpolate(coarse_val[None, None], size=full, mode="trilinear",
                                              align_corners=True)[0, 0]
        val = val[: grid.shape[0], : grid.shape[1], : grid.shape[2]].contiguous().reshape(-1)
        near = val.abs() < 4 * grid.voxel
        val[near] = self.at(grid.centres(self.device)[near], grid)
        return self.cut(val.reshape(grid.shape), grid)

    def cut(self, val, grid: Grid):
        """`val` (nx, ny, nz) with everything below just above the table set outside."""
        if self.ground_y is None:
            return val
        y = torch.arange(grid.shape[1], device=self.device, dtype=torch.float32) * grid.voxel
        y = y + float((grid.origin - self.centre) @ self.up)
        return torch.maximum(val, (self.ground_y + 0.25 * grid.voxel - y)[None, :, None])


def render_silhouettes(vertices: np.ndarray, faces: np.ndarray, cams: list[Camera], long_side: int = 100000
                       ) -> list[np.ndarray]:
    """(H, W) bool silhouette of a closed triangle mesh (outward faces) in each camera, drawn at
    most `long_side` px wide and scaled up smoothly to the camera's size.

    The silhouette is the union of the front-facing faces, splatted as barycentric point grids
    finer than 0.7 px (cv2.fillPoly would XOR overlapping faces); the rare faces too big for the
    grid are filled one by one."""
    import cv2

    tri3 = vertices[faces]
    normals = np.cross(tri3[:, 1] - tri3[:, 0], tri3[:, 2] - tri3[:, 0])
    out = []
    for cam in cams:
        facing = np.einsum("ij,ij->i", normals, tri3[:, 0] - cam.center) < 0
        uv, z = project(cam, vertices)
        sc = min(1.0, long_side / max(cam.width, cam.height))
        width, height = round(cam.width * sc), round(cam.height * sc)
        uv = (uv + 0.5) * sc - 0.5
        facing &= np.all(z[faces] > 0, axis=1)
        tri = uv[faces[facing]].astype(np.float32)  # (F, 3, 2)
        mask = np.zeros((height, width), np.uint8)
        if len(tri) == 0:
            out.append(np.zeros((cam.height, cam.width), bool))
            continue
        edge = np.linalg.norm(tri - np.roll(tri, 1, axis=1), axis=2).max(axis=1)
        n = int(min(12, max(1, np.ceil(np.quantile(edge, 0.99) / 0.7))))
        a, b = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
        keep = (a + b) <= n
        bary = (np.stack([a[keep], b[keep], n - a[keep] - b[keep]], axis=1) / n).astype(np.float32)
        small = edge <= 0.7 * n + 1e-6
        flat = mask.reshape(-1)
        for s in range(0, int(small.sum()), 50000):
            pts = np.rint(np.matmul(bary[None], tri[small][s : s + 50000])).astype(np.int64).reshape(-1, 2)
            ok = (pts[:, 0] >= 0) & (pts[:, 1] >= 0) & (pts[:, 0] < width) & (pts[:, 1] < height)
            flat[pts[ok, 1] * width + pts[ok, 0]] = 1
        for t in tri[~small]:
            cv2.fillConvexPoly(mask, np.round(t * 4).astype(np.int32), 1, lineType=cv2.LINE_8, shift=2)
        if sc < 1.0:
            mask = cv2.resize(mask * 255, (cam.width, cam.height), interpolation=cv2.INTER_LINEAR) >= 128
        out.append(mask.astype(bool))
    return out
