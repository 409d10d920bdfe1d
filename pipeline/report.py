"""The quality report: numbers for the benchmark, plain words for the merchant."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import numpy as np

from .files import atomic_write
from .types import Exports, Judgement, Mask, Mesh, Photo, Poses, QualityReport, ScaleSource, Shape, TexturedMesh, Verdict
from .units import format_size

KIND_WORDS = {
    "flat": "A flat model (like a picture, mirror or rug)",
    "box": "A box-shaped model",
    "revolve": "A round-bodied model (like a vase or lamp)",
    "round": "A soft, rounded model (like a cushion or bag)",
    "scan": "A full 3D scan",
}
ALL_SIDES = ("front", "back", "left", "right", "top", "bottom")
#: Each side as a merchant would name it in a sentence.
SIDE_WORDS = {"front": "the front", "back": "the back", "left": "the left side", "right": "the right side",
              "top": "the top", "bottom": "the bottom"}
#: The first line a merchant reads, per verdict of the quality gate.
VERDICT_WORDS = {
    Verdict.GOOD: "Quality check passed: the model matches your photos.",
    Verdict.WARNINGS: "Usable, with warnings: read the notes below before you share it.",
    Verdict.FAILED: "This model failed its quality check: it is not a faithful model of the item.",
}

#: Below this mask confidence the merchant is told the cut-out may be wrong.
LOW_MASK_CONFIDENCE = 0.5
#: Above this reprojection error (pixels) the poses are considered shaky.
HIGH_REPROJECTION_PX = 2.0
#: Below this many placed photos a scan is unreliable. Bench, every third of the 36 photos: aligned
#: F@1% 0.43-0.82 against 0.73-0.93 from all 36, and the boombox's 12 photos are placed wrongly.
FEW_PHOTOS = 20


def make_report(
    *,
    photos: Sequence[Photo],
    masks: Sequence[Mask],
    poses: Poses | None,
    shape: Shape,
    mesh: Mesh,
    textured: TexturedMesh,
    exports: Exports,
    judgement: Judgement,
    warnings: Sequence[str],
    seconds: float,
    seconds_per_stage: dict[str, float],
) -> QualityReport:
    """Collect what the stages found and what the gate decided into one report, with advice a
    merchant can act on."""
    warn = list(warnings)
    advice: list[str] = []
    for photo in photos:
        warn += [f"{photo.name}: {w}" for w in photo.warnings]
    single = poses is None
    if single:
        for photo, mask in zip(photos, masks):
            warn += [f"{photo.name}: {w}" for w in mask.warnings]
    mask_conf = float(np.mean([m.confidence for m in masks])) if masks else 0.0
    if mask_conf < LOW_MASK_CONFIDENCE:
        advice.append("Photograph the item against a plain wall or sheet so it stands out from the background.")

    warn += list(shape.warnings) + list(textured.warnings)
    details = list(shape.notes) + list(mesh.notes) + list(textured.notes)
    if mesh.scale_from is ScaleSource.ASSUMED:
        advice.append("Enter one real measurement (height, width or depth) so the model shows at true size in AR.")

    placed = poses.placed if poses is not None else len(photos)
    reproj = float(poses.reprojection_error_px) if poses is not None else None
    if poses is not None:
        warn += [left.message for left in poses.failures]
        if reproj is not None and reproj > HIGH_REPROJECTION_PX:
            advice.append("Some photos did not line up well: hold the phone steady and avoid zooming between photos.")

    seen = tuple(s for s in ALL_SIDES if s in shape.seen_sides)
    unseen = tuple(s for s in ALL_SIDES if s not in seen)
    if single:
        advice.append(
            "This model was made from one photo, so its sides and back are estimated. "
            "For a full 3D model, take 20-80 photos walking all around the item."
        )
    elif placed < FEW_PHOTOS:
        advice.append(
            f"Only {placed} photos could be used, so the model's shape and size may be off. "
            f"Take {FEW_PHOTOS}-80 photos walking all around the item for an accurate model."
        )
    if not single and set(unseen) - {"bottom"}:
        sides = and_list([SIDE_WORDS[s] for s in unseen if s != "bottom"])
        advice.append(f"No photo showed {sides} of the item: add photos from there for a complete model.")
    if judgement.reshoot:
        advice.insert(0, f"Re-shoot or leave out: {', '.join(judgement.reshoot)}.")

    w, h, d = mesh.dimensions_m
    # Plain words only: the file's technical figures go to `details` (the page's Details section).
    summary = (
        f"{_what(shape.kind, judgement.verdict)}, "
        f"{format_size(h)} tall, {format_size(w)} wide and {format_size(d)} deep "
        f"({mesh.scale_source}). Made from {placed} of {len(photos)} photo{'s' if len(photos) != 1 else ''} "
        f"in {_duration(seconds)}."
    )
    details.insert(0, f"{exports.triangles:,} triangles, {exports.glb_bytes / 1e6:.1f} MB GLB, "
                      f"{exports.texture_size} px texture.")
    return QualityReport(
        triangles=exports.triangles,
        glb_bytes=exports.glb_bytes,
        texture_size=exports.texture_size,
        dimensions_m=tuple(float(x) for x in mesh.dimensions_m),
        scale_source=mesh.scale_source,
        kind=shape.kind,
        kind_reason=shape.kind_reason,
        mask_confidence=round(mask_conf, 3),
        photos_total=len(photos),
        photos_placed=placed,
        seconds=round(seconds, 3),
        seconds_per_stage={k: round(v, 3) for k, v in seconds_per_stage.items()},
        reprojection_error_px=None if reproj is None else round(reproj, 3),
        seen_sides=seen,
        unseen_sides=unseen,
        heldout_photometric_error=textured.heldout_error,
        warnings=tuple(dict.fromkeys(warn)),
        advice=tuple(dict.fromkeys(advice)),
        details=tuple(dict.fromkeys(details)),
        summary=summary,
        verdict=judgement.verdict,
        evidence=judgement.evidence,
        reshoot=judgement.reshoot,
    )


def and_list(items: Sequence[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    items = list(items)
    if len(items) < 2:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def sentence(text: str) -> str:
    """`text` as a sentence: a capital first letter and a full stop ("" stays "")."""
    text = text.strip()
    if not text:
        return ""
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} second{'s' if round(seconds) > 1 else ''}"
    return f"{round(seconds / 60)} minutes"


def _what(kind: str, verdict: Verdict) -> str:
    """What the model is called: never "A full 3D scan" when the gate failed it."""
    if verdict is Verdict.FAILED:
        return "A 3D model that failed its quality check"
    return KIND_WORDS.get(kind, "A 3D model")


def to_json(report: QualityReport) -> dict:
    data = asdict(report)
    data["plain_words"] = plain_words(report)
    return data


def plain_words(report: QualityReport) -> list[str]:
    """The report as short sentences for the merchant, most important first."""
    lines = [VERDICT_WORDS[Verdict(report.verdict)], report.summary]
    lines += [e.message for e in sorted(report.evidence, key=lambda e: e.outcome is not Verdict.FAILED)
              if e.outcome is not Verdict.GOOD and e.message]
    if report.kind_reason:
        lines.append(sentence(report.kind_reason))
    lines += list(report.advice)
    lines += list(report.warnings)
    return lines


def write_report(report: QualityReport, path: str | Path) -> None:
    """Write the JSON report atomically (a reader never sees half a file)."""
    atomic_write(path, json.dumps(to_json(report), indent=2))
