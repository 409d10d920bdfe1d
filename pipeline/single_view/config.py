"""Single-photo settings: one frozen config and its named presets."""

from __future__ import annotations

from dataclasses import dataclass

STAGE = "geometry"


@dataclass(frozen=True)
class SingleViewConfig:
    max_cells: int = 12_000  # grid cells inside the outline (front + back ~ 4x this in triangles)
    profile_rows: int = 120  # rows of the revolve profile
    segments: int = 64  # around a revolved shape
    round_depth: float = 0.9  # inflation gain: 1 ~ circular cross-section for long thin parts
    box_depth_ratio: float = 0.8  # box depth as a share of the silhouette width ...
    box_depth_cap: float = 0.5  # ... but at most max(height, this x width)
    flat_thickness: float = 0.025  # slab thickness as a share of its largest side
    flat_min_thickness_m: float = 0.004
    outline_blur: float = 0.6  # grid cells; smooths the pixel staircase of the mask outline
    # Product photos of items on a floor or table are taken looking slightly down (the bench hero
    # views: 12 deg). The shape is built upright in the world, so the top face seen in the photo is
    # not mistaken for height and the model does not lean back. 0 = a straight-on photo.
    camera_elevation_deg: float = 12.0


PRESETS: dict[str, SingleViewConfig] = {
    "fast": SingleViewConfig(max_cells=5_000, profile_rows=80, segments=48),
    "balanced": SingleViewConfig(),
    "high": SingleViewConfig(max_cells=13_000, profile_rows=180, segments=96),
}
