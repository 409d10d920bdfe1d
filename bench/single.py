"""Single-photo benchmark: every `single/<name>/image.jpg` of the bench through `pipeline.reconstruct`.

    python -m bench.single [--objects banana,chair] [--device cpu] [--quality balanced]

Each case runs in its own child process, so its wall time and peak memory (ru_maxrss) are its own
and a crash or hang in one case does not stop the others. Prints a table to stdout and writes
`bench/output/single/results.json` (models and logs beside it).

Also holds the helpers `bench/multiview.py` shares (bench path, child runner, table printer).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Callable, Sequence

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "bench" / "output"
if str(ROOT) not in sys.path:  # run as a plain script: make `pipeline` and `bench` importable
    sys.path.insert(0, str(ROOT))

from bench.data import bench_root  # noqa: E402


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------------------------
# child runner


def run_child(module: str, args: Sequence[str], log: Path, timeout_s: float) -> tuple[dict, float]:
    """Run `python -m module --worker ... --json FILE args` and return (its JSON, peak RSS MB).

    The JSON is {"error": "one line"} when the child failed, hung or wrote nothing; the peak RSS
    comes from wait4 on that one child, so it covers the whole case including native allocations.
    """
    result = log.with_suffix(".json")
    result.unlink(missing_ok=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, "--worker", "--json", str(result), *args],
            cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout_s
        status, usage = 0, None
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                _, status, usage = os.wait4(proc.pid, 0)
                proc.returncode = -9
                return {"error": f"timed out after {timeout_s:.0f} s"}, usage.ru_maxrss / 1024
            time.sleep(0.2)
        proc.returncode = os.waitstatus_to_exitcode(status)
    rss = usage.ru_maxrss / 1024
    if result.is_file():
        return json.loads(result.read_text()), rss
    tail = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()][-1:] or ["no output"]
    return {"error": f"exit code {proc.returncode}: {tail[0][:200]}"}, rss


def worker_main(fn: Callable[[argparse.Namespace], dict], ns: argparse.Namespace) -> None:
    """Child side: run `fn`, write its dict (or {"error": one line}) to ns.json."""
    try:
        payload = fn(ns)
    except Exception as exc:  # report every failure as one line; the log keeps the traceback
        traceback.print_exc()
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        payload = {"error": f"{type(exc).__name__}: {msg}"[:300]}
    Path(ns.json).write_text(json.dumps(payload, indent=1, default=_jsonable))


def _jsonable(obj):
    import numpy as np

    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    return str(obj)


# --------------------------------------------------------------------------------------------
# tables


def fmt(value, spec: str = ".3f") -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    return format(value, spec) if isinstance(value, (int, float)) else str(value)


def print_table(rows: list[dict], columns: list[tuple[str, str, str]], mean_label: str = "mean") -> None:
    """Plain aligned table. `columns`: (key, header, format); a final row averages numeric columns
    over the rows that have them."""
    cells = [[h for _, h, _ in columns]]
    for r in rows:
        cells.append([fmt(r.get(k), f) for k, _, f in columns])
    mean_row = []
    for i, (k, _, f) in enumerate(columns):
        vals = [r[k] for r in rows if isinstance(r.get(k), (int, float)) and r.get(k) == r.get(k)]
        mean_row.append(mean_label if i == 0 else (fmt(sum(vals) / len(vals), f) if vals else "-"))
    if len(rows) > 1:
        cells.append(mean_row)
    widths = [max(len(c[i]) for c in cells) for i in range(len(columns))]
    for j, c in enumerate(cells):
        print("  ".join(s.rjust(w) if i else s.ljust(w) for i, (s, w) in enumerate(zip(c, widths))))
        if j == 0:
            print("  ".join("-" * w for w in widths))


def metric_columns(thresholds: Sequence[float] = (0.01, 0.02, 0.05, 0.10)) -> list[tuple[str, str, str]]:
    """Columns for the flattened evaluation keys that `flatten_eval` writes."""
    cols = []
    for mode, tag in (("as_is", "as-is"), ("aligned", "al")):
        cols.append((f"{mode}_cd_pct", f"{tag} CD%", ".2f"))
        cols += [(f"{mode}_f{t * 100:g}", f"{tag} F@{t * 100:g}", ".3f") for t in thresholds]
        cols.append((f"{mode}_iou", f"{tag} IoU", ".3f"))
    return cols


def flatten_eval(ev: dict) -> dict:
    """The few numbers of an `Evaluation.to_dict()` that go in a table row."""
    out = {"scale_ratio": ev["as_is"]["scale_ratio"]}
    for mode in ("as_is", "aligned"):
        m = ev.get(mode)
        if not m:
            continue
        out[f"{mode}_cd_pct"] = 100 * m["chamfer_rel"]
        out[f"{mode}_cd_mm"] = 1000 * m["chamfer_m"]
        out[f"{mode}_iou"] = m["iou"]
        for t, f in m["fscore"].items():
            out[f"{mode}_f{float(t) * 100:g}"] = f
    return out


# --------------------------------------------------------------------------------------------
# the single-photo cases


def mask_iou(image: Path, gt_mask: Path, quality: str) -> tuple[float, float]:
    """IoU of the pipeline's segmentation of `image` with the GT mask; also the segmenter's confidence."""
    import numpy as np
    from PIL import Image

    from dataclasses import replace

    from pipeline import ingest, segment

    photo = ingest.load_photos([image], ingest.PRESETS[quality]).photos[0]
    # As the single-photo path runs it (pipeline/orchestrator.py): with U²-Net-p when installed.
    m = segment.segment_photo(photo, replace(segment.PRESETS[quality], saliency=True))
    gt = np.asarray(Image.open(gt_mask).convert("L")) > 127
    pred = m.mask
    if pred.shape != gt.shape:  # working size differs from the file: compare at the GT's size
        pred = np.asarray(Image.fromarray(pred.astype(np.uint8) * 255).resize(gt.shape[::-1], Image.NEAREST)) > 127
    union = np.count_nonzero(pred | gt)
    return (float(np.count_nonzero(pred & gt) / union) if union else 0.0), float(m.confidence)


def run_single_case(ns: argparse.Namespace) -> dict:
    """Child side of one case: reconstruct, then score (the scoring is not in the timing)."""
    from bench.eval import evaluate
    from pipeline.orchestrator import Options, reconstruct
    from pipeline.types import KnownSize

    case = Path(ns.case)
    meta = json.loads((case / "meta.json").read_text())
    out_glb = Path(ns.out) / f"{case.name}.glb"
    opts = Options(size=KnownSize("height", float(meta["bbox_size_m"][1])), quality=ns.quality)
    t0 = time.perf_counter()
    if ns.dry_run:
        res = stand_in(case / "gt.ply", out_glb)
    else:
        res = reconstruct([case / "image.jpg"], out_glb, opts, device=ns.device)
    seconds = time.perf_counter() - t0
    row = {
        "name": case.name,
        "seconds": seconds,
        "peak_rss_mb": peak_rss_mb(),  # pipeline only: read before scoring
        "seconds_per_stage": res.report.seconds_per_stage,
        "triangles": res.exports.triangles,
        "glb_kb": res.exports.glb_bytes / 1024,
        "kind": res.report.kind,
        "dimensions_m": list(res.report.dimensions_m),
        "warnings": list(res.report.warnings),
        "glb": res.exports.glb,
    }
    try:
        if ns.dry_run:
            raise RuntimeError("dry run")
        row["mask_iou"], row["mask_confidence"] = mask_iou(case / "image.jpg", case / "mask.png", ns.quality)
    except Exception as exc:  # the model is still worth scoring
        row["mask_error"] = f"{type(exc).__name__}: {exc}"
    ev = evaluate(res.exports.glb, case / "gt.ply", n_points=ns.points)
    row["eval"] = ev.to_dict()
    row.update(flatten_eval(row["eval"]))
    return row


def stand_in(gt_ply: Path, out_glb: Path):
    """Dry run: a GT-derived model (5 % too large, yawed 10 deg) written as GLB, shaped like a
    pipeline Result, so the harness and the scoring can be checked without the pipeline."""
    from types import SimpleNamespace

    import numpy as np
    import trimesh

    if not gt_ply.is_file():
        raise FileNotFoundError(f"dry run needs {gt_ply.name}")
    m = trimesh.load(str(gt_ply), force="mesh")
    a = np.radians(10)
    m.apply_transform(np.diag([1.05, 1.05, 1.05, 1.0]) @ [[np.cos(a), 0, np.sin(a), 0], [0, 1, 0, 0],
                                                          [-np.sin(a), 0, np.cos(a), 0], [0, 0, 0, 1]])
    out_glb.parent.mkdir(parents=True, exist_ok=True)
    m.export(out_glb)
    size = m.bounds[1] - m.bounds[0]
    exports = SimpleNamespace(glb=str(out_glb), triangles=len(m.faces), glb_bytes=out_glb.stat().st_size,
                              poster="", usdz="")
    report = SimpleNamespace(seconds_per_stage={}, kind="dry-run", dimensions_m=tuple(size), warnings=(),
                             photos_placed=0, photos_total=0, summary="dry run",
                             reprojection_error_px=None)
    return SimpleNamespace(exports=exports, report=report)


def select_cases(folder: Path, objects: str) -> list[Path]:
    cases = sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    return pick_cases(cases, objects, folder)


def pick_cases(cases: list[Path], objects: str, where: Path) -> list[Path]:
    """The cases named in `objects` ("a,b"; empty: all); an unknown name stops the run."""
    if objects:
        wanted = [o.strip() for o in objects.split(",") if o.strip()]
        missing = [w for w in wanted if not any(c.name == w for c in cases)]
        if missing:
            raise SystemExit(f"unknown object(s) {', '.join(missing)} in {where}")
        cases = [c for c in cases if c.name in wanted]
    return cases


SINGLE_COLUMNS = [
    ("name", "object", ""),
    ("seconds", "sec", ".1f"),
    ("peak_rss_mb", "peak MB", ".0f"),
    ("mask_iou", "mask IoU", ".3f"),
    ("triangles", "tris", ".0f"),
    ("glb_kb", "GLB KB", ".0f"),
    ("scale_ratio", "scale", ".2f"),
    *metric_columns(),
]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Single-photo benchmark of pipeline.reconstruct on the bench data.")
    ap.add_argument("--objects", default="", help="comma-separated names (default: all)")
    ap.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda (default: auto)")
    ap.add_argument("--quality", default="balanced", choices=("fast", "balanced", "high"))
    ap.add_argument("--points", type=int, default=100_000, help="surface samples for the metrics")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per case")
    ap.add_argument("--dry-run", action="store_true", help="score a GT-derived stand-in, no pipeline")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--json", help=argparse.SUPPRESS)
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(OUTPUT / "single"), help="folder for models, logs, results.json")
    ns = ap.parse_args(argv)
    if ns.worker:
        worker_main(run_single_case, ns)
        return 0

    out = Path(ns.out)
    out.mkdir(parents=True, exist_ok=True)
    cases = select_cases(bench_root() / "single", ns.objects)
    if not cases:
        print(f"no cases under {bench_root() / 'single'} (set PLINTH_BENCH)", file=sys.stderr)
        return 1
    rows = []
    for case in cases:
        args = ["--case", str(case), "--out", str(out), "--quality", ns.quality, "--points", str(ns.points)]
        if ns.device:
            args += ["--device", ns.device]
        if ns.dry_run:
            args.append("--dry-run")
        row, child_rss = run_child("bench.single", args, out / f"{case.name}.log", ns.timeout)
        row.setdefault("name", case.name)
        row["child_peak_rss_mb"] = child_rss  # whole child, scoring included
        if "error" in row:
            print(f"{case.name}: FAILED: {row['error']}  (log: {out / (case.name + '.log')})", flush=True)
        else:
            print(f"{case.name}: {row['seconds']:.1f} s, as-is F@5%={row.get('as_is_f5', 0):.3f}", flush=True)
        rows.append(row)
    (out / "results.json").write_text(json.dumps(rows, indent=1, default=_jsonable))
    if any("error" not in r for r in rows):
        print()
        print_table([r for r in rows if "error" not in r], SINGLE_COLUMNS)
    return print_summary(rows, out)


def print_summary(rows: list[dict], out: Path) -> int:
    """Closing lines of a bench run; returns the exit code (2 when a case failed)."""
    failed = [r["name"] for r in rows if "error" in r]
    print(f"\n{len(rows) - len(failed)} of {len(rows)} cases ran" + (f"; failed: {', '.join(failed)}" if failed else ""))
    print(f"results: {out / 'results.json'}")
    return 0 if not failed else 2


if __name__ == "__main__":
    sys.exit(main())
