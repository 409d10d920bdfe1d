"""The `plinth worker` side of the RQ engine: who this worker is, its heartbeat, and `perform`.

`perform` is the RQ job function (SimpleWorker runs it in the worker's own process): it claims the
job's row (a cancelled or already-claimed job is skipped) and supervises a fresh child process
exactly as the embedded workers do (workers.supervise). Imports redis and rq (through rq_engine).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from . import job_runs, jobs, limits, logs, settings, store
from .jobqueue import QueueName
from .jobs import JobStatus
from .rq_engine import (
    HEARTBEAT_KEY,
    REAP_EVERY_S,
    _redis_errors,
    _settle_lost,
    connection,
    heartbeat_ttl_s,
    reap,
)

log = logging.getLogger("plinth.queue")


@dataclass(frozen=True)
class Identity:
    """Who a `plinth worker` is: in its heartbeat and in each job row it runs (jobs.worker)."""

    name: str
    queue: QueueName
    device: str
    host: str
    pid: int
    data: Path  # its own working folder


class Heartbeat(threading.Thread):
    """Keeps plinth:worker:<name> alive while the worker runs; its Reaper settles dead workers' jobs.

    Two threads: a reap waiting on a busy database must never delay a beat past the TTL (other
    reapers would then fail the job this worker is running)."""

    def __init__(self, me: Identity):
        super().__init__(name="plinth-heartbeat", daemon=True)
        self.me = me
        self.stop = threading.Event()
        self._job = ""
        self._lock = threading.Lock()  # a beat of the thread never writes an older job over a newer one
        self.reaper = threading.Thread(target=self._reap, name="plinth-reaper", daemon=True)

    def beat(self) -> None:
        with self._lock:
            body = {"name": self.me.name, "queue": self.me.queue.value, "device": self.me.device,
                    "host": self.me.host, "pid": self.me.pid, "job_id": self._job, "at": time.time()}
            connection().set(HEARTBEAT_KEY + self.me.name, json.dumps(body), px=int(heartbeat_ttl_s() * 1000))

    def set_job(self, job_id: str) -> None:
        """Written at once: a job row names this worker only while its heartbeat names the job."""
        with self._lock:
            self._job = job_id
        self.beat()

    def run(self) -> None:
        self.reaper.start()
        while not self.stop.wait(heartbeat_ttl_s() / 3.0):
            try:
                self.beat()
            except Exception:  # Redis briefly away: the next beat tries again
                log.exception("heartbeat failed")

    def _reap(self) -> None:
        while not self.stop.wait(REAP_EVERY_S):
            try:
                reap(self.me.data)
            except Exception:  # Redis or the database briefly away: next round
                log.exception("could not check the other workers")

    def end(self) -> None:
        self.stop.set()
        if self.is_alive():
            self.join(timeout=5)
        if self.reaper.is_alive():
            self.reaper.join(timeout=5)
        try:
            connection().delete(HEARTBEAT_KEY + self.me.name)
        except _redis_errors():
            pass


_ME: Identity | None = None
_BEAT: Heartbeat | None = None


def become_worker(me: Identity) -> Heartbeat:
    """Make this process the worker `me` (perform runs jobs as it) and start its heartbeat."""
    global _ME, _BEAT
    _ME = me
    _BEAT = Heartbeat(me)
    _BEAT.beat()
    _BEAT.start()
    return _BEAT


def claim(data: Path, job_id: str, me: Identity, queue: str | None = None) -> bool:
    """Mark this queued job running here, taken from RQ queue `queue` (default: this worker's own).
    False (nothing changed): cancelled, or another run has it."""
    with store.connect(data) as con:
        return con.execute(
            "UPDATE jobs SET status=?, started=?, worker=?, device=?, queue=?, attempts=attempts+1, "
            "stage='', fraction=0, message='Starting' WHERE id=? AND status=?",
            (JobStatus.RUNNING.value, time.time(), me.name, me.device, queue or me.queue.value, job_id,
             JobStatus.QUEUED.value)).rowcount == 1


def perform(job_id: str) -> str:
    """The RQ job function: claim the row, run the job in a child process, return its status
    (RQ keeps it briefly; the jobs table is what counts)."""
    from rq import get_current_job
    from rq.timeouts import JobTimeoutException

    from . import workers

    me, beat = _ME, _BEAT
    if me is None or beat is None:
        raise RuntimeError("Plinth jobs run only in `plinth worker` (SimpleWorker in this process)")
    with logs.job_context(job_id):
        beat.set_job(job_id)  # before the claim: a reaper never sees the row ours and the heartbeat not
        try:
            current = get_current_job()  # a GPU worker also takes 'cpu' jobs: record where it came from
            if not claim(me.data, job_id, me, current.origin if current is not None else None):
                if jobs.get_job(job_id, me.data) is None:  # a worker pointed at another database than the server's
                    log.error("job not found in this worker's database %s: give it the web server's "
                              "PLINTH_DATABASE_URL", store.db_path(me.data) if not settings.database_url() else
                              "(PLINTH_DATABASE_URL)")
                    return "unknown"
                log.info("job skipped: cancelled, or already taken")
                return "skipped"
            log.info("job started on %s", me.device)
            try:
                workers.supervise(me.data, job_id, me.device, lambda: False, worker=me.name)
            except JobTimeoutException:
                job = jobs.get_job(job_id, me.data)
                photos = (len(job.photo_names) or len(job.photos)) if job else 1
                limit = limits.job_time_limit_s(photos, job.options.quality if job else "high")
                job_runs.finish(me.data, job_id, JobStatus.FAILED, error=workers.TIME_LIMIT_MESSAGE.format(
                    limit=workers._duration_words(limit), photos=workers._photo_words(photos)))
                raise
            except Exception:
                log.exception("job could not be run")
                job_runs.finish(me.data, job_id, JobStatus.FAILED, error=workers.BUG_MESSAGE)
                raise
            except BaseException:  # a cold stop of the worker: the job is lost here, as if the machine stopped
                with store.connect(me.data) as con:
                    row = con.execute("SELECT status, attempts FROM jobs WHERE id=?", (job_id,)).fetchone()
                if row is not None and row["status"] in (JobStatus.RUNNING.value, JobStatus.CANCELLING.value):
                    _settle_lost(me.data, job_id, JobStatus(row["status"]), int(row["attempts"] or 0), me.name)
                raise
            job = jobs.get_job(job_id, me.data)
            status = job.status.value if job else "gone"
            log.info("job ended: %s", status)
            return status
        finally:
            beat.set_job("")


def default_name(queue: QueueName) -> str:
    return f"{socket.gethostname()}-{queue.value}-{os.getpid()}"
