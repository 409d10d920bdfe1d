"""Dense stage on a synthetic capture with exact ground truth.

The scene: a 1 x 0.6 x 1 box with a cup-shaped hole (radius 0.3, 0.35 deep) in its top, on a
textured floor, both painted with random 3D block noise; 20 cameras on two rings look at it. It is
rendered by sphere tracing here, then the whole capture is moved into a random similarity frame
(as SfM would give) before `reconstruct_dense` sees it.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from pipeline import geom
from pipeline.types import Camera, Poses
from tests.scenes import (
    floor_grid,
    intrinsics,
    look_at,
    mask,
    orbit_eye,
    photo,
    ring_rotations,
    sparse_poses,
)

BOX = np.array([0.5, 0.3, 0.5])  # half extents; the box spans y in [0, 0.6]
HOLE_R, HOLE_BOTTOM = 0.3, 0.25
W, H, F = 256, 192, 230.0


def _sdf(p):
    q = p - torch.tensor([0.0, 0.3, 0.0])
    d = q.abs() - torch.as_tensor(BOX, dtype=torch.float32)
    box = d.clamp_min(0).norm(dim=-1) + d.max(dim=-1).values.clamp_max(0)
    r = p[..., [0, 2]].norm(dim=-1)
    hole = torch.maximum(r - HOLE_R, HOLE_BOTTOM - p[..., 1])
    return torch.maximum(box, -hole)


def _render(R, t, tex_obj, tex_floor):
    """RGB (H, W, 3) uint8 and object mask (H, W) by sphere tracing object + floor (y = 0)."""
    v, u = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32), indexing="ij")
    d_cam = torch.stack([(u - (W - 1) / 2) / F, (v - (H - 1) / 2) / F, torch.ones_like(u)], dim=-1).reshape(-1, 3)
    Rt = torch.as_tensor(R, dtype=torch.float32)
    dirs = d_cam @ Rt
    dirs = dirs / dirs.norm(dim=-1, keepdim=True)
    eye = torch.as_tensor(-R.T @ t, dtype=torch.float32)
    tt = torch.full((dirs.shape[0],), 1.0)  # cameras are 2.6 from the target: nothing within 1.0
    for _ in range(70):
        p = eye + tt[:, None] * dirs
        d = torch.minimum(_sdf(p), p[:, 1].abs())
        tt = tt + d.clamp_min(1e-4)
    p = eye + tt[:, None] * dirs
    obj = (_sdf(p) < 2e-3) & (p[:, 1] > 1e-3)
    tex = torch.where(obj[:, None], _noise(tex_obj, p, 0.06), _noise(tex_floor, p, 0.09))
    hit = (torch.minimum(_sdf(p), p[:, 1].abs()) < 1e-2)[:, None]
    rgb = torch.where(hit, tex, torch.tensor([0.6, 0.7, 0.9]))
    return (rgb.reshape(H, W, 3).numpy() * 255).astype(np.uint8), obj.reshape(H, W).numpy()


def _noise(table, p, cell):
    idx = torch.floor(p / cell).long() % table.shape[0]
    return table[idx[:, 0], idx[:, 1], idx[:, 2]]


def _random_frame(rng) -> np.ndarray:
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return geom.similarity(float(rng.uniform(0.2, 5.0)), q, rng.normal(size=3) * 2)


@pytest.fixture(scope="module")
def capture():
    rng = np.random.default_rng(3)
    gen = torch.Generator().manual_seed(3)
    tex_obj = torch.rand(64, 64, 64, 3, generator=gen) * 0.8 + 0.1
    tex_floor = torch.rand(64, 64, 64, 3, generator=gen) * 0.5 + 0.25
    sim = _random_frame(rng)
    s, rot = np.cbrt(np.linalg.det(sim[:3, :3])), None
    rot = sim[:3, :3] / s
    photos, masks, cams = [], [], []
    target = np.array([0.0, 0.3, 0.0])
    for i in range(20):
        elev = np.radians(35 if i % 2 == 0 else 58)
        az = np.radians(i * 18.0)
        R, t = look_at(orbit_eye(az, elev, 2.6, target), target)
        rgb, m = _render(R, t, tex_obj, tex_floor)
        if i in (3, 11):  # two segmenter mistakes: a blob of floor glued on, a bite taken out
            m = m.copy()
            m[100:140, 20:70] = True if i == 3 else m[100:140, 20:70]
            m[60:90, 110:150] = False if i == 11 else m[60:90, 110:150]
        photos.append(photo(rgb, i, f"{i}.png"))
        masks.append(mask(m, 0.7))
        cams.append(Camera(intrinsics(F, W, H), R @ rot.T, s * t - R @ rot.T @ sim[:3, 3], W, H))
    ang = rng.uniform(0, 2 * np.pi, 1500)
    rad = np.sqrt(rng.uniform(0.5, 4.0, 1500))
    floor = np.stack([rad * np.cos(ang), np.zeros(1500), rad * np.sin(ang)], axis=1)
    top = np.stack([rng.uniform(-0.5, 0.5, 300), np.full(300, 0.6), rng.uniform(-0.5, 0.5, 300)], axis=1)
    top = top[np.hypot(top[:, 0], top[:, 2]) > HOLE_R]
    pts = geom.apply(sim, np.concatenate([floor, top]))
    return photos, masks, sparse_poses(cams, pts, 0.3), sim


@pytest.fixture(scope="module")
def result(capture, device):
    from pipeline import dense

    photos, masks, poses, sim = capture
    cfg = replace(dense.PRESETS["fast"], grid=96)
    shape, new_masks = dense.reconstruct_dense(photos, masks, poses, cfg, device=device)
    verts = geom.apply(np.linalg.inv(sim), shape.vertices)  # back to the scene frame (y up, metres)
    return shape, new_masks, verts


def _truth_points(n: int) -> np.ndarray:
    import trimesh

    box = trimesh.creation.box(extents=2 * BOX)
    box.apply_translation([0, 0.3, 0])
    cyl = trimesh.creation.cylinder(radius=HOLE_R, height=1.0, sections=96)
    cyl.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, [1, 0, 0]))
    cyl.apply_translation([0, HOLE_BOTTOM + 0.5, 0])
    return box.difference(cyl).sample(n)


def test_cup_concavity_recovered_and_surface_accurate(result, capture, device):
    import trimesh

    from pipeline import dense

    shape, _, verts = result
    mesh = trimesh.Trimesh(verts, shape.faces, process=False)
    assert mesh.is_watertight and mesh.volume > 0  # closed, normals outward
    # Points well inside the cup must be empty; a silhouette-only hull fills them.
    q = np.array([[x, y, z] for y in (0.38, 0.5) for x, z in ((0, 0), (0.12, 0), (0, -0.12), (-0.1, 0.08))])
    assert not mesh.contains(q).any()
    photos, masks, poses, sim = capture
    hull_cfg = replace(dense.PRESETS["fast"], grid=64, photo_consistency=False)
    hull, _ = dense.reconstruct_dense(photos, masks, poses, hull_cfg, device=device)
    hull_mesh = trimesh.Trimesh(geom.apply(np.linalg.inv(sim), hull.vertices), hull.faces, process=False)
    assert hull_mesh.contains(q).mean() > 0.7  # so the check above is not trivially true
    # F-score against the analytic surface at 2% of the bbox diagonal (1.54 m): 3 cm.
    from scipy.spatial import cKDTree

    gt, pred = _truth_points(20000), mesh.sample(20000)
    d1, d2 = cKDTree(gt).query(pred)[0], cKDTree(pred).query(gt)[0]
    tau = 0.02 * np.linalg.norm(2 * BOX)
    p, r = (d1 < tau).mean(), (d2 < tau).mean()
    fscore = 2 * p * r / (p + r)
    assert fscore > 0.85, (p, r)
    assert (d1.mean() + d2.mean()) / 2 < 0.025  # 1.6% of the diagonal (a grid-96 voxel is 1.3 cm)


def test_gravity_and_front_recovered(result, capture):
    shape, _, _ = result
    photos, masks, poses, sim = capture
    rot = sim[:3, :3] / np.cbrt(np.linalg.det(sim[:3, :3]))
    true_up = rot @ np.array([0.0, 1.0, 0.0])
    assert np.degrees(np.arccos(np.clip(shape.up @ true_up, -1, 1))) < 3.0
    cam0 = poses.cameras[0].center
    centre = geom.apply(sim, np.array([[0.0, 0.3, 0.0]]))[0]
    f = cam0 - centre
    f -= (f @ true_up) * true_up
    f /= np.linalg.norm(f)
    assert np.degrees(np.arccos(np.clip(shape.front @ f, -1, 1))) < 5.0
    assert abs(shape.front @ shape.up) < 1e-6
    assert shape.kind == "scan" and shape.metres_per_unit is None
    assert {"front", "back", "left", "right", "top"} <= set(shape.seen_sides) and "bottom" not in shape.seen_sides


def test_floor_not_in_mesh(result):
    shape, _, verts = result
    assert abs(verts[:, 1].min()) < 0.02  # stands on the table plane, not below it
    low = verts[verts[:, 1] < 0.03]
    # No slab of table: whatever touches the floor lies within the box's footprint.
    assert np.abs(low[:, [0, 2]]).max() < 0.5 + 0.04
    assert verts[:, 1].max() < 0.6 + 0.03


def test_carved_masks_fix_bad_views(result, capture):
    shape, new_masks, _ = result
    photos, masks, poses, sim = capture
    assert len(new_masks) == len(photos) and all(m.method == "carved" for m in new_masks)
    # The floor blob glued onto view 3 and the bite out of view 11 are gone after carving.
    assert new_masks[3].mask[100:140, 20:70].mean() < 0.2
    good = masks[0].mask
    for i in (3, 11):
        ref = _rerender_mask(capture, i)
        iou = (new_masks[i].mask & ref).sum() / (new_masks[i].mask | ref).sum()
        assert iou > 0.9
    assert (new_masks[0].mask & good).sum() / (new_masks[0].mask | good).sum() > 0.9


def _rerender_mask(capture, i):
    photos, masks, poses, sim = capture
    cam = poses.cameras[i]
    rot = sim[:3, :3] / np.cbrt(np.linalg.det(sim[:3, :3]))
    s = np.cbrt(np.linalg.det(sim[:3, :3]))
    R = cam.R @ rot
    t = (cam.t + cam.R @ sim[:3, 3]) / s
    table = torch.zeros(64, 64, 64, 3)
    _, m = _render(R, t, table, table)
    return m


def test_bad_input_is_reported(device):
    from pipeline import dense
    from pipeline.errors import CaptureError

    blank = photo(np.zeros((8, 8, 3), np.uint8), name="a.jpg")
    empty = mask(np.zeros((8, 8), bool), 0.1)
    poses = Poses((None, None, None), np.zeros((0, 3)), np.zeros((0, 3), np.uint8), (), 0.0)
    with pytest.raises(CaptureError):
        dense.reconstruct_dense([blank] * 3, [empty] * 3, poses, dense.PRESETS["fast"], device=device)


def test_few_photos_whose_outlines_disagree_fail_with_advice(capture, device):
    """Ten photos whose outlines point at different places (photos placed wrongly): a clear
    failure with advice, not a model shaped from the middle of the photos."""
    from pipeline import dense
    from pipeline.errors import CaptureError

    photos, masks, poses, _ = capture
    keep = list(range(0, 20, 2))
    yy, xx = np.mgrid[0:H, 0:W]
    spots = [(W * (0.15 + 0.7 * ((k * 7) % 10) / 9), H * (0.2 + 0.6 * ((k * 3) % 10) / 9)) for k in range(len(keep))]
    moved = [mask(np.hypot(xx - x, yy - y) < 0.08 * W, 0.7) for x, y in spots]
    few = Poses(tuple(poses.cameras[i] for i in keep), poses.points, poses.point_colors, poses.point_views, 0.3)
    with pytest.raises(CaptureError) as err:
        dense.reconstruct_dense([photos[i] for i in keep], moved, few, replace(dense.PRESETS["fast"], grid=64),
                                device=device)
    assert "10 photos that were placed" in err.value.message and "20-80 photos" in err.value.advice


def test_front_comes_from_photo_0_even_when_it_could_not_be_placed():
    """Photo 0 decides the front; unplaced, its viewing direction (from its pairs) still does."""
    from pipeline.dense.frame import front_direction

    Rs, Cs = ring_rotations(n=12, height=0.0)
    K = np.array([[800.0, 0, 512], [0, 800.0, 384], [0, 0, 1]])
    cams = [Camera(K=K, R=R, t=-R @ c, width=1024, height=768) for R, c in zip(Rs, Cs)]
    up = np.array([0.0, 1.0, 0.0])
    placed = front_direction(cams, np.zeros(3), up)
    assert np.allclose(placed, Cs[0] / np.linalg.norm(Cs[0]), atol=1e-9)
    unplaced = [None] + cams[1:]
    assert np.allclose(front_direction(unplaced, np.zeros(3), up, first_axis=Rs[0][2]), placed, atol=1e-9)
    # Without the axis: the first placed photo (30 degrees round the ring), as before.
    fallback = front_direction(unplaced, np.zeros(3), up)
    assert np.degrees(np.arccos(np.clip(fallback @ placed, -1, 1))) == pytest.approx(30.0, abs=1e-6)


def test_thin_rod_is_kept_in_the_object_box(device):
    """A rod thinner than the coarse search voxels (an antenna) stays inside the fine grid's box."""
    import trimesh

    from pipeline import dense
    from pipeline.dense.hull import render_silhouettes

    body = trimesh.creation.icosphere(subdivisions=3, radius=0.1)
    body.apply_translation([0, 0.1, 0])
    rod = trimesh.creation.cylinder(radius=0.003, segment=[[0, 0.18, 0], [0, 0.32, 0]], sections=12)
    cams = []
    for k in range(24):
        az, el = 2 * np.pi * k / 24, np.radians(20 + 15 * (k % 2))
        R, t = look_at(orbit_eye(az, el, 0.9, [0, 0.12, 0]), np.array([0.0, 0.12, 0.0]))
        cams.append(Camera(intrinsics(500.0, 640, 480), R, t, 640, 480))
    # Exact silhouettes of the union: each part drawn, then merged.
    sils = [a | b for a, b in zip(render_silhouettes(body.vertices, body.faces, cams),
                                   render_silhouettes(rod.vertices, rod.faces, cams))]
    assert all(s.any() for s in sils)
    photos = [photo(np.full((480, 640, 3), 128, np.uint8), i) for i in range(24)]
    masks = [mask(s, 0.9) for s in sils]
    poses = sparse_poses(cams, floor_grid(0.6, 25), 0.5)
    cfg = replace(dense.PRESETS["fast"], photo_consistency=False, refine=False)
    shape, _ = dense.reconstruct_dense(photos, masks, poses, cfg, device=device)
    top = float((shape.vertices @ shape.up).max() - (shape.vertices @ shape.up).min())
    assert top > 0.30, f"model is {top:.3f} m tall; the rod reaches 0.32 m"


def test_hull_snap_lets_one_view_trim_the_surface_but_not_bite_into_the_item(device):
    """The hull rule on planted outline distances: 6 views, one bad view allowed."""

    from pipeline.dense.hull import Views, hull_field

    K = intrinsics(500.0, 128, 128)
    cams = []
    for k in range(6):
        az = 2 * np.pi * k / 6
        R, t = look_at(np.array([np.sin(az), 0.3, np.cos(az)]), np.zeros(3))
        cams.append(Camera(K, R, t, 128, 128))
    views = Views(cams, device)
    point = torch.zeros((1, 3), device=device)

    def value(first_px: float, others_px: float, snap_px: float = 3.0, allowed: float = 1.0) -> float:
        dist = torch.full((6, 1, 128, 128), others_px, device=device)
        dist[0] = first_px  # pixels outside (+) or inside (-) view 0's outline
        snap_maps = torch.full((6, 1, 128, 128), allowed, device=device)
        return float(hull_field(views, dist, 1.0, point, 0.2, 1, 1.0, 1024, snap_px, snap_maps)[0])

    assert value(2.0, -1.0, snap_px=0.0) < 0  # the vote alone keeps a point only one view rejects
    assert value(2.0, -1.0) > 0  # ... near the surface, one view 2 px off trims it
    assert value(2.0, -20.0) < 0  # deep inside the item no single view carves
    assert value(10.0, -1.0) < 0  # a 10 px bite in one mask is a segmentation error: kept
    assert value(2.0, -1.0, allowed=0.0) < 0  # where that view may not snap: kept
