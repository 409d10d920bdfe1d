"""Single-photo geometry: shape priors from a mask, on synthetic outlines and the bench singles."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
import trimesh
from PIL import Image

from pipeline import geom, mesh, single_view
from pipeline.errors import CaptureError, InputError
from pipeline.types import KnownSize, Mask, Photo, Shape

CFG = single_view.PRESETS["balanced"]
BENCH_SINGLES = ("banana", "waterbottle", "avocado", "boombox", "chair")


def _photo(mask: np.ndarray, rgb: np.ndarray | None = None) -> tuple[Photo, Mask]:
    h, w = mask.shape
    if rgb is None:
        rgb = np.full((h, w, 3), 128, np.uint8)
    return Photo("test.jpg", 0, rgb, None, None, (w, h)), Mask(mask.astype(bool), 1.0, False, "test")


def _check_closed(shape: Shape) -> trimesh.Trimesh:
    tm = trimesh.Trimesh(shape.vertices, shape.faces, process=False)
    assert tm.is_watertight
    assert tm.is_winding_consistent
    assert tm.volume > 0
    assert len(shape.faces) < 60_000
    return tm


def _disc(h=480, w=640, r=150):
    yy, xx = np.mgrid[0:h, 0:w]
    return (xx - 330.4) ** 2 + (yy - 250.2) ** 2 <= r**2


def _vase_radius(y: np.ndarray) -> np.ndarray:
    """Radius (px) of a vase-like profile for rows 100..420: narrow top, belly, neck, flared foot."""
    t = (y - 100.0) / 320.0
    return 45 + 40 * np.sin(np.pi * np.clip(t, 0, 1) * 1.3) ** 2 - 15 * t


def _vase(h=520, w=640, axis=317.3):
    yy, xx = np.mgrid[0:h, 0:w]
    r = _vase_radius(yy.astype(float))
    return (np.abs(xx + 0.5 - axis - 0.5) <= r) & (yy >= 100) & (yy <= 420)


def _rect(h=480, w=640, x0=200, y0=120, x1=440, y1=300):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def test_disc_auto_is_round_and_closed():
    photo, mask = _photo(_disc())
    shape = single_view.shape_from_photo(photo, mask, "auto", "floor", CFG)
    assert shape.kind == "round"
    assert "oval" in shape.kind_reason
    _check_closed(shape)
    ext = np.ptp(shape.vertices, 0)
    assert ext[0] == pytest.approx(300, rel=0.02) and ext[1] == pytest.approx(300, rel=0.02)
    # inflated, not a pancake nor a full ball
    assert 0.4 * ext[0] < ext[2] < 1.05 * ext[0]
    assert any("25 cm" in n for n in shape.notes)
    assert shape.seen_sides == ("front",)


def test_vase_auto_is_revolve_and_recovers_the_profile():
    photo, mask = _photo(_vase())
    shape = single_view.shape_from_photo(photo, mask, "auto", "floor", CFG)
    assert shape.kind == "revolve"
    assert "symmetric" in shape.kind_reason
    _check_closed(shape)
    v = shape.vertices
    axis_x = (v[:, 0].max() + v[:, 0].min()) / 2
    assert axis_x == pytest.approx(317.3, abs=1.0)
    radius = np.hypot(v[:, 0] - axis_x, v[:, 2] - np.median(v[:, 2]))
    ys = np.unique(np.round(v[:, 1], 6))
    inner = ys[(ys > 105) & (ys < 415)]
    assert len(inner) > 50
    for y in inner[::5]:
        got = radius[np.isclose(v[:, 1], y)].max()
        assert got == pytest.approx(_vase_radius(np.array(y)) + 0.5, rel=0.04), y
    assert v[:, 1].min() == pytest.approx(99.5, abs=2) and v[:, 1].max() == pytest.approx(420.5, abs=2)


def test_rectangle_is_box_small_and_flat_when_filling_the_frame():
    photo, mask = _photo(_rect())
    shape = single_view.shape_from_photo(photo, mask, "auto", "floor", CFG)
    assert shape.kind == "box"
    tm = _check_closed(shape)
    ext = np.ptp(shape.vertices, 0)
    assert ext[:2] == pytest.approx([240, 180], abs=2)
    assert 0.4 * 240 <= ext[2] <= 240
    assert tm.volume == pytest.approx(240 * 180 * ext[2], rel=0.03)

    photo, mask = _photo(_rect(x0=40, y0=30, x1=600, y1=450))
    shape = single_view.shape_from_photo(photo, mask, "auto", "wall", CFG)
    assert shape.kind == "flat"
    _check_closed(shape)
    ext = np.ptp(shape.vertices, 0)
    assert ext[2] < 0.05 * ext[0]  # a thin slab
    assert np.allclose(shape.up, [0, -1, 0]) and np.allclose(shape.front, [0, 0, -1])


def test_flat_on_the_floor_lies_face_up_like_a_rug():
    photo, mask = _photo(_rect(x0=40, y0=30, x1=600, y1=450))
    shape = single_view.shape_from_photo(photo, mask, "flat", "floor", CFG)
    finished = mesh.finish_mesh(shape, None, "floor", mesh.PRESETS["balanced"])
    w, h, d = finished.dimensions_m
    assert h < 0.05 * min(w, d)  # thin along the product Y: lying flat
    assert w / d == pytest.approx(560 / 420, rel=0.02)  # photo x -> width, photo y -> depth
    # the photographed face becomes the top: its normal (towards the camera) maps to +Y
    rot = finished.placement[:3, :3] / np.linalg.norm(finished.placement[:3, 0])
    assert rot @ np.array([0, 0, -1.0]) == pytest.approx([0, 1, 0], abs=1e-9)
    assert "rug" in " ".join(shape.notes)


@pytest.mark.parametrize("kind", ["flat", "box", "revolve", "round"])
def test_every_kind_closes_a_shape_with_openings_and_pieces(kind):
    m = _rect(x0=150, y0=100, x1=450, y1=400)
    m[150:250, 200:280] = False  # a real opening (like the gap in a chair back)
    m[300:360, 500:600] = True  # and a separate piece (a lid beside its jar)
    photo, mask = _photo(m)
    shape = single_view.shape_from_photo(photo, mask, kind, "floor", CFG)
    assert shape.kind == kind and shape.kind_reason
    _check_closed(shape)


def test_bad_input_is_a_plain_error():
    photo, mask = _photo(_disc())
    with pytest.raises(InputError):
        single_view.shape_from_photo(photo, mask, "sphere", "floor", CFG)
    with pytest.raises(InputError):
        single_view.shape_from_photo(photo, mask, "auto", "ceiling", CFG)
    with pytest.raises(CaptureError):
        single_view.shape_from_photo(photo, Mask(np.zeros_like(mask.mask), 0.0, False, "x"), "auto", "floor", CFG)
    with pytest.raises(InputError):
        single_view.shape_from_photo(photo, Mask(mask.mask[:-1], 1.0, False, "x"), "auto", "floor", CFG)


def _coverage(shape: Shape, mask: np.ndarray) -> tuple[float, float]:
    """(share of projected vertices inside the dilated mask, share of the mask the projection covers)."""
    cam = shape.views[0]
    uv, z = geom.project(cam, shape.vertices)
    assert (z > 0).all()
    h, w = mask.shape
    size = max(np.ptp(np.nonzero(mask)[0]), np.ptp(np.nonzero(mask)[1]))
    r = max(2, int(0.01 * size))
    dil = cv2.dilate(mask.astype(np.uint8), np.ones((2 * r + 1, 2 * r + 1), np.uint8)) > 0
    px = np.clip(np.round(uv).astype(int), 0, [w - 1, h - 1])
    inside = dil[px[:, 1], px[:, 0]].mean()
    drawn = np.zeros((h, w), np.uint8)
    for tri in (uv[shape.faces] * 4).round().astype(np.int32):  # one by one: overlaps would cancel
        cv2.fillConvexPoly(drawn, tri, 1, shift=2)
    covered = (drawn[mask] > 0).mean()
    return float(inside), float(covered)


@pytest.fixture(scope="module")
def singles(bench):
    out = {}
    for name in BENCH_SINGLES:
        folder = bench / "single" / name
        rgb = np.asarray(Image.open(folder / "image.jpg").convert("RGB"))
        m = np.asarray(Image.open(folder / "mask.png").convert("L")) > 127
        out[name] = _photo(m, rgb)
    return out


@pytest.mark.parametrize("name", BENCH_SINGLES)
def test_bench_singles_give_closed_shapes_that_project_onto_the_photo(singles, name):
    photo, mask = singles[name]
    for kind in ("auto", "flat", "box", "revolve", "round"):
        t0 = time.perf_counter()
        shape = single_view.shape_from_photo(photo, mask, kind, "floor", CFG)
        assert time.perf_counter() - t0 < 2.0  # well under a second unloaded; generous for busy CI
        _check_closed(shape)
        if kind == "revolve" and name != "waterbottle":
            continue  # a forced revolve of a lopsided outline cannot match it; closed is all we ask
        inside, covered = _coverage(shape, mask.mask)
        # revolve replaces a one-sided bump (the bottle's strap) by its mirror: a little spills out
        # (and its flat ends leave the curved rim strips of the outline uncovered)
        assert inside >= (0.99 if shape.kind == "revolve" else 0.999), (kind, inside)
        assert covered >= (0.93 if shape.kind == "revolve" else 0.99), (kind, covered)


def test_bench_auto_kinds_and_finished_meshes(singles):
    kinds = {}
    for name in BENCH_SINGLES:
        shape = single_view.shape_from_photo(*singles[name], "auto", "floor", CFG)
        kinds[name] = shape.kind
        finished = mesh.finish_mesh(shape, None, "floor", mesh.PRESETS["balanced"])
        tm = trimesh.Trimesh(finished.vertices, finished.faces, process=False)
        assert tm.is_watertight and tm.is_winding_consistent and tm.volume > 0, name
        assert len(finished.faces) <= mesh.PRESETS["balanced"].photo_target_triangles
        assert max(finished.dimensions_m) == pytest.approx(shape.default_size_m)
    assert kinds["waterbottle"] == "revolve"
    assert kinds["banana"] == "round" and kinds["avocado"] == "round"
    assert kinds["chair"] == "box"  # openings between the legs
    assert kinds["boombox"] in ("box", "round")


def test_bench_bottle_flat_bottom_and_true_proportions(singles, bench):
    """The curved bottom rim (camera 12 deg up) must not shrink the bottle: width/height vs GT."""
    photo, mask = singles["waterbottle"]
    shape = single_view.shape_from_photo(photo, mask, "revolve", "floor", CFG)
    assert any("flat" in n for n in shape.notes)
    finished = mesh.finish_mesh(shape, KnownSize("height", 0.26), "floor", mesh.PRESETS["balanced"])
    w, h, d = finished.dimensions_m
    assert h == pytest.approx(0.26)
    assert w == pytest.approx(0.1098, rel=0.08)  # GT bbox width (its depth includes a strap)
