"""Correcting a finished model (issue 14), read back from the files it writes.

Pipeline level: a synthetic box exported once (its front +Z carries a red marker), adjusted with
`pipeline.adjust_model` and read back with trimesh (GLB) and pxr.Usd (USDZ). Library level: the
real one-photo chair in a real SQLite library, adjusted through webapp/adjust.py.
"""

from __future__ import annotations

import json
import math
import sqlite3
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

import pipeline
from pipeline import Adjustment, InputError, KnownSize, Tip, export
from tests.signing import signed_in_apptest  # noqa: E402
from tests.test_export import RED, marked_box

BOX = (0.4, 0.2, 0.1)  # marked_box's product size: width x, height y, depth z (metres)


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("adjust-original") / "box.glb"
    export.export_all(marked_box(), out, export.PRESETS["balanced"], name="Box")
    return out


def adjusted(original: Path, tmp_path: Path, **kw) -> pipeline.Adjusted:
    return pipeline.adjust_model(original, Adjustment(**kw), tmp_path / "out" / "box.glb")


def glb_mesh(path):
    import trimesh

    return trimesh.load(path, force="mesh")


def glb_doc(path) -> dict:
    raw = Path(path).read_bytes()
    length = struct.unpack_from("<I", raw, 12)[0]
    return json.loads(raw[20:20 + length])


def usdz_bounds(path) -> tuple[np.ndarray, np.ndarray]:
    """The USDZ's extent as USD computes it for the whole stage, in metres (+Y up checked)."""
    from pxr import Usd, UsdGeom

    stage = Usd.Stage.Open(str(path))
    assert UsdGeom.GetStageUpAxis(stage) == UsdGeom.Tokens.y and UsdGeom.GetStageMetersPerUnit(stage) == 1.0
    box = UsdGeom.BBoxCache(Usd.TimeCode.Default(), [UsdGeom.Tokens.default_]).ComputeWorldBound(
        stage.GetPseudoRoot()).ComputeAlignedRange()
    return np.array(box.GetMin()), np.array(box.GetMax())


def embedded_image(path) -> bytes:
    """The GLB's base-colour image, byte for byte."""
    raw = Path(path).read_bytes()
    length = struct.unpack_from("<I", raw, 12)[0]
    doc = json.loads(raw[20:20 + length])
    binary = raw[20 + length + 8:]
    view = doc["bufferViews"][doc["images"][0]["bufferView"]]
    return binary[view.get("byteOffset", 0):view.get("byteOffset", 0) + view["byteLength"]]


def red_normals(mesh) -> np.ndarray:
    """Mean normal of the faces painted with the box's red front marker."""
    tex = np.asarray(mesh.visual.material.baseColorTexture.convert("RGB"))
    uv = mesh.visual.uv[mesh.faces].mean(axis=1)
    px = np.clip((uv[:, 0] * tex.shape[1]).astype(int), 0, tex.shape[1] - 1)
    py = np.clip(((1 - uv[:, 1]) * tex.shape[0]).astype(int), 0, tex.shape[0] - 1)
    c = tex[py, px].astype(int)
    red = (np.abs(c - RED.astype(int)).max(axis=1) < 40)
    assert red.sum() > 0
    n = mesh.face_normals[red].mean(axis=0)
    return n / np.linalg.norm(n)


def assert_on_floor(lo, hi, wall=False):
    assert abs(lo[1]) < 1e-6, "resting on y = 0"
    assert abs(lo[0] + hi[0]) < 1e-6, "centred in x"
    if wall:
        assert abs(lo[2]) < 1e-6, "back on the wall plane z = 0"
    else:
        assert abs(lo[2] + hi[2]) < 1e-6, "centred in z"


def test_a_quarter_turn_swaps_width_and_depth_and_turns_the_front(original, tmp_path):
    made = adjusted(original, tmp_path, quarter_turns=1)
    mesh = glb_mesh(made.exports.glb)
    lo, hi = mesh.bounds
    assert np.allclose(hi - lo, (BOX[2], BOX[1], BOX[0]), atol=1e-5)
    assert np.allclose(made.dimensions_m, hi - lo, atol=1e-5)
    assert_on_floor(lo, hi)
    # Counter-clockwise seen from above: the front (+Z) now faces +X.
    assert np.allclose(red_normals(mesh), (1, 0, 0), atol=1e-3)
    # Three quarters the other way: the front faces -X.
    assert np.allclose(red_normals(glb_mesh(adjusted(original, tmp_path, quarter_turns=-1).exports.glb)),
                       (-1, 0, 0), atol=1e-3)


def test_a_new_height_scales_every_side(original, tmp_path):
    made = adjusted(original, tmp_path, size=KnownSize("height", 0.3))
    lo, hi = glb_mesh(made.exports.glb).bounds
    assert abs((hi - lo)[1] - 0.3) < 1e-3
    assert np.allclose(hi - lo, np.array(BOX) * 1.5, atol=1e-4)
    assert_on_floor(lo, hi)


def test_the_size_applies_after_the_turn(original, tmp_path):
    # After a quarter turn the 0.4 m side is the depth: a width of 0.2 m scales the 0.1 m side by 2.
    made = adjusted(original, tmp_path, quarter_turns=1, size=KnownSize("width", 0.2))
    lo, hi = glb_mesh(made.exports.glb).bounds
    assert np.allclose(hi - lo, (0.2, 0.4, 0.8), atol=1e-4)


@pytest.mark.parametrize("tip, dims, front", [
    (Tip.BACK, (0.4, 0.1, 0.2), (0, 1, 0)),  # laid on its back: the front looks up
    (Tip.FRONT, (0.4, 0.1, 0.2), (0, -1, 0)),
    (Tip.LEFT, (0.2, 0.4, 0.1), (0, 0, 1)),  # stood on its left end: the front still faces +Z
    (Tip.TOP, (0.4, 0.2, 0.1), (0, 0, 1)),
])
def test_lay_down_and_stand_up(original, tmp_path, tip, dims, front):
    mesh = glb_mesh(adjusted(original, tmp_path, tip=tip).exports.glb)
    lo, hi = mesh.bounds
    assert np.allclose(hi - lo, dims, atol=1e-5)
    assert_on_floor(lo, hi)
    assert np.allclose(red_normals(mesh), front, atol=1e-3)


def test_wall_placement_puts_the_back_on_the_wall(original, tmp_path):
    made = adjusted(original, tmp_path, placement="wall", size=KnownSize("width", 0.8))
    lo, hi = glb_mesh(made.exports.glb).bounds
    assert_on_floor(lo, hi, wall=True)
    assert np.allclose(hi, (0.4, 0.4, 0.2), atol=1e-4)


@pytest.mark.parametrize("kw", [
    dict(), dict(quarter_turns=2, turn_deg=30.0), dict(tip="right", size=KnownSize("depth", 0.05)),
    dict(placement="wall", turn_deg=-12.5, tip="back"),
])
def test_every_file_keeps_the_contract(original, tmp_path, kw):
    """Bottom centre at the origin (back on z = 0 on a wall), the USDZ's extent equal to the GLB's
    box, one PBR material, a power-of-two texture, under the triangle and size caps."""
    made = adjusted(original, tmp_path, **kw)
    mesh = glb_mesh(made.exports.glb)
    lo, hi = mesh.bounds
    assert_on_floor(lo, hi, wall=kw.get("placement") == "wall")
    ulo, uhi = usdz_bounds(made.exports.usdz)
    assert np.allclose(ulo, lo, atol=1e-5) and np.allclose(uhi, hi, atol=1e-5), (ulo, uhi, lo, hi)
    doc = glb_doc(made.exports.glb)
    assert len(doc["materials"]) == 1 and "pbrMetallicRoughness" in doc["materials"][0]
    side = made.exports.texture_size
    assert side & (side - 1) == 0 and made.exports.triangles < 100_000 and made.exports.glb_bytes < 5_000_000
    with zipfile.ZipFile(made.exports.obj_zip) as z:
        v = np.array([[float(x) for x in line.split()[1:]] for line in z.read("model.obj").decode().splitlines()
                      if line.startswith("v ")])
    assert np.allclose(v.min(0), lo, atol=1e-5) and np.allclose(v.max(0), hi, atol=1e-5)


def test_the_texture_is_never_recompressed(original, tmp_path):
    made = adjusted(original, tmp_path, quarter_turns=3, size=KnownSize("height", 0.5))
    assert embedded_image(made.exports.glb) == embedded_image(original)


def test_the_poster_angle_and_backdrop_change_the_poster(original, tmp_path):
    from PIL import Image

    def pixels(path):
        return np.asarray(Image.open(path).convert("RGB")).astype(int)

    as_made = pixels(adjusted(original, tmp_path).exports.poster)
    turned = pixels(adjusted(original, tmp_path, poster_yaw_deg=-70.0, poster_pitch_deg=45.0).exports.poster)
    assert np.abs(as_made - turned).mean() > 3
    dark = pixels(adjusted(original, tmp_path, background=(40, 45, 56)).exports.poster)
    assert np.allclose(dark[2, 2], (40, 45, 56), atol=2) and np.allclose(as_made[2, 2], 255, atol=2)
    preview = pipeline.preview_adjustment(original, Adjustment(poster_yaw_deg=-70.0, poster_pitch_deg=45.0), 200)
    assert preview.image.shape == (200, 200, 3) and np.allclose(preview.dimensions_m, BOX, atol=1e-5)


@pytest.mark.parametrize("kw, words", [
    (dict(turn_deg=float("nan")), "nan"), (dict(turn_deg=400), "400"), (dict(poster_pitch_deg=95), "95"),
    (dict(tip="sideways"), "sideways"), (dict(placement="ceiling"), "ceiling"), (dict(quarter_turns=1.5), "1.5"),
    (dict(background=(0, 0, 300)), "300"), (dict(size=0.5), "0.5"),
])
def test_bad_values_are_refused_when_made(kw, words):
    with pytest.raises(InputError) as caught:
        Adjustment(**kw)
    assert caught.value.stage == "export" and words in str(caught.value)


def test_a_size_of_zero_is_refused_by_its_known_size():
    with pytest.raises(InputError, match="more than zero"):
        KnownSize("height", 0.0)
    with pytest.raises(InputError) as caught:
        Adjustment.from_dict({"size": {"axis": "height", "metres": 0}})
    assert caught.value.stage == "export"


def test_an_absurd_result_or_a_foreign_file_writes_nothing(original, tmp_path):
    with pytest.raises(InputError, match="across"):  # 15 m tall makes it 30 m wide
        pipeline.adjust_model(original, Adjustment(size=KnownSize("height", 15.0)), tmp_path / "a" / "m.glb")
    assert not (tmp_path / "a").exists()
    fake = tmp_path / "fake.glb"
    fake.write_bytes(b"PK\x03\x04 not a model")
    with pytest.raises(InputError, match="not a model Plinth made"):
        pipeline.adjust_model(fake, Adjustment(), tmp_path / "b" / "m.glb")
    assert not (tmp_path / "b").exists()


def test_the_dictionary_form_round_trips():
    a = Adjustment(tip=Tip.LEFT, quarter_turns=7, turn_deg=-3.5, size=KnownSize("depth", 0.42), placement="wall",
                   poster_yaw_deg=-40, poster_pitch_deg=10, background=(1, 2, 3))
    assert a.quarter_turns == 3 and math.isclose(a.yaw_deg, 266.5)
    assert Adjustment.from_dict(json.loads(json.dumps(a.to_dict()))) == a
    assert Adjustment.from_dict({}) == Adjustment()


# ---------------------------------------------------------------- the library (webapp/adjust.py)


@pytest.fixture()
def library_model(chair_model, tmp_path):
    from webapp import model_folders

    data = tmp_path / "data"
    data.mkdir()
    return data, model_folders.add_model(chair_model, "Oak chair", [], data_dir=data)


PUBLIC = ("model.glb", "model.usdz", "model.obj.zip", "poster.png")


def files_of(model) -> dict[str, bytes]:
    return {name: (model.folder / name).read_bytes() for name in PUBLIC}


def test_adjusting_rewrites_every_file_and_keeps_the_share_link(library_model):
    from webapp import adjust, ar_page, library, store

    data, model = library_model
    before = files_of(model)
    w, h, d = model.dimensions_m
    after = adjust.adjust(model.share_id, Adjustment(quarter_turns=1, size=KnownSize("height", 0.9),
                                                     poster_yaw_deg=-50.0), data, background="dark")
    assert after.share_id == model.share_id and after.folder == model.folder
    assert all(files_of(after)[n] != before[n] for n in PUBLIC)
    assert (model.folder / "original.glb").read_bytes() == before["model.glb"]  # kept for later edits
    k = 0.9 / h
    assert np.allclose(after.dimensions_m, (d * k, 0.9, w * k), rtol=1e-3)
    lo, hi = glb_mesh(model.folder / "model.glb").bounds
    assert np.allclose(hi - lo, after.dimensions_m, atol=1e-4)
    assert_on_floor(lo, hi)
    ulo, uhi = usdz_bounds(model.folder / "model.usdz")
    assert np.allclose(ulo, lo, atol=1e-5) and np.allclose(uhi, hi, atol=1e-5)
    assert after.report["dimensions_m"] == pytest.approx(list(after.dimensions_m))
    assert "you set" in after.report["scale_source"]
    # The share page points at the new files (past caches) on the chosen backdrop.
    html = ar_page.render(after, "http://shop.test")
    assert f"model.glb?v={adjust.revision(after)}" in html and adjust.BACKGROUNDS["dark"].css in html
    # A rebuilt database (from the manifests) keeps the correction and the share link.
    store.db_path(data).unlink()
    store.open_library(data, force=True)
    rebuilt = library.get_model(model.share_id, data)
    assert rebuilt.adjustment == after.adjustment and rebuilt.background == "dark"
    assert rebuilt.dimensions_m == pytest.approx(after.dimensions_m)
    assert adjust.current(rebuilt).quarter_turns == 1


def test_repeated_edits_give_the_files_of_one_combined_edit(library_model, chair_model, tmp_path):
    from webapp import adjust, model_folders

    data, model = library_model
    final = Adjustment(quarter_turns=3, turn_deg=10.0, size=KnownSize("width", 0.5), poster_pitch_deg=35.0)
    adjust.adjust(model.share_id, Adjustment(quarter_turns=1), data)
    adjust.adjust(model.share_id, Adjustment(tip="back", size=KnownSize("height", 0.2)), data)
    adjust.adjust(model.share_id, final, data)
    other = model_folders.add_model(chair_model, "Oak chair", [], data_dir=data)
    adjust.adjust(other.share_id, final, data)
    assert (model.folder / "model.glb").read_bytes() == (other.folder / "model.glb").read_bytes()
    assert (model.folder / "poster.png").read_bytes() == (other.folder / "poster.png").read_bytes()
    # ... and the texture is the one the model was made with, never encoded again.
    assert embedded_image(model.folder / "model.glb") == embedded_image(model.folder / "original.glb")


def test_undo_all_changes_puts_back_the_model_as_made(library_model):
    from webapp import adjust, library

    data, model = library_model
    before = files_of(model)
    adjust.adjust(model.share_id, Adjustment(placement="wall", tip="left"), data, background="warm")
    assert library.get_model(model.share_id, data).placement == "wall"
    undone = adjust.reset(model.share_id, data)
    assert files_of(undone) == before
    assert undone.dimensions_m == model.dimensions_m and undone.placement == model.placement
    assert undone.adjustment == "" and undone.background == "" and undone.report == model.report
    assert adjust.current(undone) == Adjustment()


def test_a_failure_midway_leaves_the_old_files_and_row(library_model):
    """The database refuses the update after the new files were swapped in (a real SQLite
    trigger): every old file is put back, the row and manifest are unchanged, one plain line."""
    from webapp import adjust, library, store

    data, model = library_model
    adjust.adjust(model.share_id, Adjustment(quarter_turns=2), data)
    model = library.get_model(model.share_id, data)
    before, manifest = files_of(model), (model.folder / "manifest.json").read_text()
    report = (model.folder / "report.json").read_text()
    with sqlite3.connect(store.db_path(data)) as con:
        con.execute("CREATE TRIGGER no_update BEFORE UPDATE ON models BEGIN SELECT RAISE(ABORT, 'refused'); END")
    with pytest.raises(adjust.AdjustError) as caught:
        adjust.adjust(model.share_id, Adjustment(quarter_turns=1, size=KnownSize("height", 0.5)), data)
    assert str(caught.value) == adjust.FAILED and "Traceback" not in str(caught.value)
    assert files_of(model) == before
    assert (model.folder / "manifest.json").read_text() == manifest
    assert (model.folder / "report.json").read_text() == report
    assert library.get_model(model.share_id, data) == model
    assert not list(model.folder.glob(".adjust-*")) and not list(model.folder.glob("*.tmp"))


def test_bad_requests_get_plain_words_and_change_nothing(library_model):
    from webapp import adjust, library

    data, model = library_model
    before = files_of(model)
    with pytest.raises(adjust.AdjustError, match="across"):
        adjust.adjust(model.share_id, Adjustment(size=KnownSize("width", 19.0)), data)
    with pytest.raises(adjust.AdjustError, match="Unknown background"):
        adjust.adjust(model.share_id, Adjustment(), data, background="url(javascript:alert(1))")
    with pytest.raises(adjust.AdjustError, match="does not exist"):
        adjust.adjust("x" * 32, Adjustment(), data)
    assert files_of(model) == before and library.get_model(model.share_id, data) == model
    # A backdrop key that is not ours (a hand-edited manifest) shows the standard look.
    assert adjust.background_css("</style><script>") == ""


def test_the_model_pages_adjust_section_turns_checks_the_size_and_applies(library_model, monkeypatch, device):
    """Streamlit AppTest on the real Model page: the turn buttons move the front choice, a size it
    cannot read is said in plain words and blocks Apply, Apply stores the change, Undo takes it back."""
    import streamlit as st

    from tests.test_webapp_apptest import APP
    from webapp import library, workers

    data, model = library_model
    sid = model.share_id
    monkeypatch.setenv("PLINTH_DATA_DIR", str(data))
    monkeypatch.setenv("PLINTH_DEVICES", device)
    st.cache_resource.clear()
    st.cache_data.clear()
    try:
        at = signed_in_apptest(APP, default_timeout=60).run()
        at.switch_page("views/model.py")
        at.query_params["id"] = library.get_model(sid, data).model_id
        at.run()
        assert not at.exception
        apply = lambda: at.button(key=f"adjust:apply:{sid}")  # noqa: E731
        assert apply().disabled  # nothing changed yet
        at.button(key=f"adjust:left:{sid}").click().run()
        assert at.radio(key=f"adjust:front:{sid}").value == 3  # its right side comes to the front
        at.text_input(key=f"adjust:size-height:{sid}").set_value("tall").run()
        assert any("Could not read the size" in e.value for e in at.error) and apply().disabled
        at.text_input(key=f"adjust:size-height:{sid}").set_value("35.4 in").run()
        assert any("New size" in m.value and "× 90 ×" in m.value for m in at.markdown)  # the others follow
        apply().click().run()
        assert not at.exception
        saved = library.get_model(sid, data)
        assert saved.dimensions_m[1] == pytest.approx(35.4 * 0.0254, abs=1e-4)
        assert json.loads(saved.adjustment)["quarter_turns"] == 3
        assert any("Saved" in s.value for s in at.success)
        mine = [w for w in (*at.button, *at.radio, *at.slider, *at.selectbox, *at.text_input)
                if str(w.key or "").startswith("adjust:")]
        words = " ".join([w.label for w in mine] + [str(o) for w in mine for o in getattr(w, "options", [])]).lower()
        assert len(mine) >= 12 and not any(word in words for word in ("triangle", "uv", "mesh", "yaw", "pitch"))
        at.button(key=f"adjust:undo:{sid}").click().run()
        assert library.get_model(sid, data).adjustment == "" and library.get_model(sid, data).dimensions_m == \
            model.dimensions_m
    finally:
        workers.stop_workers()
        st.cache_resource.clear()
