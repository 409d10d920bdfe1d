"""Plinth reconstruction library: photos in, AR-ready GLB/USDZ out.

    from pipeline import reconstruct, Options
    result = reconstruct(["vase.jpg"], "out/vase.glb", Options(size=KnownSize("height", 0.3)))

Importing this package is cheap and needs no GPU: heavy libraries load inside the stages.
"""

from .errors import Cancelled, CaptureError, InputError, PlinthError
from .orchestrator import Options, reconstruct
from .types import KnownSize
from .units import parse_size

__all__ = [
    "Cancelled", "CaptureError", "InputError", "KnownSize", "Options", "PlinthError",
    "parse_size", "reconstruct",
]
