"""The job workers: reconstructions run one per device at a time, each in a child process.

No Streamlit import. A worker thread per device claims the oldest queued job (webapp/jobs.py)
and runs `pipeline.reconstruct` in a child process (`python -m webapp.workers DATA_DIR JOB_ID
[DEVICE]`), so a crash or an out-of-memory kill cannot take the web server down. The child
writes progress to SQLite; the UI only reads it.

Safety: the child dies with the server (parent-death signal), a job's first verdict is final
(jobs.finish), Stop, the per-job time limit (limits.job_time_limit_s) and shutdown SIGKILL the
child's process group (SIGTERM makes pycolmap print a native stack trace), and the worker then
removes data/staging/<job>. A full disk fails the job with DISK_FULL_MESSAGE, leaving no folder.
`supervise` (one claimed job's child, watched to its verdict) is shared with `plinth worker`
(webapp/rq_worker.py), so a job behaves the same in either job engine (webapp/jobqueue.py).

    start_workers()                       # idempotent; the server calls it at start-up
    stop_workers()
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pipeline

from . import disk, jobs, limits, logs, settings, storage
from .jobs import JobStatus

log = logging.getLogger("plinth.jobs")

CRASH_MESSAGE = ("The model maker stopped unexpectedly{why}. Your photos are kept: press Try again, "
                 "or use fewer or smaller photos.")
BUG_MESSAGE = ("Something went wrong while making the model. Your photos are kept: press Try again. "
               "If it keeps happening, try other photos.")
DISK_FULL_MESSAGE = ("The server's disk is full, so this model could not be saved. Your earlier models are safe; "
                     "free some space and press Try again.")
PHOTOS_MISSING_MESSAGE = ("This job's photos could not be found in the shared storage, so the model could not be "
                          "made. Upload the photos again.")
TIME_LIMIT_MESSAGE = ("This model took longer than the {limit} limit for {photos}. Your photos are kept: "
                      "try the Quick detail level or fewer photos.")
#: After Stop, the child may finish its current step this long; then it is killed (SIGKILL, as SIGTERM
#: makes pycolmap's failure handler print a native stack trace into the server log).
CANCEL_GRACE_S = 3.0
#: How often the worker looks at its child (cancel, time limit, verdicts given elsewhere).
_POLL_S = 0.5
#: How often old photos are purged while the server runs.
PURGE_EVERY_S = 3600.0
_PARENT_ENV = "PLINTH_JOB_PARENT_PID"

# ---------------------------------------------------------------- the child process


class _Superseded(Exception):
    """The job got its verdict elsewhere (a restarted server failed it): stop, write nothing."""


def die_with_parent() -> None:
    """In the child: be killed when the server dies (Linux parent-death signal), and exit at
    once if it already died between our fork and now."""
    expected = os.environ.get(_PARENT_ENV)
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if expected and os.getppid() != int(expected):
        os._exit(0)


def _parent_gone() -> bool:
    expected = os.environ.get(_PARENT_ENV)
    return bool(expected) and os.getppid() != int(expected)


def run_job(data_dir: str, job_id: str, device: str | None) -> None:
    """Child-process entry: reconstruct, publish into the library, record the outcome.

    Every verdict is written only while the job is still running (jobs.finish): when the server
    restarted and failed the job, this child stops and writes nothing."""
    from . import library

    data = Path(data_dir)
    job = jobs.get_job(job_id, data)
    if job is None or job.status not in (JobStatus.RUNNING, JobStatus.CANCELLING):
        return
    if job.damaged:
        jobs.finish(data, job_id, JobStatus.FAILED, error=jobs.DAMAGED_MESSAGE)
        return
    staging = data / "staging" / job_id
    last = [0.0, ("", "")]

    def progress(stage: str, fraction: float, message: str) -> bool:
        if _parent_gone():  # no parent-death signal on this OS: stop quietly, the server is gone
            os._exit(0)
        now = time.monotonic()
        # Fewer SQLite writes: only a new fraction of the same step waits. A new stage or message is
        # always written, or the page would show a step that ended long ago until the next tick.
        if now - last[0] < 0.25 and fraction < 1.0 and last[1] == (stage, message):
            return True
        last[0], last[1] = now, (stage, message)
        status = jobs.record_progress(data, job_id, stage, fraction, message)
        if status is JobStatus.RUNNING:
            return True
        if status is JobStatus.CANCELLING:
            return False
        raise _Superseded(job_id)

    def verdict(status: JobStatus, **fields) -> bool:
        shutil.rmtree(staging, ignore_errors=True)  # first: on a full disk this frees the room to record it
        try:
            return jobs.finish(data, job_id, status, **fields)
        except Exception:  # the database cannot be written (full disk): the worker records the crash
            log.error("job %s: could not record its outcome", job_id)
            return False

    try:
        # Taken on another machine: with shared storage the photos come from there into this data folder.
        if storage.configured() and not jobs.fetch_photos(data, job):
            verdict(JobStatus.FAILED, error=PHOTOS_MISSING_MESSAGE)
            return
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        options = replace(job.options, name=job.name)
        result = pipeline.reconstruct(job.photos, staging / "model.glb", options, progress=progress, device=device)
        if jobs.record_progress(data, job_id, "export", 1.0, "Saving your model") not in (
                JobStatus.RUNNING, JobStatus.CANCELLING):
            raise _Superseded(job_id)
        # A model that failed its quality checks is still kept (privately: library.Model.shared)
        # and its job is done; its photos stay for Try again.
        model = library.add_model(result, job.name, job.photos, options.placement, data_dir=data, job_id=job_id,
                                  owner=job.owner)
        quality = result.report.verdict
        if verdict(JobStatus.DONE, share_id=model.share_id, stage="done", fraction=1.0, verdict=quality.value,
                   message="Your model is made" if quality is pipeline.Verdict.FAILED else "Your model is ready"):
            if quality is not pipeline.Verdict.FAILED:
                jobs.release_photos(data, job_id)  # the model folder has its own copy
            storage.evict(data, f"models/{model.folder.name}")  # pushed by add_model: servers pull it on demand
        else:  # failed by a restart while publishing: that verdict stands, so the model goes
            library.delete_model(model.share_id, data, with_job=False)  # keep the failed job's photos for Try again
    except _Superseded:
        pass
    except pipeline.Cancelled:
        verdict(JobStatus.CANCELLED, message="Stopped")
    except pipeline.PlinthError as error:
        verdict(JobStatus.FAILED, error=DISK_FULL_MESSAGE if disk.is_full(error, data) else str(error))
    except MemoryError:
        verdict(JobStatus.FAILED, error=CRASH_MESSAGE.format(why=" (out of memory)"))
    except Exception as error:
        if disk.is_full(error, data):
            verdict(JobStatus.FAILED, error=DISK_FULL_MESSAGE)
        else:  # a bug: keep the details for us, plain words for the merchant
            _log_bug(data, job_id)
            verdict(JobStatus.FAILED, error=BUG_MESSAGE)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _log_bug(data: Path, job_id: str) -> None:
    log.exception("job %s failed", job_id)
    try:
        (data / "logs").mkdir(exist_ok=True)
        pipeline.atomic_write(data / "logs" / f"job-{job_id}.log", traceback.format_exc())
    except OSError:
        pass


# ---------------------------------------------------------------- the worker threads

_WORKERS: dict[str, threading.Thread] = {}  # "<data>|<device>" -> Worker, "<data>|janitor" -> Janitor
_LOCK = threading.Lock()


def devices() -> list[str | None]:
    """$PLINTH_DEVICES (comma list such as 'cuda:0,cuda:1'), else one worker on the default device."""
    env = os.environ.get("PLINTH_DEVICES", "").strip()
    return [d.strip() for d in env.split(",") if d.strip()] if env else [None]


def _duration_words(seconds: float) -> str:
    """The limit as the merchant reads it: '25-minute', or '5-second' for short test limits."""
    return f"{int(-(-seconds // 60))}-minute" if seconds >= 60 else f"{int(-(-seconds // 1))}-second"


def _photo_words(n: int) -> str:
    return "1 photo" if n == 1 else f"{n} photos"


class Worker(threading.Thread):
    """Runs queued jobs one at a time on one device."""

    def __init__(self, data: Path, device: str | None):
        super().__init__(name=f"plinth-worker-{device or 'default'}", daemon=True)
        self.data, self.device = data, device
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                job_id = jobs.claim(self.data, self.device)
            except Exception:  # database briefly locked or unreadable: try again shortly
                log.exception("could not read the job queue")
                job_id = None
            if job_id is None:
                jobs.WAKE.wait(1.0)
                jobs.WAKE.clear()
                continue
            try:
                with logs.job_context(job_id):
                    self._run_child(job_id)
            except Exception:  # never leave a job "running" forever because the worker tripped
                log.exception("job %s could not be run", job_id)
                jobs.finish(self.data, job_id, JobStatus.FAILED, error=BUG_MESSAGE)

    def _run_child(self, job_id: str) -> None:
        supervise(self.data, job_id, self.device, self.stop.is_set)


def supervise(data: Path, job_id: str, device: str | None, stopping: Callable[[], bool],
              worker: str = "") -> None:
    """Run one claimed job in a fresh child process and watch it until it has a verdict.

    Both job engines use this (the in-process Worker threads and `plinth worker`'s RQ jobs), so a
    job behaves the same wherever it runs: Stop is seen within _POLL_S and the child killed after
    CANCEL_GRACE_S, the time limit (limits.job_time_limit_s), a child that dies without a word
    (crash, out of memory, full disk). `stopping()` true: this process is shutting down, the job
    fails with the restart message. `worker` names the `plinth worker` for the child's logs.
    Any exception here (RQ's own timeout, a shutdown) kills the child before it goes on up."""
    job = jobs.get_job(job_id, data)
    if job is None:
        return
    # From the row: on a `plinth worker` machine the photos may arrive only in the child (storage).
    photos = len(job.photo_names) or len(job.photos)
    limit_s = limits.job_time_limit_s(photos, job.options.quality)
    # A fresh interpreter (not fork): no server threads or sockets are copied into the child.
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(settings.ROOT), env.get("PYTHONPATH", "")) if p)
    env[_PARENT_ENV] = str(os.getpid())
    env[logs.WORKER_ENV] = worker
    cmd = [sys.executable, "-m", "webapp.workers", str(data), job_id, device or ""]
    # Its own process group, so one SIGKILL stops it and anything it started.
    group = {"process_group": 0} if os.name == "posix" else {}
    child = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, **group)
    jobs.update(data, job_id, pid=child.pid)
    started, cancel_seen, verdict = time.monotonic(), None, None
    try:
        while child.poll() is None:
            try:
                child.wait(_POLL_S)
                break
            except subprocess.TimeoutExpired:
                pass
            status = jobs.get_job(job_id, data)
            status = status.status if status is not None else None
            if stopping():  # the server is stopping: the next start fails the job (recover)
                verdict = (JobStatus.FAILED, jobs.RESTART_MESSAGE)
            elif status not in (JobStatus.RUNNING, JobStatus.CANCELLING):
                # A verdict is in: the child's own (it is tidying up, give it a moment) or one given
                # elsewhere (recover of a restarted server): either way this worker writes nothing.
                verdict = ()
                try:
                    child.wait(5.0)
                except subprocess.TimeoutExpired:
                    pass
            elif time.monotonic() - started > limit_s:
                verdict = (JobStatus.FAILED, TIME_LIMIT_MESSAGE.format(limit=_duration_words(limit_s),
                                                                        photos=_photo_words(photos)))
            elif status is JobStatus.CANCELLING:
                cancel_seen = cancel_seen or time.monotonic()
                if time.monotonic() - cancel_seen > CANCEL_GRACE_S:
                    verdict = (JobStatus.CANCELLED, "")
            if verdict is not None:
                _kill(child)
                break
    except BaseException:  # RQ's job timeout or a cold shutdown of `plinth worker`: never orphan the child
        _kill(child)
        child.wait()
        shutil.rmtree(data / "staging" / job_id, ignore_errors=True)
        raise
    child.wait()
    shutil.rmtree(data / "staging" / job_id, ignore_errors=True)
    if verdict:
        status, error = verdict
        extra = {"error": error} if error else {"message": "Stopped"}
        jobs.finish(data, job_id, status, **extra)
    elif verdict is None:  # the child ended by itself; without a verdict it died without a word
        current = jobs.get_job(job_id, data)
        if current is not None and current.status is JobStatus.CANCELLING:
            jobs.finish(data, job_id, JobStatus.CANCELLED, message="Stopped")
        elif current is not None and current.status is JobStatus.RUNNING:
            why = " (it probably ran out of memory)" if child.returncode in (-9, 137) else ""
            if _disk_nearly_full(data):
                jobs.finish(data, job_id, JobStatus.FAILED, error=DISK_FULL_MESSAGE)
            else:
                jobs.finish(data, job_id, JobStatus.FAILED, error=CRASH_MESSAGE.format(why=why))


def _disk_nearly_full(data: Path) -> bool:
    """Less than 64 MiB free where the data folder is: a child that died there without a word
    most likely could not even write its verdict."""
    try:
        return shutil.disk_usage(data).free < 64 * 1024 * 1024
    except OSError:
        return False


def _kill(child: subprocess.Popen) -> None:
    """SIGKILL the child's process group (not SIGTERM: see CANCEL_GRACE_S)."""
    try:
        if os.name == "posix":
            os.killpg(child.pid, signal.SIGKILL)
        else:
            child.kill()
    except OSError:
        pass


class Janitor(threading.Thread):
    """Purges photos no job needs (jobs.purge) about every PURGE_EVERY_S seconds."""

    def __init__(self, data: Path):
        super().__init__(name="plinth-janitor", daemon=True)
        self.data = data
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(PURGE_EVERY_S):
            try:
                jobs.purge(self.data)
            except Exception:  # a locked database or a busy file: the next round tries again
                log.exception("could not purge old job photos")


def start_workers(data_dir: str | os.PathLike | None = None) -> list[Worker]:
    """Start the workers for this data folder once per process; recovers interrupted jobs first."""
    data = settings.data_dir(data_dir)
    with _LOCK:
        started = [w for key, w in _WORKERS.items() if key.startswith(f"{data}|") and w.is_alive()
                   and isinstance(w, Worker)]
        if started:
            return started
        jobs.recover(data)
        from . import library

        library.remove_orphans(data)
        try:
            jobs.purge(data)
        except Exception:  # never keep the server from starting over a clean-up
            log.exception("could not purge old job photos")
        janitor = Janitor(data)
        janitor.start()
        _WORKERS[f"{data}|janitor"] = janitor
        for device in devices():
            worker = Worker(data, device)
            worker.start()
            _WORKERS[f"{data}|{device}"] = worker
            started.append(worker)
    return started


def stop_workers() -> None:
    with _LOCK:
        for worker in _WORKERS.values():
            worker.stop.set()
        jobs.WAKE.set()
        for worker in _WORKERS.values():
            worker.join(timeout=10)
        _WORKERS.clear()


if __name__ == "__main__":  # the child process: python -m webapp.workers DATA_DIR JOB_ID [DEVICE]
    die_with_parent()
    logs.setup(worker=os.environ.get(logs.WORKER_ENV, ""))
    with logs.job_context(sys.argv[2]):
        run_job(sys.argv[1], sys.argv[2], (sys.argv[3] if len(sys.argv) > 3 else "") or None)
