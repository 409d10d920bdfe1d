"""The job workers: reconstructions run one per device at a time, each in a child process.

No Streamlit import. A worker thread per device claims the oldest queued job (webapp/jobs.py)
and runs `pipeline.reconstruct` in a child process (`python -m webapp.workers DATA_DIR JOB_ID
[DEVICE]`), so a crash or an out-of-memory kill cannot take the web server down. The child
writes progress to SQLite; the UI only reads it.

    start_workers()                       # idempotent; the server calls it at start-up
    stop_workers()
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import replace
from pathlib import Path

import pipeline

from . import jobs, settings
from .jobs import JobStatus

log = logging.getLogger("plinth.jobs")

CRASH_MESSAGE = ("The model maker stopped unexpectedly{why}. Your photos are kept: press Try again, "
                 "or use fewer or smaller photos.")
BUG_MESSAGE = ("Something went wrong while making the model. Your photos are kept: press Try again. "
               "If it keeps happening, try other photos.")
CANCEL_GRACE_S = 20.0

# ---------------------------------------------------------------- the child process


def run_job(data_dir: str, job_id: str, device: str | None) -> None:
    """Child-process entry: reconstruct, publish into the library, record the outcome."""
    from . import library

    data = Path(data_dir)
    job = jobs.get_job(job_id, data)
    if job is None:
        return
    staging = data / "staging" / job_id
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    last = [0.0]

    def progress(stage: str, fraction: float, message: str) -> bool:
        now = time.monotonic()
        if now - last[0] < 0.25 and fraction < 1.0:  # SQLite writes, not every tick of a long stage
            return True
        last[0] = now
        return jobs.record_progress(data, job_id, stage, fraction, message) is JobStatus.RUNNING

    try:
        options = replace(job.options, name=job.name)
        result = pipeline.reconstruct(job.photos, staging / "model.glb", options, progress=progress, device=device)
        model = library.add_model(result, job.name, job.photos, options.placement, data_dir=data, job_id=job_id)
        jobs.update(data, job_id, status=JobStatus.DONE, finished=time.time(), share_id=model.share_id,
                    stage="done", fraction=1.0, message="Your model is ready")
    except pipeline.Cancelled:
        jobs.update(data, job_id, status=JobStatus.CANCELLED, finished=time.time(), message="Stopped")
    except pipeline.PlinthError as error:
        jobs.update(data, job_id, status=JobStatus.FAILED, finished=time.time(), error=str(error))
    except MemoryError:
        jobs.update(data, job_id, status=JobStatus.FAILED, finished=time.time(),
                    error=CRASH_MESSAGE.format(why=" (out of memory)"))
    except Exception:  # a bug: keep the details for us, plain words for the merchant
        (data / "logs").mkdir(exist_ok=True)
        pipeline.atomic_write(data / "logs" / f"job-{job_id}.log", traceback.format_exc())
        log.exception("job %s failed", job_id)
        jobs.update(data, job_id, status=JobStatus.FAILED, finished=time.time(), error=BUG_MESSAGE)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# ---------------------------------------------------------------- the worker threads

_WORKERS: dict[str, Worker] = {}
_LOCK = threading.Lock()


def devices() -> list[str | None]:
    """$PLINTH_DEVICES (comma list such as 'cuda:0,cuda:1'), else one worker on the default device."""
    env = os.environ.get("PLINTH_DEVICES", "").strip()
    return [d.strip() for d in env.split(",") if d.strip()] if env else [None]


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
                self._run_child(job_id)
            except Exception:  # never leave a job "running" forever because the worker tripped
                log.exception("job %s could not be run", job_id)
                jobs.update(self.data, job_id, status=JobStatus.FAILED, finished=time.time(), error=BUG_MESSAGE)

    def _run_child(self, job_id: str) -> None:
        # A fresh interpreter (not fork): no server threads or sockets are copied into the child.
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(settings.ROOT), env.get("PYTHONPATH", "")) if p)
        cmd = [sys.executable, "-m", "webapp.workers", str(self.data), job_id, self.device or ""]
        child = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL)
        jobs.update(self.data, job_id, pid=child.pid)
        cancel_seen = None
        while child.poll() is None:
            try:
                child.wait(0.5)
            except subprocess.TimeoutExpired:
                pass
            if self.stop.is_set():
                child.terminate()
            job = jobs.get_job(job_id, self.data)
            if job is not None and job.status is JobStatus.CANCELLING:
                cancel_seen = cancel_seen or time.monotonic()
                if time.monotonic() - cancel_seen > CANCEL_GRACE_S:
                    child.terminate()
        child.wait()
        job = jobs.get_job(job_id, self.data)
        if job is not None and job.status is JobStatus.CANCELLING:
            jobs.update(self.data, job_id, status=JobStatus.CANCELLED, finished=time.time(), message="Stopped")
        elif job is not None and job.status is JobStatus.RUNNING:  # the child died without a word
            why = " (it probably ran out of memory)" if child.returncode in (-9, 137) else ""
            jobs.update(self.data, job_id, status=JobStatus.FAILED, finished=time.time(),
                        error=CRASH_MESSAGE.format(why=why))


def start_workers(data_dir: str | os.PathLike | None = None) -> list[Worker]:
    """Start the workers for this data folder once per process; recovers interrupted jobs first."""
    data = settings.data_dir(data_dir)
    with _LOCK:
        started = [w for key, w in _WORKERS.items() if key.startswith(f"{data}|") and w.is_alive()]
        if started:
            return started
        jobs.recover(data)
        from . import library

        library.remove_orphans(data)
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
    logging.basicConfig(level=logging.INFO)
    run_job(sys.argv[1], sys.argv[2], (sys.argv[3] if len(sys.argv) > 3 else "") or None)
