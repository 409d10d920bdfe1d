"""Mask quality of the segment stage against the bench's ground-truth masks.

    python bench/masks.py [--quality balanced] [--step 1]

Reads the bench from $PLINTH_BENCH (default: ../shared/bench beside the repository). Prints, per
object, the IoU of the hero photo and the mean / min IoU over the multi-view photos (every
`--step`-th view), plus the mean confidence and seconds per photo (ingest excluded).
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
from pipeline import ingest, segment  # noqa: E402
from pipeline.errors import PlinthError  # noqa: E402


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(int((a | b).sum()), 1))


def measure(image: Path, gt_path: Path, quality: str) -> tuple[float, float, float]:
    """(IoU, confidence, seconds) for one photo; IoU 0 and confidence 0 when segmentation fails."""
    from PIL import Image

    photo = ingest.load_photos([image], ingest.PRESETS[quality]).photos[0]
    gt = np.asarray(Image.open(gt_path).convert("L").resize(photo.size, Image.NEAREST)) > 127
    t0 = time.perf_counter()
    try:
        m = segment.segment_photo(photo, segment.PRESETS[quality])
    except PlinthError as err:
        print(f"  {image}: {err}")
        return 0.0, 0.0, time.perf_counter() - t0
    return iou(m.mask, gt), m.confidence, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quality", default="balanced", choices=list(segment.PRESETS))
    ap.add_argument("--step", type=int, default=1, help="use every N-th multi-view photo")
    args = ap.parse_args(argv)
    root = bench_root()
    if not (root / "single").is_dir():
        print(f"bench not found at {root}; set PLINTH_BENCH", file=sys.stderr)
        return 2

    times: list[float] = []
    rows = []
    for obj in sorted(p.name for p in (root / "single").iterdir() if p.is_dir()):
        hero, hero_conf, dt = measure(root / "single" / obj / "image.jpg", root / "single" / obj / "mask.png", args.quality)
        times.append(dt)
        mv_iou, mv_conf = [], []
        mv = root / "multiview" / obj
        if mv.is_dir():
            for img in sorted((mv / "images").glob("*.jpg"))[:: args.step]:
                v, c, dt = measure(img, mv / "masks" / (img.stem + ".png"), args.quality)
                mv_iou.append(v)
                mv_conf.append(c)
                times.append(dt)
        rows.append((obj, hero, hero_conf, mv_iou, mv_conf))

    print(f"{'object':12s} {'hero IoU':>8s} {'conf':>5s} | {'views':>5s} {'mean IoU':>8s} {'min IoU':>7s} {'conf':>5s}")
    for obj, hero, hc, mv_iou, mv_conf in rows:
        if mv_iou:
            print(f"{obj:12s} {hero:8.3f} {hc:5.2f} | {len(mv_iou):5d} {np.mean(mv_iou):8.3f} "
                  f"{np.min(mv_iou):7.3f} {np.mean(mv_conf):5.2f}")
        else:
            print(f"{obj:12s} {hero:8.3f} {hc:5.2f} |     -")
    heroes = [r[1] for r in rows]
    views = [v for r in rows for v in r[3]]
    print(f"{'all':12s} {np.mean(heroes):8.3f}       | {len(views):5d} {np.mean(views) if views else 0:8.3f} "
          f"{np.min(views) if views else 0:7.3f}")
    print(f"segment time per photo: mean {np.mean(times):.2f} s, max {np.max(times):.2f} s ({args.quality})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
