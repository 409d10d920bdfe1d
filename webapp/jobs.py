"""The job queue: reconstructions run one per device at a time, each in a child process.

No Streamlit import. A worker thread per device claims the oldest queued job from SQLite and runs
`pipeline.reconstruct` in a child process (`python -m webapp.jobs`), so a crash or an out-of-memory kill cannot take
the web server down. The child writes progress to SQLite; the UI only reads it.

    job_id = submit([("front.jpg", data)], name="Oak chair", options=JobOptions(size_m=0.85))
    start_workers()                       # idempotent; the server calls it at start-up
    job = get_job(job_id)                 # status, stage, fraction, message, error, share_id
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from . import settings, store

log = logging.getLogger("plinth.jobs")

ACTIVE = ("queued", "running", "cancelling")
RESTART_MESSAGE = "The server restarted while this model was being made. Your photos are kept: press Try again."
CRASH_MESSAGE = ("The model maker stopped unexpectedly{why}. Your photos are kept: press Try again, "
                 "or use fewer or smaller photos.")
BUG_MESSAGE = ("Something went wrong while making the model. Your photos are kept: press Try again. "
               "If it keeps happening, try other photos.")
CANCEL_GRACE_S = 20.0


@dataclass(frozen=True)
class JobOptions:
    """What the merchant chose on the Create page (plain JSON-able values)."""

    kind: str = "auto"
    placement: str = "floor"
    size_axis: str = "height"
    size_m: float | None = None
    quality: str = "balanced"
    texture_size: int = 2048


@dataclass(frozen=True)
class Job:
    id: str
    status: str
    created: float
    started: float | None
    finished: float | None
    name: str
    options: JobOptions
    photo_dir: Path
    stage: str
    fraction: float
    message: str
    error: str
    share_id: str | None
    position: int  # 1 = next in line; 0 when not waiting

    @property
    def photos(self) -> list[Path]:
        return sorted(p for p in self.photo_dir.iterdir() if p.is_file()) if self.photo_dir.is_dir() else []


def _safe_suffix(filename: str) -> str:
    suffix = Path(filename).suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,5}", suffix) else ".img"


def submit(
    files: Sequence[tuple[str, bytes]],
    name: str,
    options: JobOptions,
    data_dir: str | os.PathLike | None = None,
) -> str:
    """Store the photos privately and queue a job. Returns the job id (random, URL-safe)."""
    data = settings.data_dir(data_dir)
    job_id = secrets.token_urlsafe(12)
    photo_dir = data / "jobs" / job_id / "photos"
    tmp = photo_dir.with_name(".photos-incoming")
    tmp.mkdir(parents=True)
    for i, (filename, content) in enumerate(files):
        (tmp / f"{i:03d}{_safe_suffix(filename)}").write_bytes(content)
    os.replace(tmp, photo_dir)
    return _insert(data, job_id, name, options, photo_dir)


def retry(job_id: str, data_dir: str | os.PathLike | None = None) -> str | None:
    """Queue a new job with the photos and options of an earlier one. Returns the new id."""
    data = settings.data_dir(data_dir)
    old = get_job(job_id, data)
    if old is None or not old.photos:
        return None
    new_id = secrets.token_urlsafe(12)
    photo_dir = data / "jobs" / new_id / "photos"
    shutil.copytree(old.photo_dir, photo_dir)
    return _insert(data, new_id, old.name, old.options, photo_dir)


def _insert(data: Path, job_id: str, name: str, options: JobOptions, photo_dir: Path) -> str:
    with store.connect(data) as con:
        con.execute(
            "INSERT INTO jobs (id, status, created, name, options, photo_dir, message) VALUES (?,?,?,?,?,?,?)",
            (job_id, "queued", time.time(), name, json.dumps(asdict(options)), str(photo_dir), "Waiting to start"),
        )
    _WAKE.set()
    return job_id


def get_job(job_id: str, data_dir: str | os.PathLike | None = None) -> Job | None:
    if not isinstance(job_id, str) or not 8 <= len(job_id) <= 64:
        return None
    data = settings.data_dir(data_dir)
    with store.connect(data) as con:
        row = con.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            return None
        position = 0
        if row["status"] == "queued":
            position = 1 + con.execute(
                "SELECT COUNT(*) FROM jobs WHERE status = 'queued' AND seq < ?", (row["seq"],)
            ).fetchone()[0]
    return Job(
        id=row["id"], status=row["status"], created=row["created"], started=row["started"],
        finished=row["finished"], name=row["name"], options=JobOptions(**json.loads(row["options"])),
        photo_dir=Path(row["photo_dir"]), stage=row["stage"], fraction=row["fraction"],
        message=row["message"], error=row["error"], share_id=row["share_id"], position=position,
    )


def cancel(job_id: str, data_dir: str | os.PathLike | None = None) -> None:
    """Ask a job to stop: a queued job stops at once, a running one at its next progress report."""
    data = settings.data_dir(data_dir)
    with store.connect(data) as con:
        con.execute("UPDATE jobs SET status='cancelled', finished=? WHERE id=? AND status='queued'", (time.time(), job_id))
        con.execute("UPDATE jobs SET status='cancelling', finished=? WHERE id=? AND status='running'", (time.time(), job_id))


def recover(data_dir: str | os.PathLike | None = None) -> int:
    """At start-up: jobs left running by a dead server are marked failed (photos kept)."""
    data = settings.data_dir(data_dir)
    with store.connect(data) as con:
        cur = con.execute(
            "UPDATE jobs SET status='failed', error=?, finished=? WHERE status IN ('running','cancelling')",
            (RESTART_MESSAGE, time.time()),
        )
    return cur.rowcount


def _set(data: Path, job_id: str, **fields) -> None:
    cols = ", ".join(f"{k} = ?" for k in fields)
    with store.connect(data) as con:
        con.execute(f"UPDATE jobs SET {cols} WHERE id = ?", (*fields.values(), job_id))


def _claim(data: Path, device: str | None) -> str | None:
    with store.connect(data) as con:
        row = con.execute(
            "UPDATE jobs SET status='running', started=?, device=?, message='Starting' "
            "WHERE seq = (SELECT seq FROM jobs WHERE status='queued' ORDER BY seq LIMIT 1) AND status='queued' "
            "RETURNING id",
            (time.time(), device or ""),
        ).fetchone()
    return row[0] if row else None


# ---------------------------------------------------------------- the child process


def run_job(data_dir: str, job_id: str, device: str | None) -> None:
    """Child-process entry: reconstruct, publish into the library, record the outcome."""
    import pipeline

    from . import library

    data = Path(data_dir)
    job = get_job(job_id, data)
    if job is None:
        return
    staging = data / "staging" / job_id
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    last = [0.0]

    def progress(stage: str, fraction: float, message: str) -> bool:
        now = time.monotonic()
        if now - last[0] < 0.25 and fraction < 1.0:
            return True
        last[0] = now
        with store.connect(data) as con:
            con.execute("UPDATE jobs SET stage=?, fraction=?, message=? WHERE id=?",
                        (stage, float(fraction), message or "", job_id))
            status = con.execute("SELECT status FROM jobs WHERE id=?", (job_id,)).fetchone()[0]
        return status == "running"

    o = job.options
    try:
        options = pipeline.Options(
            kind=o.kind, placement=o.placement, name=job.name, quality=o.quality, texture_size=o.texture_size,
            size=pipeline.KnownSize(o.size_axis, float(o.size_m)) if o.size_m else None,
        )
        result = pipeline.reconstruct(job.photos, staging / "model.glb", options, progress=progress, device=device)
        model = library.add_model(result, job.name, job.photos, o.placement, data_dir=data, job_id=job_id)
        _set(data, job_id, status="done", finished=time.time(), share_id=model.share_id,
             stage="done", fraction=1.0, message="Your model is ready")
    except pipeline.Cancelled:
        _set(data, job_id, status="cancelled", finished=time.time(), message="Stopped")
    except pipeline.PlinthError as error:
        _set(data, job_id, status="failed", finished=time.time(), error=str(error))
    except MemoryError:
        _set(data, job_id, status="failed", finished=time.time(), error=CRASH_MESSAGE.format(why=" (out of memory)"))
    except Exception:  # a bug: keep the details for us, plain words for the merchant
        (data / "logs").mkdir(exist_ok=True)
        (data / "logs" / f"job-{job_id}.log").write_text(traceback.format_exc())
        log.exception("job %s failed", job_id)
        _set(data, job_id, status="failed", finished=time.time(), error=BUG_MESSAGE)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# ---------------------------------------------------------------- the worker threads

_WAKE = threading.Event()
_WORKERS: dict[str, "Worker"] = {}
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
                job_id = _claim(self.data, self.device)
            except Exception:  # database briefly locked or unreadable: try again shortly
                log.exception("could not read the job queue")
                job_id = None
            if job_id is None:
                _WAKE.wait(1.0)
                _WAKE.clear()
                continue
            try:
                self._run_child(job_id)
            except Exception:  # never leave a job "running" forever because the worker tripped
                log.exception("job %s could not be run", job_id)
                _set(self.data, job_id, status="failed", finished=time.time(), error=BUG_MESSAGE)

    def _run_child(self, job_id: str) -> None:
        # A fresh interpreter (not fork): no server threads or sockets are copied into the child.
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(settings.ROOT), env.get("PYTHONPATH", "")) if p)
        cmd = [sys.executable, "-m", "webapp.jobs", str(self.data), job_id, self.device or ""]
        child = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL)
        _set(self.data, job_id, pid=child.pid)
        cancel_seen = None
        while child.poll() is None:
            try:
                child.wait(0.5)
            except subprocess.TimeoutExpired:
                pass
            if self.stop.is_set():
                child.terminate()
            job = get_job(job_id, self.data)
            if job is not None and job.status == "cancelling":
                cancel_seen = cancel_seen or time.monotonic()
                if time.monotonic() - cancel_seen > CANCEL_GRACE_S:
                    child.terminate()
        child.wait()
        job = get_job(job_id, self.data)
        if job is not None and job.status in ("running", "cancelling"):
            if job.status == "cancelling":
                _set(self.data, job_id, status="cancelled", finished=time.time(), message="Stopped")
            else:
                why = " (it probably ran out of memory)" if child.returncode in (-9, 137) else ""
                _set(self.data, job_id, status="failed", finished=time.time(), error=CRASH_MESSAGE.format(why=why))


def start_workers(data_dir: str | os.PathLike | None = None) -> list[Worker]:
    """Start the workers for this data folder once per process; recovers interrupted jobs first."""
    data = settings.data_dir(data_dir)
    with _LOCK:
        started = [w for key, w in _WORKERS.items() if key.startswith(f"{data}|") and w.is_alive()]
        if started:
            return started
        recover(data)
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
        _WAKE.set()
        for worker in _WORKERS.values():
            worker.join(timeout=10)
        _WORKERS.clear()


if __name__ == "__main__":  # the child process: python -m webapp.jobs DATA_DIR JOB_ID [DEVICE]
    logging.basicConfig(level=logging.INFO)
    run_job(sys.argv[1], sys.argv[2], (sys.argv[3] if len(sys.argv) > 3 else "") or None)
