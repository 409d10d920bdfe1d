"""Multi-photo benchmark: every `multiview/<name>/images/*.jpg` (and `real/monstree`) through
`pipeline.reconstruct`.

    python -m bench.multiview [--objects chair,banana,monstree] [--photos 12] [--device cuda]

One child process per case (own wall time and peak memory; a failing case does not stop the
rest). Prints per-stage seconds, photos placed and the metrics (as delivered and aligned) to
stdout, and writes `bench/output/multiview/results.json` (models and logs beside it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Sequence

if __package__ in (None, ""):  # run as a plain script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.data import bench_root  # noqa: E402
from bench.single import (  # noqa: E402
    OUTPUT,
    _jsonable,
    flatten_eval,
    metric_columns,
    peak_rss_mb,
    pick_cases,
    print_summary,
    print_table,
    run_child,
    stand_in,
    worker_main,
)

REAL_CASES = ("monstree",)
STAGES = ("ingest", "segment", "poses", "geometry", "mesh", "texture", "export", "report")


def pick_photos(images: list[Path], n: int | None) -> list[Path]:
    """`n` photos spread evenly over the capture, photo 0 (the front view) always first."""
    if not n or n >= len(images):
        return images
    step = len(images) / n
    return [images[int(i * step)] for i in range(n)]


def run_multiview_case(ns: argparse.Namespace) -> dict:
    """Child side of one case: reconstruct with a stage timer, then score against gt.ply if any."""
    from bench.eval import evaluate
    from pipeline.orchestrator import Options, reconstruct
    from pipeline.types import KnownSize

    case = Path(ns.case)
    meta_path = case / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    images = sorted(p for p in (case / "images").iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    photos = pick_photos(images, ns.photos)
    size = KnownSize("height", float(meta["bbox_size_m"][1])) if "bbox_size_m" in meta else None
    out_glb = Path(ns.out) / f"{case.name}.glb"

    # Own stage clock from the progress callback, in case the report lacks seconds_per_stage.
    clock = {"stage": None, "t": time.perf_counter()}
    stage_s: dict[str, float] = {}

    def progress(stage: str, fraction: float, message: str) -> None:
        now = time.perf_counter()
        if clock["stage"] is not None:
            stage_s[clock["stage"]] = stage_s.get(clock["stage"], 0.0) + now - clock["t"]
        clock["stage"], clock["t"] = stage, now

    t0 = time.perf_counter()
    if ns.dry_run:
        res = stand_in(case / "gt.ply", out_glb)  # raises for cases without GT
    else:
        res = reconstruct(photos, out_glb, Options(size=size, quality=ns.quality), progress=progress, device=ns.device)
    seconds = time.perf_counter() - t0
    if clock["stage"] is not None:
        stage_s[clock["stage"]] = stage_s.get(clock["stage"], 0.0) + time.perf_counter() - clock["t"]
    rep = res.report
    row = {
        "name": case.name,
        "seconds": seconds,
        "peak_rss_mb": peak_rss_mb(),  # pipeline only: read before scoring
        "seconds_per_stage": dict(rep.seconds_per_stage) or stage_s,
        "photos_placed": rep.photos_placed,
        "photos_total": rep.photos_total,
        "placed": f"{rep.photos_placed}/{rep.photos_total}",
        "reprojection_error_px": rep.reprojection_error_px,
        "triangles": res.exports.triangles,
        "glb_kb": res.exports.glb_bytes / 1024,
        "dimensions_m": list(rep.dimensions_m),
        "warnings": list(rep.warnings),
        "glb": res.exports.glb,
        "poster": res.exports.poster,
    }
    for stage, s in row["seconds_per_stage"].items():
        row[f"t_{stage}"] = s
    if (case / "gt.ply").is_file():
        ev = evaluate(res.exports.glb, case / "gt.ply", n_points=ns.points)
        row["eval"] = ev.to_dict()
        row.update(flatten_eval(row["eval"]))
    return row


def select(objects: str) -> list[Path]:
    root = bench_root()
    cases = sorted(p for p in (root / "multiview").iterdir() if p.is_dir()) if (root / "multiview").is_dir() else []
    cases += [root / "real" / n for n in REAL_CASES if (root / "real" / n / "images").is_dir()]
    return pick_cases(cases, objects, root)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Multi-photo benchmark of pipeline.reconstruct on the bench data.")
    ap.add_argument("--objects", default="", help="comma-separated names, e.g. chair,banana,monstree (default: all)")
    ap.add_argument("--photos", type=int, default=None, help="use N photos spread evenly (quick runs)")
    ap.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda (default: auto)")
    ap.add_argument("--quality", default="balanced", choices=("fast", "balanced", "high"))
    ap.add_argument("--points", type=int, default=100_000, help="surface samples for the metrics")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per case")
    ap.add_argument("--out", default=str(OUTPUT / "multiview"), help="folder for models, logs, results.json")
    ap.add_argument("--dry-run", action="store_true", help="score a GT-derived stand-in, no pipeline")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--json", help=argparse.SUPPRESS)
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ns = ap.parse_args(argv)
    if ns.worker:
        worker_main(run_multiview_case, ns)
        return 0

    out = Path(ns.out)
    out.mkdir(parents=True, exist_ok=True)
    cases = select(ns.objects)
    if not cases:
        print(f"no cases under {bench_root()} (set PLINTH_BENCH)", file=sys.stderr)
        return 1
    rows = []
    for case in cases:
        args = ["--case", str(case), "--out", str(out), "--quality", ns.quality, "--points", str(ns.points)]
        if ns.photos:
            args += ["--photos", str(ns.photos)]
        if ns.device:
            args += ["--device", ns.device]
        if ns.dry_run:
            args.append("--dry-run")
        row, child_rss = run_child("bench.multiview", args, out / f"{case.name}.log", ns.timeout)
        row.setdefault("name", case.name)
        row["child_peak_rss_mb"] = child_rss
        if "error" in row:
            print(f"{case.name}: FAILED: {row['error']}  (log: {out / (case.name + '.log')})", flush=True)
        else:
            print(f"{case.name}: {row['seconds']:.1f} s, placed {row['placed']}", flush=True)
        rows.append(row)
    (out / "results.json").write_text(json.dumps(rows, indent=1, default=_jsonable))

    ok = [r for r in rows if "error" not in r]
    scored = [r for r in ok if "eval" in r]
    real = [r for r in ok if "eval" not in r]
    stages = [s for s in STAGES if any(f"t_{s}" in r for r in ok)]
    if ok:
        print("\nTime (s) and memory")
        print_table(ok, [("name", "object", ""), ("placed", "placed", ""), ("seconds", "total", ".1f"),
                         *[(f"t_{s}", s, ".1f") for s in stages], ("peak_rss_mb", "peak MB", ".0f"),
                         ("triangles", "tris", ".0f"), ("glb_kb", "GLB KB", ".0f")])
    if scored:
        print("\nAccuracy (CD in % of the GT bbox diagonal; as-is = as delivered, al = aligned)")
        print_table(scored, [("name", "object", ""), ("scale_ratio", "scale", ".2f"), *metric_columns()])
    for r in real:
        print(f"\n{r['name']} (no GT): placed {r['placed']} photos in {r['seconds']:.1f} s; poster: {r['poster']}")
    return print_summary(rows, out)


if __name__ == "__main__":
    sys.exit(main())
