"""The one entry point: photos in, AR-ready files out. The CLI and the web app call only this."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import Cancelled, CaptureError, InputError
from .types import SINGLE_VIEW_KINDS, KnownSize, Mask, Placement, ProgressFn, Result

#: Fewer photos than this take the single-photo path (photo 0 only) with a warning.
MIN_MULTIVIEW_PHOTOS = 3
#: More photos than this are refused before any work (20-80 are enough; hundreds stall pose finding).
MAX_PHOTOS = 100
QUALITIES = ("fast", "balanced", "high")
#: Texture side per quality when the merchant does not choose one.
TEXTURE_SIZES = {"fast": 1024, "balanced": 2048, "high": 2048}

#: Every stage `reconstruct` reports through `progress`, in order, with the plain words a
#: merchant sees for it. "poses" only runs for MIN_MULTIVIEW_PHOTOS photos or more.
STAGE_WORDS: dict[str, str] = {
    "ingest": "Reading your photos",
    "segment": "Finding the product in each photo",
    "poses": "Working out where each photo was taken",
    "geometry": "Building the 3D shape",
    "mesh": "Cleaning up and sizing the model",
    "texture": "Painting the model from your photos",
    "export": "Saving files for phones and online shops",
    "report": "Checking the result",
}


def stages_for(photo_count: int) -> tuple[str, ...]:
    """The stage ids a job with this many photos goes through, in order."""
    multi = photo_count >= MIN_MULTIVIEW_PHOTOS
    return tuple(s for s in STAGE_WORDS if multi or s != "poses")


@dataclass(frozen=True)
class Options:
    """What the merchant chose. Everything else comes from the quality preset."""

    kind: str = "auto"  # auto | flat | box | revolve | round (single photo only)
    placement: Placement = "floor"
    size: KnownSize | None = None
    name: str = ""
    quality: str = "balanced"  # fast | balanced | high
    texture_size: int | None = None  # px, a power of two; None: TEXTURE_SIZES[quality]
    max_triangles: int = 100_000
    max_megabytes: float = 5.0

    def to_dict(self) -> dict:
        """Plain JSON-able values (what a job record stores)."""
        data = asdict(self)
        data["size"] = None if self.size is None else {"axis": self.size.axis, "metres": self.size.metres}
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "Options":
        """The inverse of `to_dict`; unknown keys are ignored (records written by older versions)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in dict(data).items() if k in known}
        size = values.pop("size", None)
        if size is not None:
            values["size"] = KnownSize(size["axis"], float(size["metres"]))
        return cls(**values)

    def check(self) -> "Options":
        """The options with the quality's defaults filled in; InputError for a bad value."""
        if self.kind not in ("auto", *SINGLE_VIEW_KINDS):
            raise InputError("options", f"Unknown kind '{self.kind}'. Use auto, flat, box, revolve or round.")
        if self.placement not in ("floor", "wall"):
            raise InputError("options", f"Unknown placement '{self.placement}'. Use floor or wall.")
        if self.quality not in QUALITIES:
            raise InputError("options", f"Unknown quality '{self.quality}'. Use fast, balanced or high.")
        if self.texture_size is None:
            return replace(self, texture_size=TEXTURE_SIZES[self.quality]).check()
        if self.texture_size not in (256, 512, 1024, 2048, 4096):
            raise InputError("options", f"Texture size {self.texture_size} must be 256, 512, 1024, 2048 or 4096.")
        if not 1_000 <= self.max_triangles <= 1_000_000:
            raise InputError("options", f"Triangle budget {self.max_triangles} must be between 1,000 and 1,000,000.")
        return self


class _Stages:
    """Times each stage and forwards progress; raises Cancelled when the callback says stop."""

    def __init__(self, progress: ProgressFn | None):
        self.progress = progress
        self.seconds: dict[str, float] = {}
        self._stage = ""
        self._t0 = time.perf_counter()

    def start(self, stage: str, message: str) -> None:
        self._finish()
        self._stage, self._t0 = stage, time.perf_counter()
        self.tick(0.0, message)

    def tick(self, fraction: float, message: str = "") -> None:
        if self.progress is not None and self.progress(self._stage, float(fraction), message) is False:
            raise Cancelled(self._stage)

    def sub(self, fraction: float, message: str) -> None:
        """Progress callback handed to long stages: (fraction, message)."""
        self.tick(fraction, message)

    def _finish(self) -> None:
        if self._stage:
            self.seconds[self._stage] = self.seconds.get(self._stage, 0.0) + time.perf_counter() - self._t0

    def done(self) -> dict[str, float]:
        self._finish()
        self._stage = ""
        return dict(self.seconds)


def reconstruct(
    photos: Sequence[str | Path],
    out_glb: str | Path,
    options: Options = Options(),
    progress: ProgressFn | None = None,
    device: str | None = None,
) -> Result:
    """Turn photos into GLB, USDZ, OBJ zip, poster PNG and a JSON quality report beside `out_glb`.

    One photo (or two) takes the single-photo path with shape priors; three or more take the
    multi-photo path (structure from motion, dense geometry). Raises InputError / CaptureError with
    a one-line message for bad input, Cancelled when `progress` returns False.
    `device` is a torch device string; None picks CUDA when present, else CPU.
    """
    from . import export, ingest, mesh, report, segment, texture

    t_start = time.perf_counter()
    options = options.check()
    out_glb = Path(out_glb)
    if out_glb.suffix.lower() != ".glb":
        raise InputError("options", f"The output file must end in .glb, not '{out_glb.name}'.")
    device = device or _default_device()
    stages = _Stages(progress)
    warnings: list[str] = []

    stages.start("ingest", "Reading photos")
    ingested = ingest.load_photos(photos, ingest.PRESETS[options.quality])
    warnings += ingested.rejected
    photo_list = ingested.photos

    stages.start("segment", "Finding the object in each photo")
    multiview = len(photo_list) >= MIN_MULTIVIEW_PHOTOS
    masks, unclear = [], []
    for i, photo in enumerate(photo_list):
        try:
            masks.append(segment.segment_photo(photo, segment.PRESETS[options.quality]))
        except CaptureError as error:
            if not multiview:
                raise
            # One unclear photo must not sink a capture: the other views outline the item, and an
            # all-object mask leaves the multi-view hull vote to them.
            unclear.append(error)
            masks.append(Mask(np.ones(photo.rgb.shape[:2], bool), 0.0, True, "none", (error.message,)))
        stages.tick((i + 1) / len(photo_list), f"Photo {i + 1} of {len(photo_list)}")
    if unclear and len(unclear) > len(photo_list) // 2:
        raise CaptureError(
            "segment", f"The item could not be told apart from the background in {len(unclear)} of "
            f"{len(photo_list)} photos.", unclear[0].advice)
    warnings += [e.message for e in unclear]

    poses = None
    if multiview:
        from . import dense, sfm

        stages.start("poses", "Working out where each photo was taken")
        poses = sfm.estimate_poses(photo_list, sfm.PRESETS[options.quality], progress=stages.sub)
        stages.start("geometry", "Building the 3D shape")
        shape, masks = dense.reconstruct_dense(
            photo_list, tuple(masks), poses, dense.PRESETS[options.quality], device=device, progress=stages.sub
        )
    else:
        from . import single_view

        if len(photo_list) > 1:
            warnings.append(
                f"Only the first of your {len(photo_list)} photos was used. For a full 3D model, "
                "take 20-80 photos walking all around the item."
            )
            photo_list, masks = photo_list[:1], masks[:1]
        stages.start("geometry", "Building the 3D shape from one photo")
        shape = single_view.shape_from_photo(
            photo_list[0], masks[0], options.kind, options.placement, single_view.PRESETS[options.quality]
        )

    stages.start("mesh", "Cleaning and sizing the model")
    mesh_cfg = replace(mesh.PRESETS[options.quality], max_triangles=options.max_triangles)
    finished = mesh.finish_mesh(shape, options.size, options.placement, mesh_cfg)

    stages.start("texture", "Painting the model from the photos")
    tex_cfg = replace(texture.PRESETS[options.quality], texture_size=options.texture_size)
    textured = texture.bake_texture(finished, photo_list, tuple(masks), tex_cfg, device=device, progress=stages.sub)

    stages.start("export", "Writing GLB, USDZ, OBJ and poster")
    exp_cfg = replace(export.PRESETS[options.quality], max_bytes=int(options.max_megabytes * 1e6))
    files = export.export_all(textured, out_glb, exp_cfg, name=options.name or out_glb.stem)

    stages.start("report", "Checking the result")
    quality = report.make_report(
        photos=photo_list,
        masks=tuple(masks),
        poses=poses,
        shape=shape,
        mesh=finished,
        textured=textured,
        exports=files,
        warnings=tuple(warnings),
        seconds=time.perf_counter() - t_start,
        seconds_per_stage=stages.done(),
    )
    report_path = out_glb.with_suffix(".report.json")
    report.write_report(quality, report_path)
    return Result(exports=files, report=quality, report_path=str(report_path))


def _default_device() -> str:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency, but keep import pipeline light
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


__all__ = ["MAX_PHOTOS", "MIN_MULTIVIEW_PHOTOS", "Options", "QUALITIES", "STAGE_WORDS", "TEXTURE_SIZES", "reconstruct", "stages_for"]
