"""Single-photo geometry stage: one photo + its mask -> a watertight `Shape` from a shape prior.

Entry point: `shape_from_photo(photo, mask, kind, placement, cfg) -> Shape`.

Kinds (the merchant picks one, or "auto" picks from the silhouette, see `choose_kind`):
* flat: wall art, mirrors, rugs, posters: the outline as a thin slab.
* box: the silhouette extruded to a plausible depth.
* revolve: bottles, vases, lamps, cups: the silhouette's half-width per row revolved about its axis.
* round: cushions, bags, toys, fruit: the silhouette inflated (front and back joined on the outline).

Reconstruction frame: the photo's pixel frame, x right = pixel x, y down = pixel y, z = depth away
from the camera, all in pixels. `views` holds one orthographic camera with R = I, so projecting a
vertex gives back its (x, y). Front faces the camera (-z); image up is -y.
"""

from __future__ import annotations

import numpy as np

from ..errors import CaptureError, InputError
from ..types import SINGLE_VIEW_KINDS, Camera, Mask, Photo, Shape
from . import builders
from .config import STAGE, SingleViewConfig
from .silhouette import Silhouette, analyse, revolve_profile

#: Plausible largest dimension per kind when the merchant gives no size, with the example used
#: in the report. Flat on the floor is a rug.
DEFAULT_SIZES: dict[str, tuple[float, str]] = {
    "flat": (0.6, "a typical framed picture"),
    "flat-floor": (1.6, "a typical rug"),
    "box": (0.45, "a typical box-shaped item"),
    "revolve": (0.3, "a typical vase or bottle"),
    "round": (0.25, "a typical cushion, bag or fruit"),
}

# Auto-kind thresholds (measured on the bench singles and synthetic masks, see tests):
FLAT_RECT = 0.90  # outline fills >= 90% of its min-area rectangle ...
FLAT_FRAME = 0.55  # ... and that rectangle covers >= 55% of the photo: a straight-on flat item
ELLIPSE_FIT = 0.95  # outline overlaps its fitted ellipse this well (IoU): a blob -> round
OPENINGS = 0.02  # see-through gaps >= 2% of the outline (chair legs, a handle): extruded as a box
BOX_RECT_STRICT = 0.95  # nearly a perfect rectangle: box even if left-right symmetric
SYMMETRY = 0.92  # IoU of the outline with its mirror image: revolve
BOX_RECT = 0.85  # otherwise fairly rectangular: box
NEAR_RECT = 0.93  # a flat item this rectangular is cut as its min-area rectangle


def shape_from_photo(photo: Photo, mask: Mask, kind: str, placement: str, cfg: SingleViewConfig) -> Shape:
    """Build a watertight shape from one photo and its object mask.

    Returns a Shape in the photo's pixel frame (see module docstring) with one orthographic view.
    Raises InputError for an unknown kind/placement, CaptureError when the mask holds no object.
    """
    if kind not in ("auto", *SINGLE_VIEW_KINDS):
        raise InputError("options", f"Unknown kind '{kind}'. Use auto, flat, box, revolve or round.")
    if placement not in ("floor", "wall"):
        raise InputError("options", f"Unknown placement '{placement}'. Use floor or wall.")
    m = np.asarray(mask.mask)
    w, h = photo.size
    if m.shape != (h, w):
        raise InputError(STAGE, f"The mask of {photo.name} does not match the photo size.")
    sil = analyse(m.astype(bool))
    if sil is None:
        raise CaptureError(
            STAGE,
            f"No object was found in {photo.name}.",
            "Photograph the item alone, filling about half of the frame, against a plain background.",
        )
    if kind == "auto":
        kind, reason = choose_kind(sil)
    else:
        reason = f"you chose '{kind}'"

    notes: list[str] = []
    # Flat items are photographed straight on, wall items hang at eye level. A round item's
    # inflated outline is the same seen from a little higher, and a box with see-through openings
    # (a chair) cannot show its top face apart from the gaps: those are built level.
    tilted = placement == "floor" and (kind == "revolve" or (kind == "box" and sil.openings < OPENINGS))
    tilt = np.radians(cfg.camera_elevation_deg) if tilted else 0.0
    if kind == "revolve":
        verts, faces = _revolve(sil, cfg, notes, tilt)
    else:
        verts, faces = _from_outline(sil, kind, placement, cfg, notes, tilt)

    size_key = "flat-floor" if (kind == "flat" and placement == "floor") else kind
    default_m, _example = DEFAULT_SIZES[size_key]  # the mesh stage words the assumption
    if mask.touches_border:
        notes.append("The item runs off the edge of the photo, so part of it is missing from the model.")
    if kind == "flat" and placement == "floor":
        up, front = np.array([0.0, 0.0, -1.0]), np.array([0.0, 1.0, 0.0])  # the photo shows the top
    else:
        # world up and the horizontal direction towards the camera, in the (tilted) camera frame
        up = np.array([0.0, -np.cos(tilt), -np.sin(tilt)])
        front = np.array([0.0, np.sin(tilt), -np.cos(tilt)])
    depth = float(np.ptp(verts[:, 2]))
    camera = Camera(
        K=np.eye(3),
        R=np.eye(3),
        t=np.array([0.0, 0.0, 2.0 * depth + 10.0]),  # keeps camera-frame depth positive
        width=w,
        height=h,
        orthographic=True,
    )
    return Shape(
        vertices=verts.astype(np.float64),
        faces=faces.astype(np.int64),
        views=(camera,),
        up=up,
        front=front,
        kind=kind,
        kind_reason=reason,
        metres_per_unit=None,
        default_size_m=default_m,
        seen_sides=("front",),
        notes=tuple(notes),
    )


def choose_kind(sil: Silhouette) -> tuple[str, str]:
    """Pick a shape prior from silhouette measures; returns (kind, plain-words reason)."""
    if sil.rectangularity >= FLAT_RECT and sil.frame_fill >= FLAT_FRAME:
        return "flat", (
            "the outline is a rectangle that fills most of the photo, so it was made as a flat item "
            "like a picture or a mirror"
        )
    if sil.ellipse_fit >= ELLIPSE_FIT:
        return "round", "the outline is a smooth oval, so it was made as a soft round item like a cushion or fruit"
    if sil.openings >= OPENINGS:
        return "box", (
            "the outline has see-through openings, like a chair or a handle, so it was made as a "
            "box-shaped item with those openings cut through"
        )
    if sil.rectangularity >= BOX_RECT_STRICT:
        return "box", "the outline is a clean rectangle, so it was made as a box-shaped item"
    if sil.symmetry >= SYMMETRY:
        return "revolve", "the outline is left-right symmetric, so it was turned into a round object like a vase"
    if sil.rectangularity >= BOX_RECT:
        return "box", "the outline is close to a rectangle, so it was made as a box-shaped item"
    return "round", (
        "the outline is neither symmetric nor boxy, so it was made as a soft rounded item like a bag or a toy"
    )


def _from_outline(sil: Silhouette, kind: str, placement: str, cfg: SingleViewConfig, notes: list[str],
                  tilt: float = 0.0):
    """flat / box / round: triangulate the outline, then slab it or inflate it."""
    import cv2

    m = sil.mask
    bw, bh = sil.width, sil.height
    if kind == "box" and tilt > 0:
        return _tilted_box(sil, cfg, notes, tilt)
    if kind == "flat" and sil.rectangularity >= NEAR_RECT:
        m = np.zeros_like(sil.mask, np.uint8)
        cv2.fillPoly(m, [np.round(sil.rect_corners * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
        notes.append("The outline was straightened to a clean rectangle.")
    points, tri, on_outline, field, to_px = _outline_mesh(m.astype(bool), sil, cfg)
    pts_px = points * to_px[0] + to_px[1]
    largest = float(max(bw, bh))
    if kind == "round":
        phi = _poisson_height(field > 0.5)
        gx, gy = np.round(points).astype(int).T
        half = np.where(on_outline, 0.0, np.sqrt(np.maximum(phi[gy, gx], 0.0)))
        half = cfg.round_depth * half * float(np.mean(to_px[0]))
        return builders.pillow(pts_px, tri, on_outline, 0.0, half)
    if kind == "box":
        depth = _box_depth(sil, cfg)
        notes.append(f"The depth was guessed as {depth / bw:.0%} of the width (one photo cannot show it).")
    else:
        size_m = DEFAULT_SIZES["flat-floor" if placement == "floor" else "flat"][0]
        depth = max(cfg.flat_thickness * largest, cfg.flat_min_thickness_m / size_m * largest)
    z = np.full(len(pts_px), depth / 2.0)
    return builders.slab(pts_px, tri, -z, z)


def _box_depth(sil: Silhouette, cfg: SingleViewConfig) -> float:
    bw, bh = sil.width, sil.height
    return float(min(cfg.box_depth_ratio * bw, max(float(bh), cfg.box_depth_cap * bw)))


def _tilted_box(sil: Silhouette, cfg: SingleViewConfig, notes: list[str], tilt: float):
    """A box seen from above: extrude the front face along the horizontal, away from the camera.

    The silhouette of an upright box seen `tilt` rad from above is its front face swept up by
    depth x sin(tilt) (the visible top). So the front face is the part of the silhouette that is
    still silhouette that many rows higher; its extrusion projects back onto the silhouette.
    """
    # The visible top is at most a quarter of the outline's height (a box deeper than that would
    # show more top): this also keeps outlines that are no box sweep at all (a banana) whole.
    depth = min(_box_depth(sil, cfg), 0.25 * sil.height / np.sin(tilt))
    k = int(round(depth * np.sin(tilt)))
    m = sil.mask
    if k > 0:
        # a pixel is front face when the pixel k rows above it is object too
        front = m.copy()
        front[k:] &= m[:-k]
        front[:k] = False
        m = front
    if m.sum() < 0.3 * sil.area:  # too thin for the guessed depth: keep the whole outline
        m = sil.mask
    points, tri, on_outline, field, to_px = _outline_mesh(m.astype(bool), sil, cfg)
    pts = points * to_px[0] + to_px[1]
    # The front face is vertical in the world, so its higher rows are nearer the camera.
    y_bottom = float(pts[:, 1].max())
    z_front = (pts[:, 1] - y_bottom) * np.tan(tilt)
    verts, faces = builders.slab(pts, tri, z_front, z_front)
    n = len(pts)
    verts[n:, 1] -= depth * np.sin(tilt)
    verts[n:, 2] += depth * np.cos(tilt)
    notes.append(f"The depth was guessed as {depth / sil.width:.0%} of the width (one photo cannot show it).")
    return verts, faces


def _outline_mask_field(m: np.ndarray, sil: Silhouette, cfg: SingleViewConfig):
    """Area-averaged mask on a coarse grid over the bbox, zero-padded; plus grid -> pixel map."""
    import cv2

    x0, y0, x1, y1 = sil.bbox
    cell = max(1.0, float(np.sqrt(sil.area / cfg.max_cells)))
    gw, gh = max(2, int(round((x1 - x0) / cell))), max(2, int(round((y1 - y0) / cell)))
    crop = m[y0:y1, x0:x1].astype(np.float32)
    field = cv2.resize(crop, (gw, gh), interpolation=cv2.INTER_AREA)
    if cfg.outline_blur > 0:
        field = cv2.GaussianBlur(field, (0, 0), cfg.outline_blur)
    field = np.pad(field, 1)
    sx, sy = (x1 - x0) / gw, (y1 - y0) / gh
    # grid node (j, i) (padded) is the centre of output cell (j-1, i-1): pixel x0 + (j - 0.5) sx - 0.5
    scale = np.array([sx, sy])
    offset = np.array([x0 - 0.5 * sx - 0.5, y0 - 0.5 * sy - 0.5])
    return field, (scale, offset)


def _outline_mesh(m: np.ndarray, sil: Silhouette, cfg: SingleViewConfig):
    field, to_px = _outline_mask_field(m, sil, cfg)
    points, tri, on_outline = builders.fill_contour(field, 0.5)
    if len(tri) == 0:
        raise CaptureError(STAGE, "The object outline is too small or too thin to build a shape.")
    return points, tri, on_outline, field, to_px


def _poisson_height(inside: np.ndarray, load: float = 2.5) -> np.ndarray:
    """Solve lap(phi) = -load inside (phi = 0 outside), grid units. sqrt(phi) is the inflation.

    load 4 makes sqrt(phi) a hemisphere over a disc, load 2 a half-cylinder over a long strip;
    2.5 sits between, so round blobs come out a little flatter than spheres.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import spsolve

    idx = -np.ones(inside.shape, np.int64)
    ys, xs = np.nonzero(inside)
    n = len(ys)
    idx[ys, xs] = np.arange(n)
    rows, cols, vals = [np.arange(n)], [np.arange(n)], [np.full(n, 4.0)]
    for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        nb = idx[ys + dy, xs + dx]  # the field is zero-padded, so neighbours stay in range
        ok = nb >= 0
        rows.append(np.nonzero(ok)[0])
        cols.append(nb[ok])
        vals.append(np.full(int(ok.sum()), -1.0))
    a = coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)).tocsc()
    phi = np.zeros(inside.shape)
    phi[ys, xs] = spsolve(a, np.full(n, load))
    return phi


def _revolve(sil: Silhouette, cfg: SingleViewConfig, notes: list[str], tilt: float = 0.0):
    x_axis, ys, radii, flattened = revolve_profile(sil, cfg.profile_rows, np.sin(tilt) if tilt > 0 else None)
    if flattened:
        notes.append(
            "The curved " + " and ".join(flattened) + " outline (the photo looks slightly down) was read as a flat "
            + ("end" if len(flattened) == 1 else "ends") + "."
        )
    if tilt <= 0:
        return builders.lathe(x_axis, ys, radii, 0.0, cfg.segments)
    # Build the solid upright (rows along the axis stretched by 1 / cos), then tip it towards the
    # camera about its bottom centre: its outline then matches the photo taken from above.
    pivot = ys[-1]
    verts, faces = builders.lathe(x_axis, pivot + (ys - pivot) / np.cos(tilt), radii, 0.0, cfg.segments)
    y, z = verts[:, 1] - pivot, verts[:, 2].copy()
    verts[:, 1] = pivot + y * np.cos(tilt) - z * np.sin(tilt)
    verts[:, 2] = y * np.sin(tilt) + z * np.cos(tilt)
    return verts, faces
