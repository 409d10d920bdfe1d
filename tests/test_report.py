"""The quality report (pipeline/report.py) on typed stage outputs built by hand: the advice and
warnings the merchant gets, the summary line, and the JSON file beside the model."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import replace

import numpy as np
import pytest

from pipeline import report
from pipeline.types import (
    Camera,
    Evidence,
    Exports,
    Judgement,
    LeftOut,
    Mesh,
    Poses,
    ScaleSource,
    Shape,
    TexturedMesh,
    Unplaced,
    Verdict,
)
from tests.scenes import intrinsics, mask, photo

MEASURE = "Enter one real measurement"
ALL_BUT_BOTTOM = ("front", "back", "left", "right", "top")


def _camera() -> Camera:
    return Camera(intrinsics(60.0, 64, 48), np.eye(3), np.array([0.0, 0.0, 2.0]), 64, 48)


def _inputs(photos: int = 24, placed: int | None = None, single: bool = False, *,
            scale_from: ScaleSource = ScaleSource.MERCHANT, confidences=None, seen=ALL_BUT_BOTTOM,
            failures: tuple[str, ...] = (), coverage: float = 0.95, reprojection: float = 0.7,
            dims=(0.4, 0.3, 0.2), kind: str = "scan", photo_warnings=(), mask_warnings=(),
            warnings: tuple[str, ...] = (), judgement: Judgement = Judgement(Verdict.GOOD, ())) -> dict:
    """make_report's keyword arguments for a capture of `photos` photos, `placed` of them placed
    (default all); `single`: the single-photo path (no poses). `warnings`: the orchestrator's own
    (rejected files, unclear photos)."""
    placed = photos if placed is None else placed
    pics = [photo(np.zeros((48, 64, 3), np.uint8), i, f"IMG_{i}.jpg") for i in range(photos)]
    pics[0] = replace(pics[0], warnings=tuple(photo_warnings))
    confidences = [0.9] * photos if confidences is None else confidences
    masks = [mask(np.ones((48, 64), bool), c) for c in confidences]
    masks[0] = replace(masks[0], warnings=tuple(mask_warnings))
    cams = tuple(_camera() if i < placed else None for i in range(photos))
    left = tuple(LeftOut(placed + k, Unplaced.LITTLE_OVERLAP, words) for k, words in enumerate(failures))
    poses = None if single else Poses(cams, np.zeros((0, 3)), np.zeros((0, 3), np.uint8), (), reprojection,
                                      failures=left)
    box = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], float)
    faces = np.array([[0, 1, 2]], np.int64)
    shape = Shape(box, faces, cams, np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, 1.0]), kind,
                  "the photos went all round the item", seen_sides=tuple(seen), notes=("Shape note.",))
    sizes = {ScaleSource.MERCHANT: "the height you entered: 30.0 cm (11.8 in)",
             ScaleSource.MEASURED: "measured from the photos",
             ScaleSource.ASSUMED: "no size given: assumed 30 cm tall"}
    mesh = Mesh(box, faces, cams, np.eye(4), tuple(dims), sizes[scale_from], scale_from, kind,
                notes=("Simplified to 12,345 triangles.",))
    textured = TexturedMesh(box, faces, np.zeros((8, 2), np.float32), np.zeros((4, 4, 3), np.uint8), np.eye(4),
                            tuple(dims), coverage=coverage, heldout_error=9.5)
    exports = Exports("m.glb", "m.usdz", "m.obj.zip", "m.poster.png", triangles=12_345, glb_bytes=1_500_000,
                      texture_size=2048)
    return dict(photos=pics, masks=masks, poses=poses, shape=shape, mesh=mesh, textured=textured,
                exports=exports, judgement=judgement, warnings=warnings, seconds=42.4, seconds_per_stage={"geometry": 30.0})


def _make(**kw):
    return report.make_report(**_inputs(**kw))


def _advice_with(rep, words: str) -> list[str]:
    return [a for a in rep.advice if words in a]


def test_assumed_scale_asks_for_one_real_measurement():
    assumed = _make(scale_from=ScaleSource.ASSUMED)
    assert len(_advice_with(assumed, MEASURE)) == 1
    assert assumed.scale_source == "no size given: assumed 30 cm tall"
    for source in (ScaleSource.MERCHANT, ScaleSource.MEASURED):
        assert _advice_with(_make(scale_from=source), MEASURE) == [], source


def test_single_photo_says_sides_and_back_are_estimated():
    rep = _make(photos=1, single=True, seen=("front",), kind="round", mask_warnings=("The item touches the edge.",))
    assert rep.photos_total == rep.photos_placed == 1 and rep.reprojection_error_px is None
    (advice,) = _advice_with(rep, "made from one photo")
    assert "take 20-80 photos walking all around the item" in advice
    # Neither the few-photos nor the unseen-sides advice: both are about multi-photo captures.
    assert _advice_with(rep, "photos could be used") == [] and _advice_with(rep, "No photo showed") == []
    assert rep.unseen_sides == ("back", "left", "right", "top", "bottom")
    # The segmenter's notes reach the merchant on the single-photo path, named by photo.
    assert "IMG_0.jpg: The item touches the edge." in rep.warnings
    multi = _make(mask_warnings=("The item touches the edge.",))
    assert not any("touches the edge" in w for w in multi.warnings)
    assert _advice_with(multi, "made from one photo") == []


@pytest.mark.parametrize("placed", [3, 12, report.FEW_PHOTOS - 1])
def test_few_placed_photos_give_the_number_and_what_to_do(placed):
    rep = _make(photos=report.FEW_PHOTOS + 4, placed=placed)
    assert rep.photos_total == report.FEW_PHOTOS + 4 and rep.photos_placed == placed
    (advice,) = _advice_with(rep, "photos could be used")
    assert advice.startswith(f"Only {placed} photos could be used")
    assert f"Take {report.FEW_PHOTOS}-80 photos" in advice
    assert f"Made from {placed} of {report.FEW_PHOTOS + 4} photos" in rep.summary


def test_enough_placed_photos_give_no_few_photos_advice():
    rep = _make(photos=report.FEW_PHOTOS + 4, placed=report.FEW_PHOTOS)
    assert _advice_with(rep, "photos could be used") == []


def test_unseen_sides_are_named_except_the_bottom():
    rep = _make(seen=("top", "left", "front"))  # any order in, ALL_SIDES order out
    assert rep.seen_sides == ("front", "left", "top")
    assert rep.unseen_sides == ("back", "right", "bottom")
    (advice,) = _advice_with(rep, "No photo showed")
    assert advice.startswith("No photo showed the back and the right side of the item")
    (three,) = _advice_with(_make(seen=("front", "bottom")), "No photo showed")
    assert three.startswith("No photo showed the back, the left side, the right side and the top of the item")
    whole = _make(seen=ALL_BUT_BOTTOM)  # the side it stands on is never photographed: no advice
    assert whole.unseen_sides == ("bottom",) and _advice_with(whole, "No photo showed") == []


def test_unplaced_photos_failures_reach_the_warnings_once_each():
    failures = ("Photo 3 (IMG_2.jpg) is blurry or has too little detail.",
                "Photo 7 (IMG_6.jpg) seems to show a different object.")
    rep = _make(photos=24, placed=22, failures=failures, warnings=(failures[0],))
    assert [w for w in rep.warnings if w in failures] == list(failures)  # in order, no duplicate
    assert rep.photos_placed == 22


def test_low_mask_confidence_asks_for_a_plain_background():
    low = _make(photos=4, confidences=[0.2, 0.3, 0.6, 0.5])  # mean 0.4
    assert low.mask_confidence == pytest.approx(0.4)
    assert len(_advice_with(low, "plain wall or sheet")) == 1
    edge = _make(photos=2, confidences=[report.LOW_MASK_CONFIDENCE] * 2)
    assert _advice_with(edge, "plain wall or sheet") == []


def test_shaky_poses_are_explained():
    shaky = _make(reprojection=report.HIGH_REPROJECTION_PX + 0.5)
    assert shaky.reprojection_error_px == pytest.approx(report.HIGH_REPROJECTION_PX + 0.5)
    assert len(_advice_with(shaky, "did not line up well")) == 1
    steady = _make(reprojection=report.HIGH_REPROJECTION_PX - 0.5)
    assert _advice_with(steady, "did not line up") == []


_BROKEN = Judgement(Verdict.FAILED, (
    Evidence("placed", 0.45, "share", 0.8, 0.5, Verdict.FAILED, "Only 13 of 29 photos could be placed.",
             ("IMG_3.jpg", "IMG_4.jpg")),
    Evidence("pieces", 0.1, "share", 0.05, 0.35, Verdict.WARNINGS, "10% of the surface is in loose pieces."),
    Evidence("ring", 0.5, "ratio", 1.2, 2.0, Verdict.GOOD)), ("IMG_3.jpg", "IMG_4.jpg"))


def test_a_failed_verdict_is_never_called_a_scan_and_leads_the_plain_words():
    failed = _make(judgement=_BROKEN)
    assert failed.verdict is Verdict.FAILED and failed.evidence == _BROKEN.evidence
    assert "scan" not in failed.summary and failed.summary.startswith("A 3D model that failed its quality check, ")
    lines = report.plain_words(failed)
    assert lines[0] == report.VERDICT_WORDS[Verdict.FAILED] and lines[1] == failed.summary
    # The failed check first, then the warning; a passed check says nothing.
    assert lines[2:4] == ["Only 13 of 29 photos could be placed.", "10% of the surface is in loose pieces."]
    assert failed.advice[0] == "Re-shoot or leave out: IMG_3.jpg, IMG_4.jpg."
    data = json.loads(json.dumps(report.to_json(failed)))
    assert data["verdict"] == "failed" and data["reshoot"] == ["IMG_3.jpg", "IMG_4.jpg"]
    assert [e["check"] for e in data["evidence"]] == ["placed", "pieces", "ring"]
    assert data["evidence"][0]["outcome"] == "failed" and data["evidence"][0]["photos"] == ["IMG_3.jpg", "IMG_4.jpg"]
    good = _make()
    assert good.verdict is Verdict.GOOD and good.summary.startswith("A full 3D scan, ")
    assert report.plain_words(good)[0] == report.VERDICT_WORDS[Verdict.GOOD]


def test_summary_states_kind_sizes_source_and_files():
    rep = _make(dims=(0.4, 0.3, 0.2), photos=24, placed=23)
    assert rep.summary.startswith("A full 3D scan, ")
    assert "30.0 cm (11.8 in) tall, 40.0 cm (15.7 in) wide and 20.0 cm (7.9 in) deep" in rep.summary
    assert "(the height you entered: 30.0 cm (11.8 in))" in rep.summary
    assert rep.summary.endswith("Made from 23 of 24 photos in 42 seconds.")
    # The file's technical figures are for the Details section, not the merchant's summary.
    assert "triangles" not in rep.summary and "GLB" not in rep.summary and " px" not in rep.summary
    assert rep.dimensions_m == (0.4, 0.3, 0.2) and rep.heldout_photometric_error == 9.5
    assert rep.details == ("12,345 triangles, 1.5 MB GLB, 2048 px texture.", "Shape note.",
                           "Simplified to 12,345 triangles.")
    assert "Made from 1 of 1 photo " in _make(photos=1, single=True).summary


def test_photo_warnings_are_named_by_photo():
    rep = _make(photo_warnings=("The photo is blurry.",))
    assert "IMG_0.jpg: The photo is blurry." in rep.warnings


def test_plain_words_lead_with_the_verdict_and_summary_then_reason_advice_warnings():
    rep = _make(photos=10, placed=9, scale_from=ScaleSource.ASSUMED, failures=("Photo 10 (IMG_9.jpg) is blurry.",))
    lines = report.plain_words(rep)
    assert lines[:2] == [report.VERDICT_WORDS[Verdict.GOOD], rep.summary]
    assert lines[2] == "The photos went all round the item."  # capitalised, full stop added
    assert lines[3:] == list(rep.advice) + list(rep.warnings)
    assert len(rep.advice) >= 2 and rep.warnings


def test_to_json_is_plain_json_with_the_plain_words():
    rep = _make(photos=10, placed=9, scale_from=ScaleSource.ASSUMED)
    data = json.loads(json.dumps(report.to_json(rep)))
    assert data["plain_words"] == report.plain_words(rep)
    assert data["advice"] == list(rep.advice) and data["dimensions_m"] == [0.4, 0.3, 0.2]
    assert data["photos_placed"] == 9 and data["seconds_per_stage"] == {"geometry": 30.0}


def test_write_report_is_atomic_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "model.report.json"
    first = _make(photos=10, placed=9)
    report.write_report(first, path)
    assert json.loads(path.read_text()) == json.loads(json.dumps(report.to_json(first)))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644  # the web server must be able to read it
    second = _make(photos=30)
    report.write_report(second, path)
    assert json.loads(path.read_text())["photos_total"] == 30
    # A report that cannot be written leaves the previous file whole (a plain open-and-dump
    # would have truncated it first).
    broken = replace(second, seconds_per_stage={"texture": object()})
    with pytest.raises(TypeError):
        report.write_report(broken, path)
    assert json.loads(path.read_text())["photos_total"] == 30
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.report.json"]


#: Words a shop owner should not meet outside the Details section (checked case-insensitively as
#: whole words or word starts).
JARGON = ("uv", "triangle", "mesh", "carv", "voxel", "hull", "sfm", "pose", "reprojection", "atlas", "unfold",
          "point cloud", "silhouette", "keypoint", "ransac", "mvs", "decimat", "normals", "px", "glb", "bake",
          "texture", "segment", "mask", "colmap", "sift", "depth map", "grabcut", "iou")


def jargon_in(text: str) -> list[str]:
    import re

    return [w for w in JARGON if re.search(rf"(?<![a-z]){re.escape(w)}", text.lower())]


def sentences_of(text: str) -> list[str]:
    import re

    # A full stop inside a size ("30.0 cm") or a file name ("IMG_1.jpg") ends no sentence.
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


def merchant_lines(rep) -> list[str]:
    """Everything the Model page shows outside Details: summary, advice, warnings, the verdict
    lines, the gate's messages, and the shape's reason as plain_words puts it."""
    return [line for line in report.plain_words(rep) if line]


def assert_plain(line: str) -> None:
    assert not jargon_in(line), (jargon_in(line), line)
    for s in sentences_of(line):
        assert not s[:1].islower(), f"sentence starts in lower case: {s!r} (in {line!r})"


@pytest.mark.parametrize("kw", [dict(), dict(photos=1, single=True, seen=("front",), kind="round"),
                                dict(photos=30, placed=12, seen=("front", "left"), scale_from=ScaleSource.ASSUMED,
                                     confidences=[0.2] * 30, reprojection=3.0)])
def test_report_sentences_are_plain_words_with_capitals(kw):
    for line in merchant_lines(_make(**kw)):
        assert_plain(line)


def test_stage_words_and_stage_start_messages_are_plain_words():
    import ast
    from pathlib import Path

    import pipeline

    for words in pipeline.STAGE_WORDS.values():
        assert_plain(words)
    # Every literal message handed to a progress callback anywhere in the pipeline.
    calls = {"start", "tick", "report", "progress", "sub"}
    found = []
    for path in Path(report.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in calls:
                for arg in node.args[1:2]:
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                        found.append(arg.value)
                    elif isinstance(arg, ast.JoinedStr):
                        found.append("".join(v.value for v in arg.values if isinstance(v, ast.Constant)))
    assert len(found) >= 20, found  # the scan sees the stages' messages
    for message in found:
        assert_plain(message)


def test_a_real_one_photo_report_is_plain_words_with_capitals(chair_model):
    lines = merchant_lines(chair_model.report)
    assert len(lines) >= 3, lines
    for line in lines:
        assert_plain(line)
