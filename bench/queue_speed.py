"""Throughput of the RQ queue past one machine: N single-photo API jobs submitted at once, with 1
and with 2 `plinth worker` processes, on this machine (tests/cluster.py: a real redis-server,
PostgreSQL or one shared SQLite file, and moto's S3 server or a shared folder).

    .venv/bin/python -m bench.queue_speed                         # 20 jobs, Postgres + S3, 1 then 2 workers
    .venv/bin/python -m bench.queue_speed --jobs 6 --database sqlite --storage folder
    .venv/bin/python -m bench.queue_speed --workers 1,2,3 --device cpu

Prints one table: jobs per minute (first submit to last done), the median and 95th-percentile
seconds from submit to share URL, and the web server's response time (median, p95, max of GET
/healthz and of the sign-in page, a merchant page) sampled every 0.5 s while the jobs run; then
the ratio of the largest to the smallest worker count from the same run. Every run starts its own
services, server and workers (fresh folders under bench/output/queue/), so runs do not share state.
Each job is the bench's single-photo chair at the quickest quality, as tests/test_distributed.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# `python bench/queue_speed.py` puts bench/ first on the path, where this file would hide the standard
# `queue` module from everything imported below: the project root goes there instead.
if sys.path and Path(sys.path[0] or ".").resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)

import argparse
import concurrent.futures
import os
import shutil
import statistics
import time
from contextlib import ExitStack
from dataclasses import dataclass

from bench.data import bench_root
from tests.cluster import Cluster, Pinger, Shared, percentile
from tests.services import postgres_server, redis_server, s3_server

OUTPUT = ROOT / "bench" / "output" / "queue"
PATHS = ("/healthz", "/login")


@dataclass(frozen=True)
class Run:
    workers: int
    jobs: int
    done: int
    wall_s: float  # first submit to last job finished
    latency_s: tuple[float, ...]  # submit to share URL, per done job
    web: dict[str, tuple[float, float, float]]  # path -> (median, p95, max) seconds
    web_errors: int  # samples that were not a 200 (or got no answer)

    @property
    def per_minute(self) -> float:
        return self.done / self.wall_s * 60.0 if self.wall_s > 0 else 0.0

    @property
    def median_s(self) -> float:
        return statistics.median(self.latency_s) if self.latency_s else float("nan")

    @property
    def p95_s(self) -> float:
        return percentile(list(self.latency_s), 95) if self.latency_s else float("nan")


def shared_services(stack: ExitStack, folder: Path, database: str, storage: str) -> Shared:
    queue = stack.enter_context(redis_server(folder / "redis"))
    db = (stack.enter_context(postgres_server(folder / "postgres")) if database == "postgres"
          else f"sqlite:///{folder / 'shared.sqlite3'}")
    if storage == "s3":
        return Shared(queue, db, stack.enter_context(s3_server(folder / "s3")).env(prefix="bench"))
    (folder / "shared-storage").mkdir(parents=True, exist_ok=True)
    return Shared(queue, db, {"PLINTH_STORAGE": str(folder / "shared-storage")})


def one_run(workers: int, args: argparse.Namespace, photo: Path) -> Run:
    folder = OUTPUT / f"{workers}-workers"
    shutil.rmtree(folder, ignore_errors=True)
    with ExitStack() as stack:
        shared = shared_services(stack, folder, args.database, args.storage)
        cluster = stack.enter_context(Cluster(folder / "cluster", shared, device=args.device))
        token = cluster.merchant_token()
        cluster.start_web()
        for i in range(workers):
            cluster.start_worker(f"w{i + 1}")
        pinger = Pinger(cluster.base, PATHS)
        pinger.start()
        submitted: dict[str, float] = {}
        finished: dict[str, float] = {}
        started = time.monotonic()

        def submit(i: int) -> None:
            at = time.monotonic()
            submitted[cluster.submit(token, photo, f"Bench chair {i + 1}")] = at

        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:  # all at once
            list(pool.map(submit, range(args.jobs)))

        def note(answers: dict[str, dict]) -> None:
            for job_id, job in answers.items():
                if job.get("finished") and job_id not in finished:
                    finished[job_id] = time.monotonic()

        try:
            # Once a second per job, as a shop back-end might: faster polling would load the web server we time.
            answers = cluster.wait(token, list(submitted), timeout=args.timeout, on_poll=note, every=1.0)
        finally:
            timings = pinger.stop()
        done = [j for j, a in answers.items() if a["status"] == "done" and a["model"] and a["model"]["share_url"]]
        for job_id, answer in answers.items():
            if job_id not in done:
                print(f"  job {job_id} ended {answer['status']}: {answer.get('error')}", file=sys.stderr)
        return Run(workers=workers, jobs=args.jobs, done=len(done), wall_s=max(finished.values()) - started,
                   latency_s=tuple(finished[j] - submitted[j] for j in done),
                   web={path: timings.summary(path) for path in PATHS}, web_errors=len(timings.failures))


def table(runs: list[Run], args: argparse.Namespace) -> str:
    head = ("workers", "done", "wall s", "jobs/min", "submit->share median s", "p95 s",
            *(f"{p} median/p95/max ms" for p in PATHS), "web errors")
    rows = [(str(r.workers), f"{r.done}/{r.jobs}", f"{r.wall_s:.0f}", f"{r.per_minute:.1f}", f"{r.median_s:.1f}",
             f"{r.p95_s:.1f}", *("/".join(f"{v * 1000:.0f}" for v in r.web[p]) for p in PATHS), str(r.web_errors)) for r in runs]
    widths = [max(len(c) for c in col) for col in zip(head, *rows)]
    title = (f"{args.jobs} single-photo jobs (fast) at once; database {args.database}, storage {args.storage}, "
             f"device {args.device}; load average now {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    lines = [title, ""]
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in (head, *rows)]
    lines.insert(3, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    if len(runs) > 1:
        low, high = runs[0], runs[-1]
        lines.append("")
        lines.append(f"{high.workers} vs {low.workers} workers: jobs/min x{high.per_minute / low.per_minute:.2f}, "
                     f"median submit->share x{high.median_s / low.median_s:.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.queue_speed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20, help="jobs submitted at once per run (default 20)")
    parser.add_argument("--workers", default="1,2", help="worker counts to run, comma list (default 1,2)")
    parser.add_argument("--database", choices=("postgres", "sqlite"), default="postgres",
                        help="PostgreSQL (default) or one SQLite file the processes share (one machine only)")
    parser.add_argument("--storage", choices=("s3", "folder"), default="s3",
                        help="moto's S3 server (default) or a shared folder")
    parser.add_argument("--device", default=os.environ.get("PLINTH_DEVICE", "cpu"), help="the workers' --device")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds a run may take (default 1800)")
    args = parser.parse_args(argv)
    try:
        counts = sorted({int(n) for n in args.workers.split(",") if n.strip()})
    except ValueError:
        parser.error(f"--workers takes numbers such as 1,2, not '{args.workers}'")
    if args.jobs < 1 or not counts or counts[0] < 1:
        parser.error("--jobs and --workers need at least 1")
    photo = bench_root() / "single" / "chair" / "image.jpg"
    if not photo.is_file():
        print(f"bench.queue_speed: the bench photo {photo} is missing; set PLINTH_BENCH", file=sys.stderr)
        return 2
    runs = []
    for n in counts:
        print(f"running {args.jobs} jobs on {n} worker{'s' if n > 1 else ''}...", file=sys.stderr, flush=True)
        runs.append(one_run(n, args, photo))
    print(table(runs, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
