"""Export settings: one frozen config and its named presets."""

from __future__ import annotations

from dataclasses import dataclass

STAGE = "export"
GENERATOR = "Plinth"


@dataclass(frozen=True)
class ExportConfig:
    max_bytes: int = 5_000_000  # GLB size cap; the texture is re-encoded smaller until it fits
    jpeg_quality: int = 90  # first JPEG quality tried
    min_jpeg_quality: int = 60  # below this the texture is halved instead
    roughness: float = 0.8
    poster_size: int = 800
    poster_supersample: float = 1.5  # render this much larger, then downsample (anti-aliasing)
    poster_yaw_deg: float = 25.0  # poster camera direction about +Y, degrees from the front (+Z)
    poster_pitch_deg: float = 20.0  # poster camera elevation above the horizon, degrees
    poster_background: tuple[int, int, int] = (255, 255, 255)  # sRGB behind the item
    usdz: bool = True
    obj: bool = True
    poster: bool = True


PRESETS: dict[str, ExportConfig] = {
    "fast": ExportConfig(jpeg_quality=85, poster_supersample=1.0),
    "balanced": ExportConfig(),
    "high": ExportConfig(jpeg_quality=92, poster_size=1024, poster_supersample=2.0),
}
