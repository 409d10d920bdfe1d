"""How well can any reconstruction from these photos do? Two ceilings per multi-view bench object.

    python -m bench.ceiling [--objects chair,boombox] [--grid 220]

- seen: the share of the true surface (area-weighted samples) that at least one camera sees
  unobstructed. Surface no photo sees can only be guessed.
- hull: the exact visual hull of the true outlines (every true mask, the true cameras, no vote,
  `--grid` voxels on the long side), scored with the benchmark's own protocol (bench/eval.py).
  It is the best silhouettes alone can do; photo-consistency can only add concavities the photos
  show, so where the hull is limited by surface no camera sees, nothing will do much better.

Prints one line per object and writes bench/output/ceiling.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a plain script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.data import bench_root  # noqa: E402
from bench.single import OUTPUT  # noqa: E402

OBJECTS = ("avocado", "banana", "boombox", "chair", "waterbottle")


def bench_cameras(cameras_json: dict) -> list:
    """The bench's cameras.json frames (x_cam = R x + t, OpenCV axes) as pipeline Cameras."""
    from pipeline.types import Camera

    w, h = int(cameras_json["width"]), int(cameras_json["height"])
    return [Camera(np.asarray(f["K"], float), np.asarray(f["R"], float), np.asarray(f["t"], float), w, h)
            for f in cameras_json["frames"]]


def seen_counts(vertices: np.ndarray, faces: np.ndarray, centres: np.ndarray, n: int = 8000,
                seed: int = 0) -> np.ndarray:
    """(n,) int: for area-weighted samples of the surface, how many cameras see each unobstructed.

    A sample on a closed surface facing away from a camera is obstructed by the surface itself,
    so no normals are needed (the bench's scanned meshes are not all consistently oriented)."""
    import trimesh

    mesh = trimesh.Trimesh(vertices, faces, process=False)
    pts, _ = trimesh.sample.sample_surface(mesh, n, seed=seed)
    eps = 1e-5 * float(np.linalg.norm(mesh.extents))
    ray = trimesh.ray.ray_triangle.RayMeshIntersector(mesh)
    count = np.zeros(len(pts), int)
    for c in centres:
        d = c - pts
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        count += ~ray.intersects_any(pts + eps * d, d)
    return count


def exact_hull(masks: list[np.ndarray], cams: list, lo: np.ndarray, hi: np.ndarray,
               grid: int) -> tuple[np.ndarray, np.ndarray]:
    """Mesh (vertices (N, 3), faces (M, 3)) of the points in [lo, hi] (world box) inside every
    mask (H, W) bool of its camera, outward faces, by marching cubes on a `grid`-voxel (long
    side) occupancy grid."""
    from skimage import measure

    from pipeline.geom import project

    voxel = float((hi - lo).max()) / grid
    axes = [lo[i] + voxel * np.arange(int(np.ceil((hi[i] - lo[i]) / voxel)) + 1) for i in range(3)]
    shape = tuple(len(a) for a in axes)
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    occ = np.ones(len(pts), bool)
    for m, cam in zip(masks, cams):
        uv, z = project(cam, pts)
        u, v = np.round(uv[:, 0]).astype(int), np.round(uv[:, 1]).astype(int)
        ok = (z > 0) & (u >= 0) & (v >= 0) & (u < m.shape[1]) & (v < m.shape[0])
        keep = np.zeros(len(pts), bool)
        keep[ok] = m[v[ok], u[ok]]
        occ &= keep
    vol = np.pad(occ.reshape(shape).astype(np.float32), 1)
    if not vol.any():
        return np.zeros((0, 3)), np.zeros((0, 3), int)
    verts, faces, _, _ = measure.marching_cubes(vol, 0.5)
    return (verts - 1) * voxel + lo, faces[:, ::-1]  # outward: occupancy falls outwards


def ceiling(case: Path, grid: int) -> dict:
    import cv2
    import trimesh

    from bench.eval import evaluate

    gt = trimesh.load(case / "gt.ply", force="mesh")
    meta = json.loads((case / "cameras.json").read_text())
    cams = bench_cameras(meta)
    counts = seen_counts(np.asarray(gt.vertices), np.asarray(gt.faces), np.array([c.center for c in cams]))
    seen = float((counts >= 1).mean())
    masks = [cv2.imread(str(case / f["mask"]), cv2.IMREAD_GRAYSCALE) > 127 for f in meta["frames"]]
    lo, hi = gt.bounds[0].copy(), gt.bounds[1].copy()
    pad = 0.05 * float((hi - lo).max())
    lo, hi = lo - pad, hi + pad
    lo[1] = gt.bounds[0][1]  # the table: the hull stops where the item stands
    v, f = exact_hull(masks, cams, lo, hi, grid)
    ev = evaluate((v, f), (np.asarray(gt.vertices), np.asarray(gt.faces)), aligned=True, iou=False)
    return {
        "name": case.name,
        "seen_share": seen,
        "seen_by_2_share": float((counts >= 2).mean()),
        # Precision 1 and recall = the seen share: the best F of a method that never guesses.
        "seen_only_f": 2 * seen / (1 + seen),
        "hull_f1_as_is": ev.as_is.fscore[0.01],
        "hull_f1_aligned": ev.aligned.fscore[0.01],
        "hull_f5_as_is": ev.as_is.fscore[0.05],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--objects", default=",".join(OBJECTS))
    ap.add_argument("--grid", type=int, default=220)
    ns = ap.parse_args(argv)
    rows = []
    for name in ns.objects.split(","):
        case = bench_root() / "multiview" / name
        if not (case / "gt.ply").is_file():
            print(f"{name}: no ground truth at {case}", flush=True)
            continue
        r = ceiling(case, ns.grid)
        rows.append(r)
        print(f"{name:12s} surface seen by a camera {r['seen_share']:.3f} (by 2+: {r['seen_by_2_share']:.3f}); "
              f"exact true-outline hull F@1% {r['hull_f1_as_is']:.3f} as-is / {r['hull_f1_aligned']:.3f} aligned, "
              f"F@5% {r['hull_f5_as_is']:.3f}", flush=True)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    (OUTPUT / "ceiling.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
