"""Correct a finished model without re-running the reconstruction: the maths.

(The entries, `adjust_model` and `preview_adjustment`, are in stage.py.) The model as it was first made (its product-frame GLB) is read back and given a placement: the
similarity an `Adjustment` describes (tip, turn about +Y, uniform scale), re-anchored by the
contract's one rule (`geom.anchor`). Then the same `export_all` the pipeline uses writes every
file, so the output contract is applied in one place. The texture is passed on as it was encoded,
and every adjustment starts from the original, so edits never drift or re-compress.
"""

from __future__ import annotations

import numpy as np

from .. import geom
from ..errors import InputError
from ..types import AXES, Adjustment, TexturedMesh, Tip
from ..units import MAX_SIZE_M, MIN_SIZE_M, format_size
from .config import STAGE
from .gltf_read import StoredModel

#: (axis, degrees) of the rotation each tip is; see `Tip`.
_TIPS = {Tip.NONE: ("x", 0.0), Tip.FRONT: ("x", 90.0), Tip.BACK: ("x", -90.0),
         Tip.LEFT: ("z", 90.0), Tip.RIGHT: ("z", -90.0), Tip.TOP: ("z", 180.0)}
_AXIS_INDEX = {"width": 0, "height": 1, "depth": 2}


def adjustment_placement(points: np.ndarray, adjustment: Adjustment) -> tuple[np.ndarray, tuple[float, float, float]]:
    """(4, 4) similarity from the original product frame to the adjusted one, and the new bbox
    size (metres). InputError when the size cannot apply (no extent on that axis, absurd result)."""
    rot = _rotation("y", adjustment.yaw_deg) @ _rotation(*_TIPS[adjustment.tip])
    lo, hi = geom.bbox(np.asarray(points, float) @ rot.T)
    ext = hi - lo
    scale = 1.0
    if adjustment.size is not None:
        axis = _AXIS_INDEX[adjustment.size.axis]
        if ext[axis] < 1e-6 * max(float(ext.max()), 1e-12):
            others = " or ".join(a for a in AXES if a != adjustment.size.axis)
            raise InputError(STAGE, f"The model has no {adjustment.size.axis} to match; give its {others} instead.")
        scale = adjustment.size.metres / float(ext[axis])
        if scale * float(ext.max()) > MAX_SIZE_M or scale * float(ext.max()) < MIN_SIZE_M:
            raise InputError(STAGE, f"With a {adjustment.size.axis} of {format_size(adjustment.size.metres)} the "
                                    f"item would be {scale * float(ext.max()):.3g} m across; check the size.")
    matrix = geom.similarity(scale, rot, geom.anchor(scale * lo, scale * hi, adjustment.placement))
    return matrix, tuple(float(d) for d in scale * ext)


def placed(stored: StoredModel, adjustment: Adjustment) -> tuple[TexturedMesh, tuple[float, float, float]]:
    """The stored model as a TexturedMesh whose placement is the adjustment, and its new size (m)."""
    matrix, dims = adjustment_placement(stored.points, adjustment)
    textured = TexturedMesh(vertices=stored.points, faces=stored.faces, uv=stored.uv, texture=stored.texture,
                            placement=matrix, dimensions_m=dims)
    return textured, dims


def _rotation(axis: str, degrees: float) -> np.ndarray:
    """(3, 3) right-handed rotation about a product-frame axis; quarter turns are exact."""
    quarter = degrees / 90.0
    if quarter == round(quarter):  # cos(pi/2) is not 0 in floats: keep quarter-turn boxes exact
        c, s = ((1, 0), (0, 1), (-1, 0), (0, -1))[int(round(quarter)) % 4]
    else:
        c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    i, j = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}[axis]
    m = np.eye(3)
    m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
    return m
