"""SfM stage: pycolmap -> our Camera conversion, mapping on synthetic matches, one small real run.

The stage's helpers (pycolmap conversion, feature regions, the unplaced-photo wording) are tested
where they live, pipeline.sfm.stage; pipeline.sfm exports only the stage itself.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pycolmap  # a hard dependency: a missing or broken wheel fails here, it does not skip
import pytest

from pipeline import geom, sfm
from pipeline.errors import CaptureError, InputError
from pipeline.sfm import stage as sfm_stage
from pipeline.types import Photo, Unplaced
from tests.scenes import photo


def _synthetic(model: str, params: list[float], frames: int = 8, db_path: Path | None = None):
    opts = pycolmap.SyntheticDatasetOptions()
    opts.num_rigs = 1
    opts.num_cameras_per_rig = 1
    opts.num_frames_per_rig = frames
    opts.num_points3D = 400
    opts.camera_model_id = getattr(pycolmap.CameraModelId, model)
    opts.camera_params = params
    opts.camera_width, opts.camera_height = 1024, 768
    pycolmap.set_random_seed(3)
    if db_path is None:
        return pycolmap.synthesize_dataset(opts)
    with pycolmap.Database.open(db_path) as db:
        return pycolmap.synthesize_dataset(opts, db)


def _names(rec) -> dict[str, int]:
    return {img.name: i for i, img in enumerate(sorted(rec.images.values(), key=lambda im: im.name))}


def _rot_err_deg(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip((np.trace(a @ b.T) - 1) / 2, -1, 1))))


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_conversion_projects_like_pycolmap(scale):
    """Our K/R/t (pixel centres at integers, working size) reproduce COLMAP's projections."""
    rec = _synthetic("PINHOLE", [900.0, 880.0, 500.0, 390.0])
    names = _names(rec)
    # COLMAP ran on images `scale` times the working size, so working size is 1024/scale.
    size = (round(1024 / scale), round(768 / scale))
    poses = sfm_stage.poses_from_reconstruction(rec, names, [size] * len(names), scale=scale)
    assert poses.placed == len(names) == 8
    assert len(poses.points) == rec.num_points3D() and poses.point_colors.dtype == np.uint8
    xyz = np.array([p.xyz for p in rec.points3D.values()])
    for img in rec.images.values():
        cam = poses.cameras[names[img.name]]
        assert (cam.width, cam.height) == size
        ours, z = geom.project(cam, xyz)
        theirs = np.array([img.project_point(x) for x in xyz])
        in_front = z > 0
        assert in_front.sum() > 100
        # COLMAP pixel (u, v) on the small image is corner-based: ours = (u / scale) - 0.5.
        np.testing.assert_allclose(ours[in_front], theirs[in_front] / scale - 0.5, atol=1e-6)
    # point_views lists exactly the photos in each track
    for views, p in zip(poses.point_views, rec.points3D.values()):
        want = sorted(names[rec.images[e.image_id].name] for e in p.track.elements)
        assert views.tolist() == sorted(set(want))


def test_mapping_recovers_synthetic_poses():
    """Our mapper settings recover known poses from a synthetic match database (up to similarity)."""
    from pipeline.sfm import colmap

    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp)
        truth = _synthetic("SIMPLE_RADIAL", [1000.0, 512.0, 384.0, 0.02], frames=10, db_path=ws / "db.db")
        (ws / "images").mkdir()
        cfg = sfm.PRESETS["fast"]
        rec = colmap.map_images(ws / "db.db", ws / "images", ws / "sparse", 10, cfg, lambda: None,
                                pycolmap.CancellationToken())
        assert rec is not None and rec.num_reg_images() == 10
        colmap.refit_pinhole(rec, 50)
    names = _names(truth)
    est = sfm_stage.poses_from_reconstruction(rec, names, [(1024, 768)] * 10)
    ref = sfm_stage.poses_from_reconstruction(truth, names, [(1024, 768)] * 10)
    ce = np.array([c.center for c in est.cameras])
    cr = np.array([c.center for c in ref.cameras])
    s, rot, t = geom.umeyama(ce, cr)
    spread = np.linalg.norm(cr - cr.mean(0), axis=1).mean()
    assert np.abs(s * ce @ rot.T + t - cr).max() < 0.02 * spread
    for a, b in zip(est.cameras, ref.cameras):
        assert _rot_err_deg(a.R @ rot.T, b.R) < 0.5
        # pinhole re-fit absorbed k=0.02: focal stays close to the truth, no distortion left
        assert abs(a.K[0, 0] / 1000.0 - 1) < 0.05


def _photo(i: int, rgb: np.ndarray, focal: float | None = None) -> Photo:
    return photo(rgb, i, f"IMG_{i:04d}.jpg", focal_px=focal)


def test_unusable_photos_raise_capture_error_with_advice():
    rng = np.random.default_rng(0)
    photos = [_photo(0, np.full((240, 320, 3), 128, np.uint8)), _photo(1, np.full((240, 320, 3), 30, np.uint8))]
    photos += [_photo(i, rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)) for i in (2, 3)]
    with pytest.raises(CaptureError) as info:
        sfm.estimate_poses(photos, replace(sfm.PRESETS["fast"], retry_hard=False))
    err = info.value
    assert err.stage == "poses" and "0 of 4" in err.message
    assert "Re-shoot" in err.advice and "\n" not in str(err)


def test_bad_input_is_input_error():
    img = np.zeros((240, 320, 3), np.uint8)
    with pytest.raises(InputError):
        sfm.estimate_poses([_photo(0, img), _photo(1, img)], sfm.PRESETS["fast"])
    with pytest.raises(InputError):
        sfm.estimate_poses([_photo(0, img), _photo(1, img), _photo(5, img)], sfm.PRESETS["fast"])


def test_why_unplaced_wording():
    from pipeline.sfm.colmap import MatchStats

    img = np.zeros((8, 8, 3), np.uint8)
    photos = [_photo(i, img) for i in range(5)]
    stats = MatchStats(
        keypoints={0: 3000, 1: 3000, 2: 40, 3: 2900, 4: 3100},
        inliers={(0, 1): 400, (0, 3): 5, (1, 4): 45},
    )
    left = sfm_stage._why_unplaced(photos, {0, 1}, stats)
    assert [(x.index, x.reason) for x in left] == [
        (2, Unplaced.NO_DETAIL), (3, Unplaced.OTHER_SCENE), (4, Unplaced.LITTLE_OVERLAP)]
    lines = [x.message for x in left]
    assert lines[0].startswith("IMG_0002.jpg ") and "blurry" in lines[0]
    assert "different object" in lines[1]
    assert "overlaps too little" in lines[2]
    stats = MatchStats(keypoints={i: 3000 for i in range(5)}, inliers={(0, 1): 400, (2, 3): 300, (3, 4): 250})
    assert {x.reason for x in sfm_stage._why_unplaced(photos, {0, 1}, stats)} == {Unplaced.OTHER_GROUP}


@pytest.mark.slow
def test_small_real_capture_is_placed_accurately(bench):
    """10 neighbouring bench views (three rings, ~90 deg of the walk): all placed, rotations right."""
    from pipeline import ingest

    folder = bench / "multiview" / "waterbottle"
    frames = json.loads((folder / "cameras.json").read_text())["frames"]
    pick = [0, 1, 2, 12, 13, 14, 24, 25, 26, 35]
    photos = ingest.load_photos([folder / frames[i]["file"] for i in pick], ingest.PRESETS["fast"]).photos
    poses = sfm.estimate_poses(photos, sfm.PRESETS["fast"])
    assert poses.placed == len(pick), poses.failures
    assert poses.reprojection_error_px < 1.5
    centres = np.array([c.center for c in poses.cameras])
    gt_r = [np.array(frames[i]["R"]) for i in pick]
    gt_c = np.array([-r.T @ np.array(frames[i]["t"]) for r, i in zip(gt_r, pick)])
    s, rot, t = geom.umeyama(centres, gt_c)
    spread = np.linalg.norm(gt_c - gt_c.mean(0), axis=1).mean()
    assert np.linalg.norm(s * centres @ rot.T + t - gt_c, axis=1).max() < 0.1 * spread
    assert max(_rot_err_deg(c.R @ rot.T, r) for c, r in zip(poses.cameras, gt_r)) < 2.0
    assert abs(np.median([c.K[0, 0] for c in poses.cameras]) / frames[0]["K"][0][0] - 1) < 0.03


def test_feature_regions_follow_the_object_mask():
    """A mask gives its bbox grown by `mask_grow`; a missing or empty mask falls back to None."""
    from pipeline.types import Mask

    photos = tuple(_photo(i, np.zeros((100, 200, 3), np.uint8)) for i in range(3))
    obj = np.zeros((100, 200), bool)
    obj[40:60, 80:120] = True  # 40 wide, 20 high
    empty = Mask(np.zeros((100, 200), bool), 0.0, False, "grabcut")
    regions = sfm_stage._regions(photos, [Mask(obj, 1.0, False, "grabcut"), None, empty], grow=0.5)
    ys, xs = np.nonzero(regions[0])
    assert (xs.min(), xs.max() + 1, ys.min(), ys.max() + 1) == (70, 130, 35, 65)
    assert regions[1] is None and regions[2] is None
    assert sfm_stage._regions(photos, None, 0.5) is None
    with pytest.raises(InputError):
        sfm_stage._regions(photos, [None], 0.5)
