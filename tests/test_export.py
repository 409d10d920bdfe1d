"""Export stage: GLB / USDZ / OBJ / poster in the product frame, validated by Khronos and USD tools."""

from __future__ import annotations

import json
import struct
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import pipeline
from pipeline import export, geom
from pipeline.export.usdz import validate_usdz
from pipeline.types import TexturedMesh
from tests.gltf_validate import errors_of, validate_glb

RED, GREY = np.array([230, 30, 30], np.uint8), np.array([128, 128, 128], np.uint8)


def marked_box(size=256, placement=None, noise=False) -> TexturedMesh:
    """A 2 x 1 x 0.5 box in a rotated, scaled reconstruction frame whose front (+z in product frame)
    carries a red marker; the placement maps it to a 0.4 x 0.2 x 0.1 m product on the floor."""
    import trimesh

    box = trimesh.creation.box(extents=(2.0, 1.0, 0.5))
    box = box.subdivide().subdivide()
    verts, faces = np.asarray(box.vertices), np.asarray(box.faces)
    # Each face gets its own UVs in a grid cell: cell colour red for faces on the front (+z).
    fn = np.asarray(box.face_normals)
    uv = np.zeros((len(faces) * 3, 2), np.float32)
    cells = int(np.ceil(np.sqrt(len(faces))))
    for i in range(len(faces)):
        cx, cy = (i % cells + 0.25) / cells, (i // cells + 0.25) / cells
        uv[3 * i:3 * i + 3] = [(cx, cy), (cx + 0.5 / cells, cy), (cx, cy + 0.5 / cells)]
    tex = np.tile(GREY, (size, size, 1))
    if noise:
        tex = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    for i in np.nonzero(fn[:, 2] > 0.9)[0]:
        cx, cy = int((i % cells) / cells * size), int((i // cells) / cells * size)
        tex[cy:cy + size // cells + 1, cx:cx + size // cells + 1] = RED
    split_v = verts[faces.ravel()]
    split_f = np.arange(len(faces) * 3).reshape(-1, 3)
    # Reconstruction frame: rotated 90 deg about x and scaled by 3, then shifted.
    rot = geom.rotation_between([0, 1, 0], [0, 0, 1])
    recon = geom.apply(geom.similarity(3.0, rot, [5.0, -2.0, 1.0]), split_v)
    to_product = placement
    if to_product is None:
        inv = np.linalg.inv(geom.similarity(3.0, rot, [5.0, -2.0, 1.0]))
        to_product = geom.similarity(0.2, np.eye(3), [0.0, 0.1, 0.0]) @ inv
    return TexturedMesh(vertices=recon, faces=split_f, uv=uv, texture=tex, placement=to_product,
                        dimensions_m=(0.4, 0.2, 0.1), coverage=1.0)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "Tea pot.glb"
    files = export.export_all(marked_box(), out, export.PRESETS["balanced"], name='Tea "pot" ü')
    return files


def _glb_json(path: str) -> dict:
    data = Path(path).read_bytes()
    magic, version, total = struct.unpack_from("<4sII", data, 0)
    assert magic == b"glTF" and version == 2 and total == len(data)
    length, kind = struct.unpack_from("<I4s", data, 12)
    assert kind == b"JSON"
    return json.loads(data[20:20 + length])


def test_glb_round_trip_is_in_product_frame(exported):
    import trimesh

    scene = trimesh.load(exported.glb)
    mesh = scene.to_geometry() if hasattr(scene, "to_geometry") else scene.dump(concatenate=True)
    lo, hi = mesh.bounds
    assert abs(lo[1]) < 1e-6  # resting on the floor
    assert abs(lo[0] + hi[0]) < 1e-6 and abs(lo[2] + hi[2]) < 1e-6  # centred in x and z
    assert np.allclose(hi - lo, (0.4, 0.2, 0.1), atol=1e-4)
    # The red marker is on the +Z side: sample the texture at the UVs of +Z-facing faces.
    tex = np.asarray(mesh.visual.material.baseColorTexture.convert("RGB"))
    fn = mesh.face_normals
    uv = mesh.visual.uv[mesh.faces].mean(axis=1)
    px = np.clip((uv[:, 0] * tex.shape[1]).astype(int), 0, tex.shape[1] - 1)
    py = np.clip(((1 - uv[:, 1]) * tex.shape[0]).astype(int), 0, tex.shape[0] - 1)  # trimesh flips v
    colours = tex[py, px].astype(int)
    red = (colours[:, 0] > 180) & (colours[:, 1] < 80)
    assert red[fn[:, 2] > 0.9].mean() > 0.9
    assert red[fn[:, 2] < 0.5].mean() < 0.05
    # Outward normals survive the placement (winding consistent with the normals).
    assert np.allclose(mesh.face_normals[fn[:, 1] > 0.9], [0, 1, 0], atol=1e-5)
    assert mesh.is_winding_consistent and mesh.volume > 0


def test_glb_passes_khronos_validator(exported):
    report = validate_glb(exported.glb)
    assert report["issues"]["numErrors"] == 0, errors_of(report)


def test_glb_validator_reports_problems(exported, tmp_path):
    """validate_glb must be able to fail: the same GLB claiming 10x the vertices its buffer holds
    is flagged, so the "0 errors" checks on our exports mean something."""
    data = Path(exported.glb).read_bytes()
    doc = _glb_json(exported.glb)
    length = struct.unpack_from("<I", data, 12)[0]
    position = doc["meshes"][0]["primitives"][0]["attributes"]["POSITION"]
    doc["accessors"][position]["count"] *= 10
    text = json.dumps(doc).encode()
    text += b" " * (-len(text) % 4)  # chunks are 4-byte aligned, JSON padded with spaces
    rest = data[20 + length:]  # the BIN chunk, unchanged
    body = struct.pack("<I4s", len(text), b"JSON") + text + rest
    bad = tmp_path / "bad.glb"
    bad.write_bytes(struct.pack("<4sII", b"glTF", 2, 12 + len(body)) + body)
    report = validate_glb(bad)
    assert report["issues"]["numErrors"] > 0
    assert any(e.startswith("ACCESSOR_TOO_LONG") and f"/accessors/{position}" in e for e in errors_of(report))


def test_glb_structure(exported):
    doc = _glb_json(exported.glb)
    assert doc["asset"]["generator"] == "Plinth"
    assert len(doc["materials"]) == 1 and len(doc["meshes"]) == 1
    pbr = doc["materials"][0]["pbrMetallicRoughness"]
    assert "baseColorTexture" in pbr and pbr["metallicFactor"] == 0
    assert doc["materials"][0]["doubleSided"] is False
    assert doc["nodes"][0]["name"] == 'Tea "pot" ü'
    attrs = doc["meshes"][0]["primitives"][0]["attributes"]
    assert set(attrs) == {"POSITION", "NORMAL", "TEXCOORD_0"}
    assert "min" in doc["accessors"][attrs["POSITION"]]
    s = exported.texture_size
    assert s == 256  # the texture as baked: no re-encode under the size cap
    assert exported.glb_bytes == Path(exported.glb).stat().st_size < 5e6
    assert exported.triangles == len(marked_box().faces)


def test_size_cap_reencodes_texture(tmp_path):
    tm = marked_box(size=2048, noise=True)  # noise does not compress: about 10 MB as JPEG
    cfg = replace(export.PRESETS["balanced"], max_bytes=1_500_000, usdz=False, obj=False, poster=False)
    files = export.export_all(tm, tmp_path / "noisy.glb", cfg, name="noisy")
    assert Path(files.glb).stat().st_size <= 1_500_000
    assert files.texture_size < 2048 and files.texture_size & (files.texture_size - 1) == 0
    assert validate_glb(files.glb)["issues"]["numErrors"] == 0


def test_a_cap_no_texture_size_can_meet_is_a_plain_error_and_writes_nothing(tmp_path):
    tm = marked_box(size=256)
    cfg = replace(export.PRESETS["balanced"], max_bytes=500, usdz=False, obj=False, poster=False)
    with pytest.raises(pipeline.CaptureError, match=r"cannot be made under 0.0005 MB; it needs at least 0\.\d\d MB"):
        export.export_all(tm, tmp_path / "tiny.glb", cfg, name="tiny")
    assert not list(tmp_path.iterdir())


def test_usdz_passes_usd_validators(exported):
    from pxr import Usd, UsdGeom

    assert Path(exported.usdz).name == "Tea pot.usdz"
    assert validate_usdz(exported.usdz) == []
    stage = Usd.Stage.Open(exported.usdz)
    assert UsdGeom.GetStageMetersPerUnit(stage) == 1.0
    assert UsdGeom.GetStageUpAxis(stage) == UsdGeom.Tokens.y
    assert stage.GetDefaultPrim().IsValid()
    meshes = [p for p in stage.Traverse() if p.IsA(UsdGeom.Mesh)]
    assert len(meshes) == 1
    pts = np.asarray(UsdGeom.Mesh(meshes[0]).GetPointsAttr().Get())
    assert np.allclose(pts.max(0) - pts.min(0), (0.4, 0.2, 0.1), atol=1e-4) and abs(pts[:, 1].min()) < 1e-6
    with zipfile.ZipFile(exported.usdz) as z:
        assert any(n.endswith(".jpg") or n.endswith(".png") for n in z.namelist())


def test_usdz_validator_reports_problems(tmp_path):
    """validate_usdz must be able to fail: a stage without metersPerUnit/upAxis is flagged."""
    from pxr import Usd, UsdGeom, UsdUtils

    bad = tmp_path / "bad.usda"
    stage = Usd.Stage.CreateNew(str(bad))
    UsdGeom.Mesh.Define(stage, "/Loose")
    stage.GetRootLayer().Save()
    usdz = tmp_path / "bad.usdz"
    assert UsdUtils.CreateNewUsdzPackage(str(bad), str(usdz))
    assert validate_usdz(usdz)


def test_obj_zip_contents(exported):
    with zipfile.ZipFile(exported.obj_zip) as z:
        assert set(z.namelist()) == {"model.obj", "model.mtl", "texture.jpg"}
        obj = z.read("model.obj").decode()
        assert "mtllib model.mtl" in obj and "map_Kd texture.jpg" in z.read("model.mtl").decode()
    v = np.array([list(map(float, line.split()[1:])) for line in obj.splitlines() if line.startswith("v ")])
    assert np.allclose(v.max(0) - v.min(0), (0.4, 0.2, 0.1), atol=1e-4)
    assert obj.count("\nf ") == exported.triangles


def test_poster_is_png_with_object(exported):
    from PIL import Image

    img = Image.open(exported.poster)
    assert img.format == "PNG" and img.size[0] == img.size[1] >= 800
    a = np.asarray(img.convert("RGB")).astype(int)
    corners = np.concatenate([a[:5, :5].reshape(-1, 3), a[-5:, -5:].reshape(-1, 3)])
    assert (corners > 245).all()  # white background
    obj = (np.abs(a - 255).sum(2) > 40)
    assert 0.05 < obj.mean() < 0.9
    reddish = (a[..., 0] > a[..., 1] + 60)
    assert reddish.sum() > 1000  # the front marker is visible from the 3/4 front view
    ys, xs = np.nonzero(obj)
    assert (xs.max() - xs.min()) > 0.6 * img.size[0]  # the object fills most of the frame


def test_writes_are_atomic_and_leave_no_temp_files(exported):
    folder = Path(exported.glb).parent
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(["Tea pot.glb", "Tea pot.usdz", "Tea pot.obj.zip", "Tea pot.poster.png"])


def test_mirroring_placement_keeps_outward_faces(tmp_path):
    import trimesh

    tm = marked_box()
    flip = np.diag([-1.0, 1.0, 1.0, 1.0]) @ tm.placement
    files = export.export_all(replace(tm, placement=flip), tmp_path / "m.glb",
                              replace(export.PRESETS["fast"], usdz=False, obj=False, poster=False), name="m")
    mesh = trimesh.load(files.glb, force="mesh")
    assert mesh.volume > 0

