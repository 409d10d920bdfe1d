"""The reliability bench: faults a merchant's server meets, tried against real server processes.

    python bench/faults.py                 # every probe (about 10 minutes on 2 cores)
    python bench/faults.py --quick         # the quick subset (about 3 minutes)
    python bench/faults.py --only "full disk" --json bench/output/faults.json

Each probe starts real `python -m webapp serve` processes on free loopback ports, each with a
fresh temporary data folder, does one kind of damage and checks what a merchant and a shopper
would see. One table row per probe (what was done, what is expected, what was observed,
PASS/FAIL, models lost), then the load figures, then one summary line:

    probes: N tried, P passed, models lost: L, tracebacks in logs: T

The exit code is 1 when any probe failed. A probe that cannot run here (no tmpfs mount, no
Chromium) is a FAIL with the reason, never a pass. Every probe has a wall-clock budget; servers,
job children, `make` runs and mounts are cleaned up whatever happens.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

if __package__ in (None, ""):  # run as a plain script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.data import bench_root
from bench.faults_data import database_wipe, full_disk, kill_publish
from bench.faults_http import bad_inputs, load, oversize_upload
from bench.faults_jobs import job_time_limit, kill_server_mid_job, two_servers
from bench.faults_lib import Context, Probe, ProbeTimeout, kill_strays

#: name -> (probe, in --quick, wall-clock budget in seconds)
PROBES = {
    "database wipe": (database_wipe, True, 600),
    "full disk": (full_disk, True, 300),
    "kill -9 server mid-job": (kill_server_mid_job, False, 300),
    "kill -9 publish": (kill_publish, True, 400),
    "two servers": (two_servers, True, 180),
    "oversize upload": (oversize_upload, True, 400),
    "job time limit": (job_time_limit, False, 240),
    "load": (load, False, 300),
    "bad HTTP inputs": (bad_inputs, True, 180),
}


def _alarm(_signum, _frame):
    raise ProbeTimeout("the probe ran past its time budget")


def run_probe(name: str, ctx: Context) -> Probe:
    fn, _, budget = PROBES[name]
    t0 = time.monotonic()
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(budget)
    try:
        probe = fn(ctx)
    except BaseException as error:  # the harness tripped: a FAIL with the reason, then go on
        if isinstance(error, KeyboardInterrupt):
            raise
        traceback.print_exc(file=sys.stderr)
        probe = Probe(name, "-", "-")
        probe.fail(f"harness error: {type(error).__name__}: {error}")
    finally:
        signal.alarm(0)
        kill_strays(str(ctx.root))  # job children and `make` runs the probe left behind
    probe.seconds = time.monotonic() - t0
    return probe


def _cell(text: str) -> str:
    return str(text).replace("|", "/").replace("\n", " ")


def print_table(probes: list[Probe]) -> None:
    print("| probe | what was done | expected | observed | result | lost | s |")
    print("|---|---|---|---|---|---|---|")
    for p in probes:
        print(f"| {p.name} | {_cell(p.done)} | {_cell(p.expected)} | {_cell(p.observed)} | "
              f"{'PASS' if p.passed else 'FAIL'} | {p.lost} | {p.seconds:.0f} |")


def print_details(probes: list[Probe]) -> None:
    for p in probes:
        print(f"\n{p.name}: {'PASS' if p.passed else 'FAIL'}")
        for ok, words in p.checks:
            print(f"  [{'ok' if ok else 'FAIL'}] {words}")
        for words in p.notes:
            print(f"  - {words}")


def print_load(probes: list[Probe]) -> None:
    probe = next((p for p in probes if p.figures.get("load")), None)
    if probe is None:
        return
    f = probe.figures
    print(f"\nLoad: {f['clients']} clients for {f['seconds']:.0f} s (server RSS {f['rss_mb']['idle']:.0f} MB idle, "
          f"{f['rss_mb']['peak']:.0f} MB peak)")
    print("| target | requests | req/s | p50 ms | p99 ms | errors |")
    print("|---|---|---|---|---|---|")
    for kind, v in f["load"].items():
        print(f"| {kind} | {v['requests']} | {v['rps']:.0f} | {v['p50_ms']:.0f} | {v['p99_ms']:.0f} | {v['errors']} |")
    print("\nUI response time (20 sequential requests each)")
    print("| request | idle p50 ms | idle p99 ms | job running p50 ms | job running p99 ms | errors |")
    print("|---|---|---|---|---|---|")
    for path, idle in f["ui_idle"].items():
        job = f["ui_job"].get(path, {"p50_ms": float("nan"), "p99_ms": float("nan"), "errors": 0})
        print(f"| GET {path} | {idle['p50_ms']:.0f} | {idle['p99_ms']:.0f} | {job['p50_ms']:.0f} | "
              f"{job['p99_ms']:.0f} | {idle['errors'] + job['errors']} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="the quick subset, fewer variants (about 3 minutes)")
    ap.add_argument("--only", action="append", metavar="NAME", choices=sorted(PROBES),
                    help="run only this probe (repeatable): " + ", ".join(PROBES))
    ap.add_argument("--json", metavar="OUT", help="write the results as JSON here")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folders (logs, data) for a look")
    ns = ap.parse_args(argv)
    names = ns.only or [n for n, (_, quick, _) in PROBES.items() if quick or not ns.quick]
    root = Path(tempfile.mkdtemp(prefix="plinth-faults-"))
    ctx = Context(root=root, bench=bench_root(), quick=ns.quick)
    probes: list[Probe] = []
    try:
        for name in names:
            print(f"... {name}", file=sys.stderr, flush=True)
            probes.append(run_probe(name, ctx))
            print(f"    {'PASS' if probes[-1].passed else 'FAIL'} in {probes[-1].seconds:.0f} s",
                  file=sys.stderr, flush=True)
    finally:
        kill_strays(str(root))
        if ns.keep:
            print(f"temporary folders kept in {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    print_table(probes)
    print_load(probes)
    print_details(probes)
    passed = sum(p.passed for p in probes)
    lost = sum(p.lost for p in probes)
    tracebacks = sum(p.tracebacks for p in probes)
    print(f"\nprobes: {len(probes)} tried, {passed} passed, models lost: {lost}, tracebacks in logs: {tracebacks}")
    if ns.json:
        Path(ns.json).parent.mkdir(parents=True, exist_ok=True)
        Path(ns.json).write_text(json.dumps([{
            "probe": p.name, "done": p.done, "expected": p.expected, "observed": p.observed, "passed": p.passed,
            "lost": p.lost, "tracebacks": p.tracebacks, "seconds": round(p.seconds, 1),
            "checks": [{"ok": ok, "words": w} for ok, w in p.checks], "notes": p.notes, "figures": p.figures,
        } for p in probes], indent=1, default=str))
    return 0 if passed == len(probes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
