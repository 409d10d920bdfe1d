"""`plinth worker` (runs jobs from RQ on this machine) and `plinth status` (workers, queues, jobs).

    PLINTH_QUEUE=redis://queue-host:6379/0 plinth worker --queue gpu --device cuda:0
    plinth worker --queue cpu --burst            # run what is queued, then exit
    plinth status [--json]

A worker is one process: rq's SimpleWorker takes one job at a time and runs it through
workers.supervise, which starts every reconstruction in a fresh child process. So this process
never imports torch and never initialises CUDA; only each job's child does, on --device.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import secrets
import socket
import time
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path

from pipeline import PlinthError

from . import jobqueue, logs, queue_status, settings, storage, store
from .jobqueue import Engine, QueueName, WorkerInfo

log = logging.getLogger("plinth.worker")

_DEVICE = re.compile(r"cpu|cuda(:\d{1,2})?|mps")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def add_parsers(sub) -> None:
    worker = sub.add_parser("worker", help="run queued jobs on this machine (needs PLINTH_QUEUE=redis://...)")
    worker.add_argument("--queue", choices=[q.value for q in QueueName], default=QueueName.CPU.value,
                        help="gpu: jobs go here while a GPU worker is running (it takes waiting cpu jobs "
                             "too); cpu: otherwise (default cpu)")
    worker.add_argument("--device", default="",
                        help="where the reconstructions run: cuda:0, cuda:1, ... or cpu "
                             "(default cuda:0 for --queue gpu, else cpu)")
    worker.add_argument("--burst", action="store_true", help="exit once the queue is empty")
    worker.add_argument("--name", default="",
                        help="this worker's name in plinth status and the logs (default HOST-QUEUE-PID)")
    status = sub.add_parser("status", help="list the workers, the queues and the jobs waiting or running")
    status.add_argument("--json", action="store_true", help="print it as JSON")


# ---------------------------------------------------------------- plinth worker


def device_for(queue: QueueName, device: str) -> str:
    """The --device a worker runs its jobs on; PlinthError for a malformed one (checked by its
    shape only: looking for the GPU here would initialise CUDA in the worker process)."""
    device = device.strip() or ("cuda:0" if queue is QueueName.GPU else "cpu")
    if not _DEVICE.fullmatch(device):
        raise PlinthError("options", f"--device must be cpu or cuda:N (for example cuda:0), not '{device}'.")
    return device


def listens_to(queue: QueueName) -> tuple[QueueName, ...]:
    """The RQ queues a worker takes jobs from, first to last: a GPU worker takes 'cpu' jobs too
    when 'gpu' is empty (they went there while no GPU worker was up); a CPU worker only 'cpu'."""
    return (QueueName.GPU, QueueName.CPU) if queue is QueueName.GPU else (QueueName.CPU,)


def cmd_worker(args: argparse.Namespace) -> int:
    if jobqueue.engine() is Engine.EMBEDDED:
        raise PlinthError("queue", "plinth worker needs PLINTH_QUEUE=redis://HOST:6379/0, the Redis the web server "
                                   "uses; without it the jobs run inside plinth serve.")
    queue = QueueName(args.queue)
    device = device_for(queue, args.device)
    if args.name and not _NAME.fullmatch(args.name):
        raise PlinthError("options", f"--name may hold letters, digits, '.', '_' and '-' (up to 64), not '{args.name}'.")
    from rq import Queue, SimpleWorker

    from . import rq_engine, rq_worker

    con = rq_engine.connection()
    name = args.name or rq_worker.default_name(queue)
    taken = next((w for w in rq_engine.live_workers() if w.name == name), None)
    if taken is not None:
        raise PlinthError("options", f"a worker named {name} is running on {taken.host} (pid {taken.pid}), or stopped "
                                     f"less than {rq_engine.heartbeat_ttl_s():.0f} s ago: give this one another --name.")
    data = settings.data_dir()
    # The database and the storage are checked before the worker registers: a wrong URL or a missing
    # bucket is one plain line now, not a job that fails later on someone else's photos.
    storage.check()
    for message in store.open_library(data):
        log.warning("%s", message)
    logs.setup(worker=name)
    me = rq_worker.Identity(name=name, queue=queue, device=device, host=socket.gethostname(), pid=os.getpid(),
                            data=data)
    beat = rq_worker.become_worker(me)
    try:
        if not settings.database_url():
            log.warning("PLINTH_DATABASE_URL is not set: this worker reads the jobs from %s, which is right only "
                        "when the web server uses this same data folder", store.db_path(data))
        rq_engine.reap(data)  # jobs of workers that died while none was watching
        log.info("plinth worker %s: queue %s, device %s, data folder %s", name, queue.value, device, data)
        # RQ's own name must be unique while its record of a killed worker lingers (minutes): ours need not be.
        SimpleWorker([Queue(q.value, connection=con) for q in listens_to(queue)], connection=con,
                     name=f"{name}-{secrets.token_hex(3)}").work(burst=args.burst, logging_level="INFO")
    finally:
        beat.end()
    return 0


# ---------------------------------------------------------------- plinth status (the data: webapp/queue_status.py)


def _age(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    return ["  " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in (header, *rows)]


def render(report: queue_status.Status) -> str:
    out = []
    if report.engine is Engine.EMBEDDED:
        out.append("Queue: embedded. Jobs run inside plinth serve, one at a time per device "
                   "(set PLINTH_QUEUE=redis://... to run them on plinth worker machines).")
    else:
        out.append(f"Queue: RQ on {report.queue_url}")
        out.append(f"Workers ({len(report.workers)}):" if report.workers else
                   "Workers: none running (start one with: plinth worker --queue cpu).")
        if report.workers:
            out += _table(("NAME", "QUEUE", "DEVICE", "HOST", "PID", "JOB", "HEARTBEAT"),
                          [(w.name, w.queue.value, w.device, w.host, str(w.pid), w.job_id or "-",
                            f"{w.heartbeat_age_s:.0f}s ago") for w in report.workers])
        out.append("Queues: " + ", ".join(f"{q.name.value} {q.waiting} waiting" for q in report.queues))
    if report.jobs:
        out.append(f"Jobs waiting or running ({len(report.jobs)}):")
        out += _table(("JOB", "STATUS", "OWNER", "PHOTOS", "AGE", "WORKER", "QUEUE"),
                      [(j.id, j.status, j.owner or "-", str(j.photos), _age(j.age_s), j.worker or "-", j.queue or "-")
                       for j in report.jobs])
    else:
        out.append("Jobs waiting or running: none.")
    return "\n".join(out)


def _plain(value):
    return value.value if isinstance(value, Enum) else value


def cmd_status(args: argparse.Namespace) -> int:
    report = queue_status.status(settings.data_dir())
    if args.json:
        body = asdict(report, dict_factory=lambda items: {k: _plain(v) for k, v in items})
        print(json.dumps(body, indent=1))
    else:
        print(render(report))
    return 0
