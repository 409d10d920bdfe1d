"""The dense stage alone on cached inputs, scored with the seen-surface F-scores.

    python bench/dense_seen.py cache chair boombox          # ingest + segment + SfM once, pickled
    python bench/dense_seen.py run chair boombox [--set planes=64 grid=160] [--save DIR] [--true]

`cache` runs the product's own stages before geometry (balanced preset) on a multiview bench
object and pickles photos, masks and poses to bench/output/dense_cache/<name>.pkl; `run` runs only
`reconstruct_dense` on them (with DenseConfig fields overridden by --set) and prints the seconds
of the geometry stage and the aligned seen F@1/2/5% (shared/bench/README.md, "Seen-surface
scores"), with the precision and recall behind F@1%. `--true`: the TRUE cameras and TRUE masks
instead (pose and mask error removed, geometry error left), scored in the GT frame without ICP.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.data import bench_root  # noqa: E402

CACHE = ROOT / "bench" / "output" / "dense_cache"


def cache(name: str) -> Path:
    from pipeline import ingest, segment, sfm

    d = bench_root() / "multiview" / name
    paths = sorted((d / "images").iterdir())
    photos = ingest.load_photos(paths, ingest.PRESETS["balanced"]).photos
    cfg = segment.preset("balanced", True)
    net = segment.saliency_net(cfg)
    masks = tuple(segment.segment_photo(p, cfg, net) for p in photos)
    poses = sfm.estimate_poses(photos, sfm.PRESETS["balanced"], device="cpu")
    CACHE.mkdir(parents=True, exist_ok=True)
    out = CACHE / f"{name}.pkl"
    out.write_bytes(pickle.dumps((photos, masks, poses)))
    return out


def true_inputs(name: str):
    """Photos, TRUE masks and TRUE cameras (GT frame, sparse points sampled on GT and table)."""
    import cv2
    import trimesh

    from pipeline.types import Camera, Mask, Photo, Poses

    d = bench_root() / "multiview" / name
    meta = json.loads((d / "cameras.json").read_text())
    photos, masks, cams = [], [], []
    for i, fr in enumerate(meta["frames"]):
        rgb = cv2.cvtColor(cv2.imread(str(d / fr["file"])), cv2.COLOR_BGR2RGB)
        h, w = rgb.shape[:2]
        photos.append(Photo(Path(fr["file"]).name, i, rgb, None, None, (w, h)))
        masks.append(Mask(cv2.imread(str(d / fr["mask"]), cv2.IMREAD_GRAYSCALE) > 127, 0.9, False, "true"))
        cams.append(Camera(np.array(fr["K"]), np.array(fr["R"]), np.array(fr["t"]), w, h))
    rng = np.random.default_rng(0)
    gt = trimesh.load(d / "gt.ply", force="mesh")
    size = float(np.linalg.norm(gt.extents))
    r = np.sqrt(rng.uniform(0, 1, 3000)) * 3 * size
    a = rng.uniform(0, 2 * np.pi, 3000)
    table = np.stack([r * np.cos(a), np.zeros(3000), r * np.sin(a)], axis=1)
    pts = np.concatenate([np.asarray(gt.sample(1500)), table])
    poses = Poses(tuple(cams), pts, np.zeros((len(pts), 3), np.uint8), tuple(np.zeros(0, np.int32) for _ in pts), 0.5)
    return photos, tuple(masks), poses


def seen_scores(vertices: np.ndarray, faces: np.ndarray, name: str, align: bool, n: int = 100_000) -> dict:
    """Seen F@1/2/5% after the protocol's ICP alignment (or none: already in the GT frame), plus
    precision p1 and recall r1 at 1%, and the alignment matrix."""
    import trimesh

    from bench.eval import evaluate, load_mesh, point_metrics, sample_surface

    d = bench_root() / "multiview" / name
    gm = load_mesh(d / "gt.ply")
    seen = np.asarray(trimesh.load(str(d / "gt_seen_points.ply"), process=False).vertices, float)
    m = np.eye(4)
    if align:
        m = evaluate((vertices, faces), d / "gt.ply", n_points=20_000, aligned=True, iou=False).alignment.matrix
    rng = np.random.default_rng(0)
    p = sample_surface(load_mesh((vertices, faces)), n, rng)
    g = sample_surface(gm, n, rng)
    p = p @ m[:3, :3].T + m[:3, 3]
    taus = (0.01, 0.02, 0.05)
    prec = point_metrics(p, g, gm.diagonal, taus)[2]
    rec = point_metrics(p, seen, gm.diagonal, taus)[3]
    out = {f"sf{t * 100:g}": 2 * prec[t] * rec[t] / max(prec[t] + rec[t], 1e-12) for t in taus}
    out.update(p1=prec[0.01], r1=rec[0.01])
    return out, m


def _value(text: str, like):
    if isinstance(like, bool):
        return text.lower() in ("1", "true", "yes")
    return type(like)(text)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("cache", "run"))
    ap.add_argument("objects", nargs="+")
    ap.add_argument("--set", nargs="*", default=[], help="DenseConfig overrides, field=value")
    ap.add_argument("--preset", default="balanced")
    ap.add_argument("--true", action="store_true", help="TRUE cameras and masks")
    ap.add_argument("--save", default="")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    if args.mode == "cache":
        for name in args.objects:
            t0 = time.perf_counter()
            print(name, cache(name), f"{time.perf_counter() - t0:.0f} s", flush=True)
        return
    from pipeline import dense

    cfg = dense.PRESETS[args.preset]
    kinds = {f.name: getattr(cfg, f.name) for f in fields(cfg)}
    over = dict(kv.split("=", 1) for kv in args.set)
    cfg = replace(cfg, **{k: _value(v, kinds[k]) for k, v in over.items()})
    for name in args.objects:
        if args.true:
            photos, masks, poses = true_inputs(name)
        else:
            photos, masks, poses = pickle.loads((CACHE / f"{name}.pkl").read_bytes())
        t0, c0 = time.perf_counter(), time.process_time()
        shape, _ = dense.reconstruct_dense(photos, masks, poses, cfg, device=args.device)
        secs, cpu = time.perf_counter() - t0, time.process_time() - c0
        res, m = seen_scores(shape.vertices, shape.faces, name, align=not args.true)
        print(f"{name:12s} " + " ".join(f"{k}={v:.3f}" for k, v in res.items())
              + f" seconds={secs:.1f} cpu_s={cpu:.1f} tris={len(shape.faces)} {' '.join(args.set)}", flush=True)
        if args.save:
            import trimesh

            Path(args.save).mkdir(parents=True, exist_ok=True)
            v = shape.vertices @ m[:3, :3].T + m[:3, 3]
            trimesh.Trimesh(v, shape.faces, process=False).export(Path(args.save) / f"{name}.ply")


if __name__ == "__main__":
    main()
