"""Dense multi-view geometry: photos + rough masks + SfM poses -> watertight Shape + carved masks.

Method (torch, same code on any device):
1. Gravity from the table plane among the sparse points (RANSAC), else from the camera ring.
2. A voting visual hull as a continuous field (see hull.py): a few wrong 2D masks cannot add
   background or remove real parts. A coarse pass finds the object's box, a fine pass fills it.
3. Plane-sweep ZNCC depth maps inside the hull's depth range, checked between neighbouring views
   and fused as a TSDF; where enough views saw empty space inside the hull (a chair seat between
   its arms, the inside of a bowl) it is carved away (see mvs.py).
4. Thin parts the vote dropped (a wire handle, an antenna) put back where enough masks hold them
   and their colour agrees across the photos (see thin.py).
5. Cut at the table plane, marching cubes on the padded field (watertight), and the mesh projected
   back into every photo as the new, multi-view-consistent masks.
6. Those masks snapped to each photo's edges (see refine.py; outline pixels whose texture
   lies on the table plane, a contact shadow, are background) and steps 2-5 once more, with a
   stricter vote in which a single view may also trim the surface by a few pixels.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Sequence

import numpy as np

from ..errors import CaptureError, InputError, OutlinesDisagree
from ..types import Mask, Photo, Poses, Shape
from .config import STAGE, DenseConfig


def reconstruct_dense(
    photos: Sequence[Photo],
    masks: Sequence[Mask],
    poses: Poses,
    cfg: DenseConfig,
    device: str,
    progress: Callable[[float, str], None] | None = None,
) -> tuple[Shape, tuple[Mask, ...]]:
    """Watertight Shape (SfM frame, kind "scan", outward normals, no floor) and one carved Mask per photo.

    When the outlines from the 2D masks do not agree in 3D (an item that fills the frame, a scene
    rather than a product on a table), it retries once with a central region of every photo as
    the outline, the one thing all the photos agree on, and lets the photo-consistency carving
    shape the model; with fewer than `cfg.min_scene_photos` placed it raises CaptureError instead.
    """
    first = _sub(progress, 0.0, 0.6 if cfg.refine else 1.0)
    try:
        shape, carved, table = _reconstruct(photos, masks, poses, cfg, device, first)
    except OutlinesDisagree:
        if poses.placed < cfg.min_scene_photos:
            raise CaptureError(STAGE, f"The item could not be found consistently in the {poses.placed} photos "
                               "that were placed.", "Take 20-80 photos walking all around the item, keeping all of "
                               "it in the middle of every photo.") from None
        central = tuple(_central_mask(p) for p in photos)
        # No thin parts: every photo "holds" the whole centre, so the room around the item would
        # pass (a real scene is photo-consistent).
        shape, carved, _ = _reconstruct(photos, central, poses, replace(cfg, thin_share=0.0), device, first)
        note = ("The item's outline could not be found consistently in the photos, so the model was shaped from "
                "the photos' depth around their centre; it may include some surroundings.")
        # The outline is a guess here: sharpening it against the photos would make it look sure.
        return replace(shape, warnings=shape.warnings + (note,)), carved
    if not cfg.refine:
        return shape, carved
    from .refine import band_px, outline_band, refine_masks, snap_allowed, table_pixels

    if progress is not None:
        progress(0.6, "Sharpening the outlines in every photo")
    tables = None
    if table is not None and cfg.table_rise > 0:
        up, offset, scale = table
        near = [outline_band(m.mask, band_px(p, cfg.refine_band)) if c is not None else None
                for p, m, c in zip(photos, carved, poses.cameras)]
        tables = table_pixels(photos, poses.cameras, near, up, offset, cfg.table_rise * scale)
    sharp = refine_masks(photos, carved, [c is not None for c in poses.cameras], cfg.refine_band, tables)
    strict = replace(cfg, max_bad_views=cfg.refined_max_bad_views, snap_px=cfg.refined_snap_px)
    snap_ok = [snap_allowed(c.mask, m.mask, cfg.refined_snap_px) for c, m in zip(carved, sharp)]
    try:
        return _reconstruct(photos, sharp, poses, strict, device, _sub(progress, 0.7, 1.0), snap_ok, masks)[:2]
    except CaptureError:
        return shape, carved  # the first pass stands


def _sub(progress, lo: float, hi: float):
    if progress is None:
        return None
    return lambda f, msg: progress(lo + (hi - lo) * f, msg)


_NO_CONSISTENT_ITEM = "The item could not be found consistently in the photos."


def _central_mask(photo: Photo) -> Mask:
    """A centred ellipse over 70% x 80% of the frame: where a walk-around capture keeps its subject."""
    h, w = photo.rgb.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    inside = ((xx - (w - 1) / 2) / (0.35 * w)) ** 2 + ((yy - (h - 1) / 2) / (0.40 * h)) ** 2 <= 1.0
    return Mask(inside, 0.0, False, "central")


def _reconstruct(
    photos: Sequence[Photo],
    masks: Sequence[Mask],
    poses: Poses,
    cfg: DenseConfig,
    device: str,
    progress: Callable[[float, str], None] | None,
    snap_ok: Sequence[np.ndarray | None] | None = None,
    thin_masks: Sequence[Mask] | None = None,
) -> tuple[Shape, tuple[Mask, ...], tuple[np.ndarray, float, float] | None]:
    """One pass; `snap_ok`: per photo, where its outline may snap the hull (see hull_field);
    `thin_masks`: the masks thin parts are looked for in (default `masks`): the segmenter's own,
    since sharpening the outlines drops thin parts again.
    Also returns the table plane found, (up (3,), offset, median camera distance), or None."""
    import cv2
    import torch

    from .frame import find_ground, front_direction, look_at_point, seen_sides
    from .hull import (
        Grid,
        Views,
        hull_field,
        make_grid,
        mask_distance_maps,
        mask_maps,
        render_silhouettes,
    )
    from .mvs import carve_with_photos
    from .thin import add_thin_parts, touching

    def tick(f: float, msg: str) -> None:
        if progress is not None:
            progress(f, msg)

    _check(photos, masks, poses)
    placed = [i for i, c in enumerate(poses.cameras) if c is not None]
    cams = [poses.cameras[i] for i in placed]
    rng = np.random.default_rng(cfg.seed)
    notes: list[str] = []

    with torch.no_grad():
        centre0 = look_at_point(cams)
        scale = float(np.median([np.linalg.norm(c.center - centre0) for c in cams]))
        ground = find_ground(cams, poses.points, centre0, scale, rng)
        up = ground.up
        if ground.offset is None:
            notes.append("No table was found under the item; the bottom was cut where the photos end.")
        front0 = front_direction(poses.cameras, centre0, up, poses.first_view_axis)
        axes = np.stack([np.cross(up, front0), up, front0])  # local frame rows: right, up, front
        ground_y = None if ground.offset is None else float(ground.offset - up @ centre0)

        tick(0.05, "Finding the item in 3D")
        mask_arrays = [_fit_mask(masks[i].mask, cams[k]) for k, i in enumerate(placed)]
        dist_np, dscale = mask_distance_maps(mask_arrays, cfg.mask_long_side)
        dist = torch.as_tensor(dist_np, device=device)
        snap_maps = None
        if snap_ok is not None and cfg.snap_px > 0:
            ok = [np.ones(m.shape, bool) if snap_ok[i] is None else _fit_mask(snap_ok[i], cams[k])
                  for k, (i, m) in enumerate(zip(placed, mask_arrays))]
            snap_maps = torch.as_tensor(mask_maps(ok, cfg.mask_long_side), device=device)
        views = Views(cams, device)

        def field_at(pts, grid):
            return hull_field(views, dist, dscale, pts, cfg.vote_tolerance, cfg.max_bad_views,
                              grid.voxel * 10, cfg.chunk, cfg.snap_px, snap_maps)

        def loose_at(grid):
            return _cut(hull_field(views, dist, dscale, grid.centres(device), 1.0 - cfg.thin_share,
                                   len(views), grid.voxel * 10, cfg.chunk).reshape(grid.shape), grid)

        def hull_at(grid, band: bool = False):
            if band:  # exact values only near the surface of a half-resolution pass (8x fewer views x voxels)
                half = Grid(grid.origin, grid.axes, 2 * grid.voxel, tuple((n + 2) // 2 for n in grid.shape))
                coarse_val = hull_at(half)
                full = [2 * (n - 1) + 1 for n in half.shape]
                val = torch.nn.functional.interpolate(coarse_val[None, None], size=full, mode="trilinear",
                                                      align_corners=True)[0, 0]
                val = val[: grid.shape[0], : grid.shape[1], : grid.shape[2]].contiguous().reshape(-1)
                near = val.abs() < 4 * grid.voxel
                pts = grid.centres(device)[near]
                val[near] = field_at(pts, grid)
                return _cut(val.reshape(grid.shape), grid)
            pts = grid.centres(device)
            val = field_at(pts, grid)
            return _cut(val.reshape(grid.shape), grid)

        def _cut(val, grid):
            if ground_y is not None:  # the table is never part of the item
                y = torch.arange(grid.shape[1], device=device, dtype=torch.float32) * grid.voxel
                y = y + float((grid.origin - centre0) @ up)
                val = torch.maximum(val, (ground_y + 0.25 * grid.voxel - y)[None, :, None])
            return val

        radius = _object_radius(cams, mask_arrays, centre0)
        lo, hi = -np.full(3, radius), np.full(3, radius)
        if ground_y is not None:
            lo[1] = max(lo[1], ground_y - 0.05 * radius)
            hi[1] = max(hi[1], lo[1] + radius)

        coarse = make_grid(lo, hi, axes, centre0, cfg.coarse_grid)
        # Within a voxel of the hull, not inside it: a rod thinner than the coarse voxels (an
        # antenna, a bottle's wire handle) falls between their centres and would be cut off the box.
        occ = _components(hull_at(coarse).cpu().numpy() < 0.9 * coarse.voxel, cfg.keep_component)
        if occ.sum() < 8:
            raise OutlinesDisagree(STAGE, _NO_CONSISTENT_ITEM,
                               "Keep the whole item in the middle of every photo, on a plain, uncluttered table.")
        c_lo, c_hi = _box(occ, lo, coarse.voxel)
        if ground_y is not None:
            c_lo[1] = max(c_lo[1], ground_y - 0.02 * float((c_hi - c_lo).max()))
        voxel = float((c_hi - c_lo).max()) / (cfg.grid - 1)
        if cfg.thin_share > 0:
            # Room for thin parts that only some masks hold (see thin.py), at the same voxel
            # size, and at most half the item's size further out on each side.
            loose = touching(occ, loose_at(coarse).cpu().numpy() < 0.9 * coarse.voxel)
            l_lo, l_hi = _box(loose, lo, coarse.voxel)
            reach = 0.5 * (c_hi - c_lo)
            c_lo, c_hi = np.minimum(c_lo, np.maximum(l_lo, c_lo - reach)), np.maximum(c_hi, np.minimum(l_hi, c_hi + reach))
            if ground_y is not None:
                c_lo[1] = max(c_lo[1], ground_y - 0.02 * voxel * (cfg.grid - 1))
        fine = make_grid(c_lo, c_hi, axes, centre0, cfg.grid, voxel)
        tick(0.15, "Carving the outline seen in all photos")
        field = hull_at(fine, band=True)

        if cfg.photo_consistency:
            field = carve_with_photos(photos, placed, views, fine, field, centre0, cfg, device, tick)
        if cfg.thin_share > 0:
            # Just above the table the table itself passes the colour test: leave that band alone.
            floor = None if ground_y is None else ground_y + cfg.table_rise * scale - float((fine.origin - centre0) @ up)
            labs = [cv2.cvtColor(photos[i].rgb, cv2.COLOR_RGB2Lab) for i in placed]
            tdist = dist
            if thin_masks is not None:
                tdist = torch.as_tensor(mask_distance_maps([_fit_mask(thin_masks[i].mask, cams[k])
                                                            for k, i in enumerate(placed)], cfg.mask_long_side)[0],
                                        device=device)
            field = add_thin_parts(views, tdist, dscale, labs, fine, field, floor, cfg.thin_share,
                                   cfg.thin_agree, cfg.thin_colour_tolerance, cfg.chunk)

        tick(0.9, "Building the surface")
        vertices, faces = _surface(field.cpu().numpy(), fine, cfg.keep_component)
        if len(faces) == 0:
            raise OutlinesDisagree(STAGE, _NO_CONSISTENT_ITEM,
                               "Keep the whole item in the middle of every photo, on a plain, uncluttered table.")
        centre = 0.5 * (vertices.min(axis=0) + vertices.max(axis=0))
        front = front_direction(poses.cameras, centre, up, poses.first_view_axis)

        sil = render_silhouettes(vertices, faces, cams, cfg.silhouette_long_side)
    out_masks = list(masks)
    for k, i in enumerate(placed):
        out_masks[i] = _carved_mask(sil[k], masks[i])
    tick(1.0, "Shape done")
    shape = Shape(
        vertices=vertices,
        faces=faces,
        views=tuple(poses.cameras),
        up=up,
        front=front,
        kind="scan",
        kind_reason=f"built from {len(placed)} photos taken around the item",
        metres_per_unit=None,
        seen_sides=seen_sides(cams, centre, up, front),
        notes=tuple(notes),
    )
    table = None if ground.offset is None else (up, float(ground.offset), scale)
    return shape, tuple(out_masks), table


def _box(occ: np.ndarray, lo: np.ndarray, voxel: float) -> tuple[np.ndarray, np.ndarray]:
    """Local-frame box (lo, hi) round the set voxels of a grid starting at `lo`, 1.5 voxels wider."""
    idx = np.argwhere(occ)
    return lo + (idx.min(axis=0) - 1.5) * voxel, lo + (idx.max(axis=0) + 1.5) * voxel


def _surface(field: np.ndarray, grid, keep: float) -> tuple[np.ndarray, np.ndarray]:
    """Marching cubes of field < 0 (small stray pieces dropped), padded so the mesh is closed."""
    from skimage.measure import marching_cubes

    occ = _components(field < 0, keep)
    if not occ.any():
        return np.zeros((0, 3)), np.zeros((0, 3), np.int64)
    field = np.where(occ | (field >= 0), field, np.abs(field) + 1e-3)
    field = np.pad(field, 1, constant_values=max(float(field.max()), grid.voxel))
    verts, faces, _, _ = marching_cubes(field.astype(np.float32), level=0.0)
    vertices = grid.to_world(verts - 1.0)
    faces = faces.astype(np.int64)
    tri = vertices[faces]
    vol = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum()
    if vol < 0:  # outward normals: counter-clockwise seen from outside
        faces = faces[:, ::-1].copy()
    return vertices, faces


def _components(occ: np.ndarray, keep: float, reach: int = 2) -> np.ndarray:
    """Keep the connected pieces of occ that hold at least `keep` of the largest piece's voxels.

    Pieces within `reach` voxels of each other count as one: a wire handle or an antenna about a
    voxel thick comes out of marching cubes' grid as a dotted line, and each dot alone is tiny.
    """
    from scipy import ndimage

    grouped = ndimage.binary_dilation(occ, iterations=reach) if reach > 0 else occ
    labels, n = ndimage.label(grouped)
    if n <= 1:
        return occ
    sizes = np.bincount(labels[occ], minlength=n + 1)[1:]
    good = np.flatnonzero(sizes >= keep * sizes.max()) + 1
    return occ & np.isin(labels, good)


def _object_radius(cams, masks: list[np.ndarray], centre: np.ndarray) -> float:
    """Half-size of a cube around `centre` that surely holds the item: from how far each mask
    reaches from the projected centre, at the centre's depth (median over views, x1.4)."""
    from ..geom import project

    reach = []
    for cam, m in zip(cams, masks):
        uv, z = project(cam, centre[None])
        ys, xs = np.nonzero(m)
        if len(xs) == 0 or z[0] <= 0:
            continue
        d = np.hypot(xs - uv[0, 0], ys - uv[0, 1]).max()
        reach.append(d * z[0] / cam.K[0, 0])
    if not reach:
        raise CaptureError(STAGE, "The item was not found in the photos.", "Keep the whole item in every photo.")
    return 1.4 * float(np.median(reach))


def _fit_mask(mask: np.ndarray, cam) -> np.ndarray:
    """The mask at the camera's size (segmenters may work at another size)."""
    if mask.shape == (cam.height, cam.width):
        return mask.astype(bool)
    import cv2

    return cv2.resize(mask.astype(np.uint8), (cam.width, cam.height), interpolation=cv2.INTER_NEAREST) > 0


def _carved_mask(sil: np.ndarray, old: Mask) -> Mask:
    border = bool(sil[0].any() or sil[-1].any() or sil[:, 0].any() or sil[:, -1].any())
    old_m = _fit_mask(old.mask, _Size(sil.shape))
    union = np.logical_or(sil, old_m).sum()
    agree = float(np.logical_and(sil, old_m).sum() / union) if union else 0.0
    return Mask(mask=sil, confidence=agree, touches_border=border, method="carved", warnings=old.warnings)


class _Size:
    def __init__(self, shape):
        self.height, self.width = shape


def _check(photos: Sequence[Photo], masks: Sequence[Mask], poses: Poses) -> None:
    if len(masks) != len(photos) or len(poses.cameras) != len(photos):
        raise InputError(STAGE, f"Got {len(photos)} photos, {len(masks)} masks and {len(poses.cameras)} camera slots.")
    if poses.placed < 3:
        raise CaptureError(STAGE, f"Only {poses.placed} of {len(photos)} photos could be placed in 3D.",
                           "Take 20-80 overlapping photos walking all around the item.")
    for p, c in zip(photos, poses.cameras):
        if c is not None and (c.width, c.height) != p.size:
            raise InputError(STAGE, f"Photo {p.name} is {p.size} px but its camera is {(c.width, c.height)} px.")
