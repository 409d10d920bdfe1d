"""Check the SfM stage on the bench: photos placed, pose error vs ground truth, seconds.

Usage: python bench/sfm_check.py [--quality balanced] [--masks none|seg|gt] [--variant V ...]
       [--profile] [--no-xfeat] [case ...]
Cases: the multiview object names, "monstree", "hard" (plain table), "intruders" (avocado with 3
boombox photos mixed in), "big80" (the 36 banana photos, their 36 re-encoded 1600 px copies and 8
exposure-changed ones: 80 photos, for peak memory). Default: all but big80. Bench path from
$PLINTH_BENCH (default ../shared/bench). `--variant` takes bench/variants.py's reduced captures
(every_other, ring_mid, shuffled, ...) for the cases with cameras. `--profile` prints where the
stage's time went (feature extraction, matching, each mapper run, the outlier checks).
Camera centres are aligned to GT with a similarity (Umeyama); rotation error is the angle between
aligned and GT camera rotations, centre error is relative to the GT camera-ring radius.
--masks passes object masks to the stage: "seg" runs the fast 2D segmenter (its time is not
counted), "gt" uses the bench's exact masks (an upper bound on what masks can give).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.data import bench_root  # noqa: E402
from pipeline import ingest, sfm  # noqa: E402
from pipeline.geom import umeyama  # noqa: E402
from pipeline.errors import CaptureError  # noqa: E402
from bench.variants import derive  # noqa: E402

OBJECTS = ("avocado", "banana", "boombox", "chair", "waterbottle")


def pose_errors(poses, gt_frames: list[dict]) -> tuple[float, float, float, float]:
    """(mean rot deg, max rot deg, mean centre err, max centre err) over placed photos."""
    idx = [i for i, c in enumerate(poses.cameras) if c is not None and i < len(gt_frames)]
    if len(idx) < 3:
        return (float("nan"),) * 4
    est_c = np.array([poses.cameras[i].center for i in idx])
    gt_r = [np.array(gt_frames[i]["R"]) for i in idx]
    gt_c = np.array([-r.T @ np.array(gt_frames[i]["t"]) for r, i in zip(gt_r, idx)])
    s, rot, t = umeyama(est_c, gt_c)
    radius = np.linalg.norm(gt_c - gt_c.mean(0), axis=1).mean()
    cerr = np.linalg.norm((s * est_c @ rot.T + t) - gt_c, axis=1) / radius
    rerr = []
    for i, rg in zip(idx, gt_r):
        r_aligned = poses.cameras[i].R @ rot.T  # world_gt -> camera
        cos = (np.trace(rg @ r_aligned.T) - 1) / 2
        rerr.append(np.degrees(np.arccos(np.clip(cos, -1, 1))))
    return float(np.mean(rerr)), float(np.max(rerr)), float(cerr.mean()), float(cerr.max())


def object_masks(photos, paths: list[Path], how: str):
    """Per photo a Mask (or None where the segmenter gives up), or None for how == "none"."""
    if how == "none":
        return None
    from pipeline import segment
    from pipeline.types import Mask

    out = []
    for photo, path in zip(photos, paths):
        if how == "gt":
            png = path.parent.parent / "masks" / (path.stem + ".png")
            if png.exists():
                from PIL import Image

                out.append(Mask(np.asarray(Image.open(png).convert("L")) > 127, 1.0, False, "gt"))
            else:
                out.append(None)
            continue
        try:
            out.append(segment.segment_photo(photo, segment.PRESETS["fast"]))
        except CaptureError:
            out.append(None)
    return out


class Profile:
    """Wall seconds per helper of the stage, by wrapping the helpers' module attributes."""

    TARGETS = (
        ("pipeline.sfm.colmap", ("write_images", "extract", "match", "map_images", "refit_pinhole")),
        ("pipeline.sfm.models", ("pair_poses", "epipolar_inliers", "filtered_copy")),
        ("pipeline.sfm.pairs", ("select_pairs",)),
        ("pipeline.sfm.xfeat", ("extract_and_match",)),
    )

    def __init__(self) -> None:
        import importlib

        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._saved = []
        for mod_name, names in self.TARGETS:
            try:
                mod = importlib.import_module(mod_name)
            except ImportError:
                continue
            for fn in names:
                if hasattr(mod, fn):
                    self._wrap(mod, fn)

    def _wrap(self, mod, fn: str) -> None:
        orig = getattr(mod, fn)

        def timed(*a, **k):
            # one entry per mapper run (named by its output folder: core, all, all_clean, ...)
            key = f"map:{Path(a[2]).name}" if fn == "map_images" and len(a) > 2 else fn
            t = time.perf_counter()
            try:
                return orig(*a, **k)
            finally:
                self.seconds[key] = self.seconds.get(key, 0.0) + time.perf_counter() - t
                self.calls[key] = self.calls.get(key, 0) + 1

        setattr(mod, fn, timed)
        self._saved.append((mod, fn, orig))

    def restore(self) -> None:
        for mod, fn, orig in self._saved:
            setattr(mod, fn, orig)

    def line(self, total: float) -> str:
        parts = [f"{k} {v:.1f}s x{self.calls[k]}" for k, v in sorted(self.seconds.items(), key=lambda kv: -kv[1])]
        rest = total - sum(self.seconds.values())
        return "    time: " + ", ".join(parts) + f", other {rest:.1f}s"


def run_case(name: str, paths: list[Path], gt: list[dict] | None, cfg, masks: str = "none",
             profile: bool = False, device: str = "cpu") -> dict:
    photos = ingest.load_photos(paths, ingest.PRESETS["balanced"]).photos
    object_mask = object_masks(photos, paths, masks)
    prof = Profile() if profile else None
    t0, c0 = time.perf_counter(), os.times()
    row: dict = {"case": name, "photos": len(photos)}
    try:
        kwargs = {"device": device} if "device" in sfm.estimate_poses.__code__.co_varnames else {}
        poses = sfm.estimate_poses(photos, cfg, masks=object_mask, **kwargs)
        row.update(placed=poses.placed, reproj=poses.reprojection_error_px, points=len(poses.points))
        if gt:
            row["rot_mean"], row["rot_max"], row["ctr_mean"], row["ctr_max"] = pose_errors(poses, gt)
            f_gt = gt[0]["K"][0][0]
            fs = [c.K[0, 0] for c in poses.cameras if c is not None]
            row["focal_err"] = float(np.median(fs) / f_gt - 1)
        row["failures"] = [left.message for left in poses.failures]
    except CaptureError as err:
        row.update(placed=0, error=str(err))
    c1 = os.times()
    row["seconds"] = time.perf_counter() - t0
    row["cpu_s"] = (c1.user - c0.user) + (c1.system - c0.system)
    if prof is not None:
        prof.restore()
        row["profile"] = prof.line(row["seconds"])
    import resource

    row["peak_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return row


def variant_case(name: str, case_dir: Path, variant: str, gt: list[dict] | None):
    """(name, photo paths, GT frames in the same order) of one bench/variants.py capture."""
    if variant == "all":
        paths = [case_dir / f["file"] for f in gt] if gt else None
        return name, paths, gt
    work = ROOT / "bench" / "output" / "sfm_check" / case_dir.name
    paths = derive(case_dir, variant, work)
    by_stem = {Path(f["file"]).stem: f for f in gt} if gt else {}
    frames = [by_stem[p.stem] for p in paths] if gt else None
    return f"{name} {variant}", paths, frames


def cases(root: Path, wanted: list[str], variants: list[str]):
    for obj in OBJECTS:
        if obj in wanted:
            d = root / "multiview" / obj
            gt = json.loads((d / "cameras.json").read_text())["frames"]
            for v in variants:
                yield variant_case(obj, d, v, gt)
    if "intruders" in wanted:
        d = root / "multiview" / "avocado"
        gt = json.loads((d / "cameras.json").read_text())["frames"]
        other = sorted((root / "multiview" / "boombox" / "images").glob("*.jpg"))
        # intruders go at the end so GT indices of the real photos stay valid
        yield "avocado+3 boombox", [d / f["file"] for f in gt] + other[5:30:10], gt
    if "monstree" in wanted:
        yield "monstree", sorted((root / "real" / "monstree" / "images").glob("*.jpg")), None
    if "hard" in wanted:
        d = root / "hard" / "waterbottle_plain_table"
        gt = json.loads((d / "cameras.json").read_text())["frames"]
        for v in variants:
            yield variant_case("hard", d, v, gt)
    if "big80" in wanted:
        d = root / "multiview" / "banana"
        gt = json.loads((d / "cameras.json").read_text())["frames"]
        work = ROOT / "bench" / "output" / "sfm_check" / "banana"
        paths = derive(d, "x80", work)
        yield "banana x80", paths, None


def with_overrides(cfg, items: list[str]):
    """`cfg` with FIELD=VALUE overrides, each value parsed as the field's current type."""
    from dataclasses import fields, replace

    types = {f.name: type(getattr(cfg, f.name)) for f in fields(cfg)}
    changes = {}
    for item in items:
        key, _, raw = item.partition("=")
        if key not in types:
            raise SystemExit(f"unknown SfmConfig field {key!r}; fields: {', '.join(types)}")
        kind = types[key]
        changes[key] = raw.lower() in ("1", "true", "yes") if kind is bool else kind(raw)
    return replace(cfg, **changes)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quality", default="balanced")
    ap.add_argument("--mapper", default=None, help="override: incremental | global")
    ap.add_argument("--masks", default="none", choices=("none", "seg", "gt"))
    ap.add_argument("--variant", nargs="*", default=["all"], help="bench/variants.py captures")
    ap.add_argument("--profile", action="store_true", help="print where the time went")
    ap.add_argument("--no-xfeat", action="store_true", help="SIFT only (as without the weights)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                    help="override SfmConfig fields, e.g. --set affine_shape=False max_features=2048")
    ap.add_argument("cases", nargs="*", default=[*OBJECTS, "intruders", "monstree", "hard"])
    args = ap.parse_args()
    extra = ["xfeat=False"] * args.no_xfeat + ([f"mapper={args.mapper}"] if args.mapper else [])
    cfg = with_overrides(sfm.PRESETS[args.quality], extra + args.set)
    head = (f"{'case':24s} {'placed':>8s} {'rot deg':>14s} {'ctr rel':>13s} {'f err':>6s} {'reproj':>6s} "
            f"{'wall s':>7s} {'cpu s':>6s} {'peak GB':>7s}")
    print(head)
    for name, paths, gt in cases(bench_root(), args.cases, args.variant):
        r = run_case(name, paths, gt, cfg, args.masks, args.profile, args.device)
        rot = f"{r.get('rot_mean', float('nan')):5.2f}/{r.get('rot_max', float('nan')):5.2f}"
        ctr = f"{r.get('ctr_mean', float('nan')):.3f}/{r.get('ctr_max', float('nan')):.3f}"
        fe = f"{r.get('focal_err', float('nan')):+.3f}"
        print(
            f"{name:24s} {r['placed']:>3d}/{r['photos']:<4d} {rot:>14s} {ctr:>13s} {fe:>6s} "
            f"{r.get('reproj', float('nan')):6.2f} {r['seconds']:7.1f} {r['cpu_s']:6.1f} {r['peak_gb']:7.2f}",
            flush=True,
        )
        if "profile" in r:
            print(r["profile"])
        for line in r.get("failures", [])[:6]:
            print(f"    {line}")
        if "error" in r:
            print(f"    CaptureError: {r['error']}")


if __name__ == "__main__":
    main()
