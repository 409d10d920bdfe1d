"""Texture stage: UV atlas plus a base-colour texture baked from the photos.

Every texel of the atlas gets a 3D position and normal; it is projected into each placed photo,
depth-tested against a small z-buffer of that view, kept inside the (eroded) object mask, and the
views are blended with weights that favour the most head-on, highest-resolution view (soft-max,
so seams blend instead of jumping). Per-view colour gains even out exposure differences. A placed
photo whose colours disagree with the others on the same surface (another item shot on the same
table, which structure from motion can place) is left out and named in a warning. Texels no
photo sees are filled from the nearest plausible photo colours (mirrored through the front for a
single photo) and the atlas gutter is filled so mip-maps never bleed black.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np

from ..errors import CaptureError, InputError
from ..geom import project_torch
from ..types import Mask, Mesh, Photo, TexturedMesh
from .config import MIRROR_KINDS, STAGE, TextureConfig


def bake_texture(
    mesh: Mesh,
    photos: Sequence[Photo],
    masks: Sequence[Mask],
    cfg: TextureConfig,
    device: str = "cpu",
    progress: Callable[[float, str], None] | None = None,
) -> TexturedMesh:
    """UV-unwrap `mesh` and bake its base colour from `photos` seen through `mesh.views`.

    photos/masks/mesh.views are parallel (one per photo; views may be None). Returns a TexturedMesh
    with split vertices (V2, 3), faces (F, 3), uv (V2, 2) and an (S, S, 3) uint8 texture,
    S = cfg.texture_size. Raises InputError for inconsistent inputs, CaptureError if no photo
    has a camera.
    """
    import cv2
    import torch

    from ..raster import push_pull, rasterize
    from . import views as tv
    from .heldout import heldout_error, pick_heldout
    from .uv import unwrap

    def tick(fraction: float, message: str) -> None:
        if progress is not None:
            progress(fraction, message)

    _check(mesh, photos, masks, cfg)
    size = cfg.texture_size
    bake = min(cfg.bake_size, size)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    verts = np.asarray(mesh.vertices, np.float64)
    faces = np.asarray(mesh.faces, np.int64)
    vmap, faces2, uv = unwrap(verts, faces, bake, cfg.padding_px, tight=cfg.tight_atlas)
    timings["unwrap"] = time.perf_counter() - t0
    tick(0.1, "Getting the model ready for its colours")

    dev = torch.device(device)
    v_t = torch.as_tensor(verts, dtype=torch.float32, device=dev)
    f_t = torch.as_tensor(faces, dtype=torch.long, device=dev)
    vn = _vertex_normals(verts, faces)
    # Texel centres of the bake image: uv * bake - 0.5 in pixel units (v = 0 is the top row).
    uv_px = torch.as_tensor(uv, dtype=torch.float32, device=dev) * bake - 0.5
    face_id, bary, _ = rasterize(uv_px[torch.as_tensor(faces2, device=dev)], bake, bake)
    inside = face_id >= 0
    fid = face_id[inside]
    b = bary[inside]
    src = torch.as_tensor(vmap[faces2], dtype=torch.long, device=dev)[fid]  # (T, 3) original vertices
    pos = (v_t[src] * b[..., None]).sum(1)
    nrm = (torch.as_tensor(vn, dtype=torch.float32, device=dev)[src] * b[..., None]).sum(1)
    nrm = nrm / nrm.norm(dim=1, keepdim=True).clamp_min(1e-12)
    diag = float(np.linalg.norm(verts.max(0) - verts.min(0)))
    timings["texels"] = time.perf_counter() - t0 - timings["unwrap"]

    views = []
    for i, cam in enumerate(mesh.views):
        if cam is None:
            continue
        views.append(tv.prepare_view(i, cam, photos[i].rgb, masks[i].mask, v_t, f_t, cfg.depth_size,
                                     cfg.mask_erode_px, cfg.feather_px, device=dev))
        tick(0.1 + 0.3 * len(views) / max(1, len(mesh.views)), "Checking what each photo sees")
    odd = _unlike_views(views, pos, nrm, diag, cfg.unlike_ratio, cfg.unlike_margin)
    heldout = tuple(i for i in pick_heldout(mesh.views, cfg.heldout_views, cfg.heldout_min_views) if i not in odd)
    views = [v for v in views if v.index not in odd and v.index not in heldout]
    single = len(views) == 1
    if single:
        tv.add_fill(views[0], cfg.fill_blur)
    t1 = time.perf_counter()

    gains = _exposure_gains(views, pos, nrm, diag, cfg) if cfg.balance_exposure and not single else None
    p = cfg.sharpness
    acc = torch.zeros((pos.shape[0], 3), device=dev)
    wsum = torch.zeros(pos.shape[0], device=dev)
    best = torch.full((pos.shape[0],), -torch.inf, device=dev)
    for k, view in enumerate(views):
        grid, cos, logw, _, _ = tv.view_terms(view, pos, nrm, diag)
        ok = torch.isfinite(logw)
        if not bool(ok.any()):
            continue
        colour = tv.grid_sample_colour(view.image, grid[ok])
        if single:  # steep sides of a single photo: fade to the blurred colour instead of streaking
            fade = ((cfg.steep_cos - cos[ok]) / cfg.steep_cos).clamp(0, 1)[:, None]
            colour = colour * (1 - fade) + tv.grid_sample_colour(view.blur, grid[ok]) * fade
        if gains is not None:
            colour = colour * gains[k]
        # Online soft-max over views: rescale the running sums when a better view appears.
        new_best = torch.maximum(best, logw)
        old = torch.where(torch.isfinite(best), torch.exp(p * (best - new_best)), torch.zeros_like(best))
        acc *= old[:, None]
        wsum *= old
        w = torch.exp(p * (logw[ok] - new_best[ok]))
        acc[ok] += w[:, None] * colour
        wsum[ok] += w
        best = new_best
        tick(0.4 + 0.4 * (k + 1) / len(views), f"Painting from photo {k + 1} of {len(views)}")
    covered = wsum > 0
    colours = acc / wsum.clamp_min(1e-30)[:, None]
    timings["views"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    if not bool(covered.all()):
        colours[~covered] = _fill_unseen(views, pos[~covered], nrm[~covered], mesh.kind, single, cfg)
    coverage = float(covered.float().mean())
    timings["fill"] = time.perf_counter() - t2
    tick(0.9, "Filling in the parts no photo saw")

    t3 = time.perf_counter()
    image = np.zeros((bake, bake, 3), np.float32)
    inside_np = inside.cpu().numpy()
    image[inside_np] = colours.clamp(0, 255).cpu().numpy()
    image = push_pull(image, inside_np)  # gutter: no black bleeding into mip-maps
    if bake != size:
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_CUBIC)
    texture = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    timings["finish"] = time.perf_counter() - t3
    tick(1.0, "The colours are ready")

    errors = [heldout_error(mesh.views[i], photos[i].rgb, masks[i].mask, verts[vmap], faces2, uv, texture,
                            cfg.depth_size, str(dev)) for i in heldout]
    errors = [e for e in errors if e is not None]
    timings["heldout"] = time.perf_counter() - t3 - timings["finish"]
    notes = []
    warnings = tuple(f"{photos[i].name} does not look like the other photos of the same side "
                     "(another item?), so its colours were not used." for i in sorted(odd))
    if coverage < 0.6:
        notes.append(f"Only {coverage:.0%} of the surface was seen in a photo; the rest was filled in.")
    return TexturedMesh(
        vertices=verts[vmap], faces=faces2, uv=uv, texture=texture, placement=mesh.placement,
        dimensions_m=mesh.dimensions_m, coverage=coverage,
        heldout_error=round(float(np.mean(errors)), 2) if errors else None,
        notes=tuple(notes),
        warnings=warnings,
        seconds_per_step={k: round(v, 4) for k, v in timings.items()},
    )


def _check(mesh: Mesh, photos: Sequence[Photo], masks: Sequence[Mask], cfg: TextureConfig) -> None:
    size = cfg.texture_size
    if size < 16 or size & (size - 1):
        raise InputError(STAGE, f"Texture size {size} must be a power of two such as 1024 or 2048.")
    if len(photos) != len(masks) or len(photos) != len(mesh.views):
        raise InputError(STAGE, "The photos, masks and camera views do not line up (internal mismatch).")
    if mesh.faces.ndim != 2 or mesh.faces.shape[1] != 3 or len(mesh.faces) == 0:
        raise InputError(STAGE, "The model has no surface to paint.")
    if not any(v is not None for v in mesh.views):
        raise CaptureError(STAGE, "No photo could be matched to the model, so it cannot be painted.")


def _vertex_normals(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    """(V, 3) area-weighted unit vertex normals (continuous across UV seams)."""
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    vn = np.zeros_like(v)
    for k in range(3):
        np.add.at(vn, f[:, k], fn)
    return vn / np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-20)


def _sample_views(views, pos, nrm, diag: float, samples: int, seed: int):
    """Colours (V, S, 3) and log-weights (V, S) (-inf where unusable) of every view at `samples`
    random texels (positions and normals (T, 3)), drawn the same way for the same seed."""
    import torch

    from . import views as tv

    gen = torch.Generator(device="cpu").manual_seed(seed)
    idx = torch.randperm(pos.shape[0], generator=gen)[:samples].to(pos.device)
    sp, sn = pos[idx], nrm[idx]
    cols, logws = [], []
    for view in views:
        grid, _, logw, _, _ = tv.view_terms(view, sp, sn, diag)
        cols.append(tv.grid_sample_colour(view.image, grid))
        logws.append(logw)
    return torch.stack(cols), torch.stack(logws)


def _unlike_views(views, pos, nrm, diag: float, ratio: float, margin: float, samples: int = 20000) -> set[int]:
    """Photo indices of the views whose colours disagree with the others on the same surface points.

    Per view, the median over sample points (seen by at least 4 views) of its mean absolute RGB
    difference (0..255) to the median colour of all the views seeing the point; a view is unlike
    when that is over `ratio` times the views' median and over it by `margin`. Bench avocado with
    3 boombox photos mixed in (structure from motion places them: the same table is around
    both): 1.4-3.5 for its own photos, 34-59 for the boombox ones.
    """
    import torch

    c, lw = _sample_views(views, pos, nrm, diag, samples, seed=1)
    ok = torch.isfinite(lw)  # (V, S)
    consensus = torch.where(ok[..., None], c, torch.full_like(c, float("nan"))).nanmedian(dim=0).values
    enough = ok.sum(0) >= 4
    errors = {}
    for k, view in enumerate(views):
        m = ok[k] & enough
        if int(m.sum()) >= 50:
            errors[view.index] = float((c[k, m] - consensus[m]).abs().mean(1).median())
    if len(errors) < 6:  # too few photos to tell the odd one out
        return set()
    typical = float(np.median(list(errors.values())))
    return {i for i, e in errors.items() if e > max(ratio * typical, typical + margin)}


def _exposure_gains(views, pos, nrm, diag: float, cfg: TextureConfig, samples: int = 20000):
    """Per-view RGB gains (V, 3) that make overlapping views agree (geometric mean 1)."""
    import torch

    c, lw = _sample_views(views, pos, nrm, diag, samples, seed=0)
    w = torch.softmax(cfg.sharpness * lw, dim=0).nan_to_num(0.0) * torch.isfinite(lw)
    seen = torch.isfinite(lw)
    gains = torch.ones((len(views), 3), device=pos.device)
    for _ in range(3):
        target = (w[..., None] * c * gains[:, None]).sum(0)  # (S, 3) current blend
        num = (seen[..., None] * c * target[None]).sum(1)
        den = (seen[..., None] * c * c).sum(1)
        gains = torch.where(den > 0, num / den.clamp_min(1e-9), torch.ones_like(gains)).clamp(0.7, 1.4)
        gains = gains / torch.exp(torch.log(gains).mean(0, keepdim=True))
    return gains


def _fill_unseen(views, pos, nrm, kind: str, single: bool, cfg: TextureConfig):
    """Colours (N, 3) for texels no photo saw: sampled through the object, ignoring occlusion.

    For one photo this mirrors the front onto the back (the back point projects where the front
    point with the same image position is); steep and back-facing texels take blurred colours so
    the sides show no streaks. Non-symmetric kinds use the blurred colours only.
    """
    import torch

    from . import views as tv

    mirror = single and kind in MIRROR_KINDS
    terms = []
    for view in views:
        cam = view.camera
        pix, z = project_torch(view.K, view.R, view.t, pos, cam.orthographic)
        grid = tv.to_grid(pix, cam.width, cam.height).clamp(-1, 1)
        if cam.orthographic:
            to_cam = -view.R[2].expand_as(pos)
            res = torch.full_like(z, float(cam.K[0, 0]))
        else:
            to_cam = -view.R.T @ view.t - pos
            to_cam = to_cam / to_cam.norm(dim=1, keepdim=True).clamp_min(1e-12)
            res = float(cam.K[0, 0]) / z.abs().clamp_min(1e-9)
        acos = (nrm * to_cam).sum(1).abs()
        terms.append((view, grid, acos, torch.log((acos + 0.05) * res**2)))
    # Filling a view's background costs ~50 ms: only the few views that matter most get one.
    w = torch.softmax(cfg.sharpness * torch.stack([t[3] for t in terms]), dim=0)
    keep = torch.argsort(w.sum(1), descending=True)[:4].tolist()
    w = w[keep] / w[keep].sum(0, keepdim=True).clamp_min(1e-30)
    out = torch.zeros((pos.shape[0], 3), device=pos.device)
    for wk, k in zip(w, keep):
        view, grid, acos, _ = terms[k]
        if view.fill is None:
            tv.add_fill(view, cfg.fill_blur)
        blurred = tv.grid_sample_colour(view.blur, grid)
        if mirror or not single:
            fade = ((cfg.steep_cos - acos) / cfg.steep_cos).clamp(0, 1)[:, None]
            colour = tv.grid_sample_colour(view.fill, grid) * (1 - fade) + blurred * fade
        else:
            colour = blurred
        out += wk[:, None] * colour
    return out
