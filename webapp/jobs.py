"""The job queue's records in SQLite: submit, retry, cancel, read, recover. No Streamlit import.

The workers that run the jobs live in webapp/workers.py; this module is only the records, so
the UI, the workers and the child process all read and write jobs the same way.

    job_id = submit([("front.jpg", data)], name="Oak chair",
                    options=pipeline.Options(size=pipeline.KnownSize("height", 0.85)))
    job = get_job(job_id)                 # status, stage, fraction, message, error, share_id
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import pipeline

from . import settings, store


class JobStatus(str, Enum):
    """Where a job is; the database stores the value ("queued", ...)."""

    QUEUED = "queued"
    RUNNING = "running"
    CANCELLING = "cancelling"  # asked to stop; the child stops at its next progress report
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)


ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.CANCELLING)
RESTART_MESSAGE = "The server restarted while this model was being made. Your photos are kept: press Try again."

#: Set when a job is queued, so workers in this process start it at once instead of at their next poll.
WAKE = threading.Event()


@dataclass(frozen=True)
class Job:
    id: str
    status: JobStatus
    created: float
    started: float | None
    finished: float | None
    name: str
    options: pipeline.Options
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


def options_from_record(text: str) -> pipeline.Options:
    """The options of a job row: `Options.to_dict()` JSON, or the older
    {kind, placement, size_axis, size_m, quality, texture_size} of databases made before it."""
    data = json.loads(text)
    if "size_axis" in data or "size_m" in data:
        axis, metres = data.pop("size_axis", "height"), data.pop("size_m", None)
        data["size"] = {"axis": axis, "metres": metres} if metres else None
    return pipeline.Options.from_dict(data)


def _safe_suffix(filename: str) -> str:
    suffix = Path(filename).suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,5}", suffix) else ".img"


def submit(
    files: Sequence[tuple[str, bytes]],
    name: str,
    options: pipeline.Options,
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
    os.replace(tmp, photo_dir)  # a worker never sees half the photos
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


def _insert(data: Path, job_id: str, name: str, options: pipeline.Options, photo_dir: Path) -> str:
    with store.connect(data) as con:
        con.execute(
            "INSERT INTO jobs (id, status, created, name, options, photo_dir, message) VALUES (?,?,?,?,?,?,?)",
            (job_id, JobStatus.QUEUED.value, time.time(), name, json.dumps(options.to_dict()), str(photo_dir),
             "Waiting to start"),
        )
    WAKE.set()
    return job_id


def get_job(job_id: str, data_dir: str | os.PathLike | None = None) -> Job | None:
    if not isinstance(job_id, str) or not 8 <= len(job_id) <= 64:
        return None
    data = settings.data_dir(data_dir)
    with store.connect(data) as con:
        row = con.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            return None
        status = JobStatus(row["status"])
        position = 0
        if status is JobStatus.QUEUED:
            position = 1 + con.execute(
                "SELECT COUNT(*) FROM jobs WHERE status = ? AND seq < ?", (JobStatus.QUEUED.value, row["seq"])
            ).fetchone()[0]
    return Job(
        id=row["id"], status=status, created=row["created"], started=row["started"],
        finished=row["finished"], name=row["name"], options=options_from_record(row["options"]),
        photo_dir=Path(row["photo_dir"]), stage=row["stage"], fraction=row["fraction"],
        message=row["message"], error=row["error"], share_id=row["share_id"], position=position,
    )


def cancel(job_id: str, data_dir: str | os.PathLike | None = None) -> None:
    """Ask a job to stop: a queued job stops at once, a running one at its next progress report."""
    data = settings.data_dir(data_dir)
    with store.connect(data) as con:
        for old, new in ((JobStatus.QUEUED, JobStatus.CANCELLED), (JobStatus.RUNNING, JobStatus.CANCELLING)):
            con.execute("UPDATE jobs SET status=?, finished=? WHERE id=? AND status=?",
                        (new.value, time.time(), job_id, old.value))


def recover(data_dir: str | os.PathLike | None = None) -> int:
    """At start-up: jobs left running by a dead server are marked failed (photos kept)."""
    data = settings.data_dir(data_dir)
    with store.connect(data) as con:
        cur = con.execute(
            "UPDATE jobs SET status=?, error=?, finished=? WHERE status IN (?, ?)",
            (JobStatus.FAILED.value, RESTART_MESSAGE, time.time(), JobStatus.RUNNING.value,
             JobStatus.CANCELLING.value),
        )
    return cur.rowcount


def update(data: Path, job_id: str, **fields) -> None:
    """Set columns of one job (a JobStatus is stored as its value)."""
    values = [v.value if isinstance(v, JobStatus) else v for v in fields.values()]
    cols = ", ".join(f"{k} = ?" for k in fields)
    with store.connect(data) as con:
        con.execute(f"UPDATE jobs SET {cols} WHERE id = ?", (*values, job_id))


def claim(data: Path, device: str | None) -> str | None:
    """Mark the oldest queued job running on `device` and return its id (None: nothing queued).

    One statement, so two workers can never claim the same job."""
    with store.connect(data) as con:
        row = con.execute(
            "UPDATE jobs SET status=?, started=?, device=?, message='Starting' "
            "WHERE seq = (SELECT seq FROM jobs WHERE status=? ORDER BY seq LIMIT 1) AND status=? RETURNING id",
            (JobStatus.RUNNING.value, time.time(), device or "", JobStatus.QUEUED.value, JobStatus.QUEUED.value),
        ).fetchone()
    return row[0] if row else None


def record_progress(data: Path, job_id: str, stage: str, fraction: float, message: str) -> JobStatus:
    """Store a running job's progress; returns its status, so the child sees a cancel."""
    with store.connect(data) as con:
        con.execute("UPDATE jobs SET stage=?, fraction=?, message=? WHERE id=?",
                    (stage, float(fraction), message or "", job_id))
        status = con.execute("SELECT status FROM jobs WHERE id=?", (job_id,)).fetchone()[0]
    return JobStatus(status)
