"""The quality gate (pipeline/quality) on synthetic captures with known truth: a sphere seen from a
ring of cameras, its exact cut-outs, and deliberately broken versions of the same capture."""

from __future__ import annotations

import functools
from dataclasses import replace

import numpy as np
import pytest

from pipeline import quality
from pipeline.errors import InputError
from pipeline.types import LeftOut, Mesh, ScaleSource, TexturedMesh, Unplaced, Verdict
from tests.scenes import RADIUS, look_at_camera, mask, orbit_eye, photo, ring_cameras, sphere

CFG = quality.PRESETS["balanced"]
RING = tuple(ring_cameras())


def _mesh(vertices, faces, cams) -> Mesh:
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    placement = np.eye(4)
    placement[:3, 3] = [-(lo[0] + hi[0]) / 2, -lo[1], -(lo[2] + hi[2]) / 2]  # bottom centre at the origin
    return Mesh(np.asarray(vertices, float), np.asarray(faces, np.int64), tuple(cams), placement,
                tuple(float(x) for x in hi - lo), "test", ScaleSource.MERCHANT, "scan")


def _textured(mesh: Mesh, coverage: float = 1.0, heldout: float | None = 8.0) -> TexturedMesh:
    return TexturedMesh(mesh.vertices, mesh.faces, np.zeros((len(mesh.vertices), 2), np.float32),
                        np.zeros((4, 4, 3), np.uint8), mesh.placement, mesh.dimensions_m, coverage, heldout)


def _capture(cams, vertices=None, faces=None):
    """Photos and exact cut-outs of the sphere seen by `cams` (the truth the model is checked on),
    and the model to check (default: the sphere itself)."""
    photos, masks = _ring_photos() if cams is RING else _render_all(cams)
    v, f = sphere()
    model_v, model_f = (v, f) if vertices is None else (vertices, faces)
    return list(photos), list(masks), _mesh(model_v, model_f, cams)


@functools.cache
def _ring_photos() -> tuple[tuple, tuple]:
    return _render_all(RING)


def _render_all(cams) -> tuple[tuple, tuple]:
    from tests.scenes import render

    v, f = sphere()
    photos, masks = [], []
    for i, cam in enumerate(cams):
        rgb, m = render(v, f, cam)
        photos.append(photo(rgb, i, f"IMG_{i:03d}.jpg"))
        masks.append(mask(m))
    return tuple(photos), tuple(masks)


def _judge(photos, masks, mesh, device, **textured):
    return quality.judge(photos, masks, mesh, _textured(mesh, **textured), CFG, device=device)


def _by_check(judgement):
    return {e.check: e for e in judgement.evidence}


def test_a_faithful_model_from_all_round_is_good(device):
    photos, masks, mesh = _capture(RING)
    judged = _judge(photos, masks, mesh, device)
    checks = _by_check(judged)
    assert judged.verdict is Verdict.GOOD, judged.problems
    assert set(checks) == {"placed", "outline", "spread", "ring", "aim", "pieces", "unseen", "photometric"}
    assert checks["outline"].value > 0.9 and checks["placed"].value == 1.0
    assert checks["spread"].value > 150 and checks["pieces"].value == 0.0 and checks["aim"].value == 0.0
    assert judged.reshoot == () and all(e.message == "" for e in judged.evidence)


def test_a_heap_of_table_three_times_the_item_fails_on_its_outline(device):
    v, f = sphere()
    photos, masks, mesh = _capture(RING, 3.0 * v + [0.0, 0.1, 0.0], f)
    judged = _judge(photos, masks, mesh, device)
    outline = _by_check(judged)["outline"]
    assert judged.verdict is Verdict.FAILED
    assert outline.outcome is Verdict.FAILED and outline.value < 0.3
    assert "does not match the item in your photos" in outline.message
    assert set(outline.photos) == {p.name for p in photos} and judged.reshoot == outline.photos


def test_a_few_wrong_cutouts_warn_and_name_their_photos_but_do_not_fail(device):
    photos, masks, mesh = _capture(RING)
    wrong = (2, 7, 11)
    for i in wrong:  # the segmenter kept only a corner of the item
        cut = masks[i].mask.copy()
        ys, xs = np.nonzero(cut)
        cut[ys.min() + (ys.max() - ys.min()) // 3:] = False
        masks[i] = mask(cut)
    judged = _judge(photos, masks, mesh, device)
    outline = _by_check(judged)["outline"]
    assert judged.verdict is Verdict.WARNINGS and outline.outcome is Verdict.WARNINGS
    assert outline.value > CFG.outline_warn
    assert set(outline.photos) == {f"IMG_{i:03d}.jpg" for i in wrong}
    assert all(f"IMG_{i:03d}.jpg" in outline.message for i in wrong)


def test_photos_all_from_one_spot_fail_with_walk_around_advice(device):
    cams = [look_at_camera(orbit_eye(np.radians(a), np.radians(20.0), 0.45)) for a in np.linspace(0, 4, 12)]
    photos, masks, mesh = _capture(cams)
    spread = _by_check(_judge(photos, masks, mesh, device))["spread"]
    assert spread.outcome is Verdict.FAILED and spread.value < CFG.spread_fail
    assert "Walk around the item" in spread.message


def test_a_model_as_big_as_the_camera_ring_fails(device):
    v, f = sphere()
    photos, masks, mesh = _capture(RING, 6.0 * v, f)  # radius 0.6 m: the cameras at 0.45 m are inside
    ring = _by_check(_judge(photos, masks, mesh, device))["ring"]
    assert ring.outcome is Verdict.FAILED and "holds the surroundings" in ring.message


def test_loose_pieces_beside_the_item_are_measured(device):
    v, f = sphere()
    second = 0.5 * v + [3 * RADIUS, 0.0, 0.0]
    photos, masks, mesh = _capture(RING, np.concatenate([v, second]), np.concatenate([f, f + len(v)]))
    pieces = _by_check(_judge(photos, masks, mesh, device))["pieces"]
    assert pieces.value == pytest.approx(0.2, abs=0.01)  # a quarter of the area of the whole sphere
    assert pieces.outcome is Verdict.WARNINGS and "20% of the model's surface is in loose pieces" in pieces.message


def test_few_placed_photos_fail_naming_the_ones_left_out(device):
    photos, masks, mesh = _capture(RING)
    views = tuple(c if i % 5 == 0 else None for i, c in enumerate(mesh.views))
    judged = _judge(photos, masks, replace(mesh, views=views), device)
    placed = _by_check(judged)["placed"]
    assert judged.verdict is Verdict.FAILED and placed.outcome is Verdict.FAILED
    assert placed.message.startswith("Only 4 of 16 photos could be placed in 3D, too few")
    assert placed.photos == tuple(p.name for i, p in enumerate(photos) if i % 5) and "IMG_001.jpg" in placed.message


def test_an_upload_of_two_items_fails_when_the_first_photo_is_left_out(device):
    photos, masks, mesh = _capture(RING)
    half = tuple(c if i % 2 else None for i, c in enumerate(mesh.views))  # photo 0 among the unplaced
    placed = _by_check(_judge(photos, masks, replace(mesh, views=half), device))["placed"]
    assert placed.value == 0.5 and placed.outcome is Verdict.FAILED
    assert "Your first photo (IMG_000.jpg) is among them, so the model may show another item" in placed.message
    most = tuple(None if i in (0, 3, 6) else c for i, c in enumerate(mesh.views))  # 13 of 16, photo 0 out
    placed = _by_check(_judge(photos, masks, replace(mesh, views=most), device))["placed"]
    assert placed.outcome is Verdict.GOOD and placed.photos == ("IMG_000.jpg", "IMG_003.jpg", "IMG_006.jpg")


def test_a_first_photo_too_dark_to_place_is_a_bad_photo_not_another_item(device):
    photos, masks, mesh = _capture(RING)
    out = (0, 3, 6, 9, 12)  # 11 of 16 placed: with the first photo out, two items are suspected...
    views = tuple(None if i in out else c for i, c in enumerate(mesh.views))
    left = tuple(LeftOut(i, Unplaced.OTHER_GROUP, f"{photos[i].name} matches only other left-out photos.") for i in out)
    judge = functools.partial(quality.judge, photos, masks, replace(mesh, views=views), _textured(mesh), CFG,
                              device=device)
    placed = _by_check(judge(left_out=left))["placed"]
    assert placed.outcome is Verdict.FAILED and "may show another item" in placed.message
    # ... but a first photo too dark to find details in says nothing about which item it shows
    dark = (LeftOut(0, Unplaced.NO_DETAIL, f"{photos[0].name} is too blurry, dark or plain."),) + left[1:]
    placed = _by_check(judge(left_out=dark))["placed"]
    assert placed.outcome is Verdict.WARNINGS and "another item" not in placed.message
    assert f"Your first photo ({photos[0].name}) is too blurry, dark or plain to place" in placed.message
    assert placed.photos == tuple(photos[i].name for i in out)


def test_unseen_surface_and_photometric_error_warn_then_fail(device):
    photos, masks, mesh = _capture(RING)
    warned = _by_check(_judge(photos, masks, mesh, device, coverage=0.7, heldout=40.0))
    assert warned["unseen"].outcome is Verdict.WARNINGS and warned["photometric"].outcome is Verdict.WARNINGS
    failed = _by_check(_judge(photos, masks, mesh, device, coverage=0.3, heldout=80.0))
    assert failed["unseen"].outcome is Verdict.FAILED and failed["photometric"].outcome is Verdict.FAILED
    assert "photometric" not in _by_check(_judge(photos, masks, mesh, device, heldout=None))


def test_one_photo_is_at_best_usable_with_warnings(device):
    cam = look_at_camera(orbit_eye(0.0, np.radians(20.0), 0.45))
    photos, masks, mesh = _capture([cam])
    judged = quality.judge(photos, masks, mesh, _textured(mesh), CFG, device=device, multiview=False)
    assert judged.verdict is Verdict.WARNINGS
    assert {e.check for e in judged.evidence} == {"outline", "photos"}


def test_mismatched_inputs_name_the_stage(device):
    photos, masks, mesh = _capture(RING)
    with pytest.raises(InputError, match="15 photos, 15 masks and 16 views") as error:
        _judge(photos[:-1], masks[:-1], mesh, device)
    assert error.value.stage == "report"
