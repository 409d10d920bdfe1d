"""Structure-from-motion stage: where was each photo taken? (pycolmap, CPU SIFT).

Entry point: `estimate_poses(photos, cfg, progress, masks, device) -> Poses`. The photos are
written to a temp workspace, SIFT features are matched between the pairs `pairs.select_pairs`
picks (neighbours along the walk plus look-alikes by a bag of words), the incremental mapper
places them, and the largest model is converted to our `Camera`s. Photos left out get one
plain-words reason each; too few placed raises CaptureError with re-shoot advice. When the first
pass leaves out many photos, a second pass with features for plain surfaces runs: learned XFeat
features (torch, on `device`) when their weights are installed, else denser SIFT.

Product photos are often taken on surfaces whose pattern repeats exactly; pairs matched across
two copies of the pattern pass every two-view check and bend the model. `place.place` guards against
them with the checks in `filter` (closing triangles, agreement with the grown model, photos
that look past the item) and would rather leave a photo out than place it wrongly.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from ..errors import CaptureError, InputError
from ..types import Camera, LeftOut, Mask, Photo, Poses, Unplaced
from .config import PRESETS, RESHOOT_ADVICE, STAGE, FeaturePass, SfmConfig


def estimate_poses(
    photos: Sequence[Photo],
    cfg: SfmConfig = PRESETS["balanced"],
    progress: Callable[[float, str], None] | None = None,
    masks: Sequence[Mask | None] | None = None,
    device: str = "cpu",
) -> Poses:
    """Place every photo: `Poses.cameras[i]` belongs to `photos[i]` (None when unplaced).

    `masks` (optional, one per photo, None allowed) are the segmenter's object masks; they
    narrow where features are looked for. Without them a central ellipse is used.
    `device` ("cpu", "cuda", ...) runs the XFeat network of the second pass; SIFT and the
    mapper run on the CPU.

    Cameras are OpenCV world->camera with K in each photo's working-size pixels and no
    distortion; the world frame is arbitrary (similarity) until the geometry stage fixes it.
    Raises InputError for malformed input, CaptureError when too few photos can be placed.
    """
    photos = _check(photos)
    regions = _regions(photos, masks, cfg.mask_grow)
    report = progress or (lambda fraction, message: None)
    with tempfile.TemporaryDirectory(prefix="plinth_sfm_") as tmp:
        first = Path(tmp) / "sift"
        poses = _run(photos, cfg, first, report, FeaturePass.SIFT, regions)
        if cfg.retry_hard and poses.placed < cfg.retry_below_share * len(photos):
            second = _second_pass(cfg)
            report(0.5, "Few photos matched; trying again with more detail (slower)")
            retry = _run(photos, cfg, Path(tmp) / second.value, report, second, regions, device, first)
            poses = retry if retry.placed > poses.placed else poses
    if poses.placed < _needed(len(photos), cfg):
        raise CaptureError(
            STAGE, f"Only {poses.placed} of {len(photos)} photos could be placed.", advice=RESHOOT_ADVICE
        )
    report(1.0, f"Placed {poses.placed} of {len(photos)} photos")
    return poses


def _second_pass(cfg: SfmConfig) -> FeaturePass:
    """XFeat when enabled and its weights are installed and intact, else the harder SIFT."""
    if cfg.xfeat:
        from .xfeat import available

        if available():
            return FeaturePass.XFEAT
    return FeaturePass.SIFT_HARD


def _needed(n: int, cfg: SfmConfig) -> int:
    return min(n, max(3, int(np.ceil(cfg.min_placed_share * n))))


def _check(photos: Sequence[Photo]) -> tuple[Photo, ...]:
    photos = tuple(photos)
    if len(photos) < 3:
        raise InputError(STAGE, f"Working out camera positions needs at least 3 photos, got {len(photos)}.")
    for i, p in enumerate(photos):
        if p.rgb.ndim != 3 or p.rgb.shape[2] != 3 or p.rgb.dtype != np.uint8:
            raise InputError(STAGE, f"Photo {p.name} is not an RGB image.")
        if p.index != i:
            raise InputError(STAGE, f"Photo {p.name} is out of order (index {p.index}, position {i}).")
    return photos


def _regions(
    photos: tuple[Photo, ...], masks: Sequence[Mask | None] | None, grow: float
) -> list[np.ndarray | None] | None:
    """Per photo the feature region (bool, working px) from its object mask, or None."""
    if masks is None:
        return None
    masks = tuple(masks)
    if len(masks) != len(photos):
        raise InputError(STAGE, f"Got {len(masks)} object masks for {len(photos)} photos.")
    out: list[np.ndarray | None] = []
    for photo, m in zip(photos, masks):
        w, h = photo.size
        if m is None or m.mask.shape != (h, w) or not m.mask.any():
            out.append(None)  # no usable mask: the central ellipse
            continue
        ys, xs = np.nonzero(m.mask)
        x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
        gx, gy = grow * (x1 - x0) / 2, grow * (y1 - y0) / 2
        region = np.zeros((h, w), bool)
        region[max(0, int(y0 - gy)) : min(h, int(np.ceil(y1 + gy))), max(0, int(x0 - gx)) : min(w, int(np.ceil(x1 + gx)))] = True
        out.append(region)
    return out


def _run(
    photos: tuple[Photo, ...],
    cfg: SfmConfig,
    ws: Path,
    report,
    kind: FeaturePass,
    regions: Sequence[np.ndarray | None] | None = None,
    device: str = "cpu",
    first: Path | None = None,
) -> Poses:
    """One pass: features of `kind`, matching, placement. The second passes reuse the first
    pass's workspace `first` (its images; XFeat also its cameras and images in the database)."""
    import pycolmap

    from . import colmap
    from .place import first_view_axis, place

    pycolmap.logging.minloglevel = 3  # COLMAP logs give-ups (a failed candidate model) as errors: not the merchant's
    n = len(photos)
    lo, span = (0.0, 0.5 if cfg.retry_hard else 1.0) if kind is FeaturePass.SIFT else (0.5, 0.5)
    cancel = pycolmap.CancellationToken()
    ws.mkdir(parents=True, exist_ok=True)
    image_dir, db_path = (first or ws) / "images", ws / "database.db"
    report(lo, "Finding details in each photo")
    scale = colmap.write_images(photos, image_dir, cfg.max_image_size) if first is None else _scale(photos, cfg)
    if kind is FeaturePass.XFEAT:
        from . import xfeat
        from .pairs import select_pairs

        net = xfeat.load(device)
        feature_regions = None if regions is None else [
            colmap.feature_region(p, r, scale, cfg.centre_mask) > 0 for p, r in zip(photos, regions)
        ]
        pairs = xfeat.build_database(
            first / "database.db", db_path, image_dir, net, cfg.xfeat_max_features, feature_regions,
            lambda descs: select_pairs(descs, cfg.window, cfg.retrieval), lambda: cancel.is_cancelled,
        )
        report(lo + 0.3 * span, "Matching details between photos")
        colmap.verify(db_path, pairs, cfg, cancel)
    else:
        colmap.extract(db_path, image_dir, photos, cfg, scale, kind is FeaturePass.SIFT_HARD, cancel, regions,
                       on_photo=lambda done: report(lo + 0.3 * span * done / n, f"Found details in {done} of {n} photos"))
        report(lo + 0.3 * span, "Matching details between photos")
        colmap.match(db_path, cfg, kind is FeaturePass.SIFT_HARD, cancel)
    report(lo + 0.7 * span, "Working out where each photo was taken")
    placed = [0]

    def on_image() -> None:
        placed[0] += 1
        try:
            report(lo + (0.7 + 0.25 * min(1.0, placed[0] / n)) * span, f"Placed {placed[0]} of {n} photos")
        except BaseException:  # the caller wants to stop: let the mapper finish its step, then stop
            cancel.cancel()
            raise

    rec, rotations = place(db_path, image_dir, ws, n, cfg, on_image, cancel)
    stats = colmap.match_stats(db_path)
    if rec is None or rec.num_reg_images() == 0:
        return Poses(
            cameras=(None,) * n,
            points=np.zeros((0, 3)),
            point_colors=np.zeros((0, 3), np.uint8),
            point_views=(),
            reprojection_error_px=float("nan"),
            failures=tuple(_why_unplaced(photos, set(), stats)),
        )
    if cfg.pinhole:
        colmap.refit_pinhole(rec, cfg.ba_global_max_iterations)
    names = {img.name: colmap.index_from_name(img.name) for img in rec.images.values()}
    poses = poses_from_reconstruction(rec, names, [p.size for p in photos], scale)
    placed_idx = {i for i, c in enumerate(poses.cameras) if c is not None}
    return Poses(
        cameras=poses.cameras,
        points=poses.points,
        point_colors=poses.point_colors,
        point_views=poses.point_views,
        reprojection_error_px=poses.reprojection_error_px,
        failures=tuple(_why_unplaced(photos, placed_idx, stats)),
        first_view_axis=None if 0 in placed_idx else first_view_axis(rec, rotations),
    )


def _scale(photos: Sequence[Photo], cfg: SfmConfig) -> float:
    """Feature-image pixels per working pixel, as `colmap.write_images` chose it."""
    return min(1.0, cfg.max_image_size / float(max(max(p.size) for p in photos)))


def poses_from_reconstruction(
    rec,
    photo_of_image: Mapping[str, int],
    sizes: Sequence[tuple[int, int]],
    scale: float = 1.0,
) -> Poses:
    """Convert a pycolmap Reconstruction to `Poses` (the only place pycolmap types leave).

    `photo_of_image` maps image names to photo indices, `sizes` gives each photo's working
    (width, height), and `scale` is feature-image pixels per working pixel. Distortion
    parameters are ignored (call `refit_pinhole` first). Failures are left empty.
    """
    cameras: list[Camera | None] = [None] * len(sizes)
    index_of_id: dict[int, int] = {}
    for image_id, img in rec.images.items():
        if not img.has_pose or img.name not in photo_of_image:
            continue
        i = photo_of_image[img.name]
        index_of_id[image_id] = i
        pose = img.cam_from_world()
        cam = img.camera
        fx, fy = cam.focal_length_x, cam.focal_length_y
        cx, cy = cam.principal_point_x, cam.principal_point_y
        # COLMAP pixel centres sit at +0.5; ours at integers. Scale in the corner-based frame.
        K = np.array(
            [[fx / scale, 0.0, cx / scale - 0.5], [0.0, fy / scale, cy / scale - 0.5], [0.0, 0.0, 1.0]]
        )
        w, h = sizes[i]
        cameras[i] = Camera(
            K=K,
            R=np.asarray(pose.rotation.matrix(), float),
            t=np.asarray(pose.translation, float).reshape(3),
            width=int(w),
            height=int(h),
        )
    pts, cols, views = [], [], []
    for p in rec.points3D.values():
        seen = sorted({index_of_id[e.image_id] for e in p.track.elements if e.image_id in index_of_id})
        if not seen:
            continue
        pts.append(p.xyz)
        cols.append(p.color)
        views.append(np.asarray(seen, np.int32))
    err = float(rec.compute_mean_reprojection_error()) if pts else float("nan")
    return Poses(
        cameras=tuple(cameras),
        points=np.asarray(pts, float).reshape(-1, 3),
        point_colors=np.asarray(cols, np.uint8).reshape(-1, 3),
        point_views=tuple(views),
        reprojection_error_px=err,
    )


#: Below this many verified matches a pair tells the mapper nothing; photos whose best partner
#: is below it share (almost) nothing with the set: likely another object or scene.
_NOTHING_IN_COMMON = 20
_FEW_KEYPOINTS = 300  # SIFT finds thousands on a sharp textured photo; this few means blur/plainness


def _why_unplaced(photos: Sequence[Photo], placed: set[int], stats) -> list[LeftOut]:
    """One reason in plain words per photo not in `placed`, from its features and matches."""
    out = []
    median_kp = float(np.median(list(stats.keypoints.values()) or [0]))
    for p in photos:
        if p.index in placed:
            continue
        label = p.name  # the merchant's file name alone: a number among the usable photos misleads
        kp = stats.keypoints.get(p.index, 0)
        partners = stats.partners(p.index)
        best_placed = max((m for j, m in partners.items() if j in placed), default=0)
        best_any = max(partners.values(), default=0)
        if kp < _FEW_KEYPOINTS or kp < 0.15 * median_kp:
            why, words = Unplaced.NO_DETAIL, "is too blurry, dark or plain to find details in."
        elif best_any < _NOTHING_IN_COMMON:
            why, words = Unplaced.OTHER_SCENE, "seems to show a different object or scene."
        elif best_placed < _NOTHING_IN_COMMON and placed:
            why, words = Unplaced.OTHER_GROUP, "matches only other left-out photos; it may show a different object."
        else:
            why, words = Unplaced.LITTLE_OVERLAP, "overlaps too little with the others."
        out.append(LeftOut(p.index, why, f"{label} {words}"))
    return out
