"""Mesh stage: cleanup, decimation under budget, and the placement contract."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from pipeline import geom, mesh
from pipeline.errors import CaptureError, InputError
from pipeline.types import KnownSize, Shape

CFG = mesh.PRESETS["balanced"]


def _shape(v, f, up=(0, 1, 0), front=(0, 0, 1), kind="scan", **kw) -> Shape:
    return Shape(
        vertices=np.asarray(v, float),
        faces=np.asarray(f, np.int64),
        views=(None,),
        up=np.asarray(up, float),
        front=np.asarray(front, float),
        kind=kind,
        kind_reason="test",
        **kw,
    )


def _random_rotation(rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def _noisy_sphere_with_floater_and_hole(rng):
    s = trimesh.creation.icosphere(subdivisions=6, radius=1.5)  # 81,920 faces
    v = s.vertices + rng.normal(0, 0.004, s.vertices.shape)
    floater = trimesh.creation.icosphere(subdivisions=1, radius=0.05)
    v = np.concatenate([v, floater.vertices + [4.0, 0, 0]])
    f = np.concatenate([s.faces, floater.faces + len(s.vertices)])
    hole = np.linalg.norm(v[f].mean(1) - [0, 0, 1.5], axis=1) < 0.08  # a small puncture
    f = f[~hole]
    # a duplicated vertex block (as a marching-cubes seam would leave) and a repeated-vertex face
    dup = len(v)
    v = np.concatenate([v, v[f[:10, 0]]])
    f = f.copy()
    f[:10, 0] = dup + np.arange(10)
    f = np.concatenate([f, [[0, 0, 1]]])
    return v, f, int(hole.sum())


def test_sphere_is_cleaned_closed_and_decimated_under_budget():
    rng = np.random.default_rng(1)
    v, f, holed = _noisy_sphere_with_floater_and_hole(rng)
    assert holed > 0
    assert not trimesh.Trimesh(v, f, process=False).is_watertight
    cfg = mesh.MeshConfig(target_triangles=8_000, max_triangles=100_000)
    out = mesh.finish_mesh(_shape(v, f), KnownSize("height", 0.3), "floor", cfg)
    tm = trimesh.Trimesh(out.vertices, out.faces, process=False)
    assert len(out.faces) <= 8_000
    assert len(out.faces) >= 6_000  # aimed at the target, not collapsed far below it
    assert tm.is_watertight and tm.is_winding_consistent
    assert tm.volume == pytest.approx(4 / 3 * np.pi * 1.5**3, rel=0.03)
    assert len(tm.split(only_watertight=False)) == 1  # the floater is gone
    assert np.linalg.norm(out.vertices, axis=1).max() < 1.6
    text = " ".join(out.notes)
    assert "floating" in text and "hole" in text and "Simplified" in text


def test_small_piece_beside_the_body_is_kept_but_a_far_floater_is_not():
    """A thin part can reach the mesh stage as bits just off the body (a handle's dotted line)."""
    from pipeline.mesh.repair import keep_big_pieces

    body = trimesh.creation.icosphere(subdivisions=4, radius=1.0)
    bit = trimesh.creation.icosphere(subdivisions=1, radius=0.02)
    near = bit.vertices + [1.03, 0, 0]  # 1 cm gap at 1 m radius: 0.35% of the diagonal
    far = bit.vertices + [1.5, 0, 0]
    v = np.concatenate([body.vertices, near, far])
    n, m = len(body.vertices), len(bit.vertices)
    f = np.concatenate([body.faces, bit.faces + n, bit.faces + n + m])
    v2, f2, dropped = keep_big_pieces(v, f, 0.02)
    assert dropped == 1
    assert v2[:, 0].max() == pytest.approx(1.05, abs=1e-6)  # the near bit, not the far one (1.52)


def test_single_photo_shapes_aim_lower_than_scans():
    s = trimesh.creation.icosphere(subdivisions=6)
    photo = mesh.finish_mesh(_shape(s.vertices, s.faces, kind="round"), None, "floor", CFG)
    scan = mesh.finish_mesh(_shape(s.vertices, s.faces, kind="scan"), None, "floor", CFG)
    assert 0.8 * CFG.photo_target_triangles <= len(photo.faces) <= CFG.photo_target_triangles
    assert 0.8 * CFG.target_triangles <= len(scan.faces) <= CFG.target_triangles
    for out in (photo, scan):
        assert trimesh.Trimesh(out.vertices, out.faces, process=False).is_watertight


def test_scan_cut_flat_at_the_table_is_closed():
    s = trimesh.creation.icosphere(subdivisions=5)
    keep = s.vertices[s.faces].mean(1)[:, 1] > -0.6  # a big planar opening at the bottom
    out = mesh.finish_mesh(_shape(s.vertices, s.faces[keep]), None, "floor", CFG)
    tm = trimesh.Trimesh(out.vertices, out.faces, process=False)
    assert tm.is_watertight and tm.volume > 0
    assert "hole" in " ".join(out.notes)


def test_ragged_big_opening_is_left_open_and_flagged():
    s = trimesh.creation.icosphere(subdivisions=5)
    c = s.vertices[s.faces].mean(1)
    keep = c[:, 1] + 0.3 * np.sin(7 * np.arctan2(c[:, 2], c[:, 0])) < 0.2  # a wavy, non-planar rim
    out = mesh.finish_mesh(_shape(s.vertices, s.faces[keep]), None, "floor", CFG)
    assert not trimesh.Trimesh(out.vertices, out.faces, process=False).is_watertight
    assert "not fully closed" in " ".join(out.notes)


def test_inside_out_mesh_is_turned_outward():
    s = trimesh.creation.box(extents=(1, 2, 3))
    out = mesh.finish_mesh(_shape(s.vertices, s.faces[:, ::-1]), None, "floor", CFG)
    assert trimesh.Trimesh(out.vertices, out.faces, process=False).volume == pytest.approx(6.0)


def test_budget_is_a_hard_cap_below_the_target():
    s = trimesh.creation.icosphere(subdivisions=5)
    cfg = mesh.MeshConfig(target_triangles=40_000, max_triangles=1_000)
    out = mesh.finish_mesh(_shape(s.vertices, s.faces), None, "floor", cfg)
    assert len(out.faces) <= 1_000
    assert trimesh.Trimesh(out.vertices, out.faces, process=False).is_watertight


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("axis", ["height", "width", "depth"])
def test_placement_contract_for_random_frames(seed, axis):
    rng = np.random.default_rng(seed)
    extents = np.array([0.7, 1.9, 1.3]) * rng.uniform(0.5, 2.0)  # product-frame box w, h, d
    box = trimesh.creation.box(extents=extents)
    q = _random_rotation(rng)  # product -> reconstruction frame
    scale = rng.uniform(0.01, 50.0)
    shift = rng.normal(0, 10, 3)
    v = scale * box.vertices @ q.T + shift
    up, front = q @ [0, 1, 0], q @ [0, 0, 1]
    metres = rng.uniform(0.05, 3.0)
    out = mesh.finish_mesh(_shape(v, box.faces, up=up, front=front), KnownSize(axis, metres), "floor", CFG)

    p = geom.apply(out.placement, out.vertices)
    lo, hi = p.min(0), p.max(0)
    assert lo[1] == pytest.approx(0.0, abs=1e-6)
    assert (lo[0] + hi[0]) / 2 == pytest.approx(0.0, abs=1e-6)
    assert (lo[2] + hi[2]) / 2 == pytest.approx(0.0, abs=1e-6)
    k = {"width": 0, "height": 1, "depth": 2}[axis]
    assert hi[k] - lo[k] == pytest.approx(metres, rel=1e-9)
    # the right axes end up where they belong: the product bbox is the box's own extents, scaled
    assert hi - lo == pytest.approx(extents * metres / extents[k], rel=1e-9)
    assert out.dimensions_m == pytest.approx(tuple(hi - lo), rel=1e-9)
    rot = out.placement[:3, :3] / np.linalg.norm(out.placement[:3, 0])
    assert rot @ up == pytest.approx([0, 1, 0], abs=1e-9)
    assert rot @ front == pytest.approx([0, 0, 1], abs=1e-9)
    assert np.linalg.det(rot) == pytest.approx(1.0)  # a rotation, never a mirror
    assert axis in out.scale_source
    # the stage leaves the vertices in the reconstruction frame (export applies the placement)
    assert np.abs(out.vertices - shift).max() > 0 and np.ptp(out.vertices, 0).max() > 0.5 * scale


def test_wall_placement_puts_the_back_on_the_wall_plane():
    box = trimesh.creation.box(extents=(2.0, 1.0, 0.1))
    out = mesh.finish_mesh(_shape(box.vertices + [5, 5, 5], box.faces), KnownSize("width", 0.8), "wall", CFG)
    p = geom.apply(out.placement, out.vertices)
    assert p[:, 2].min() == pytest.approx(0.0, abs=1e-9)  # back on the wall, model in front (+Z)
    assert p[:, 2].max() == pytest.approx(0.04)
    assert p[:, 1].min() == pytest.approx(0.0, abs=1e-9)
    assert (p[:, 0].min() + p[:, 0].max()) / 2 == pytest.approx(0.0, abs=1e-9)
    assert out.dimensions_m == pytest.approx((0.8, 0.4, 0.04))


def test_no_size_uses_the_kind_default_and_says_so():
    box = trimesh.creation.box(extents=(1.0, 3.0, 2.0))
    out = mesh.finish_mesh(_shape(box.vertices, box.faces, kind="revolve", default_size_m=0.3), None, "floor", CFG)
    assert max(out.dimensions_m) == pytest.approx(0.3)
    assert out.dimensions_m[1] == pytest.approx(0.3)  # height is the largest side here
    assert "no size given" in out.scale_source and "30 cm tall" in out.scale_source
    assert out.kind == "revolve"


def test_known_metric_scale_is_used_when_no_size_is_given():
    box = trimesh.creation.box(extents=(1.0, 3.0, 2.0))
    out = mesh.finish_mesh(_shape(box.vertices, box.faces, metres_per_unit=0.1), None, "floor", CFG)
    assert out.dimensions_m == pytest.approx((0.1, 0.3, 0.2))
    assert "no size" not in out.scale_source


def test_bad_inputs():
    box = trimesh.creation.box()
    with pytest.raises(CaptureError):
        mesh.finish_mesh(_shape(box.vertices, np.zeros((0, 3))), None, "floor", CFG)
    flat = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0.0]])
    with pytest.raises(InputError):  # a model with no depth cannot be sized by its depth
        mesh.finish_mesh(_shape(flat, [[0, 1, 2]]), KnownSize("depth", 0.1), "floor", CFG)
    with pytest.raises(InputError):
        mesh.finish_mesh(_shape(box.vertices, box.faces), None, "ceiling", CFG)
