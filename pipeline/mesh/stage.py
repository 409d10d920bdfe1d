"""Mesh stage: clean, close, simplify and size a `Shape`; the result is a `Mesh`.

Entry point: `finish_mesh(shape, size, placement, cfg) -> Mesh`.

The vertices stay in the reconstruction frame (the texture stage projects them with `views`);
`Mesh.placement` is the (4, 4) similarity to the product frame that export applies once:
* rotation: `shape.up` -> +Y, `shape.front` -> +Z;
* scale: the merchant's size on its axis, else `shape.metres_per_unit`, else the largest side set
  to `shape.default_size_m` (flagged in `scale_source`);
* translation: bbox bottom centre at the origin (x, z centred, min y = 0). For placement "wall" the
  back of the bbox sits at z = 0 instead (the model hangs in front of the wall plane, +Z out of it).
  (`geom.anchor`, the one rule export's adjustments use too.)
"""

from __future__ import annotations

import numpy as np

from .. import geom
from ..errors import CaptureError, InputError
from ..types import KnownSize, Mesh, ScaleSource, Shape
from ..units import MAX_SIZE_M, format_size
from .config import STAGE, MeshConfig
from .repair import clean, decimate, is_closed

_AXES = {"width": 0, "height": 1, "depth": 2}
_SIDE_WORD = {0: "wide", 1: "tall", 2: "deep"}
_KIND_EXAMPLE = {
    "flat": "a typical flat item",
    "flat-floor": "a typical rug",
    "flat-wall": "a typical picture or mirror",
    "box": "a typical box-shaped item",
    "revolve": "a typical vase or bottle",
    "round": "a typical cushion, bag or fruit",
    "scan": "a typical product",
}



def finish_mesh(shape: Shape, size: KnownSize | None, placement: str, cfg: MeshConfig) -> Mesh:
    """Clean and simplify `shape`, and compute its placement in the product frame.

    Raises CaptureError when no usable surface is left, InputError when the merchant's size
    cannot apply (an axis the model has no extent along, or an absurd result).
    """
    if placement not in ("floor", "wall"):
        raise InputError("options", f"Unknown placement '{placement}'. Use floor or wall.")
    v = np.asarray(shape.vertices, np.float64)
    f = np.asarray(shape.faces, np.int64)
    if v.ndim != 2 or v.shape[1] != 3 or f.ndim != 2 or f.shape[1] != 3 or len(f) == 0:
        raise CaptureError(STAGE, "No 3D surface could be built from the photos.")
    if not np.isfinite(v).all() or f.min() < 0 or f.max() >= len(v):
        raise ValueError("mesh: the shape has invalid vertices or faces")  # a bug upstream, not the user

    notes: list[str] = []
    v, f, clean_notes = clean(v, f, cfg.keep_piece_share, cfg.max_hole_share, cfg.max_hole_edges)
    notes += clean_notes
    if len(f) == 0:
        raise CaptureError(STAGE, "No 3D surface was left after cleaning up the model.")
    aim = cfg.target_triangles if shape.kind == "scan" else cfg.photo_target_triangles
    budget = max(4, min(aim, cfg.max_triangles))
    if len(f) > budget:
        before = len(f)
        v, f = decimate(v, f, budget, cfg.keep_piece_share)
        notes.append(f"Simplified from {before:,} to {len(f):,} triangles.")
    if not is_closed(f):
        notes.append("The model is not fully closed; small gaps may show from some angles.")

    matrix, dims, source, scale_from = placement_matrix(v, shape, size, placement)
    return Mesh(
        vertices=v,
        faces=f,
        views=shape.views,
        placement=matrix,
        dimensions_m=dims,
        scale_source=source,
        scale_from=scale_from,
        kind=shape.kind,
        notes=tuple(notes),
    )


def placement_matrix(
    vertices: np.ndarray, shape: Shape, size: KnownSize | None, placement: str
) -> tuple[np.ndarray, tuple[float, float, float], str, ScaleSource]:
    """(4, 4) similarity reconstruction -> product frame, product bbox size (m), where the scale
    came from in plain words and as a ScaleSource."""
    rot = geom.frame_from_up_front(shape.up, shape.front)
    p = vertices @ rot.T
    lo, hi = geom.bbox(p)
    ext = hi - lo
    largest = float(ext.max())
    if largest <= 0:
        raise CaptureError(STAGE, "The model has no size (all its points coincide).")
    if size is not None:
        axis = _AXES[size.axis]
        if ext[axis] < 1e-6 * largest:
            raise InputError("options", f"The model has no {size.axis} to match; enter its height or width instead.")
        scale = size.metres / float(ext[axis])
        if scale * largest > MAX_SIZE_M:
            raise InputError(
                "options",
                f"With a {size.axis} of {format_size(size.metres)} the item would be "
                f"{scale * largest:.0f} m across; check the size, or give another side (height, width or depth).",
            )
        source = f"the {size.axis} you entered: {format_size(size.metres)}"
        scale_from = ScaleSource.MERCHANT
    elif shape.metres_per_unit:
        scale = float(shape.metres_per_unit)
        source = "measured from the photos"
        scale_from = ScaleSource.MEASURED
    else:
        scale = shape.default_size_m / largest
        axis = int(np.argmax(ext))
        kind_key = f"{shape.kind}-{placement}" if f"{shape.kind}-{placement}" in _KIND_EXAMPLE else shape.kind
        example = _KIND_EXAMPLE.get(kind_key, "a typical product")
        source = (
            f"no size given: assumed {shape.default_size_m * 100:.0f} cm {_SIDE_WORD[axis]}, {example}; "
            "enter one real measurement for true size"
        )
        scale_from = ScaleSource.ASSUMED
    matrix = geom.similarity(scale, rot, geom.anchor(scale * lo, scale * hi, placement))
    dims = tuple(float(d) for d in scale * ext)
    return matrix, dims, source, scale_from
