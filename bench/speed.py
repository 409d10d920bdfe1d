"""Speed of the single-photo steps whose timings used to be asserted in unit tests.

    python -m bench.speed                              # all, 3 repeats, CPU
    python -m bench.speed --repeat 1 --objects avocado --device cuda
    python -m bench.speed --only bake

Seconds depend on the machine and on what else runs on it, so they are printed here, not asserted
in tests/ (tests/test_single_view.py and tests/test_texture.py check only behaviour):

* shape: `single_view.shape_from_photo` (balanced) for every bench single and every kind, from its
  true mask (what tests/test_single_view.py builds). Old unit-test budget: 2 s per shape.
* bake: the single-photo texture bake of tests/test_texture.py (the scene from tests/scenes.py:
  a painted sphere seen by one 400 x 300 camera; texture 1024, bake 512, balanced) per kind.
  Old unit-test budget: 20 s per bake.

Each case is run `--repeat` times in this process after one untimed warm-up (imports, caches);
the table gives the median, the fastest and the slowest run, and the median as a share of the old
budget. The load average before and after is printed with it: compare numbers taken on the same
machine under the same load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

if __package__ in (None, ""):  # run as a plain script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.data import bench_root  # noqa: E402
from bench.single import print_table  # noqa: E402

KINDS = ("auto", "flat", "box", "revolve", "round")
BAKE_KINDS = ("revolve", "box")
SHAPE_BUDGET_S, BAKE_BUDGET_S = 2.0, 20.0


def timed(fn: Callable[[], object], repeat: int) -> dict:
    """Median, min and max seconds of `repeat` calls of fn (after one untimed warm-up call)."""
    fn()
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(runs), "min_s": min(runs), "max_s": max(runs)}


def shape_rows(objects: list[str], repeat: int) -> list[dict]:
    import numpy as np
    from PIL import Image

    from pipeline import single_view
    from tests.scenes import mask, photo

    cfg = single_view.PRESETS["balanced"]
    rows = []
    for name in objects:
        folder = bench_root() / "single" / name
        rgb = np.asarray(Image.open(folder / "image.jpg").convert("RGB"))
        m = np.asarray(Image.open(folder / "mask.png").convert("L")) > 127
        pic, outline = photo(rgb, name="test.jpg"), mask(m)
        for kind in KINDS:
            row = timed(lambda p=pic, o=outline, k=kind: single_view.shape_from_photo(p, o, k, "floor", cfg), repeat)
            rows.append({"case": f"shape {name} {kind}", **row, "budget": row["median_s"] / SHAPE_BUDGET_S})
    return rows


def bake_rows(device: str, repeat: int) -> list[dict]:
    from pipeline import texture
    from tests.scenes import look_at_camera, make_inputs, sphere

    v, f = sphere()
    cam = look_at_camera((0.0, 0.05, 0.6), focal=600.0, width=400, height=300)
    cfg = replace(texture.PRESETS["balanced"], texture_size=1024, bake_size=512)
    rows = []
    for kind in BAKE_KINDS:
        mesh, photos, masks = make_inputs(v, f, [cam], kind=kind)
        row = timed(lambda m=mesh, p=photos, k=masks: texture.bake_texture(m, p, k, cfg, device=device), repeat)
        rows.append({"case": f"bake sphere {kind}", **row, "budget": row["median_s"] / BAKE_BUDGET_S})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per case (default 3)")
    ap.add_argument("--objects", default="", help="comma list of bench singles (default: all)")
    ap.add_argument("--device", default=os.environ.get("PLINTH_DEVICE", "cpu"), help="torch device for the bake")
    ap.add_argument("--only", choices=("shape", "bake"), help="run one group")
    ns = ap.parse_args(argv)
    singles = bench_root() / "single"
    objects = [o for o in ns.objects.split(",") if o] or sorted(p.name for p in singles.iterdir() if p.is_dir())
    missing = [o for o in objects if not (singles / o / "mask.png").is_file()]
    if ns.only != "bake" and (missing or not objects):
        print(f"no bench single {missing or ''} under {singles} (set PLINTH_BENCH)", file=sys.stderr)
        return 2
    load = os.getloadavg()[0]
    print(f"# {os.cpu_count()} CPUs, load average {load:.2f}; device {ns.device}; {ns.repeat} timed runs per case")
    columns = [("case", "case", ""), ("median_s", "median s", ".3f"), ("min_s", "min s", ".3f"),
               ("max_s", "max s", ".3f"), ("budget", "of old budget", ".0%")]
    if ns.only != "bake":
        print_table(shape_rows(objects, ns.repeat), columns, mean_label="mean shape")
        print()
    if ns.only != "shape":
        print_table(bake_rows(ns.device, ns.repeat), columns, mean_label="mean bake")
    print(f"# load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
