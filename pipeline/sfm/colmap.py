"""pycolmap plumbing for the SfM stage: workspace, feature extraction, matching, mapping.

Only the SfM stage imports this module (lazily, so `import pipeline` stays light). Everything
here speaks pycolmap; conversion to our types happens in `sfm.py`.
COLMAP puts pixel centres at +0.5 (the top-left pixel's centre is (0.5, 0.5)); ours are at
integer coordinates, so principal points differ by 0.5 px between the two conventions.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from ..types import Photo

if TYPE_CHECKING:  # pragma: no cover
    import pycolmap

    from .config import SfmConfig


def image_name(index: int) -> str:
    """File name of photo `index` inside the workspace (the index is recoverable from it)."""
    return f"{index:04d}.jpg"


def index_from_name(name: str) -> int:
    return int(Path(name).stem)


def write_images(photos: Sequence[Photo], folder: Path, max_side: int) -> float:
    """Write photos as JPEGs (long side at most `max_side`); return the scale written / working.

    Downscaling here (instead of COLMAP's own `max_image_size`) keeps the extractor from decoding
    large files; the keypoints are scaled back to working pixels with the returned factor.
    """
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    longest = max(max(p.size) for p in photos)
    scale = min(1.0, max_side / float(longest))
    for photo in photos:
        bgr = np.ascontiguousarray(photo.rgb[:, :, ::-1])
        if scale < 1.0:
            w, h = photo.size
            bgr = cv2.resize(bgr, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(folder / image_name(photo.index)), bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
    return scale


def extract(
    db_path: Path,
    image_dir: Path,
    photos: Sequence[Photo],
    cfg: "SfmConfig",
    scale: float,
    hard: bool,
    cancel: "pycolmap.CancellationToken",
    regions: Sequence[np.ndarray | None] | None = None,
    on_photo: Callable[[int], None] | None = None,
) -> None:
    """SIFT on the CPU into `db_path`; one shared camera when all photos have the same size.

    `regions`: per photo an (H, W) bool array in working pixels (True = look for features there)
    or None for the central ellipse; replaces the central ellipse for the photos that have one.
    `on_photo(done)`: called every few seconds with how many photos have their features (the
    extraction runs in a thread meanwhile); an exception from it cancels the extraction.
    """
    import pycolmap

    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = cfg.camera_model
    sizes = {p.size for p in photos}
    priors = [p.focal_px for p in photos if p.focal_px]
    shared = len(sizes) == 1
    if shared:
        w, h = (round(s * scale) for s in photos[0].size)
        # No EXIF: guess a phone main camera (about 28 mm equivalent) rather than COLMAP's
        # generic 1.2 x long side; a near-right focal lets pairs verify as calibrated (E).
        f = float(np.median(priors)) * scale if priors else cfg.default_focal_factor * max(w, h)
        extra = ",0" if cfg.camera_model == "SIMPLE_RADIAL" else ""
        # Giving the parameters marks the focal length as a prior (has_prior_focal_length).
        reader.camera_params = f"{f},{w / 2},{h / 2}{extra}"
        if cfg.centre_mask > 0 and not hard and regions is None:
            reader.camera_mask_path = str(_centre_mask(image_dir.parent / "centre_mask.png", w, h, cfg.centre_mask))
    if regions is not None and not hard:
        reader.mask_path = str(_region_masks(image_dir.parent / "masks", photos, regions, scale, cfg.centre_mask))
    opts = pycolmap.FeatureExtractionOptions()
    opts.num_threads = cfg.num_threads
    opts.max_image_size = -1
    opts.sift.max_num_features = cfg.hard_max_features if hard else cfg.max_features
    opts.sift.estimate_affine_shape = cfg.affine_shape
    opts.sift.first_octave = cfg.first_octave
    if hard:
        # Low-texture scenes: keep weak corners and make descriptors tolerant to viewpoint change.
        opts.sift.peak_threshold = cfg.hard_peak_threshold
        opts.sift.first_octave = -1  # the finest details too (the doubled photo): plain surfaces need them
        opts.sift.estimate_affine_shape = True
        opts.sift.domain_size_pooling = True
    mode = pycolmap.CameraMode.SINGLE if shared else pycolmap.CameraMode.PER_IMAGE
    _watched(lambda: pycolmap.extract_features(
        db_path,
        image_dir,
        image_names=[image_name(p.index) for p in photos],
        camera_mode=mode,
        reader_options=reader,
        extraction_options=opts,
        device=pycolmap.Device.cpu,
        cancellation_token=cancel,
    ), db_path, on_photo, cancel)


#: Seconds between two looks at how far feature extraction is.
_WATCH_S = 2.0


def _watched(run, db_path: Path, on_photo, cancel) -> None:
    """`run()` in a thread while `on_photo(photos with keypoints)` reports from this one: SIFT on
    36 photos is one silent call of 10-20 s otherwise, and the merchant's page would stand still."""
    import sqlite3
    import threading

    if on_photo is None:
        run()
        return
    failed: list[BaseException] = []

    def target() -> None:
        try:
            run()
        except BaseException as error:  # re-raised in the caller's thread
            failed.append(error)

    worker = threading.Thread(target=target, name="sift", daemon=True)
    worker.start()
    last = -1
    while worker.is_alive():
        worker.join(_WATCH_S)
        try:
            with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=0.2) as con:
                done = con.execute("SELECT COUNT(*) FROM keypoints").fetchone()[0]
        except sqlite3.Error:  # not created yet, or locked by the writer: next time
            continue
        if done != last and worker.is_alive():
            last = done
            try:
                on_photo(int(done))
            except BaseException:
                cancel.cancel()
                worker.join()
                raise
    if failed:
        raise failed[0]


def _centre_mask(path: Path, w: int, h: int, share: float) -> Path:
    """Ellipse mask (255 = use) over the central `share` of width and height.

    Merchants centre the item; far table and wall texture (often periodic: planks, tiles, stripes)
    gives matches that satisfy epipolar geometry but are wrong, and they distort the model.
    """
    import cv2

    mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(mask, (w // 2, h // 2), (round(w * share / 2), round(h * share / 2)), 0, 0, 360, 255, -1)
    cv2.imwrite(str(path), mask)
    return path


def feature_region(photo: Photo, region: np.ndarray | None, scale: float, share: float) -> np.ndarray:
    """(h, w) uint8 mask (255 = look for features) at the feature-image size: the photo's
    region scaled, or the central ellipse over `share` of width and height without one."""
    import cv2

    w, h = (round(s * scale) for s in photo.size)
    if region is None:
        mask = np.zeros((h, w), np.uint8)
        cv2.ellipse(mask, (w // 2, h // 2), (round(w * share / 2), round(h * share / 2)), 0, 0, 360, 255, -1)
        return mask
    return cv2.resize(region.astype(np.uint8) * 255, (w, h), interpolation=cv2.INTER_NEAREST)


def _region_masks(
    folder: Path, photos: Sequence[Photo], regions: Sequence[np.ndarray | None], scale: float, share: float
) -> Path:
    """Write one feature mask per photo where COLMAP looks for it (`<image name>.png`)."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    for photo, region in zip(photos, regions):
        cv2.imwrite(str(folder / f"{image_name(photo.index)}.png"), feature_region(photo, region, scale, share))
    return folder


def match(db_path: Path, cfg: "SfmConfig", hard: bool, cancel: "pycolmap.CancellationToken") -> int:
    """Match the pairs `pairs.select_pairs` picks from the SIFT descriptors in `db_path`, and
    verify them; return how many pairs were matched."""
    import pycolmap

    from .pairs import select_pairs

    with pycolmap.Database.open(db_path) as db:
        images = sorted(db.read_all_images(), key=lambda img: index_from_name(img.name))
        descriptors = [np.asarray(db.read_descriptors(img.image_id).data) for img in images]
    chosen = select_pairs(descriptors, cfg.window, cfg.retrieval)
    opts = pycolmap.FeatureMatchingOptions()
    opts.num_threads = cfg.num_threads
    opts.guided_matching = hard
    pairing = pycolmap.ImportedPairingOptions()
    pairing.match_list_path = str(write_pair_list(db_path.parent / "pairs.txt",
                                                  [(images[i].name, images[j].name) for i, j in chosen]))
    pycolmap.match_image_pairs(
        db_path, matching_options=opts, pairing_options=pairing, verification_options=verification(cfg),
        device=pycolmap.Device.cpu, cancellation_token=cancel,
    )
    return len(chosen)


def verification(cfg: "SfmConfig") -> "pycolmap.TwoViewGeometryOptions":
    """Two-view geometric verification settings (shared by the SIFT and XFeat passes)."""
    import pycolmap

    verify = pycolmap.TwoViewGeometryOptions()
    verify.ransac.max_num_trials = cfg.ransac_max_trials
    verify.ransac.random_seed = cfg.seed  # the default (-1) reseeds per run: same photos, other model
    verify.compute_relative_pose = True
    return verify


def write_pair_list(path: Path, pairs: Sequence[tuple[str, str]]) -> Path:
    """COLMAP's pair list: one `name_a name_b` line per pair."""
    path.write_text("".join(f"{a} {b}\n" for a, b in pairs))
    return path


def verify(db_path: Path, pairs: Sequence[tuple[str, str]], cfg: "SfmConfig",
           cancel: "pycolmap.CancellationToken") -> None:
    """Geometric verification of matches already written into `db_path` (the XFeat pass)."""
    import pycolmap

    pycolmap.verify_matches(db_path, write_pair_list(db_path.parent / "pairs.txt", pairs),
                            options=verification(cfg), cancellation_token=cancel)


def map_images(
    db_path: Path,
    image_dir: Path,
    out_dir: Path,
    n: int,
    cfg: "SfmConfig",
    on_image: Callable[[], None],
    cancel: "pycolmap.CancellationToken",
    start: Path | None = None,
) -> "pycolmap.Reconstruction | None":
    """Run the mapper (from scratch, or growing the model saved in `start`); return the
    reconstruction with the most registered images (or None)."""
    import shutil

    import pycolmap

    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    if cfg.mapper == "global":
        gopts = pycolmap.GlobalPipelineOptions()
        gopts.num_threads = cfg.num_threads
        gopts.random_seed = cfg.seed
        gopts.min_model_size = 3
        recs = pycolmap.global_mapping(db_path, image_dir, out_dir, options=gopts)
    else:
        opts = pycolmap.IncrementalPipelineOptions()
        opts.num_threads = cfg.num_threads
        opts.random_seed = cfg.seed
        opts.min_model_size = 3 if start is not None else max(3, min(10, n // 3))
        opts.ba_global_max_num_iterations = cfg.ba_global_max_iterations
        opts.ba_local_max_num_iterations = cfg.ba_local_max_iterations
        # Global bundle adjustment after each 1.1x growth (COLMAP's default) is most of a run's
        # time on 36 photos; every `ba_growth` x is enough there, and the final one still runs.
        opts.ba_global_frames_ratio = opts.ba_global_points_ratio = cfg.ba_growth
        opts.ba_global_max_refinements = cfg.ba_global_refinements
        # Grown from a start model, the photos it cannot add would seed stray side models.
        opts.multiple_models = start is None
        if cfg.strict_registration:
            # COLMAP's defaults accept a photo on 12 px PnP residuals and place photos with no
            # 3D support from two-view geometry alone; with repeated patterns both let a photo
            # land a pattern period away. Tighter checks leave such a photo out instead.
            opts.mapper.abs_pose_max_error = 4.0
            opts.mapper.abs_pose_min_inlier_ratio = 0.5
            opts.mapper.filter_max_reproj_error = 2.0
            opts.structure_less_registration_fallback = False
        recs = pycolmap.incremental_mapping(
            db_path, image_dir, out_dir, options=opts, input_path=str(start or ""),
            next_image_callback=on_image, cancellation_token=cancel,
        )
    best = None
    for rec in recs.values():
        if best is None or rec.num_reg_images() > best.num_reg_images():
            best = rec
    return best


def refit_pinhole(rec: "pycolmap.Reconstruction", max_iterations: int) -> None:
    """Drop radial distortion and re-run bundle adjustment with a distortion-free camera.

    The dense stage projects with a pinhole K only; refining with k = 0 lets focal length, poses
    and points absorb the (small, for phone photos) distortion in the least-squares sense.
    """
    import pycolmap

    changed = False
    for cam in rec.cameras.values():
        extra = list(cam.extra_params_idxs())
        if extra:
            params = np.array(cam.params, float)
            params[extra] = 0.0
            cam.params = params
            changed = True
    if not changed:
        return
    opts = pycolmap.BundleAdjustmentOptions()
    opts.refine_extra_params = False
    opts.refine_principal_point = False
    opts.ceres.solver_options.max_num_iterations = max_iterations
    opts.print_summary = False
    with _quiet_stderr():  # this binding turns COLMAP's INFO log back on for its own heading
        pycolmap.bundle_adjustment(rec, opts)


@contextmanager
def _quiet_stderr():
    """Send file descriptor 2 (where COLMAP's C++ logging writes) to /dev/null for a moment."""
    import os
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@dataclass(frozen=True)
class MatchStats:
    """Per photo index: keypoints found, and verified inlier counts to every other photo."""

    keypoints: dict[int, int]
    inliers: dict[tuple[int, int], int]  # (i, j) with i < j

    def partners(self, i: int) -> dict[int, int]:
        out: dict[int, int] = {}
        for (a, b), m in self.inliers.items():
            if a == i:
                out[b] = m
            elif b == i:
                out[a] = m
        return out


def match_stats(db_path: Path) -> MatchStats:
    import pycolmap

    with pycolmap.Database.open(db_path) as db:
        index = {img.image_id: index_from_name(img.name) for img in db.read_all_images()}
        keypoints = {index[i]: db.num_keypoints_for_image(i) for i in index}
        pair_ids, counts = db.read_two_view_geometry_num_inliers()
    inliers: dict[tuple[int, int], int] = {}
    for pid, m in zip(pair_ids, counts):
        a, b = pycolmap.pair_id_to_image_pair(pid)
        i, j = index[a], index[b]
        inliers[(min(i, j), max(i, j))] = int(m)
    return MatchStats(keypoints=keypoints, inliers=inliers)

