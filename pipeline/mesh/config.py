"""Mesh settings: one frozen config and its named presets."""

from __future__ import annotations

from dataclasses import dataclass

STAGE = "mesh"


@dataclass(frozen=True)
class MeshConfig:
    max_triangles: int = 100_000  # hard cap (the orchestrator sets the merchant's budget here)
    target_triangles: int = 40_000  # the aim; the result has min(target, max) triangles at most
    # Aim for single-photo shapes (every kind but "scan"): one photo holds no finer detail, and UV
    # unwrapping (xatlas) grows faster than linearly: ~1 s at 8k curved triangles, ~11 s at 40k.
    photo_target_triangles: int = 10_000
    keep_piece_share: float = 0.02  # pieces with less surface than this share of the biggest are floaters
    max_hole_share: float = 0.25  # close holes whose rim is shorter than this share of the bbox diagonal
    max_hole_edges: int = 400  # ... and has at most this many edges


PRESETS: dict[str, MeshConfig] = {
    "fast": MeshConfig(target_triangles=20_000, photo_target_triangles=6_000),
    "balanced": MeshConfig(target_triangles=40_000, photo_target_triangles=10_000),
    "high": MeshConfig(target_triangles=80_000, photo_target_triangles=20_000),
}
