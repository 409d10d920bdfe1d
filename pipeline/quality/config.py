"""Quality-gate limits: one frozen config and its named presets.

Each check has a warn and a fail limit. They were set from what the measurements mean (an
outline that covers half the item is not the item; cameras inside the model's box mean the model
is the room) and then checked against bench/robust.py's variant table (multiview/*, hard/, real/)
and deliberately broken captures (bench/gate.py); see bench/README.md for the table they were
checked on. They are not tuned per object.
"""

from __future__ import annotations

from dataclasses import dataclass

STAGE = "report"


@dataclass(frozen=True)
class GateConfig:
    # Share of the photos placed in 3D (SfM already refuses below its own 30% floor): fails at
    # half or fewer, and at `placed_without_first` or fewer when the first photo is not placed.
    placed_warn: float = 0.8
    placed_fail: float = 0.5
    placed_without_first: float = 0.75
    # Outline: IoU of the finished model's silhouette with each placed photo's own cut-out,
    # median over the photos (GrabCut alone scores ~0.87 against true masks on the bench).
    outline_warn: float = 0.7
    outline_fail: float = 0.5
    outline_photo: float = 0.5  # a photo below this is named as one whose outline disagrees
    outline_side: int = 256  # long side (px) the silhouettes are compared at
    # Spread: the widest angle (degrees) between two photos' directions to the model. Photos all
    # taken from one spot cannot give depth.
    spread_warn: float = 60.0
    spread_fail: float = 15.0
    # Size against the camera ring: model bbox diagonal / median camera distance to its centre.
    # Product photos show the item at a fraction of the frame (0.2-0.9 on the bench).
    ring_warn: float = 1.2
    ring_fail: float = 2.0
    ring_small: float = 0.03  # below: a speck, not the item
    # Aim: distance from where the photos' optical axes meet to the model's box, in box diagonals.
    aim_warn: float = 0.5
    aim_fail: float = 1.5
    # Loose pieces: share of the surface area outside the largest connected piece.
    pieces_warn: float = 0.05
    pieces_fail: float = 0.35
    # Unseen: share of the surface no photo saw (filled in by the texture stage).
    unseen_warn: float = 0.2
    unseen_fail: float = 0.5
    # Photometric: mean abs RGB error (0..255) re-rendering photos held out of the texture bake.
    # Bench renders give 4-19; real photos 20-40 (lighting changes between photos).
    photometric_warn: float = 30.0
    photometric_fail: float = 60.0


PRESETS: dict[str, GateConfig] = {"fast": GateConfig(), "balanced": GateConfig(), "high": GateConfig()}
