"""pycolmap databases and models, read and edited for the SfM stage's outlier checks.

Only `pipeline.sfm.place` imports this module. Photo indices travel in image names
(`colmap.image_name`); everything returned here is numpy.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from .colmap import index_from_name

if TYPE_CHECKING:  # pragma: no cover
    import pycolmap


def save(rec: "pycolmap.Reconstruction", folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rec.write(folder)
    return folder


_POSE_MATCHES = 200  # matches per pair the relative rotation is re-estimated from


def pair_poses(db_path: Path, threads: int = 1) -> dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]:
    """Per verified pair of photo indices (i < j), the relative pose camera i -> camera j
    (R (3, 3), unit t (3,)), re-estimated from its inlier matches with a 5-point essential matrix."""
    import pycolmap

    from .filter import relative_pose

    with pycolmap.Database.open(db_path) as db:
        images = {img.image_id: img for img in db.read_all_images()}
        Ks = {c.camera_id: np.asarray(c.calibration_matrix(), float) for c in db.read_all_cameras()}
        keypoints = {i: db.read_keypoints(i)[:, :2] for i in images}
        pair_ids, geometries = db.read_two_view_geometries()

    def one(pid, geom):
        a, b = pycolmap.pair_id_to_image_pair(pid)
        m = np.asarray(geom.inlier_matches)
        if len(m) < 15:
            return None
        if len(m) > _POSE_MATCHES:  # verified inliers: a spread-out few hundred fix the rotation as well
            m = m[np.linspace(0, len(m) - 1, _POSE_MATCHES).astype(int)]
        pose = relative_pose(
            keypoints[a][m[:, 0]], keypoints[b][m[:, 1]], Ks[images[a].camera_id], Ks[images[b].camera_id]
        )
        if pose is None:
            return None
        R, t = pose
        i, j = index_from_name(images[a].name), index_from_name(images[b].name)
        return ((i, j), (R, t)) if i < j else ((j, i), (R.T, -R.T @ t))

    # OpenCV's RANSAC lets go of the GIL: one thread per core (36 photos, ~300 pairs: 7.2 s alone).
    with ThreadPoolExecutor(max_workers=threads) as pool:
        out = dict(found for found in pool.map(one, pair_ids, geometries) if found is not None)
    return out


def epipolar_inliers(
    rec: "pycolmap.Reconstruction", db_path: Path, max_px: float
) -> dict[tuple[int, int], np.ndarray]:
    """Per verified pair of placed photos (i, j), its inlier matches (M, 2) that agree with the
    placed cameras within `max_px` (Sampson distance), in the database's image order."""
    import pycolmap

    from .filter import fundamental, sampson_px

    cams = {}
    for image_id, img in rec.images.items():
        if img.has_pose:
            pose = img.cam_from_world()
            cams[img.name] = (
                np.asarray(img.camera.calibration_matrix(), float),
                np.asarray(pose.rotation.matrix(), float),
                np.asarray(pose.translation, float),
            )
    out: dict[tuple[int, int], np.ndarray] = {}
    with pycolmap.Database.open(db_path) as db:
        images = {img.image_id: img for img in db.read_all_images()}
        keypoints = {i: db.read_keypoints(i)[:, :2] for i in images if images[i].name in cams}
        pair_ids, geometries = db.read_two_view_geometries()
    for pid, geom in zip(pair_ids, geometries):
        a, b = pycolmap.pair_id_to_image_pair(pid)
        na, nb = images[a].name, images[b].name
        m = np.asarray(geom.inlier_matches)
        if na not in cams or nb not in cams or len(m) == 0:
            continue
        F = fundamental(*cams[na], *cams[nb])
        err = sampson_px(F, keypoints[a][m[:, 0]], keypoints[b][m[:, 1]])
        out[(index_from_name(na), index_from_name(nb))] = m[err < max_px]
    return out


def filtered_copy(
    src: Path,
    dst: Path,
    keep: Callable[[int, int], bool],
    inliers: dict[tuple[int, int], np.ndarray] | None = None,
) -> Path:
    """Copy the database, dropping verified pairs (photo indices, database order) that `keep`
    rejects and replacing the inlier matches of those listed in `inliers`."""
    import shutil

    import pycolmap

    shutil.copyfile(src, dst)
    inliers = inliers or {}
    with pycolmap.Database.open(dst) as db:
        names = {img.image_id: index_from_name(img.name) for img in db.read_all_images()}
        pair_ids, geometries = db.read_two_view_geometries()
        for pid, geom in zip(pair_ids, geometries):
            a, b = pycolmap.pair_id_to_image_pair(pid)
            key = (names[a], names[b])
            if not keep(*key):
                db.delete_two_view_geometry(a, b)
            elif key in inliers:
                fresh = pycolmap.TwoViewGeometry()
                fresh.config = geom.config
                fresh.E, fresh.F, fresh.H = geom.E, geom.F, geom.H
                fresh.inlier_matches = inliers[key]
                db.delete_two_view_geometry(a, b)
                db.write_two_view_geometry(a, b, fresh)
    return dst


def world_rotations(rec: "pycolmap.Reconstruction") -> dict[int, np.ndarray]:
    """Per placed photo index, its world->camera rotation (3, 3)."""
    return {
        index_from_name(img.name): np.asarray(img.cam_from_world().rotation.matrix(), float)
        for img in rec.images.values()
        if img.has_pose
    }


def camera_axes(rec: "pycolmap.Reconstruction") -> tuple[list[int], np.ndarray, np.ndarray]:
    """Placed photo indices with their camera centres and viewing directions (N, 3) each."""
    idx, centres, axes = [], [], []
    for img in rec.images.values():
        if img.has_pose:
            R = np.asarray(img.cam_from_world().rotation.matrix(), float)
            t = np.asarray(img.cam_from_world().translation, float)
            idx.append(index_from_name(img.name))
            centres.append(-R.T @ t)
            axes.append(R[2])
    return idx, np.asarray(centres).reshape(-1, 3), np.asarray(axes).reshape(-1, 3)


def drop_photos(rec: "pycolmap.Reconstruction", indices: set[int]) -> None:
    """Un-place these photos (their observations go; points left with < 2 views go too)."""
    for img in list(rec.images.values()):
        if img.has_pose and index_from_name(img.name) in indices:
            rec.deregister_frame(img.frame_id)
    for pid in list(rec.point3D_ids()):
        if rec.points3D[pid].track.length() < 2:
            rec.delete_point3D(pid)
