"""End to end, multi-photo: a reduced capture of a bench object through the whole pipeline (CPU)."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from bench.eval import evaluate
from pipeline import KnownSize, Options, Verdict, reconstruct
from tests.gltf_validate import validate_glb

PHOTOS = 12  # every third of the 36 views: all three rings, 30 degrees apart


@pytest.mark.slow
def test_reduced_capture_makes_true_size_textured_scan(bench, tmp_path, device):
    obj = bench / "multiview" / "waterbottle"
    images = sorted((obj / "images").glob("*.jpg"))[::3][:PHOTOS]
    # A stray blank photo (a pocket shot) must not sink the capture: it is reported, not fatal.
    blank = tmp_path / "blank.jpg"
    Image.new("RGB", (1024, 768), (128, 128, 128)).save(blank)
    images.append(blank)
    height = json.loads((obj / "meta.json").read_text())["bbox_size_m"][1]
    out = tmp_path / "bottle.glb"
    result = reconstruct(images, out, Options(quality="fast", size=KnownSize("height", height)), device=device)

    report = result.report
    assert report.kind == "scan"
    assert report.photos_total == PHOTOS + 1
    assert report.photos_placed == PHOTOS, report.warnings
    assert any("blank.jpg" in w for w in report.warnings), report.warnings
    assert report.reprojection_error_px < 2.0
    assert "bottom" in report.unseen_sides and {"front", "back", "left", "right"} <= set(report.seen_sides)
    # Under 20 photos the merchant is told the size may be off, and why.
    assert any("Only 12 photos could be used" in a for a in report.advice), report.advice
    # 12 of the 13 photos are placed, at least texture.PRESETS["fast"].heldout_min_views: three of
    # them are held out of the bake, so the error is measured (None would mean it was not).
    assert report.heldout_photometric_error is not None, report.details
    assert report.heldout_photometric_error < 40
    assert validate_glb(out)["issues"]["numErrors"] == 0
    assert abs(report.dimensions_m[1] - height) < 0.01 * height

    # As delivered (metres, upright, bottom-centred) the shape is where the ground truth is; the
    # thin strap that widens the true bbox by 4 cm is beyond a 12-photo fast run, so 10% here.
    ev = evaluate(out, obj / "gt.ply", n_points=20_000, aligned=True, iou=False)
    assert ev.as_is.fscore[0.10] > 0.95, ev.as_is.fscore
    assert ev.aligned.fscore[0.05] > 0.90, ev.aligned.fscore
    assert ev.alignment.scale == pytest.approx(1.0, abs=0.05)

    # The quality gate checked it against the photos and found a faithful model (measured: outline
    # 0.96, 15% unseen, colour error 17): good, and the blank photo is the one it names.
    checks = {e.check: e for e in report.evidence}
    assert report.verdict is Verdict.GOOD, [e.message for e in report.evidence if e.message]
    assert {"placed", "outline", "spread", "ring", "aim", "pieces", "unseen", "photometric"} <= set(checks)
    assert checks["outline"].value > 0.75 and checks["outline"].outcome is Verdict.GOOD
    assert checks["ring"].outcome is Verdict.GOOD and checks["pieces"].outcome is Verdict.GOOD
    assert checks["placed"].photos == ("blank.jpg",)
    saved = json.loads(result.report_path and open(result.report_path).read())
    assert saved["verdict"] == report.verdict.value and len(saved["evidence"]) == len(report.evidence)


@pytest.mark.slow
def test_photos_of_two_items_in_one_upload_are_never_a_scan(bench, tmp_path, device):
    """Six photos of the avocado (the first photo among them) and six of the water bottle, taken
    in turns: structure from motion places one item's photos (and perhaps a few of the other's),
    so the model leaves out the first photo or half of them: the gate fails it (or the poses stage
    refuses the capture) and names the photos left out."""
    from pipeline import CaptureError

    avocado = sorted((bench / "multiview" / "avocado" / "images").glob("*.jpg"))[::6][:6]
    bottle = sorted((bench / "multiview" / "waterbottle" / "images").glob("*.jpg"))[3::6][:6]
    mixed = [p for pair in zip(avocado, bottle) for p in pair]
    try:
        result = reconstruct(mixed, tmp_path / "mixed.glb", Options(quality="fast"), device=device)
    except CaptureError as refusal:
        assert refusal.advice, refusal
        return
    report = result.report
    placed = {e.check: e for e in report.evidence}["placed"]
    assert report.verdict is Verdict.FAILED and placed.outcome is Verdict.FAILED, placed
    assert placed.photos and set(placed.photos) <= {p.name for p in mixed}
    assert "scan" not in report.summary
