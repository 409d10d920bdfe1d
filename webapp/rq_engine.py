"""The RQ engine ($PLINTH_QUEUE=redis://...): jobs' ids go through RQ on Redis to `plinth worker`s.

The jobs table stays the one truth about a job; an RQ job carries only its id. This module is the
sending side and the reaper; webapp/rq_worker.py is the `plinth worker` side (heartbeat, and
`perform`, the RQ job function).

Liveness is Plinth's own: each `plinth worker` keeps a Redis key plinth:worker:<name> (queue,
device, host, pid, current job) alive with a TTL of heartbeat_ttl_s() (15 s), refreshed every
third of it. The reaper (every worker, and the web server) finds jobs running on a worker whose
key is gone (or that runs another job now): they fail with LOST_MESSAGE, photos kept, or are
queued once more when $PLINTH_JOB_RETRIES allows. Imports redis and rq: only when $PLINTH_QUEUE is set.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from . import job_photos, job_runs, jobs, limits, logs, settings, store
from .jobqueue import QueueName, QueueUnavailable, WorkerInfo, job_retries
from .jobs import JobStatus

log = logging.getLogger("plinth.queue")

LOST_MESSAGE = "The machine making this model stopped. Your photos are kept: press Try again."
#: RQ's own timeout is only a backstop behind the supervisor's time limit: this much later.
TIMEOUT_MARGIN_S = 120
#: Finished RQ jobs are only bookkeeping (the result is in the jobs table): kept briefly.
RESULT_TTL_S = 60
FAILURE_TTL_S = 600
#: A queued row with no RQ job older than this is sent again (dispatch found Redis down, or Redis lost it).
RESEND_AFTER_S = 30.0
REAP_EVERY_S = 5.0
PURGE_EVERY_S = 3600.0
HEARTBEAT_KEY = "plinth:worker:"
_FUNC = "webapp.rq_worker.perform"


def heartbeat_ttl_s() -> float:
    """Seconds a worker's heartbeat lives: $PLINTH_HEARTBEAT_TTL_S, default 15 (a dead worker's
    jobs are noticed that much later; tests shorten it)."""
    return limits._env_float("PLINTH_HEARTBEAT_TTL_S", 15.0)


def shown_url(url: str) -> str:
    """The queue URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = (f"{parts.username}:***@" if parts.username else ":***@") + (parts.hostname or "")
    netloc += f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


_CONNECTIONS: dict[tuple[str, int], object] = {}


def connection():
    """This process's Redis connection to $PLINTH_QUEUE (checked with a PING when first made).
    QueueUnavailable, in one plain line, when the URL is wrong or Redis does not answer."""
    import redis

    url = settings.queue_url() or ""
    key = (url, os.getpid())
    con = _CONNECTIONS.get(key)
    if con is not None:
        return con
    try:
        con = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=30, health_check_interval=30)
        con.ping()
    except ValueError as error:
        raise QueueUnavailable(f"PLINTH_QUEUE={shown_url(url)} is not a Redis URL ({error}); "
                               "use redis://HOST:6379/0.") from None
    except redis.RedisError as error:
        raise QueueUnavailable(f"cannot reach the job queue at {shown_url(url)} (PLINTH_QUEUE): {str(error).rstrip('.')}. "
                               "Start Redis there, or fix PLINTH_QUEUE.") from None
    _CONNECTIONS[key] = con
    return con


def _redis_errors() -> tuple[type[BaseException], ...]:
    import redis

    return (redis.RedisError,)


def rq_job_id(job_id: str, attempts: int) -> str:
    """The RQ job of a Plinth job's run number `attempts` + 1 (each run its own RQ job)."""
    return f"plinth-{job_id}-{int(attempts)}"


def job_timeout_s(photos: int, quality: str) -> int:
    """RQ's job timeout: the job's own time limit plus TIMEOUT_MARGIN_S (RQ's 180 s default would
    kill real jobs; the supervisor's limit fires first and fails the job plainly)."""
    return int(limits.job_time_limit_s(photos, quality)) + TIMEOUT_MARGIN_S


# ---------------------------------------------------------------- heartbeats and routing


@contextmanager
def redis_trouble() -> Iterator[None]:
    """A Redis failure after the first connection (Redis restarted, network gone) as QueueUnavailable."""
    try:
        yield
    except _redis_errors() as error:
        raise QueueUnavailable(f"the job queue at {shown_url(settings.queue_url() or '')} failed: {error}") from None


def live_workers() -> list[WorkerInfo]:
    con = connection()
    with redis_trouble():
        keys = sorted(con.scan_iter(match=HEARTBEAT_KEY + "*", count=500))
        raws = con.mget(keys) if keys else []
    found = []
    for raw in raws:
        try:
            beat = json.loads(raw)
            found.append(WorkerInfo(name=str(beat["name"]), queue=QueueName(beat["queue"]), device=str(beat["device"]),
                                    host=str(beat["host"]), pid=int(beat["pid"]), job_id=str(beat.get("job_id", "")),
                                    heartbeat_age_s=max(0.0, time.time() - float(beat["at"]))))
        except (TypeError, ValueError, KeyError):
            continue  # expired between SCAN and MGET, or written by another version
    return found


def choose_queue() -> QueueName:
    """'gpu' when a live GPU worker is registered, else 'cpu'."""
    return QueueName.GPU if any(w.queue is QueueName.GPU for w in live_workers()) else QueueName.CPU


# ---------------------------------------------------------------- the web server's side


def enqueue(data: Path, job_id: str) -> None:
    """Send a queued job to RQ on the queue choose_queue() picks, recording it in jobs.queue."""
    from rq import Queue

    job = jobs.get_job(job_id, data)
    if job is None or job.status is not JobStatus.QUEUED:
        return
    # Counted from the row, not the folder: a reaper on another machine may not have the photos.
    photos = len(job.photo_names) or len(job.photos)
    with redis_trouble():
        name = choose_queue()
        with store.connect(data) as con:
            attempts = con.execute("SELECT attempts FROM jobs WHERE id=?", (job_id,)).fetchone()[0] or 0
            con.execute("UPDATE jobs SET queue=? WHERE id=?", (name.value, job_id))
        Queue(name.value, connection=connection()).enqueue_call(
            _FUNC, args=(job_id,), timeout=job_timeout_s(photos, job.options.quality),
            result_ttl=RESULT_TTL_S, failure_ttl=FAILURE_TTL_S, job_id=rq_job_id(job_id, attempts),
            description=f"Plinth job {job_id}")
    log.info("job sent to queue %s", name.value, extra={"job_id": job_id})


def cancel_queued(data: Path, job_id: str) -> None:
    """Take a cancelled job's RQ job off its queue (a running one stops through the database)."""
    from rq.exceptions import InvalidJobOperation, NoSuchJobError
    from rq.job import Job

    with store.connect(data) as con:
        row = con.execute("SELECT status, attempts FROM jobs WHERE id=?", (job_id,)).fetchone()
    if row is None or row["status"] != JobStatus.CANCELLED.value:
        return
    with redis_trouble():
        try:
            rq_job = Job.fetch(rq_job_id(job_id, row["attempts"] or 0), connection=connection())
            if rq_job.get_status() == "queued":
                rq_job.cancel()
        except (NoSuchJobError, InvalidJobOperation):
            pass


#: (job, worker, attempts) -> when this process first saw that run without its worker's heartbeat.
_ORPHANED_SINCE: dict[tuple[str, str, int], float] = {}


def reap(data: Path) -> int:
    """Jobs running or stopping on a worker whose heartbeat is gone, or that runs another job now:
    a stopping one is cancelled, others queued again when $PLINTH_JOB_RETRIES allows, else failed
    with LOST_MESSAGE (photos kept), once they have looked so for a beat interval (call it again).
    Returns how many were settled. Safe to run anywhere, any time:
    each change applies only while the row is still live, so two reapers never both act."""
    with store.connect(data) as con:
        rows = con.execute("SELECT id, status, worker, attempts FROM jobs WHERE status IN (?, ?) AND worker != ''",
                           (JobStatus.RUNNING.value, JobStatus.CANCELLING.value)).fetchall()
    if not rows:
        return 0
    alive = {w.name: w for w in live_workers()}
    settled, now, seen = 0, time.monotonic(), set()
    for row in rows:
        worker = alive.get(row["worker"])
        if worker is not None and worker.job_id == row["id"]:
            continue
        run = (row["id"], row["worker"], int(row["attempts"] or 0))
        seen.add(run)
        # Orphaned for a whole beat interval first: a restarted Redis has no heartbeats until each
        # worker's next beat, and its jobs must not fail for that.
        if now - _ORPHANED_SINCE.setdefault(run, now) < heartbeat_ttl_s() / 3.0 + 1.0:
            continue
        with logs.job_context(row["id"]):
            settled += _settle_lost(data, row["id"], JobStatus(row["status"]), run[2], row["worker"])
    for run in set(_ORPHANED_SINCE) - seen:
        del _ORPHANED_SINCE[run]
    return settled


def _settle_lost(data: Path, job_id: str, status: JobStatus, attempts: int, worker: str) -> int:
    """Settle one run of a job whose worker is gone; 1 if this call did, 0 if the row had moved on.

    Only the run that was read changes (same status, worker and attempts): a reaper that read the
    row before another one re-queued it, and a new worker took it, must not fail the new run."""
    again = status is not JobStatus.CANCELLING and attempts < job_retries() + 1
    if status is JobStatus.CANCELLING:
        sets, values = "status=?, finished=?, message='Stopped'", (JobStatus.CANCELLED.value, time.time())
        outcome = "it was being stopped: cancelled"
    elif again:
        sets = "status=?, worker='', pid=NULL, started=NULL, stage='', fraction=0, message='Waiting to start'"
        values, outcome = (JobStatus.QUEUED.value,), f"the job is queued again (run {attempts + 1})"
    else:
        sets, values = "status=?, finished=?, error=?", (JobStatus.FAILED.value, time.time(), LOST_MESSAGE)
        outcome = "the job failed, its photos are kept"
    with store.connect(data) as con:
        changed = con.execute(f"UPDATE jobs SET {sets} WHERE id=? AND status=? AND worker=? AND attempts=?",
                              (*values, job_id, status.value, worker, attempts)).rowcount == 1
    if not changed:
        return 0
    log.warning("worker %s is gone; %s", worker, outcome)
    _forget_run(job_id, attempts - 1)
    if again:
        enqueue(data, job_id)
    return 1


def _forget_run(job_id: str, attempts: int) -> None:
    """Remove a dead worker's run from RQ's started registries (RQ would only notice at its timeout)."""
    from rq.registry import StartedJobRegistry

    rq_id = rq_job_id(job_id, max(0, attempts))
    con = connection()
    for name in QueueName:
        registry = StartedJobRegistry(name.value, connection=con)
        for member in con.zrange(registry.key, 0, -1):
            text = member.decode() if isinstance(member, bytes) else str(member)
            if text == rq_id or text.startswith(rq_id + ":"):
                con.zrem(registry.key, member)
    con.delete(f"rq:job:{rq_id}")


def resend_lost(data: Path) -> int:
    """Queued rows whose RQ job is missing or over, older than RESEND_AFTER_S (dispatch found Redis
    down, or Redis lost its data), are sent again; so are jobs waiting on 'gpu' when no GPU worker
    is left but a CPU worker is (they go to 'cpu'). Returns how many were sent."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    with store.connect(data) as con:
        rows = con.execute("SELECT id, attempts, queue, created FROM jobs WHERE status=?",
                           (JobStatus.QUEUED.value,)).fetchall()
    if not rows:
        return 0
    alive = {w.queue for w in live_workers()}
    gpu_gone = QueueName.GPU not in alive and QueueName.CPU in alive
    sent = 0
    with redis_trouble():
        for row in rows:
            try:
                rq_job = Job.fetch(rq_job_id(row["id"], row["attempts"] or 0), connection=connection())
                state = rq_job.get_status()
            except NoSuchJobError:
                rq_job, state = None, None
            lost = state in (None, "finished", "failed", "stopped", "canceled") and \
                row["created"] < time.time() - RESEND_AFTER_S
            stranded = state == "queued" and row["queue"] == QueueName.GPU.value and gpu_gone
            if stranded and rq_job is not None:
                rq_job.delete()  # off the 'gpu' queue; enqueue makes it again under the same id
            if lost or stranded:
                with logs.job_context(row["id"]):
                    enqueue(data, row["id"])
                sent += 1
    return sent


def settle_embedded_leftovers(data: Path) -> int:
    """Jobs left running by an embedded `plinth serve` (no $PLINTH_QUEUE; worker '') that stopped
    before this server started with the queue: nobody will finish them, so they fail as a restart
    fails them (photos kept). A `plinth worker` always names itself in the row it claims."""
    with store.connect(data) as con:
        ids = [r[0] for r in con.execute("SELECT id FROM jobs WHERE status IN (?, ?) AND worker = ''",
                                         (JobStatus.RUNNING.value, JobStatus.CANCELLING.value))]
    return sum(job_runs.finish(data, job_id, JobStatus.FAILED, error=jobs.RESTART_MESSAGE) for job_id in ids)


class ServerReaper(threading.Thread):
    """In `plinth serve` with $PLINTH_QUEUE: reap dead workers' jobs, resend lost ones, purge old photos."""

    def __init__(self, data: Path):
        super().__init__(name="plinth-reaper", daemon=True)
        self.data = data
        self.stop = threading.Event()

    def run(self) -> None:
        from . import model_folders

        try:
            settle_embedded_leftovers(self.data)
            model_folders.remove_orphans(self.data)
            job_photos.purge(self.data)
        except Exception:  # never keep the server from serving over a clean-up
            log.exception("could not clean up the data folder")
        next_purge = time.monotonic() + PURGE_EVERY_S
        while not self.stop.wait(REAP_EVERY_S):
            try:
                reap(self.data)
                resend_lost(self.data)
                if time.monotonic() >= next_purge:
                    next_purge = time.monotonic() + PURGE_EVERY_S
                    job_photos.purge(self.data)
            except Exception:  # Redis or the database briefly away: next round
                log.exception("could not check the workers")
