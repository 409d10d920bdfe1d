"""The one queue interface: which engine runs the jobs, and the calls every job goes through.

Two engines, chosen by $PLINTH_QUEUE (settings.queue_url()):
* embedded (unset, the default): the jobs table is the queue and worker threads inside `plinth
  serve` run it (webapp/workers.py). Nothing to install, nothing to start.
* rq (redis://HOST:6379/0): RQ on Redis carries each job's id to `plinth worker` processes on any
  machine (webapp/rq_engine.py); the web server runs no jobs itself.

Either way the jobs table is the one truth about a job (status, stage, fraction, messages) that
the UI and the API read; RQ only carries the id.

    jobqueue.dispatch(data, job_id)     # jobs._queue, after the row is in
    jobqueue.cancelled(data, job_id)    # jobs.cancel, after the row says so
    jobqueue.start(data)                # the web server's start-up (workers, or the reaper)
    jobqueue.live_workers()             # `plinth status`, routing

No heavy import here: redis and rq are imported only by rq_engine, only when $PLINTH_QUEUE is set.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from pipeline import PlinthError

from . import settings

log = logging.getLogger("plinth.queue")

#: How many times a job whose worker died is queued again ($PLINTH_JOB_RETRIES; default 0: it fails).
RETRIES_ENV = "PLINTH_JOB_RETRIES"


class Engine(str, Enum):
    EMBEDDED = "embedded"
    RQ = "rq"


class QueueName(str, Enum):
    """RQ queues: GPU workers take 'gpu', every other worker 'cpu'."""

    GPU = "gpu"
    CPU = "cpu"


class QueueUnavailable(PlinthError):
    """$PLINTH_QUEUE is set but Redis cannot be used (the message names it without its password)."""

    def __init__(self, message: str):
        super().__init__("queue", message)


@dataclass(frozen=True)
class WorkerInfo:
    """One live `plinth worker`, as its heartbeat in Redis describes it."""

    name: str
    queue: QueueName
    device: str  # "cuda:0", "cpu"
    host: str
    pid: int
    job_id: str  # the job it is running now, '' when idle
    heartbeat_age_s: float  # seconds since its last heartbeat


def engine() -> Engine:
    return Engine.RQ if settings.queue_url() else Engine.EMBEDDED


def job_retries() -> int:
    """$PLINTH_JOB_RETRIES: extra runs a job gets when its worker dies (0, the default: none)."""
    try:
        return max(0, int(os.environ.get(RETRIES_ENV, "0").strip() or 0))
    except ValueError:
        return 0


def dispatch(data: Path, job_id: str) -> None:
    """A job row was just inserted as queued: start it (embedded: wake this process's workers;
    rq: enqueue its id on 'gpu' when a GPU worker is alive, else 'cpu', recording which).

    Never raises for an unreachable Redis: the job stays queued and the web server's reaper sends
    it again once Redis answers (rq_engine.resend_lost), so a submit is never half-done."""
    if engine() is Engine.EMBEDDED:
        from . import jobs

        jobs.WAKE.set()
        return
    from . import rq_engine

    try:
        rq_engine.enqueue(data, job_id)
    except QueueUnavailable as error:
        log.error("job left queued, to be sent when the queue answers: %s", error, extra={"job_id": job_id})


def cancelled(data: Path, job_id: str) -> None:
    """jobs.cancel has marked the job cancelled (queued) or cancelling (running). The supervisor of
    a running job sees that in the database, on whatever machine; a queued RQ job is also taken
    off its queue here so `plinth status` stops counting it."""
    if engine() is Engine.EMBEDDED:
        return
    from . import rq_engine

    try:
        rq_engine.cancel_queued(data, job_id)
    except QueueUnavailable as error:  # the worker that dequeues it skips it anyway (its row is cancelled)
        log.warning("could not take the job off the queue: %s", error, extra={"job_id": job_id})


def live_workers() -> list[WorkerInfo]:
    """The `plinth worker` processes whose heartbeat is fresh ([] for the embedded engine)."""
    if engine() is Engine.EMBEDDED:
        return []
    from . import rq_engine

    return rq_engine.live_workers()


def no_machine_running() -> bool:
    """True when jobs go to `plinth worker` machines and none is running (or Redis does not
    answer): a waiting job cannot start, and the page should say so instead of "next in line"."""
    if engine() is Engine.EMBEDDED:
        return False
    try:
        return not live_workers()
    except QueueUnavailable:
        return True


# ---------------------------------------------------------------- the web server's side

_REAPER: dict[str, threading.Thread] = {}
_LOCK = threading.Lock()


def start(data: Path) -> None:
    """At the web server's start (idempotent). Embedded: recover interrupted jobs and start the
    worker threads. rq: no workers and no recover (jobs running on other machines are theirs);
    a reaper thread fails or re-queues jobs whose worker died, sends jobs Redis lost, and purges."""
    if engine() is Engine.EMBEDDED:
        from . import workers

        workers.start_workers(data)
        return
    from . import rq_engine

    with _LOCK:
        key = str(data)
        if key in _REAPER and _REAPER[key].is_alive():
            return
        reaper = rq_engine.ServerReaper(data)
        reaper.start()
        _REAPER[key] = reaper


def stop() -> None:
    """At the web server's stop: the embedded workers, or the reaper."""
    if engine() is Engine.EMBEDDED:
        from . import workers

        workers.stop_workers()
        return
    with _LOCK:
        for reaper in _REAPER.values():
            reaper.stop.set()
        for reaper in _REAPER.values():
            reaper.join(timeout=10)
        _REAPER.clear()
