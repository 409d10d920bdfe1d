"""The gate's measurements, one function per check; each returns one `Evidence`.

All geometry is in the reconstruction frame (where `Mesh.views` project the mesh); the product
frame (`Mesh.placement`) is used only to ask whether a camera stands inside the model's box.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..types import Camera, Evidence, LeftOut, Mask, Mesh, Photo, Unplaced, Verdict
from .config import GateConfig


def grade(value: float, warn_at: float, fail_at: float, higher_is_better: bool) -> Verdict:
    """GOOD / WARNINGS / FAILED for a value against its two limits."""
    if higher_is_better:
        return Verdict.FAILED if value < fail_at else Verdict.WARNINGS if value < warn_at else Verdict.GOOD
    return Verdict.FAILED if value > fail_at else Verdict.WARNINGS if value > warn_at else Verdict.GOOD


def file_list(names: Sequence[str], most: int = 4) -> str:
    """'a.jpg, b.jpg and 3 more' (the merchant's own file names)."""
    names = list(names)
    if len(names) <= most:
        return ", ".join(names[:-1]) + (" and " if len(names) > 1 else "") + (names[-1] if names else "")
    return ", ".join(names[:most]) + f" and {len(names) - most} more"


def placed_share(photos: Sequence[Photo], views: Sequence[Camera | None], cfg: GateConfig,
                 left_out: Sequence[LeftOut] = ()) -> Evidence:
    """Share of the photos placed in 3D; half or fewer fails, and so does a model that leaves out
    the first photo (the merchant's front view) along with a quarter of the others: two items
    in one upload give a model of whichever matched more. `left_out`: the SfM stage's reason per
    unplaced photo; a first photo too dark or blurry to place is a bad photo, not another item."""
    placed = [v is not None for v in views]
    share = sum(placed) / max(1, len(photos))
    outcome = Verdict.FAILED if share <= cfg.placed_fail else grade(share, cfg.placed_warn, cfg.placed_fail, True)
    left_names = tuple(p.name for p, ok in zip(photos, placed) if not ok)
    first_out = bool(photos) and not placed[0]
    # A first photo too dark or blurry to place says nothing about which item it shows; one that
    # overlaps a little may share only the table with the placed photos of another item.
    dark_first = first_out and any(x.index == 0 and x.reason is Unplaced.NO_DETAIL for x in left_out)
    other_item = first_out and not dark_first and share <= cfg.placed_without_first
    if other_item:
        outcome = Verdict.FAILED
    elif dark_first and outcome is Verdict.GOOD:
        outcome = Verdict.WARNINGS  # the model's front follows the first photo
    message = ""
    if outcome is not Verdict.GOOD:
        message = (f"Only {sum(placed)} of {len(photos)} photos could be placed in 3D"
                   + (", too few for a faithful model" if share <= cfg.placed_fail else "")
                   + f". Not used: {file_list(left_names)}.")
    if other_item:
        message += (f" Your first photo ({photos[0].name}) is among them, so the model may show another item: "
                    "upload the photos of one item at a time.")
    elif dark_first:
        message += (f" Your first photo ({photos[0].name}) is too blurry, dark or plain to place, so the model's "
                    "front was worked out from the others: re-shoot it sharp and well lit, from the front.")
    return Evidence("placed", round(share, 3), "share", cfg.placed_warn, cfg.placed_fail, outcome, message, left_names)


def silhouettes(mesh: Mesh, cams: Sequence[Camera], side: int, device: str) -> list[np.ndarray]:
    """(h, w) bool silhouette of the mesh in each camera, drawn at `side` px long side."""
    import torch

    from ..geom import project_torch
    from ..raster import rasterize

    dev = torch.device(device)
    v = torch.as_tensor(mesh.vertices, dtype=torch.float32, device=dev)
    f = torch.as_tensor(mesh.faces, dtype=torch.long, device=dev)
    out = []
    for cam in cams:
        scale = min(1.0, side / max(cam.width, cam.height))
        w, h = max(1, round(cam.width * scale)), max(1, round(cam.height * scale))
        K, R, t = (torch.as_tensor(a, dtype=torch.float32, device=dev) for a in (cam.K, cam.R, cam.t))
        pix, z = project_torch(K, R, t, v, cam.orthographic)
        face_id, _, _ = rasterize(((pix + 0.5) * scale - 0.5)[f], w, h, z[f])
        out.append((face_id >= 0).cpu().numpy())
    return out


def outline_agreement(photos: Sequence[Photo], masks: Sequence[Mask], mesh: Mesh, cfg: GateConfig,
                      device: str) -> Evidence:
    """Median IoU of the model's silhouette with each placed photo's own cut-out."""
    import cv2

    pairs = [(p, m, c) for p, m, c in zip(photos, masks, mesh.views)
             if c is not None and m.method != "none" and m.mask.any()]
    if not pairs:
        return Evidence("outline", 0.0, "share", cfg.outline_warn, cfg.outline_fail, Verdict.WARNINGS,
                        "The item's outline could not be found in any photo to check the model against.")
    sils = silhouettes(mesh, [c for _, _, c in pairs], cfg.outline_side, device)
    ious = []
    for (p, m, _), sil in zip(pairs, sils):
        mask = cv2.resize(m.mask.astype(np.uint8), (sil.shape[1], sil.shape[0]), interpolation=cv2.INTER_AREA) > 0
        union = np.logical_or(mask, sil).sum()
        ious.append(float(np.logical_and(mask, sil).sum() / union) if union else 0.0)
    median = float(np.median(ious))
    outcome = grade(median, cfg.outline_warn, cfg.outline_fail, True)
    order = np.argsort(ious)
    bad = tuple(pairs[k][0].name for k in order if ious[k] < cfg.outline_photo)
    message = ""
    if outcome is Verdict.FAILED:
        message = (f"The model's outline does not match the item in your photos (it agrees {median:.0%} with the "
                   "item's outline): it probably holds part of the table or background, or the item moved.")
    elif outcome is Verdict.WARNINGS:
        message = f"The model's outline matches the item in your photos only roughly ({median:.0%} agreement)."
    elif bad:
        outcome = Verdict.WARNINGS
        message = "In some photos the item's outline differs from the model: check they show the whole item."
    if bad and message:
        message += f" Photos that disagree most: {file_list(bad)}."
    return Evidence("outline", round(median, 3), "share", cfg.outline_warn, cfg.outline_fail, outcome, message, bad)


def view_spread(mesh: Mesh, cfg: GateConfig) -> Evidence:
    """Widest angle between two photos' directions to the model's centre (degrees)."""
    cams = [c for c in mesh.views if c is not None]
    centre = 0.5 * (mesh.vertices.min(axis=0) + mesh.vertices.max(axis=0))
    dirs = np.array([c.center - centre for c in cams], float)
    dirs /= np.maximum(np.linalg.norm(dirs, axis=1, keepdims=True), 1e-12)
    spread = float(np.degrees(np.arccos(np.clip((dirs @ dirs.T).min(), -1.0, 1.0)))) if len(dirs) > 1 else 0.0
    outcome = grade(spread, cfg.spread_warn, cfg.spread_fail, True)
    message = ""
    if outcome is not Verdict.GOOD:
        message = (f"Your photos were all taken from nearly the same spot (at most {spread:.0f} degrees apart), so the "
                   "item's depth could not be measured. Walk around the item, taking a photo every 10-15 degrees.")
    return Evidence("spread", round(spread, 1), "degrees", cfg.spread_warn, cfg.spread_fail, outcome, message)


def _product_points(mesh: Mesh, points: np.ndarray) -> np.ndarray:
    return points @ mesh.placement[:3, :3].T + mesh.placement[:3, 3]


def ring_size(mesh: Mesh, cfg: GateConfig) -> Evidence:
    """Model size against the camera ring: bbox diagonal / median camera distance to its centre.

    A camera inside the model's box fails outright: the model is the room, not the item."""
    cams = [c for c in mesh.views if c is not None]
    centres = np.array([c.center for c in cams], float)
    lo, hi = mesh.vertices.min(axis=0), mesh.vertices.max(axis=0)
    scale = float(np.cbrt(abs(np.linalg.det(mesh.placement[:3, :3]))))
    diag = float(np.linalg.norm(mesh.dimensions_m)) / max(scale, 1e-12)
    dist = float(np.median(np.linalg.norm(centres - 0.5 * (lo + hi), axis=1)))
    ratio = diag / max(dist, 1e-12)
    w, h, d = mesh.dimensions_m
    p = _product_points(mesh, centres)
    inside = int(np.sum((np.abs(p[:, 0]) <= w / 2) & (p[:, 1] >= 0) & (p[:, 1] <= h) & (np.abs(p[:, 2]) <= d / 2)))
    outcome = grade(ratio, cfg.ring_warn, cfg.ring_fail, False)
    message = ""
    if inside or outcome is Verdict.FAILED:
        outcome = Verdict.FAILED
        message = ("The model is as large as the circle your photos were taken from, so it holds the surroundings, "
                   "not just the item.")
    elif ratio < cfg.ring_small:
        outcome = Verdict.FAILED
        message = "The model is only a small fragment of what your photos show."
    elif outcome is Verdict.WARNINGS:
        message = "The model is large for how close the photos were taken: it may include some surroundings."
    return Evidence("ring", round(ratio, 3), "ratio", cfg.ring_warn, cfg.ring_fail, outcome, message)


def aim(mesh: Mesh, cfg: GateConfig) -> Evidence:
    """Distance (in model box diagonals) from where the photos' optical axes meet to the model's box."""
    cams = [c for c in mesh.views if c is not None]
    a, b = np.zeros((3, 3)), np.zeros(3)
    for c in cams:
        f = c.forward / np.linalg.norm(c.forward)
        proj = np.eye(3) - np.outer(f, f)
        a += proj
        b += proj @ c.center
    meet = np.linalg.lstsq(a, b, rcond=None)[0]
    w, h, d = mesh.dimensions_m
    p = _product_points(mesh, meet[None])[0]
    gap = np.maximum(np.abs([p[0], p[2]]) - [w / 2, d / 2], 0.0)
    gap_y = max(0.0, -p[1], p[1] - h)
    dist = float(np.linalg.norm([gap[0], gap_y, gap[1]])) / max(float(np.linalg.norm([w, h, d])), 1e-12)
    outcome = grade(dist, cfg.aim_warn, cfg.aim_fail, False)
    message = ""
    if outcome is Verdict.FAILED:
        message = "The model is not where your photos point: it is probably something beside the item."
    elif outcome is Verdict.WARNINGS:
        message = "The model sits off-centre from where your photos point: check it is the item you photographed."
    return Evidence("aim", round(dist, 3), "ratio", cfg.aim_warn, cfg.aim_fail, outcome, message)


def loose_pieces(mesh: Mesh, cfg: GateConfig) -> Evidence:
    """Share of the surface area outside the largest connected piece."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    faces = mesh.faces
    n = len(mesh.vertices)
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]]])
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    tri = mesh.vertices[faces]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    per_piece = np.bincount(labels[faces[:, 0]], weights=area)
    share = float(1.0 - per_piece.max() / max(per_piece.sum(), 1e-30)) if len(per_piece) else 0.0
    outcome = grade(share, cfg.pieces_warn, cfg.pieces_fail, False)
    message = ""
    if outcome is not Verdict.GOOD:
        message = f"{share:.0%} of the model's surface is in loose pieces beside the main part."
    return Evidence("pieces", round(share, 3), "share", cfg.pieces_warn, cfg.pieces_fail, outcome, message)


def unseen(coverage: float, cfg: GateConfig) -> Evidence:
    share = float(max(0.0, 1.0 - coverage))
    outcome = grade(share, cfg.unseen_warn, cfg.unseen_fail, False)
    message = ""
    if outcome is not Verdict.GOOD:
        message = (f"No photo saw {share:.0%} of the model's surface; those parts are guessed. "
                   "Add photos from the sides and from higher up.")
    return Evidence("unseen", round(share, 3), "share", cfg.unseen_warn, cfg.unseen_fail, outcome, message)


def photometric(error: float | None, cfg: GateConfig) -> Evidence | None:
    if error is None:
        return None
    outcome = grade(error, cfg.photometric_warn, cfg.photometric_fail, False)
    message = ""
    if outcome is not Verdict.GOOD:
        message = ("The model does not look like your photos where it is compared with photos it was not painted "
                   f"from (colour error {error:.0f} of 255): the shape or the photo positions are off.")
    return Evidence("photometric", round(float(error), 2), "rgb", cfg.photometric_warn, cfg.photometric_fail,
                    outcome, message)
