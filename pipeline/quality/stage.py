"""Quality-gate stage: measure the finished model against the photos and call it good, usable
with warnings, or failed.

Entry point: `judge(photos, masks, mesh, textured, cfg, device) -> Judgement`. `masks` are the
segmenter's own cut-outs (not the geometry stage's carved ones, which follow the model and would
agree with it by construction). A failed model is not a faithful model of the item: the caller
must not present or publish it as a scan.
"""

from __future__ import annotations

from typing import Sequence

from ..errors import InputError
from ..types import Evidence, Judgement, LeftOut, Mask, Mesh, Photo, TexturedMesh, Verdict
from . import checks
from .config import PRESETS, STAGE, GateConfig


def judge(
    photos: Sequence[Photo],
    masks: Sequence[Mask],
    mesh: Mesh,
    textured: TexturedMesh,
    cfg: GateConfig = PRESETS["balanced"],
    device: str = "cpu",
    multiview: bool = True,
    left_out: Sequence[LeftOut] = (),
) -> Judgement:
    """The verdict and every measurement behind it (see checks.py for each one). `left_out`: the
    SfM stage's reasons for the photos it could not place."""
    if len(masks) != len(photos) or len(mesh.views) != len(photos):
        raise InputError(STAGE, f"Got {len(photos)} photos, {len(masks)} masks and {len(mesh.views)} views.")
    if len(mesh.faces) == 0:
        raise InputError(STAGE, "The model to check has no triangles.")
    evidence: list[Evidence] = []
    if multiview:
        evidence.append(checks.placed_share(photos, mesh.views, cfg, left_out))
    evidence.append(checks.outline_agreement(photos, masks, mesh, cfg, device))
    if multiview:
        evidence += [checks.view_spread(mesh, cfg), checks.ring_size(mesh, cfg), checks.aim(mesh, cfg),
                     checks.loose_pieces(mesh, cfg), checks.unseen(textured.coverage, cfg)]
        photometric = checks.photometric(textured.heldout_error, cfg)
        if photometric is not None:
            evidence.append(photometric)
    else:
        # One photo cannot show the back: at best a preview, never a checked scan.
        evidence.append(Evidence("photos", 1.0, "count", 20.0, 1.0, Verdict.WARNINGS,
                                 "Made from one photo: the sides and back are estimated, not measured."))
    outcomes = {e.outcome for e in evidence}
    verdict = (Verdict.FAILED if Verdict.FAILED in outcomes else
               Verdict.WARNINGS if Verdict.WARNINGS in outcomes else Verdict.GOOD)
    reshoot: list[str] = []
    for e in sorted(evidence, key=lambda e: e.outcome is not Verdict.FAILED):
        if e.outcome is not Verdict.GOOD:
            reshoot += [n for n in e.photos if n not in reshoot]
    return Judgement(verdict, tuple(evidence), tuple(reshoot))
