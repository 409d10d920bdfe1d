"""Typed data passed between pipeline stages.

Every stage takes and returns these frozen dataclasses; no dict with magic keys crosses a stage
boundary. Array shapes and units are given in the field comments.

Frames used here:
* image: pixels, x right, y down, pixel centres at integer coordinates.
* camera: OpenCV, x right, y down, z forward (into the scene).
* reconstruction frame: whatever frame the geometry stage worked in (the frame of `Camera`s).
  Its units are arbitrary unless `Shape.metres_per_unit` says otherwise.
* product frame: the output contract. Metres, +Y up, the front faces +Z, origin at the bottom
  centre of the bounding box. Only `export` maps geometry into it (with `Mesh.placement`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Callable, Literal

import numpy as np

from .errors import InputError
from .units import check_metres

Kind = Literal["flat", "box", "revolve", "round", "scan"]
Placement = Literal["floor", "wall"]
Axis = Literal["height", "width", "depth"]

#: Progress callback: (stage, fraction 0..1 within the stage, plain-words message).
#: Return False (or raise pipeline.Cancelled) to cancel the job.
ProgressFn = Callable[[str, float, str], "bool | None"]

#: The single-photo shape priors, in the order `--kind` lists them.
SINGLE_VIEW_KINDS: tuple[str, ...] = ("flat", "box", "revolve", "round")


class ScaleSource(str, Enum):
    """Where a model's size in metres came from."""

    MERCHANT = "merchant"  # the one real measurement the merchant entered
    MEASURED = "measured"  # the geometry stage knew the metric scale
    ASSUMED = "assumed"  # a typical size for the kind of item: the merchant should enter one


@dataclass(frozen=True)
class Photo:
    """One decoded photo at working size."""

    name: str  # file name as the merchant gave it (for messages)
    index: int  # position in the input list; photo 0 is the front view
    rgb: np.ndarray  # (H, W, 3) uint8, sRGB, EXIF orientation applied
    alpha: np.ndarray | None  # (H, W) uint8 when the file had a real alpha channel (a cut-out)
    focal_px: float | None  # focal length prior in working-size pixels, from EXIF; None if unknown
    original_size: tuple[int, int]  # (width, height) of the file after EXIF rotation, before downscale
    warnings: tuple[str, ...] = ()  # plain-words notes for the merchant ("photo is blurry")

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in working pixels."""
        return int(self.rgb.shape[1]), int(self.rgb.shape[0])


@dataclass(frozen=True)
class Mask:
    """Object mask of one photo."""

    mask: np.ndarray  # (H, W) bool, True = object
    confidence: float  # 0..1, how sure the segmenter is that this is one clean object
    touches_border: bool  # the object runs off the image edge (probably cut off)
    method: str  # "alpha", "grabcut", "carved", ...
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Camera:
    """A calibrated view. World (reconstruction frame) to camera: x_cam = R @ x + t (OpenCV)."""

    K: np.ndarray  # (3, 3) intrinsics in working-size pixels
    R: np.ndarray  # (3, 3) rotation, world -> camera
    t: np.ndarray  # (3,) translation, world -> camera
    width: int
    height: int
    orthographic: bool = False  # True: pixel = K[:2,:2] @ x_cam[:2] + K[:2, 2] (no division by z)

    @property
    def center(self) -> np.ndarray:
        """(3,) camera centre in the world frame (for orthographic views: a point on the axis)."""
        return -self.R.T @ self.t

    @property
    def forward(self) -> np.ndarray:
        """(3,) unit viewing direction in the world frame."""
        return self.R[2].copy()


@dataclass(frozen=True)
class Poses:
    """Structure-from-motion result, converted from pycolmap at the SfM boundary."""

    cameras: tuple[Camera | None, ...]  # one per photo, None where the photo could not be placed
    points: np.ndarray  # (N, 3) float64 sparse points, reconstruction frame
    point_colors: np.ndarray  # (N, 3) uint8
    point_views: tuple[np.ndarray, ...]  # per point, int32 indices of the photos that saw it
    reprojection_error_px: float  # mean over all observations
    failures: tuple[str, ...] = ()  # plain words per photo that was not placed
    # (3,) unit viewing direction of photo 0, reconstruction frame, when photo 0 itself could not
    # be placed but its rotation follows from its pairs (it still decides where the front is).
    first_view_axis: np.ndarray | None = None

    @property
    def placed(self) -> int:
        return sum(c is not None for c in self.cameras)


@dataclass(frozen=True)
class Shape:
    """Watertight geometry from the geometry stage, in the reconstruction frame."""

    vertices: np.ndarray  # (V, 3) float64
    faces: np.ndarray  # (F, 3) int64, counter-clockwise seen from outside (outward normals)
    views: tuple[Camera | None, ...]  # per photo, in the same frame; None where unusable
    up: np.ndarray  # (3,) unit vector: gravity "up" in the reconstruction frame
    front: np.ndarray  # (3,) unit, perpendicular to `up`, pointing towards where photo 0 was taken
    kind: Kind
    kind_reason: str  # plain words: why this kind was chosen
    metres_per_unit: float | None = None  # known metric scale, if any
    default_size_m: float = 0.5  # plausible size of the largest dimension if the merchant gives none
    seen_sides: tuple[str, ...] = ()  # of "front", "back", "left", "right", "top", "bottom"
    notes: tuple[str, ...] = ()  # plain-words technical notes for the report's details
    warnings: tuple[str, ...] = ()  # things the merchant should know about this model


@dataclass(frozen=True)
class Mesh:
    """Cleaned, decimated mesh plus the similarity that places it in the product frame."""

    vertices: np.ndarray  # (V, 3) float64, reconstruction frame (so `views` still project it)
    faces: np.ndarray  # (F, 3) int64
    views: tuple[Camera | None, ...]
    placement: np.ndarray  # (4, 4) similarity: reconstruction frame -> product frame (metres)
    dimensions_m: tuple[float, float, float]  # product-frame bbox size (width x, height y, depth z)
    scale_source: str  # plain words: "the height you entered: 30.0 cm (11.8 in)", ...
    scale_from: ScaleSource  # the same, for code to test
    kind: Kind
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class TexturedMesh:
    """Mesh with a UV atlas and a baked base-colour texture (still in the reconstruction frame)."""

    vertices: np.ndarray  # (V, 3) float64; seams split, so V may exceed the input mesh's count
    faces: np.ndarray  # (F, 3) int64
    uv: np.ndarray  # (V, 2) float32 in [0, 1], glTF convention (v = 0 at the top of the image)
    texture: np.ndarray  # (S, S, 3) uint8 sRGB, S a power of two
    placement: np.ndarray  # (4, 4) as in Mesh
    dimensions_m: tuple[float, float, float]
    coverage: float = 1.0  # share of the surface area textured from a photo (rest filled)
    heldout_error: float | None = None  # mean abs RGB error (0..255) re-rendering photos left out of the bake
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()  # things the merchant should know (a photo not used)
    seconds_per_step: dict[str, float] = field(default_factory=dict)  # bake diagnostics (unwrap, views, ...)


@dataclass(frozen=True)
class Exports:
    """Files written by the export stage."""

    glb: str
    usdz: str
    obj_zip: str
    poster: str
    triangles: int
    glb_bytes: int
    texture_size: int


class Verdict(str, Enum):
    """The quality gate's call on a finished model (see pipeline/quality)."""

    GOOD = "good"  # publish it as a scan
    WARNINGS = "warnings"  # usable, but the merchant should read what is wrong
    FAILED = "failed"  # not a faithful model: never published on its own; re-shoot advice given


@dataclass(frozen=True)
class Evidence:
    """One measurement the quality gate judged, with the limits it was judged against."""

    check: str  # id: "outline", "placed", "size", "pieces", "unseen", "photometric", ...
    value: float  # the measurement, in `unit`
    unit: str  # "share" (0..1), "px", "ratio", "rgb" (mean abs 0..255), "count"
    warn_at: float  # the value from which the check warns
    fail_at: float  # the value from which the check fails (the direction is the check's)
    outcome: Verdict
    message: str = ""  # plain words for the merchant; "" when the check passed
    photos: tuple[str, ...] = ()  # the merchant's file names this is about (to re-shoot)


@dataclass(frozen=True)
class Judgement:
    """What the quality gate decided, and on what evidence."""

    verdict: Verdict
    evidence: tuple[Evidence, ...]  # every check made, in the order they were made
    reshoot: tuple[str, ...] = ()  # photo file names worth re-shooting, worst first

    @property
    def problems(self) -> tuple[Evidence, ...]:
        """The checks that warned or failed, failed first."""
        bad = [e for e in self.evidence if e.outcome is not Verdict.GOOD]
        return tuple(sorted(bad, key=lambda e: e.outcome is not Verdict.FAILED))


@dataclass(frozen=True)
class QualityReport:
    """What the merchant (and the benchmark) learn about one model."""

    triangles: int
    glb_bytes: int
    texture_size: int
    dimensions_m: tuple[float, float, float]
    scale_source: str
    kind: str
    kind_reason: str
    mask_confidence: float
    photos_total: int
    photos_placed: int
    seconds: float
    seconds_per_stage: dict[str, float] = field(default_factory=dict)
    reprojection_error_px: float | None = None
    seen_sides: tuple[str, ...] = ()
    unseen_sides: tuple[str, ...] = ()
    heldout_photometric_error: float | None = None  # mean abs RGB error 0..255 on held-out photos
    warnings: tuple[str, ...] = ()  # things the merchant should know or fix
    advice: tuple[str, ...] = ()  # how to get a better model
    details: tuple[str, ...] = ()  # technical notes from the stages (simplification, fill-in, ...)
    summary: str = ""
    verdict: Verdict = Verdict.GOOD  # the quality gate's call (see Evidence)
    evidence: tuple[Evidence, ...] = ()  # every check the gate made, passed or not
    reshoot: tuple[str, ...] = ()  # the merchant's photo file names worth re-shooting, worst first


@dataclass(frozen=True)
class Result:
    """What `reconstruct` returns."""

    exports: Exports
    report: QualityReport
    report_path: str


#: The axes a `KnownSize` may name, in the order messages list them.
AXES: tuple[str, ...] = ("height", "width", "depth")


@dataclass(frozen=True)
class KnownSize:
    """The one real dimension the merchant gave, in the product frame.

    Checked when made (InputError, one line naming the value), so a NaN, a zero, a negative, an
    absurd size, text or an unknown axis never reaches the geometry: see `units.check_metres`.
    """

    axis: Axis  # height = y, width = x, depth = z
    metres: float  # metres, MIN_SIZE_M..MAX_SIZE_M (5 mm to 20 m)

    def __post_init__(self) -> None:
        if not isinstance(self.axis, str) or self.axis not in AXES:
            raise InputError("options", f"Unknown size axis {self.axis!r}. Use height, width or depth.")
        # A plain float (not numpy's, not an int) keeps `Options.to_dict` JSON-able.
        object.__setattr__(self, "metres", check_metres(self.metres, self.axis))


@dataclass(frozen=True)
class Ingested:
    """Output of the ingest stage: the usable photos and a message per rejected file."""

    photos: tuple[Photo, ...]
    rejected: tuple[str, ...] = ()  # "IMG_3.jpg: the file is truncated or damaged"
