"""The one entry point: photos in, AR-ready files out. The CLI and the web app call only this."""

from __future__ import annotations

import math
import numbers
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import Cancelled, CaptureError, InputError
from .types import SINGLE_VIEW_KINDS, KnownSize, Mask, Placement, ProgressFn, Result

#: Fewer photos than this take the single-photo path (photo 0 only) with a warning.
MIN_MULTIVIEW_PHOTOS = 3
#: More photos than this are refused before any work (20-80 are enough; hundreds stall pose finding:
#: 200 photos were still being placed after 900 s).
MAX_PHOTOS = 100
#: Pixels of all original photos of one job together, read from the file headers before decoding.
#: MAX_PHOTOS photos from any phone camera (12-48 megapixels) fit; a pile of 100-megapixel files,
#: which would take minutes just to decode, does not.
MAX_JOB_PIXELS = MAX_PHOTOS * 50_000_000
#: The smallest GLB size cap any model can meet: a 1,000-triangle model (the smallest triangle
#: budget) with the smallest texture export shrinks to (64 px) measured 27.8-30.8 KB on the five
#: bench single photos. A lower cap is refused up front; a model that cannot meet a cap above it
#: (more triangles) fails before any file is written, saying the size it needs.
MIN_MEGABYTES = 0.03
#: Texture sides a merchant may choose (px).
TEXTURE_CHOICES = (256, 512, 1024, 2048, 4096)
#: Below this texture side (px) a model looks like coloured blobs: the report warns.
_BLURRY_TEXTURE = 256
QUALITIES = ("fast", "balanced", "high")
#: Texture side per quality when the merchant does not choose one.
TEXTURE_SIZES = {"fast": 1024, "balanced": 2048, "high": 2048}

#: Every stage `reconstruct` reports through `progress`, in order, with the plain words a
#: merchant sees for it. "poses" only runs for MIN_MULTIVIEW_PHOTOS photos or more.
STAGE_WORDS: dict[str, str] = {
    "ingest": "Reading your photos",
    "segment": "Finding the product in each photo",
    "poses": "Working out where each photo was taken",
    "geometry": "Finding the shape",
    "mesh": "Tidying up and sizing the model",
    "texture": "Painting the colours",
    "export": "Saving files for phones and online shops",
    "report": "Checking the result",
}

#: The usual share of a job's time each stage takes, for a time estimate while it runs.
#: Measured: 13 bench photos, Quick, CPU (ingest 0.9 s, segment 6.2, poses 15.8, geometry 40.1,
#: mesh 0.2, texture 1.0, export 1.2, report 0.2 of 67 s); one photo (segment and texture lead).
_STAGE_SHARES_MULTI = {"ingest": 0.02, "segment": 0.1, "poses": 0.24, "geometry": 0.56, "mesh": 0.01,
                       "texture": 0.03, "export": 0.02, "report": 0.02}
_STAGE_SHARES_SINGLE = {"ingest": 0.05, "segment": 0.3, "geometry": 0.1, "mesh": 0.1, "texture": 0.2,
                        "export": 0.15, "report": 0.1}


def stages_for(photo_count: int) -> tuple[str, ...]:
    """The stage ids a job with this many photos goes through, in order."""
    multi = photo_count >= MIN_MULTIVIEW_PHOTOS
    return tuple(s for s in STAGE_WORDS if multi or s != "poses")


def stage_shares(photo_count: int) -> dict[str, float]:
    """Per stage of `stages_for(photo_count)`, the usual share of the whole job's time (sums to 1)."""
    shares = _STAGE_SHARES_MULTI if photo_count >= MIN_MULTIVIEW_PHOTOS else _STAGE_SHARES_SINGLE
    picked = {s: shares[s] for s in stages_for(photo_count)}
    total = sum(picked.values())
    return {s: v / total for s, v in picked.items()}


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
    max_megabytes: float = 5.0  # MB (1e6 bytes) cap on the GLB; at least MIN_MEGABYTES

    def to_dict(self) -> dict:
        """Plain JSON-able values (what a job record stores)."""
        data = asdict(self)
        data["size"] = None if self.size is None else {"axis": self.size.axis, "metres": self.size.metres}
        return data

    @classmethod
    def from_dict(cls, data: Mapping) -> "Options":
        """The inverse of `to_dict`; unknown keys are ignored (records written by older versions).

        A stored value that is not a valid option (damaged or hand-edited) is an InputError.
        """
        if not isinstance(data, Mapping):
            raise InputError("options", f"The stored options are not a set of options: {type(data).__name__}.")
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        size = values.pop("size", None)
        if size is not None:
            if not isinstance(size, Mapping) or not {"axis", "metres"} <= set(size):
                raise InputError("options", f"The stored size {size!r} is not a size: it needs an axis and metres.")
            metres = size["metres"]
            if isinstance(metres, str):  # JSON from a hand edit: '0.85' still means 0.85 m
                try:
                    metres = float(metres)
                except ValueError:
                    pass  # KnownSize words the refusal
            values["size"] = KnownSize(size["axis"], metres)
        options = cls(**values)
        options.check()
        return options

    def check(self) -> "Options":
        """The options with the quality's defaults filled in; InputError (one line naming the
        value) for a bad value or a value of the wrong type."""
        _one_of("kind", self.kind, ("auto", *SINGLE_VIEW_KINDS))
        _one_of("placement", self.placement, ("floor", "wall"))
        _one_of("quality", self.quality, QUALITIES)
        if not isinstance(self.name, str):
            raise InputError("options", f"The name must be text, not {self.name!r}.")
        if self.size is not None and not isinstance(self.size, KnownSize):
            raise InputError("options", f"The size must be a KnownSize such as KnownSize('height', 0.3), "
                                        f"not {self.size!r}.")
        texture = TEXTURE_SIZES[self.quality] if self.texture_size is None else self.texture_size
        if not _is_int(texture) or texture not in TEXTURE_CHOICES:
            raise InputError("options", f"Texture size {texture!r} must be 256, 512, 1024, 2048 or 4096.")
        if not _is_int(self.max_triangles) or not 1_000 <= self.max_triangles <= 1_000_000:
            raise InputError("options", f"Triangle budget {self.max_triangles!r} must be a whole number "
                                        "between 1,000 and 1,000,000.")
        mb = self.max_megabytes
        if isinstance(mb, bool) or not isinstance(mb, numbers.Real) or not math.isfinite(mb):
            raise InputError("options", f"The GLB size limit must be a number of megabytes, not {mb!r}.")
        if mb < MIN_MEGABYTES:
            raise InputError("options", f"The GLB size limit {float(mb):g} MB is too small: no model fits under "
                                        f"{MIN_MEGABYTES} MB (1,000 triangles and a 64 px texture). "
                                        f"Use at least {MIN_MEGABYTES} MB.")
        # Plain Python numbers from here on (numpy ints from a caller stay JSON-able and exact).
        return replace(self, texture_size=int(texture), max_triangles=int(self.max_triangles),
                       max_megabytes=float(mb))


def _one_of(what: str, value: object, allowed: tuple[str, ...]) -> None:
    if not isinstance(value, str):
        raise InputError("options", f"The {what} must be text such as '{allowed[0]}', not {value!r}.")
    if value not in allowed:
        raise InputError("options", f"Unknown {what} '{value}'. Use {', '.join(allowed[:-1])} or {allowed[-1]}.")


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


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
    photos: Sequence[str | Path] | str | Path,
    out_glb: str | Path,
    options: Options = Options(),
    progress: ProgressFn | None = None,
    device: str | None = None,
) -> Result:
    """Turn photos into GLB, USDZ, OBJ zip, poster PNG and a JSON quality report beside `out_glb`.

    One photo (or two) takes the single-photo path with shape priors; three or more take the
    multi-photo path (structure from motion, dense geometry). `photos` is a list of paths (one
    path alone is one photo). Raises InputError / CaptureError with a one-line message for bad
    input, Cancelled when `progress` returns False.
    `device` is a torch device string; None picks CUDA when present, else CPU.

    Everything that can be checked without decoding a photo (options, output path, the photo
    list, its count and pixels, the device) is checked first, before any work or any file.
    """
    from . import export, ingest, mesh, quality, report, segment, texture

    t_start = time.perf_counter()
    if not isinstance(options, Options):
        raise InputError("options", f"The options must be pipeline.Options, not {type(options).__name__}.")
    options = options.check()
    out_glb = _check_output(out_glb)
    paths = ingest.photo_paths(photos)
    _check_job_size(paths, ingest.header_pixels)
    device = _check_device(device)
    stages = _Stages(progress)
    warnings: list[str] = []

    stages.start("ingest", "Reading your photos")
    ingested = ingest.load_photos(paths, ingest.PRESETS[options.quality])
    warnings += ingested.rejected
    photo_list = ingested.photos

    stages.start("segment", "Finding the product in each photo")
    multiview = len(photo_list) >= MIN_MULTIVIEW_PHOTOS
    masks, unclear = [], []
    seg_cfg = segment.preset(options.quality, multiview)
    net = segment.saliency_net(seg_cfg)  # U²-Net-p loaded once for the job (None: GrabCut alone)
    for i, photo in enumerate(photo_list):
        try:
            masks.append(segment.segment_photo(photo, seg_cfg, net))
        except CaptureError as error:
            if not multiview:
                raise
            # One unclear photo must not sink a capture: the other views outline the item, and an
            # all-object mask leaves the multi-view hull vote to them.
            unclear.append(error)
            masks.append(Mask(np.ones(photo.rgb.shape[:2], bool), 0.0, True, "none", (error.message,)))
        stages.tick((i + 1) / len(photo_list), f"Found the product in photo {i + 1} of {len(photo_list)}")
    if unclear and len(unclear) > len(photo_list) // 2:
        raise CaptureError(
            "segment", f"The item could not be told apart from the background in {len(unclear)} of "
            f"{len(photo_list)} photos.", unclear[0].advice)
    warnings += [e.message for e in unclear]

    cutouts = tuple(masks)  # the segmenter's own, for the quality gate (dense replaces `masks`)
    poses = None
    if multiview:
        from . import dense, sfm

        stages.start("poses", "Working out where each photo was taken")
        poses = sfm.estimate_poses(photo_list, sfm.PRESETS[options.quality], progress=stages.sub, device=device)
        stages.start("geometry", "Finding the shape")
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
            photo_list, masks, cutouts = photo_list[:1], masks[:1], cutouts[:1]
        stages.start("geometry", "Finding the shape from your photo")
        shape = single_view.shape_from_photo(
            photo_list[0], masks[0], options.kind, options.placement, single_view.PRESETS[options.quality]
        )

    stages.start("mesh", "Tidying up and sizing the model")
    mesh_cfg = replace(mesh.PRESETS[options.quality], max_triangles=options.max_triangles)
    finished = mesh.finish_mesh(shape, options.size, options.placement, mesh_cfg)

    stages.start("texture", "Painting the colours from your photos")
    tex_cfg = replace(texture.PRESETS[options.quality], texture_size=options.texture_size)
    textured = texture.bake_texture(finished, photo_list, tuple(masks), tex_cfg, device=device, progress=stages.sub)

    stages.start("export", "Saving files for phones and online shops")
    exp_cfg = replace(export.PRESETS[options.quality], max_bytes=int(options.max_megabytes * 1e6))
    # A cap this geometry cannot meet even with export's smallest texture is export's CaptureError,
    # raised before any file is written, naming the size the model needs.
    files = export.export_all(textured, out_glb, exp_cfg, name=options.name or out_glb.stem)
    if files.texture_size < min(_BLURRY_TEXTURE, options.texture_size):
        warnings.append(f"The texture was shrunk to {files.texture_size} px to fit under {options.max_megabytes:g} MB, "
                        "so the model looks blurry: allow a larger file for a sharper one.")

    stages.start("report", "Checking the result")
    judgement = quality.judge(photo_list, cutouts, finished, textured, quality.PRESETS[options.quality],
                              device=device, multiview=multiview, left_out=poses.failures if poses else ())
    checked = report.make_report(
        photos=photo_list,
        masks=tuple(masks),
        poses=poses,
        shape=shape,
        mesh=finished,
        textured=textured,
        exports=files,
        judgement=judgement,
        warnings=tuple(warnings),
        seconds=time.perf_counter() - t_start,
        seconds_per_stage=stages.done(),
    )
    report_path = out_glb.with_suffix(".report.json")
    report.write_report(checked, report_path)
    return Result(exports=files, report=checked, report_path=str(report_path))


def _check_output(out_glb: object) -> Path:
    """The GLB path, once it is sure the files can be written there; InputError otherwise.

    Checked before any work, so a typo in the path costs nothing. Nothing is created: the nearest
    existing folder is probed with a temporary file, which also catches read-only disks and
    /proc-like folders that refuse files (file permissions alone do not stop root).
    """
    if isinstance(out_glb, bytes) or not isinstance(out_glb, (str, os.PathLike)):
        raise InputError("options", f"The output must be a file path ending in .glb, not {out_glb!r}.")
    out = Path(out_glb)
    if "\0" in str(out):
        raise InputError("options", "The output file name holds a character file names cannot have (a NUL).")
    # The longest file written beside it is ".<stem>.report.json.XXXXXXXX.tmp": keep under 255
    # bytes (checked first: asking the disk about a longer name is itself an error).
    if len(os.fsencode(out.name)) > 200:
        raise InputError("options", f"The output file name is too long ({len(out.name)} characters): "
                                    "keep it under 200.")
    where = f"Cannot write the model to '{out}'"
    if out.is_dir():
        raise InputError("options", f"{where}: it is a folder. Name a file such as '{out / 'model.glb'}'.")
    if out.suffix.lower() != ".glb":
        raise InputError("options", f"The output file must end in .glb, not '{out.name}'.")
    folder = next(p for p in (out.parent, *out.parent.parents) if p.exists() or p == p.parent)
    if not folder.is_dir():
        raise InputError("options", f"{where}: '{folder}' is a file, not a folder.")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".plinth-probe-"):
            pass
    except OSError as error:
        raise InputError("options", f"{where}: the folder '{folder}' does not accept new files "
                                    f"({error.strerror or error}).") from None
    return out


def _check_job_size(paths: list[Path], header_pixels) -> None:
    """Refuse more than MAX_PHOTOS photos, then (reading only headers: `header_pixels(paths)`)
    more than MAX_JOB_PIXELS original pixels, before any photo is decoded."""
    if len(paths) > MAX_PHOTOS:
        raise InputError("ingest", f"{len(paths)} photos are more than Plinth takes for one model (at most "
                                   f"{MAX_PHOTOS}). 20-80 photos taken walking around the item are enough.")
    pixels = header_pixels(paths)
    if pixels > MAX_JOB_PIXELS:
        raise InputError("ingest", f"These {len(paths)} photos hold {pixels / 1e9:.1f} gigapixels, more than "
                                   f"Plinth takes for one model ({MAX_JOB_PIXELS / 1e9:g} gigapixels). Use fewer "
                                   "photos or your camera's normal photo size (12-24 megapixels).")


def _check_device(device: object) -> str:
    """The torch device to run on (None: CUDA when present, else CPU); InputError for a device
    this machine does not have, said once here rather than as a torch error deep in a stage."""
    import torch  # here, not at the top: `import pipeline` stays light

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not isinstance(device, str):
        raise InputError("options", f"The device must be text such as 'cpu' or 'cuda', not {device!r}.")
    try:
        dev = torch.device(device.strip())
    except (RuntimeError, ValueError, TypeError):
        raise InputError("options", f"Unknown device '{device}': use cpu, or cuda for a GPU "
                                    "(for example --device cpu).") from None
    if dev.type == "cpu":
        return str(dev)
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise InputError("options", f"There is no GPU '{device}' on this machine; use --device cpu.")
        if (dev.index or 0) >= count:
            raise InputError("options", f"There is no GPU '{device}' on this machine (it has {count}: cuda:0 to "
                                        f"cuda:{count - 1}); use --device cuda:0 or --device cpu.")
        return str(dev)
    if dev.type == "mps" and torch.backends.mps.is_available():
        return str(dev)
    raise InputError("options", f"Plinth cannot run on the device '{device}' here; use --device cpu.")



__all__ = ["MAX_JOB_PIXELS", "MAX_PHOTOS", "MIN_MEGABYTES", "MIN_MULTIVIEW_PHOTOS", "Options", "QUALITIES", "STAGE_WORDS", "TEXTURE_SIZES", "reconstruct", "stage_shares", "stages_for"]
