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


class Unplaced(str, Enum):
    """Why the SfM stage could not place a photo."""

    NO_DETAIL = "no_detail"  # too blurry, dark or plain: few features found in it
    OTHER_SCENE = "other_scene"  # (almost) nothing in common with any other photo
    OTHER_GROUP = "other_group"  # matches only photos that were left out too: maybe another item
    LITTLE_OVERLAP = "little_overlap"  # shares details with placed photos, too few to place it


@dataclass(frozen=True)
class LeftOut:
    """A photo the SfM stage could not place."""

    index: int  # into the job's photos
    reason: Unplaced
    message: str  # plain words, naming the merchant's file


@dataclass(frozen=True)
class Poses:
    """Structure-from-motion result, converted from pycolmap at the SfM boundary."""

    cameras: tuple[Camera | None, ...]  # one per photo, None where the photo could not be placed
    points: np.ndarray  # (N, 3) float64 sparse points, reconstruction frame
    point_colors: np.ndarray  # (N, 3) uint8
    point_views: tuple[np.ndarray, ...]  # per point, int32 indices of the photos that saw it
    reprojection_error_px: float  # mean over all observations
    failures: tuple[LeftOut, ...] = ()  # one per photo that was not placed
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


class Tip(str, Enum):
    """Stand a model up or lay it down: which of its sides (as it was made, seen from the front)
    ends up at the bottom. Each is a rotation about the product frame's x or z axis."""

    NONE = "none"  # as made: its bottom stays the bottom
    FRONT = "front"  # laid on its front: +90 deg about x, the front (+Z) goes down
    BACK = "back"  # laid on its back: -90 deg about x, the back (-Z) goes down
    LEFT = "left"  # onto the side on the viewer's left (-X): +90 deg about z
    RIGHT = "right"  # onto the side on the viewer's right (+X): -90 deg about z
    TOP = "top"  # upside down: 180 deg about z


#: Limits an `Adjustment` is checked against (degrees): past them the camera or the turn means nothing new.
POSTER_PITCH_RANGE = (0.0, 80.0)
TURN_RANGE = (-180.0, 180.0)


@dataclass(frozen=True)
class Adjustment:
    """A correction of a finished model, relative to the model as it was first made (the
    original product-frame GLB), so repeated edits never stack rounding or re-compression.

    Applied in this order: tip, then the turn about +Y, then the uniform scale that gives `size`,
    then the contract's anchor for `placement` (geom.anchor). Checked when made: InputError
    (stage "export") naming the value for NaN, out-of-range angles, unknown names.
    """

    tip: Tip = Tip.NONE
    quarter_turns: int = 0  # quarter turns about +Y, counter-clockwise seen from above; kept in 0..3
    turn_deg: float = 0.0  # degrees, a fine turn about +Y on top of the quarter turns, -180..180
    size: KnownSize | None = None  # one dimension after turning (metres); the others follow. None: as made
    placement: Placement = "floor"
    poster_yaw_deg: float = 25.0  # degrees, the poster camera's direction about +Y from the front (+Z)
    poster_pitch_deg: float = 20.0  # degrees above the horizon, POSTER_PITCH_RANGE
    background: tuple[int, int, int] = (255, 255, 255)  # the poster's backdrop, sRGB 0..255

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "tip", Tip(self.tip))
        except ValueError:
            raise InputError("export", f"Unknown tip {self.tip!r}: use one of "
                                       f"{', '.join(t.value for t in Tip)}.") from None
        if self.placement not in ("floor", "wall"):
            raise InputError("export", f"Unknown placement {self.placement!r}. Use floor or wall.")
        if isinstance(self.quarter_turns, bool) or not isinstance(self.quarter_turns, (int, np.integer)):
            raise InputError("export", f"Quarter turns must be a whole number, not {self.quarter_turns!r}.")
        object.__setattr__(self, "quarter_turns", int(self.quarter_turns) % 4)
        for name, (lo, hi) in (("turn_deg", TURN_RANGE), ("poster_yaw_deg", TURN_RANGE),
                               ("poster_pitch_deg", POSTER_PITCH_RANGE)):
            object.__setattr__(self, name, _degrees(getattr(self, name), name, lo, hi))
        if self.size is not None and not isinstance(self.size, KnownSize):
            raise InputError("export", f"The new size must be a KnownSize (axis and metres), not {self.size!r}.")
        colour = tuple(self.background) if isinstance(self.background, (tuple, list)) else ()
        if len(colour) != 3 or not all(isinstance(c, (int, np.integer)) and not isinstance(c, bool)
                                       and 0 <= c <= 255 for c in colour):
            raise InputError("export", f"The background must be three numbers 0-255, not {self.background!r}.")
        object.__setattr__(self, "background", tuple(int(c) for c in colour))

    @property
    def yaw_deg(self) -> float:
        """The whole turn about +Y in degrees (counter-clockwise seen from above)."""
        return 90.0 * self.quarter_turns + self.turn_deg

    def to_dict(self) -> dict:
        """Plain JSON-able values (what the library stores beside the model)."""
        return {"tip": self.tip.value, "quarter_turns": self.quarter_turns, "turn_deg": self.turn_deg,
                "size": None if self.size is None else {"axis": self.size.axis, "metres": self.size.metres},
                "placement": self.placement, "poster_yaw_deg": self.poster_yaw_deg,
                "poster_pitch_deg": self.poster_pitch_deg, "background": list(self.background)}

    @classmethod
    def from_dict(cls, data: object) -> "Adjustment":
        """The inverse of `to_dict`; missing keys take their defaults, unknown ones are ignored."""
        if not isinstance(data, dict):
            raise InputError("export", f"A stored adjustment must be a set of values, not {type(data).__name__}.")
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        size = known.pop("size", None)
        if size is not None:
            if not isinstance(size, dict) or not {"axis", "metres"} <= set(size):
                raise InputError("export", f"The stored size {size!r} is not a size: it needs an axis and metres.")
            try:
                size = KnownSize(size["axis"], size["metres"])
            except InputError as error:
                raise InputError("export", error.message) from None
        if isinstance(known.get("background"), list):
            known["background"] = tuple(known["background"])
        return cls(size=size, **known)


def _degrees(value: object, name: str, lo: float, hi: float) -> float:
    words = name.replace("_deg", "").replace("_", " ")
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError("export", f"The {words} must be a number of degrees, not {value!r}.")
    deg = float(value)
    if not np.isfinite(deg) or not lo <= deg <= hi:
        raise InputError("export", f"The {words} must be between {lo:g} and {hi:g} degrees, not {deg:g}.")
    return deg


@dataclass(frozen=True)
class Adjusted:
    """What `adjust_model` wrote: the files, and the model's new size."""

    exports: Exports
    dimensions_m: tuple[float, float, float]  # metres, product-frame bbox (width x, height y, depth z)


@dataclass(frozen=True)
class AdjustPreview:
    """A quick look at an `Adjustment` before it is applied: nothing is written."""

    image: np.ndarray  # (S, S, 3) uint8, the poster view with the adjustment applied
    dimensions_m: tuple[float, float, float]  # metres, the size it would have (width, height, depth)
