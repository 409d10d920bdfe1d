"""Plinth reconstruction library: photos in, AR-ready GLB/USDZ out.

    from pipeline import reconstruct, Options, KnownSize
    result = reconstruct(["vase.jpg"], "out/vase.glb", Options(size=KnownSize("height", 0.3)))
    adjust_model("out/vase.glb", Adjustment(quarter_turns=1), "out/vase-turned.glb")  # fix it later

This module is the library's public face: the CLI, the web app, the API and the workers use
only what it exports. Importing it is cheap and needs neither a GPU nor Streamlit: heavy
libraries (torch, pycolmap, OpenCV) load inside the stages that need them.
"""

from .export import adjust_model, preview_adjustment
from .errors import Cancelled, CaptureError, InputError, PlinthError
from .files import atomic_write
from .ingest import check_photo
from .orchestrator import (
    MAX_JOB_PIXELS,
    MAX_PHOTOS,
    MIN_MEGABYTES,
    MIN_MULTIVIEW_PHOTOS,
    QUALITIES,
    STAGE_WORDS,
    TEXTURE_SIZES,
    Options,
    reconstruct,
    stages_for,
)
from .report import KIND_WORDS, plain_words
from .types import (
    POSTER_PITCH_RANGE,
    SINGLE_VIEW_KINDS,
    TURN_RANGE,
    Adjusted,
    Adjustment,
    AdjustPreview,
    Evidence,
    KnownSize,
    QualityReport,
    Result,
    ScaleSource,
    Tip,
    Verdict,
)
from .units import format_dimensions, format_size, parse_size

__all__ = [
    "Adjusted", "Adjustment", "AdjustPreview", "POSTER_PITCH_RANGE", "TURN_RANGE", "Tip", "adjust_model",
    "preview_adjustment",
    "Cancelled", "CaptureError", "Evidence", "InputError", "KIND_WORDS", "KnownSize", "MAX_JOB_PIXELS", "MAX_PHOTOS", "MIN_MEGABYTES",
    "MIN_MULTIVIEW_PHOTOS", "Options",
    "PlinthError", "QUALITIES", "QualityReport", "Result", "SINGLE_VIEW_KINDS", "STAGE_WORDS", "ScaleSource",
    "TEXTURE_SIZES", "atomic_write", "check_photo", "format_dimensions", "format_size", "parse_size", "plain_words",
    "reconstruct", "stages_for", "Verdict",
]
