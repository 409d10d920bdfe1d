"""How the SfM stage places photos: candidate models, outlier checks, a last looser try.

Only `pipeline.sfm` imports this module. pycolmap workflow in `colmap`, database and model
edits in `models`, the checks' maths in `filter`.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import colmap, models
from . import filter as filt

if TYPE_CHECKING:  # pragma: no cover
    from .config import SfmConfig


def first_view_axis(rec, rotations) -> np.ndarray | None:
    """Photo 0's viewing direction (3,) from its pairs with placed photos (two agreeing if
    possible), or None."""
    placed = models.world_rotations(rec)
    for votes in (2, 1):
        world = filt.propagate_rotations({p: r for p, r in rotations.items() if 0 in p}, placed, min_votes=votes)
        if 0 in world:
            return np.asarray(world[0][2], float)
    return None


def place(db_path: Path, image_dir: Path, ws: Path, n: int, cfg: "SfmConfig", on_image, cancel):
    """Mapper runs with the outlier checks of `filter`; returns (pycolmap Reconstruction or
    None, the pairs' own rotations {(i, j): R (3, 3) camera i -> camera j}).

    Three candidate models grow from one clean core (pairs confirmed by closing triangles): from
    all pairs, from the pairs that agree with rotations propagated from the core, and from the
    pairs whose cameras aim at a common point (a candidate whose pairs equal another's is not
    grown twice). Each is grown again with only the matches that agree with it and loses photos
    that look past the item; the one whose rotations most pairs confirm wins, and photos still
    left out get one looser try (`_add_missing`).
    """
    def grow(db: Path, name: str, start: Path | None, callback=lambda: None):
        try:
            return colmap.map_images(db, image_dir, ws / name, n, cfg, callback, cancel, start)
        except (IndexError, ValueError, RuntimeError):  # COLMAP gives up on a thinned-out pair graph
            if name == "all":
                raise
            return None

    pair_poses = models.pair_poses(db_path, _threads(cfg))
    rotations = {p: R for p, (R, _) in pair_poses.items()}
    if not cfg.pair_filter:
        return grow(db_path, "sparse", None, on_image), rotations
    core_pairs: set[tuple[int, int]] = set()
    for support in (2, 1):
        core_pairs = filt.consistent_pairs(rotations, min_support=support)
        if len({i for pair in core_pairs for i in pair}) >= 4:
            break
    core = grow(models.filtered_copy(db_path, ws / "core.db", _among(core_pairs)), "core", None)
    start = models.save(core, ws / "core_model") if core is not None and core.num_reg_images() >= 3 else None
    agreeing = set(rotations)
    if start is not None:
        agreeing = filt.rotation_consistent(rotations, filt.propagate_rotations(rotations, models.world_rotations(core)))
    aimed = {p for p, (R, t) in pair_poses.items() if filt.axes_meet(R, t)}
    plans, tried = [], []
    for name, keep in (("all", None), ("rotations", agreeing | core_pairs), ("aimed", aimed | core_pairs)):
        # A pair set that drops none of the trusted pairs, or one already tried, grows the same model.
        if keep is not None and (keep >= set(rotations) or any(keep == t for t in tried)):
            continue
        tried.append(keep if keep is not None else set(rotations))
        plans.append((name, keep))

    def candidate(name: str, keep, start: Path | None):
        """(model, database) grown from the pairs in `keep` (None: all), cleaned and
        stray-checked, or None; and whether "all" had to leave the core behind."""
        db = db_path if keep is None else models.filtered_copy(db_path, ws / f"{name}.db", _among(keep))
        rec = grow(db, name, start, on_image if name == "all" else lambda: None)
        fresh_start = False
        if name == "all" and start is not None and (rec is None or rec.num_reg_images() < n // 2):
            # A core the other photos cannot be added to (avocado, 36 photos: a 3-photo core
            # that nothing joined) must not cost the capture: grow from the mapper's own start.
            fresh = grow(db, "all_fresh", None)
            if fresh is not None and (rec is None or fresh.num_reg_images() > rec.num_reg_images()):
                rec, start, fresh_start = fresh, None, True
        if rec is None or rec.num_reg_images() < 3:
            return None, fresh_start
        agree = models.epipolar_inliers(rec, db, cfg.epipolar_px)
        placed = set(models.camera_axes(rec)[0])
        clean_db = models.filtered_copy(
            db,
            ws / f"{name}_clean.db",
            lambda i, j: i not in placed or j not in placed or len(agree.get((i, j), ())) >= 15,
            agree,
        )
        again = grow(clean_db, f"{name}_clean", start)
        if again is not None and again.num_reg_images() >= rec.num_reg_images():
            rec, db = again, clean_db
        if cfg.stray_check:
            rec = _drop_strays(rec, db, ws, grow, name)
        return (rec, db), fresh_start

    # The candidates grow side by side: pycolmap's mapper lets go of the GIL, and most of its
    # time is single-threaded (banana, 36 photos: two mapper runs in 12.6 s together, 11.5 s alone).
    with ThreadPoolExecutor(max_workers=min(len(plans), _threads(cfg))) as pool:
        runs = [pool.submit(candidate, name, keep, start) for name, keep in plans]
        results = [run.result() for run in runs]
        if results[0][1]:  # "all" left the core: the others grow from scratch too
            runs = [pool.submit(candidate, name, keep, None) for name, keep in plans[1:]]
            results[1:] = [run.result() for run in runs]
    candidates = [found for found, _ in results if found is not None]
    if not candidates:
        return None, rotations
    # The model whose rotations most image pairs confirm: a bent one loses true pairs.
    best, db = max(candidates, key=lambda c: _support(rotations, c[0]))
    return _add_missing(best, db, image_dir, ws, n, cfg, rotations, cancel), rotations


def _support(rotations, rec) -> int:
    return sum(filt.rotation_support(rotations, models.world_rotations(rec)).values())


def _add_missing(rec, db: Path, image_dir: Path, ws: Path, n: int, cfg: "SfmConfig", rotations, cancel):
    """Offer the photos still left out to the mapper once more with COLMAP's looser checks
    (sparse captures need them); keep a newcomer only if one of its pairs confirms its rotation
    and it looks at the item."""
    if rec.num_reg_images() >= n:
        return rec
    before = set(models.world_rotations(rec))
    loose = replace(cfg, strict_registration=False)
    try:
        grown = colmap.map_images(db, image_dir, ws / "loose", n, loose, lambda: None, cancel, models.save(rec, ws / "best"))
    except (IndexError, ValueError, RuntimeError):
        return rec
    if grown is None:
        return rec
    world = models.world_rotations(grown)
    support = filt.rotation_support(rotations, world)
    idx, centres, axes = models.camera_axes(grown)
    strays = {i for i, s in zip(idx, filt.stray_cameras(filt.off_axis_degrees(centres, axes))) if s}
    doubtful = {i for i in world if i not in before and (support.get(i, 0) < 1 or i in strays)}
    models.drop_photos(grown, doubtful)
    return grown if grown.num_reg_images() > rec.num_reg_images() else rec


def _threads(cfg: "SfmConfig") -> int:
    return cfg.num_threads if cfg.num_threads > 0 else (os.cpu_count() or 1)


def _among(pairs: set[tuple[int, int]]):
    return lambda i, j: (min(i, j), max(i, j)) in pairs


def _drop_strays(rec, db_path: Path, ws: Path, grow, name: str):
    """Un-place photos that look past the item; give each one more try without the pairs that
    put it there, and leave it out if it strays again."""
    idx, centres, axes = models.camera_axes(rec)
    strays = {i for i, s in zip(idx, filt.stray_cameras(filt.off_axis_degrees(centres, axes))) if s}
    if not strays:
        return rec
    agree = models.epipolar_inliers(rec, db_path, 2.0)
    misled = {pair for pair, m in agree.items() if len(m) >= 15 and (pair[0] in strays) != (pair[1] in strays)}
    retry_db = models.filtered_copy(db_path, ws / f"{name}_strays.db", lambda i, j: (i, j) not in misled)
    models.drop_photos(rec, strays)
    again = grow(retry_db, f"{name}_strays", models.save(rec, ws / f"{name}_without_strays"))
    if again is not None:
        idx, centres, axes = models.camera_axes(again)
        still = {i for i, s in zip(idx, filt.stray_cameras(filt.off_axis_degrees(centres, axes))) if s}
        models.drop_photos(again, still)
        if again.num_reg_images() >= rec.num_reg_images():
            return again
    return rec
