"""Check the dense stage on the multi-view bench objects with ground-truth cameras.

    python bench/dense_check.py [chair boombox ...] [--preset balanced] [--masks noisy|gt|grabcut|segment]
                                [--device cpu] [--save out_dir]

The GT cameras are moved by a random similarity (so nothing may rely on the GT frame), sparse
points are synthesised on the object and the table, and the masks are GT masks with errors added
(or GrabCut / the project's segmenter). Scores with the official protocol (bench/eval.py):
gt_F@x: in the GT frame (the applied similarity inverted), as-is (bbox bottom-centres matched);
raw_F@1%: same without moving anything; icp_F@x: after the protocol's ICP alignment;
deliv_F@x: as the mesh stage delivers it (finish_mesh at the true height, then its placement);
plus up/front errors, carved-mask IoU, seconds (wall and CPU) and peak memory.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.data import bench_root  # noqa: E402
from pipeline import geom  # noqa: E402
from pipeline.types import Camera, Mask, Photo, Poses  # noqa: E402

OBJECTS = ("chair", "boombox", "waterbottle", "banana", "avocado")


def random_similarity(rng: np.random.Generator) -> np.ndarray:
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    rot = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                    [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                    [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
    return geom.similarity(float(np.exp(rng.uniform(-1.5, 1.5))), rot, rng.normal(size=3) * 3)


def noisy_mask(m: np.ndarray, rng: np.random.Generator, blob: bool, cut: bool) -> np.ndarray:
    import cv2

    k = int(rng.integers(1, 4))
    ker = np.ones((2 * k + 1, 2 * k + 1), np.uint8)
    m8 = m.astype(np.uint8)
    m8 = cv2.dilate(m8, ker) if rng.random() < 0.5 else cv2.erode(m8, ker)
    h, w = m.shape
    if blob:  # a piece of background glued to the object
        ys, xs = np.nonzero(m)
        cx, cy = int(xs.max()) + int(rng.integers(-20, 20)), int(ys.mean())
        cv2.ellipse(m8, (cx, cy), (int(rng.integers(20, 60)), int(rng.integers(20, 60))), 0, 0, 360, 1, -1)
    if cut:  # a bite taken out of the object
        ys, xs = np.nonzero(m)
        j = int(rng.integers(len(xs)))
        cv2.circle(m8, (int(xs[j]), int(ys[j])), int(rng.integers(15, 40)), 0, -1)
    return m8.astype(bool)


def grabcut_mask(rgb: np.ndarray, gt: np.ndarray) -> np.ndarray:
    import cv2

    ys, xs = np.nonzero(gt)
    pad = 15
    rect = (max(0, xs.min() - pad), max(0, ys.min() - pad), 0, 0)
    rect = (rect[0], rect[1], min(gt.shape[1] - 1, xs.max() + pad) - rect[0], min(gt.shape[0] - 1, ys.max() + pad) - rect[1])
    m = np.zeros(gt.shape, np.uint8)
    bgd, fgd = np.zeros((1, 65)), np.zeros((1, 65))
    cv2.grabCut(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), m, rect, bgd, fgd, 3, cv2.GC_INIT_WITH_RECT)
    return (m == cv2.GC_FGD) | (m == cv2.GC_PR_FGD)


def load(name: str, mask_mode: str, rng: np.random.Generator):
    import cv2
    import trimesh

    d = bench_root() / "multiview" / name
    meta = json.loads((d / "cameras.json").read_text())
    sim = random_similarity(rng)
    s = np.cbrt(np.linalg.det(sim[:3, :3]))
    rot = sim[:3, :3] / s
    photos, masks, cams = [], [], []
    seg = None
    if mask_mode == "segment":
        from pipeline import segment

        seg = segment
    blob_views = set(rng.choice(36, 3, replace=False).tolist())
    cut_views = set(rng.choice(36, 2, replace=False).tolist())
    for i, fr in enumerate(meta["frames"]):
        rgb = cv2.cvtColor(cv2.imread(str(d / fr["file"])), cv2.COLOR_BGR2RGB)
        h, w = rgb.shape[:2]
        photo = Photo(Path(fr["file"]).name, i, rgb, None, None, (w, h))
        photos.append(photo)
        gt = cv2.imread(str(d / fr["mask"]), cv2.IMREAD_GRAYSCALE) > 127
        if mask_mode == "gt":
            m = gt
        elif mask_mode == "grabcut":
            m = grabcut_mask(rgb, gt)
        elif mask_mode == "segment":
            masks.append(seg.segment_photo(photo, seg.PRESETS["balanced"]))
            m = None
        else:
            m = noisy_mask(gt, rng, i in blob_views, i in cut_views)
        if m is not None:
            masks.append(Mask(m, 0.8, False, mask_mode))
        R0, t0 = np.array(fr["R"]), np.array(fr["t"])
        # x_cam = R0 x + t0 and y = s rot x + T  =>  x_cam = R0 rot^T (y - T)/s + t0; scale the camera frame by s.
        R = R0 @ rot.T
        t = s * t0 - R @ sim[:3, 3]
        cams.append(Camera(np.array(fr["K"]), R, t, w, h))
    gt_mesh = trimesh.load(d / "gt.ply", force="mesh")
    obj_pts = gt_mesh.sample(1500)
    size = float(np.linalg.norm(gt_mesh.extents))
    r = np.sqrt(rng.uniform(0, 1, 3000)) * 3 * size
    a = rng.uniform(0, 2 * np.pi, 3000)
    table = np.stack([r * np.cos(a), rng.normal(0, 0.0005, 3000), r * np.sin(a)], axis=1)
    a = rng.uniform(0, 2 * np.pi, 800)
    backdrop = np.stack([4 * size * np.cos(a), rng.uniform(0, 3 * size, 800), 4 * size * np.sin(a)], axis=1)
    pts = geom.apply(sim, np.concatenate([obj_pts, table, backdrop]))
    poses = Poses(tuple(cams), pts, np.zeros((len(pts), 3), np.uint8), tuple(np.zeros(0, np.int32) for _ in pts), 0.5)
    return photos, masks, poses, sim, gt_mesh


def fscores(pred_pts: np.ndarray, gt_pts: np.ndarray, diag: float) -> dict[str, float]:
    from scipy.spatial import cKDTree

    d1, _ = cKDTree(gt_pts).query(pred_pts)
    d2, _ = cKDTree(pred_pts).query(gt_pts)
    out = {"chamfer_rel": float((d1.mean() + d2.mean()) / 2 / diag)}
    for pct in (1, 2, 5):
        t = pct / 100 * diag
        p, r = (d1 < t).mean(), (d2 < t).mean()
        out[f"F@{pct}%"] = float(2 * p * r / max(p + r, 1e-12))
    return out


def evaluate(shape, sim, gt_mesh, n: int = 100_000) -> dict[str, float]:
    """Official protocol (bench/eval.py): GT frame (similarity undone) with ICP, and as delivered
    by the mesh stage (finish_mesh at the true height, then its placement)."""
    sys.path.insert(0, str(ROOT / "bench"))
    from eval import evaluate as official

    from pipeline import mesh as mesh_stage
    from pipeline.types import KnownSize

    inv = np.linalg.inv(sim)
    gt = (np.asarray(gt_mesh.vertices), np.asarray(gt_mesh.faces))
    in_gt = (geom.apply(inv, shape.vertices), shape.faces)
    ev = official(in_gt, gt, n_points=n, aligned=True, iou=False)
    res = {f"gt_F@{t * 100:g}%": ev.as_is.fscore[t] for t in (0.01, 0.02, 0.05)}
    # In the GT frame, as_is only moves bbox bottom-centres: check without that too.
    from eval import load_mesh, point_metrics, sample_surface

    rng = np.random.default_rng(0)
    p_pts = sample_surface(load_mesh(in_gt), n, rng)
    g_pts = sample_surface(load_mesh(gt), n, rng)
    _, f, _, _ = point_metrics(p_pts, g_pts, ev.gt_diag_m, (0.01, 0.05))
    res["raw_F@1%"] = f[0.01]
    res["icp_F@1%"] = ev.aligned.fscore[0.01]
    res["icp_F@2%"] = ev.aligned.fscore[0.02]
    h = float(gt_mesh.extents[1])
    m = mesh_stage.finish_mesh(shape, KnownSize("height", h), "floor", mesh_stage.PRESETS["balanced"])
    delivered = (geom.apply(m.placement, m.vertices), m.faces)
    ev2 = official(delivered, gt, n_points=n, aligned=False, iou=False)
    res["deliv_F@1%"] = ev2.as_is.fscore[0.01]
    res["deliv_F@5%"] = ev2.as_is.fscore[0.05]
    true_up = inv[:3, :3].T @ np.array([0, 1.0, 0])  # GT +Y in the SfM frame (direction only)
    true_up /= np.linalg.norm(true_up)
    res["up_err_deg"] = float(np.degrees(np.arccos(np.clip(shape.up @ true_up, -1, 1))))
    true_front = inv[:3, :3].T @ np.array([0, 0, 1.0])
    true_front /= np.linalg.norm(true_front)
    res["front_err_deg"] = float(np.degrees(np.arccos(np.clip(shape.front @ true_front, -1, 1))))
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("objects", nargs="*", default=list(OBJECTS))
    ap.add_argument("--preset", default="balanced")
    ap.add_argument("--masks", default="noisy", choices=("noisy", "gt", "grabcut", "segment"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--save", default="")
    args = ap.parse_args()
    from pipeline import dense

    cfg = dense.PRESETS[args.preset]
    for name in args.objects:
        rng = np.random.default_rng(args.seed)
        photos, masks, poses, sim, gt_mesh = load(name, args.masks, rng)
        t0, c0 = time.perf_counter(), time.process_time()
        shape, new_masks = dense.reconstruct_dense(photos, masks, poses, cfg, device=args.device)
        secs, cpu = time.perf_counter() - t0, time.process_time() - c0
        res = evaluate(shape, sim, gt_mesh)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        ious = []
        d = bench_root() / "multiview" / name
        import cv2

        for i, m in enumerate(new_masks):
            gt = cv2.imread(str(d / "masks" / f"{i:03d}.png"), cv2.IMREAD_GRAYSCALE) > 127
            ious.append((m.mask & gt).sum() / max((m.mask | gt).sum(), 1))
        print(f"{name:12s} " + " ".join(f"{k}={v:.3f}" for k, v in res.items())
              + f" mask_iou={np.mean(ious):.3f} min_iou={np.min(ious):.3f} tris={len(shape.faces)}"
              + f" seconds={secs:.1f} cpu_s={cpu:.1f} peak_rss_mb={peak:.0f} sides={','.join(shape.seen_sides)}", flush=True)
        if args.save:
            import trimesh

            Path(args.save).mkdir(parents=True, exist_ok=True)
            v = geom.apply(np.linalg.inv(sim), shape.vertices)
            trimesh.Trimesh(v, shape.faces).export(Path(args.save) / f"{name}.ply")


if __name__ == "__main__":
    main()
