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

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from ..errors import CaptureError, InputError, OutlinesDisagree
from ..types import Mask, Photo, Poses, Shape
from .config import STAGE, DenseConfig
from .frame import CaptureFrame, TablePlane
from .locate import bounded_by_item, fit_mask, item_in_3d

if TYPE_CHECKING:  # pragma: no cover
    from .hull import Grid, HullVote
    from .locate import ObjectBox


def reconstruct_dense(
    photos: Sequence[Photo],
    masks: Sequence[Mask],
    poses: Poses,
    cfg: DenseConfig,
    device: str,
    progress: Callable[[float, str], None] | None = None,
) -> tuple[Shape, tuple[Mask, ...]]:
    """Watertight Shape (SfM frame, kind "scan", outward normals, no floor) and one carved Mask per photo.

    When the outlines from the 2D masks do not agree in 3D, the item is looked for in 3D instead
    (see locate.py): the sparse points standing on the table at the capture's centre. The masks
    that disagree with it are dropped from the vote and the hull is bounded by its box. When it
    cannot be found either, or too few masks agree with it, CaptureError with re-shoot advice:
    never a model shaped from the middle of the photos (a heap of table).
    """
    first = _sub(progress, 0.0, 0.6 if cfg.refine else 1.0)
    item = item_in_3d(masks, poses, cfg)
    # A mask that leaves out the item's points or spills far off its box loses its vote, while
    # most masks agree with the points (else the points are the doubtful ones: the vote decides).
    trusted = item is not None and item.kept >= cfg.locate_trust * item.placed
    voters = item.keep if trusted else None
    try:
        rough = _one_pass(photos, masks, poses, cfg, device, first, voters=voters)
    except OutlinesDisagree:
        _check(photos, masks, poses)
        masks, voters, bound = bounded_by_item(masks, poses, item, cfg)
        # No thin parts: a mask without a vote would hold every thin part the colour test passes.
        cfg = replace(cfg, thin_share=0.0)
        rough = _one_pass(photos, masks, poses, cfg, device, first, bound=bound, voters=voters)
    rough = replace(rough, shape=_with_left_out(rough.shape, photos, poses, voters))
    if not cfg.refine:
        return rough.shape, rough.masks
    if progress is not None:
        progress(0.6, "Sharpening the outlines in every photo")
    sharp, snap_ok = _sharpen(photos, poses, rough, cfg, _sub(progress, 0.6, 0.7))
    strict = replace(cfg, max_bad_views=cfg.refined_max_bad_views, snap_px=cfg.refined_snap_px)
    try:
        final = _one_pass(photos, sharp, poses, strict, device, _sub(progress, 0.7, 1.0), snap_ok, masks,
                          bound=rough.bound)
    except CaptureError:
        return rough.shape, rough.masks  # the first pass stands
    return replace(final.shape, notes=rough.shape.notes), final.masks


def _with_left_out(shape: Shape, photos, poses: Poses, voters: Sequence[bool] | None) -> Shape:
    """`shape` with a note naming the placed photos whose outline had no vote."""
    if voters is None:
        return shape
    out = [p.name for p, c, v in zip(photos, poses.cameras, voters) if c is not None and not v]
    if not out:
        return shape
    note = (f"The item's outline in {len(out)} photo{'s' if len(out) > 1 else ''} ({', '.join(out)}) disagreed "
            "with the item found in 3D and was left out of the shape.")
    return replace(shape, notes=shape.notes + (note,))


def _sharpen(photos, poses: Poses, rough: "_Pass", cfg: DenseConfig, progress=None):
    """The first pass's carved outlines snapped to each photo's edges (see refine.py), and per
    photo where the second pass may let its outline snap the hull. `progress(fraction, message)`
    hears of each photo: this step runs tens of seconds on a CPU."""
    from .refine import band_px, outline_band, refine_masks, snap_allowed, table_pixels

    def tick(f: float, msg: str) -> None:
        if progress is not None:
            progress(f, msg)

    tables = None
    if rough.table is not None and cfg.table_rise > 0:
        t = rough.table
        near = [outline_band(m.mask, band_px(p, cfg.refine_band)) if c is not None else None
                for p, m, c in zip(photos, rough.masks, poses.cameras)]
        tick(0.0, "Telling the product from the table it stands on")
        tables = table_pixels(photos, poses.cameras, near, t.up, t.offset, cfg.table_rise * t.camera_distance)
    n = len(photos)
    sharp = refine_masks(photos, rough.masks, [c is not None for c in poses.cameras], cfg.refine_band, tables,
                         on_photo=lambda i: tick(0.2 + 0.8 * (i + 1) / n, f"Sharpening the outline in photo {i + 1} of {n}"))
    snap_ok = [snap_allowed(c.mask, m.mask, cfg.refined_snap_px) for c, m in zip(rough.masks, sharp)]
    return sharp, snap_ok


def _sub(progress, lo: float, hi: float):
    if progress is None:
        return None
    return lambda f, msg: progress(lo + (hi - lo) * f, msg)


_NO_CONSISTENT_ITEM = "The item could not be found consistently in the photos."


@dataclass(frozen=True)
class _Pass:
    """What one geometry pass gives: the shape, one carved mask per photo, the table found."""

    shape: Shape
    masks: tuple[Mask, ...]
    table: TablePlane | None
    bound: "ObjectBox | None" = None  # the item's box from the sparse points, when it bounded the hull


def _one_pass(
    photos: Sequence[Photo],
    masks: Sequence[Mask],
    poses: Poses,
    cfg: DenseConfig,
    device: str,
    progress: Callable[[float, str], None] | None,
    snap_ok: Sequence[np.ndarray | None] | None = None,
    thin_masks: Sequence[Mask] | None = None,
    bound: "ObjectBox | None" = None,
    voters: Sequence[bool] | None = None,
) -> _Pass:
    """One pass: frame, voting hull, object box, photo-consistency, thin parts, surface.

    `snap_ok`: per photo, where its outline may snap the hull (see hull_field); `thin_masks`: the
    masks thin parts are looked for in (default `masks`): the segmenter's own, since sharpening
    the outlines drops thin parts again; `bound`: the item's box found in 3D (see locate.py), which
    the hull may not leave; `voters`: per photo, whether its mask votes in the hull (None: all)."""
    import torch

    from .frame import capture_frame, front_direction, seen_sides
    from .hull import render_silhouettes
    from .mvs import carve_with_photos

    def tick(f: float, msg: str) -> None:
        if progress is not None:
            progress(f, msg)

    _check(photos, masks, poses)
    placed = [i for i, c in enumerate(poses.cameras) if c is not None]
    cams = [poses.cameras[i] for i in placed]
    with torch.no_grad():
        frame = capture_frame(cams, list(poses.cameras), poses.points, poses.first_view_axis,
                              np.random.default_rng(cfg.seed))
        tick(0.05, "Finding where the product stands")
        mask_arrays = [fit_mask(masks[i].mask, cams[k]) for k, i in enumerate(placed)]
        vote = _hull_vote(cams, placed, mask_arrays, snap_ok, frame, cfg, device, voters)
        fine = _object_grid(vote, cams, mask_arrays, frame, cfg, bound)
        tick(0.15, "Shaping the product from its outline in every photo")
        field = vote.on_grid(fine, band=True)
        if cfg.photo_consistency:
            field = carve_with_photos(photos, placed, vote.views, fine, field, frame.centre, cfg, device, tick)
        if cfg.thin_share > 0:
            tick(0.82, "Looking for thin parts such as legs and handles")
            field = _thin_pass(photos, placed, thin_masks, vote, fine, field, frame, cfg, device, tick)
        tick(0.9, "Smoothing the shape")
        vertices, faces = _surface(field.cpu().numpy(), fine, cfg.keep_component)
        if len(faces) == 0:
            raise OutlinesDisagree(STAGE, _NO_CONSISTENT_ITEM, _KEEP_IN_MIDDLE)
        sil = render_silhouettes(vertices, faces, cams, cfg.silhouette_long_side)
    out_masks = list(masks)
    for k, i in enumerate(placed):
        out_masks[i] = _carved_mask(sil[k], masks[i])
    tick(1.0, "The shape is ready")
    centre = 0.5 * (vertices.min(axis=0) + vertices.max(axis=0))
    front = front_direction(poses.cameras, centre, frame.up, poses.first_view_axis)
    shape = Shape(
        vertices=vertices,
        faces=faces,
        views=tuple(poses.cameras),
        up=frame.up,
        front=front,
        kind="scan",
        kind_reason=f"built from {len(placed)} photos taken around the item",
        metres_per_unit=None,
        seen_sides=seen_sides(cams, centre, frame.up, front),
        notes=frame.notes,
    )
    return _Pass(shape, tuple(out_masks), frame.table, bound)


_KEEP_IN_MIDDLE = "Keep the whole item in the middle of every photo, on a plain, uncluttered table."


def _hull_vote(cams, placed: list[int], mask_arrays: list[np.ndarray], snap_ok, frame: CaptureFrame,
               cfg: DenseConfig, device, voters: Sequence[bool] | None = None) -> "HullVote":
    """The voting hull of the placed photos' masks (and where each outline may snap it)."""
    import torch

    from .hull import HullVote, Views, mask_distance_maps, mask_maps

    dist_np, dscale = mask_distance_maps(mask_arrays, cfg.mask_long_side)
    snap_maps = None
    if snap_ok is not None and cfg.snap_px > 0:
        ok = [np.ones(m.shape, bool) if snap_ok[i] is None else fit_mask(snap_ok[i], cams[k])
              for k, (i, m) in enumerate(zip(placed, mask_arrays))]
        snap_maps = torch.as_tensor(mask_maps(ok, cfg.mask_long_side), device=device)
    vote_t = None if voters is None else torch.as_tensor([bool(voters[i]) for i in placed], device=device)
    return HullVote(Views(cams, device), torch.as_tensor(dist_np, device=device), dscale, cfg, device,
                    frame.ground_y, frame.centre, frame.up, snap_maps, vote_t)


def _object_grid(vote: "HullVote", cams, mask_arrays: list[np.ndarray], frame: CaptureFrame,
                 cfg: DenseConfig, bound: "ObjectBox | None" = None) -> "Grid":
    """The fine grid round the item: a coarse search cube (inside `bound` when given) finds its
    box, grown for thin parts."""
    from .hull import make_grid
    from .thin import touching

    radius = _object_radius(cams, mask_arrays, frame.centre)
    ground_y = frame.ground_y
    lo, hi = -np.full(3, radius), np.full(3, radius)
    if ground_y is not None:
        lo[1] = max(lo[1], ground_y - 0.05 * radius)
        hi[1] = max(hi[1], lo[1] + radius)
    if bound is not None:
        lo, hi = np.maximum(lo, bound.lo), np.minimum(hi, bound.hi)
        if np.any(hi <= lo):
            lo, hi = bound.lo.copy(), bound.hi.copy()
    coarse = make_grid(lo, hi, frame.axes, frame.centre, cfg.coarse_grid)
    # Within a voxel of the hull, not inside it: a rod thinner than the coarse voxels (an
    # antenna, a bottle's wire handle) falls between their centres and would be cut off the box.
    occ = _components(vote.on_grid(coarse).cpu().numpy() < 0.9 * coarse.voxel, cfg.keep_component)
    if occ.sum() < 8:
        raise OutlinesDisagree(STAGE, _NO_CONSISTENT_ITEM, _KEEP_IN_MIDDLE)
    c_lo, c_hi = _box(occ, lo, coarse.voxel)
    if ground_y is not None:
        c_lo[1] = max(c_lo[1], ground_y - 0.02 * float((c_hi - c_lo).max()))
    voxel = float((c_hi - c_lo).max()) / (cfg.grid - 1)
    if cfg.thin_share > 0:
        # Room for thin parts that only some masks hold (see thin.py), at the same voxel
        # size, and at most half the item's size further out on each side.
        loose = touching(occ, vote.loose(coarse).cpu().numpy() < 0.9 * coarse.voxel)
        l_lo, l_hi = _box(loose, lo, coarse.voxel)
        reach = 0.5 * (c_hi - c_lo)
        c_lo, c_hi = np.minimum(c_lo, np.maximum(l_lo, c_lo - reach)), np.maximum(c_hi, np.minimum(l_hi, c_hi + reach))
        if bound is not None:
            c_lo, c_hi = np.maximum(c_lo, bound.lo), np.minimum(c_hi, bound.hi)
        if ground_y is not None:
            c_lo[1] = max(c_lo[1], ground_y - 0.02 * voxel * (cfg.grid - 1))
    return make_grid(c_lo, c_hi, frame.axes, frame.centre, cfg.grid, voxel)


def _thin_pass(photos, placed: list[int], thin_masks, vote: "HullVote", fine: "Grid", field,
               frame: CaptureFrame, cfg: DenseConfig, device, tick):
    """Put back the thin parts the vote dropped where enough masks hold them (see thin.py).
    `tick(fraction, message)` every tenth of the colour test: it can run for tens of seconds."""
    import cv2
    import torch

    from .hull import mask_distance_maps
    from .thin import add_thin_parts

    cams = vote.views.cams
    # Just above the table the table itself passes the colour test: leave that band alone.
    floor = None
    if frame.ground_y is not None:
        floor = frame.ground_y + cfg.table_rise * frame.scale - float((fine.origin - frame.centre) @ frame.up)
    labs = [cv2.cvtColor(photos[i].rgb, cv2.COLOR_RGB2Lab) for i in placed]
    tdist = vote.dist
    if thin_masks is not None:
        tdist = torch.as_tensor(mask_distance_maps([fit_mask(thin_masks[i].mask, cams[k])
                                                    for k, i in enumerate(placed)], cfg.mask_long_side)[0],
                                device=device)
    told = [-1]

    def on_share(done: float) -> None:
        tenth = int(done * 10)
        if tenth > told[0]:
            told[0] = tenth
            tick(0.82 + 0.07 * done, f"Looking for thin parts such as legs and handles: {tenth * 10}% done")

    return add_thin_parts(vote.views, tdist, vote.scale, labs, fine, field, floor, cfg.thin_share,
                          cfg.thin_agree, cfg.thin_colour_tolerance, cfg.chunk, on_share)


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


def _carved_mask(sil: np.ndarray, old: Mask) -> Mask:
    border = bool(sil[0].any() or sil[-1].any() or sil[:, 0].any() or sil[:, -1].any())
    old_m = fit_mask(old.mask, _Size(sil.shape))
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
