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
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import pipeline

from . import disk, limits, sanitize, settings, store


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
#: A job in one of these may still get its verdict; once it has one, nothing overwrites it.
_LIVE = (JobStatus.RUNNING.value, JobStatus.CANCELLING.value)
RESTART_MESSAGE = "The server restarted while this model was being made. Your photos are kept: press Try again."
DAMAGED_MESSAGE = "This job's settings could not be read. Your photos are kept: start a new model with them."
PHOTOS_DELETED_MESSAGE = ("The photos of this job were deleted after {days} days, as this server keeps them. "
                          "Upload them again to make the model.")
#: Folders under data/jobs younger than this are never purged: submit writes the photos before the row.
_ORPHAN_MIN_AGE_S = 3600.0


class JobRefused(Exception):
    """A job that cannot be accepted (too many or too big photos, a full disk, photos gone).

    `message` is one plain line for the merchant; nothing was written."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

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
    damaged: bool = False  # the stored options could not be read (the worker fails the job plainly)
    verdict: pipeline.Verdict | None = None  # done jobs: the quality gate's call on the model (None before it)

    @property
    def keeps_photos(self) -> bool:
        """A finished job whose photos stay for Try again: failed, stopped, or done with a model
        that failed its checks (a done job's model has its own copy otherwise)."""
        return self.status in (JobStatus.FAILED, JobStatus.CANCELLED) or (
            self.status is JobStatus.DONE and self.verdict is pipeline.Verdict.FAILED)

    @property
    def photos(self) -> list[Path]:
        """In the merchant's order. Each photo sits in its own numbered folder under the name it
        was uploaded with (000/IMG_1001.jpg), so every message names the merchant's own file;
        jobs submitted before that hold 000.jpg, 001.jpg, ... directly."""
        if not self.photo_dir.is_dir():
            return []
        found = []
        for entry in sorted(self.photo_dir.iterdir()):
            if entry.is_file():
                found.append(entry)
            elif entry.is_dir():
                found += sorted(p for p in entry.iterdir() if p.is_file())[:1]
        return found

    @property
    def photos_deleted(self) -> bool:
        """The job is over and its photos are gone (published with the model, or past retention)."""
        return self.status.finished and not self.photo_dir.is_dir()


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


def stored_name(filename: str) -> str:
    """The merchant's file name as a safe name for one file on disk: the last path part, no
    control characters or separators, at most 120 characters (the suffix kept)."""
    name = re.sub(r"[\x00-\x1f\x7f/\\]", "_", str(filename).replace("\\", "/").rsplit("/", 1)[-1]).strip()
    suffix = _safe_suffix(name)
    stem = name[: -len(Path(name).suffix)] if Path(name).suffix else name
    if len(name.encode()) > 120:
        name = stem.encode()[: 120 - len(suffix)].decode(errors="ignore") + suffix
    if not name.strip(".") or not stem:
        name = "photo" + suffix
    return name


def check_upload(sizes: Sequence[int], data: Path) -> None:
    """Raise JobRefused unless photos of these sizes (bytes) may become one job on this server."""
    mb = 1024 * 1024
    if not sizes:
        raise JobRefused("Add at least one photo of the product.")
    if len(sizes) > limits.MAX_JOB_PHOTOS:
        raise JobRefused(f"{len(sizes)} photos is more than the {limits.MAX_JOB_PHOTOS} one model can use. "
                         f"Pick the best {limits.MAX_JOB_PHOTOS} or fewer (20 to 80 is plenty).")
    biggest = max(sizes)
    if biggest > limits.MAX_FILE_MB * mb:
        raise JobRefused(f"One photo is {biggest / mb:.0f} MB; each may be at most {limits.MAX_FILE_MB:.0f} MB. "
                         "Use a smaller copy of it.")
    total = sum(sizes)
    if total > limits.MAX_JOB_MB * mb:
        raise JobRefused(f"These photos add up to {total / mb:.0f} MB; one model may use at most "
                         f"{limits.MAX_JOB_MB:.0f} MB. Use fewer or smaller photos.")
    free = shutil.disk_usage(data).free
    if free < limits.MIN_FREE_MB * mb + total:
        raise JobRefused("The server's disk is almost full, so it cannot take these photos now. "
                         "Ask whoever runs it to free some space, then try again.")


def _check_request(files, options) -> None:
    """JobRefused for what a caller (the page, later the HTTP API) may get wrong: not (name, bytes)
    pairs, or options the pipeline would refuse. Checked before a byte is written."""
    if isinstance(files, (str, bytes)) or not isinstance(files, Sequence):
        raise JobRefused("The photos must be a list of files.")
    for i, item in enumerate(files):
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)
                and isinstance(item[1], (bytes, bytearray))):
            raise JobRefused(f"Photo {i + 1} is not a file upload (a name and its bytes).")
        if not item[1]:
            raise JobRefused(f"The photo '{item[0][:80]}' is empty (0 bytes). Add it again or pick another one.")
    if not isinstance(options, pipeline.Options):
        raise JobRefused("The model's settings are missing.")
    try:
        options.check()
    except pipeline.InputError as error:
        raise JobRefused(error.message) from None


def submit(
    files: Sequence[tuple[str, bytes]],
    name: str,
    options: pipeline.Options,
    data_dir: str | os.PathLike | None = None,
) -> str:
    """Store the photos privately (location stripped) and queue a job. Returns the job id
    (random, URL-safe). Raises JobRefused, having written nothing, when the upload breaks a limit."""
    data = settings.data_dir(data_dir)
    _check_request(files, options)
    check_upload([len(content) for _, content in files], data)
    job_id = secrets.token_urlsafe(12)
    photo_dir = data / "jobs" / job_id / "photos"
    tmp = photo_dir.with_name(".photos-incoming")
    tmp.mkdir(parents=True)
    try:
        for i, (filename, content) in enumerate(files):
            # The originals may carry where the merchant lives (GPS): it never reaches the disk.
            (tmp / f"{i:03d}").mkdir()
            (tmp / f"{i:03d}" / stored_name(filename)).write_bytes(sanitize.strip_location(content))
        os.replace(tmp, photo_dir)  # a worker never sees half the photos
    except OSError as error:
        shutil.rmtree(photo_dir.parent, ignore_errors=True)
        if disk.is_full(error, data):
            raise JobRefused("The server's disk is full, so it cannot take these photos now. "
                             "Ask whoever runs it to free some space, then try again.") from error
        raise
    return _insert(data, job_id, name, options, photo_dir)


def retry(job_id: str, data_dir: str | os.PathLike | None = None) -> str | None:
    """Queue a new job with the photos and options of an earlier one. Returns the new id, None
    for an unknown job; JobRefused when its photos were deleted or the disk is too full."""
    data = settings.data_dir(data_dir)
    old = get_job(job_id, data)
    if old is None:
        return None
    photos = old.photos
    if not photos and old.status is JobStatus.DONE and not old.keeps_photos:
        raise JobRefused("This model is made, and its photos were kept only with it. "
                         "Upload the photos again to make another one.")
    if not photos:
        raise JobRefused(PHOTOS_DELETED_MESSAGE.format(days=f"{limits.KEEP_FAILED_DAYS:g}"))
    check_upload([p.stat().st_size for p in photos], data)
    new_id = secrets.token_urlsafe(12)
    photo_dir = data / "jobs" / new_id / "photos"
    try:
        shutil.copytree(old.photo_dir, photo_dir)
    except OSError:
        shutil.rmtree(photo_dir.parent, ignore_errors=True)
        raise
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
    error, damaged = row["error"], False
    stored = store.column(row, "verdict", "")  # '' for jobs done before the quality gate
    verdict = pipeline.Verdict(stored) if stored in {v.value for v in pipeline.Verdict} else None
    try:
        options = options_from_record(row["options"])
    except (pipeline.InputError, ValueError):  # one damaged row fails that job, not the whole queue
        options, damaged = pipeline.Options(), True
    return Job(
        id=row["id"], status=status, created=row["created"], started=row["started"],
        finished=row["finished"], name=row["name"], options=options,
        photo_dir=Path(row["photo_dir"]), stage=row["stage"], fraction=row["fraction"],
        message=row["message"], error=error, share_id=row["share_id"], position=position, damaged=damaged,
        verdict=verdict,
    )


def cancel(job_id: str, data_dir: str | os.PathLike | None = None) -> None:
    """Ask a job to stop: a queued job stops at once, a running one at its next progress report."""
    data = settings.data_dir(data_dir)
    with store.connect(data) as con:
        for old, new in ((JobStatus.QUEUED, JobStatus.CANCELLED), (JobStatus.RUNNING, JobStatus.CANCELLING)):
            con.execute("UPDATE jobs SET status=?, finished=? WHERE id=? AND status=?",
                        (new.value, time.time(), job_id, old.value))


def recover(data_dir: str | os.PathLike | None = None) -> int:
    """At start-up: jobs left running by a dead server are marked failed (photos kept). Final:
    a child of the dead server that still runs is stopped, and nothing it writes later counts."""
    data = settings.data_dir(data_dir)
    with store.connect(data) as con:
        rows = con.execute("SELECT id, pid FROM jobs WHERE status IN (?, ?)", _LIVE).fetchall()
        cur = con.execute(
            "UPDATE jobs SET status=?, error=?, finished=? WHERE status IN (?, ?)",
            (JobStatus.FAILED.value, RESTART_MESSAGE, time.time(), *_LIVE),
        )
    for row in rows:
        if row["pid"]:
            _kill_stale_child(int(row["pid"]), row["id"])
        shutil.rmtree(data / "staging" / row["id"], ignore_errors=True)
    return cur.rowcount


def _kill_stale_child(pid: int, job_id: str) -> None:
    """SIGKILL the child that ran `job_id`, if `pid` is still that child (not a reused pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return  # gone, or no /proc: the child's own checks stop it
    if b"webapp.workers" in cmdline and job_id.encode() in cmdline:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def finish(data: Path, job_id: str, status: JobStatus, **fields) -> bool:
    """Give a running job its verdict (done, failed, cancelled). Only the first verdict counts:
    returns False, changing nothing, when the job already has one (a restart failed it, say)."""
    fields = {"status": status.value, "finished": time.time(), **fields}
    cols = ", ".join(f"{k} = ?" for k in fields)
    with store.connect(data) as con:
        cur = con.execute(f"UPDATE jobs SET {cols} WHERE id = ? AND status IN (?, ?)",
                          (*fields.values(), job_id, *_LIVE))
    return cur.rowcount == 1


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


def record_progress(data: Path, job_id: str, stage: str, fraction: float, message: str) -> JobStatus | None:
    """Store a running job's progress; returns its status (None: no such job), so the child sees
    a cancel or a verdict given elsewhere. A finished job's record is left as it is."""
    with store.connect(data) as con:
        con.execute("UPDATE jobs SET stage=?, fraction=?, message=? WHERE id=? AND status IN (?, ?)",
                    (stage, float(fraction), message or "", job_id, *_LIVE))
        row = con.execute("SELECT status FROM jobs WHERE id=?", (job_id,)).fetchone()
    return JobStatus(row[0]) if row else None


def release_photos(data: Path, job_id: str) -> None:
    """Delete a finished job's uploaded photos (the row stays). The model keeps its own copy."""
    folder = data / "jobs" / job_id
    shutil.rmtree(folder / "photos", ignore_errors=True)
    shutil.rmtree(folder / ".photos-incoming", ignore_errors=True)
    try:
        folder.rmdir()
    except OSError:
        pass


def purge(data_dir: str | os.PathLike | None = None, now: float | None = None) -> int:
    """Delete photos no job needs any more. Returns how many job folders went.

    Done jobs' photos (their model has a copy); failed and cancelled jobs' photos, and those of
    done jobs whose model failed its quality checks (kept for Try again), once they are older
    than limits.KEEP_FAILED_DAYS (the row stays, so the page can say they were deleted);
    folders under data/jobs and data/staging of jobs with no row (older than an hour: submit
    writes the photos before the row) or, for staging, no running job."""
    data = settings.data_dir(data_dir)
    now = time.time() if now is None else now
    keep_until = now - limits.KEEP_FAILED_DAYS * 86400.0
    with store.connect(data) as con:
        rows = {r["id"]: r for r in con.execute("SELECT id, status, finished, verdict FROM jobs")}
    removed = 0
    jobs_dir = data / "jobs"
    for folder in sorted(jobs_dir.iterdir()) if jobs_dir.is_dir() else ():
        row = rows.get(folder.name)
        if row is None:
            gone = now - _mtime(folder) > _ORPHAN_MIN_AGE_S
        elif row["status"] == JobStatus.DONE.value and row["verdict"] != pipeline.Verdict.FAILED.value:
            gone = True
        elif row["status"] in (JobStatus.DONE.value, JobStatus.FAILED.value, JobStatus.CANCELLED.value):
            gone = (row["finished"] or 0.0) < keep_until
        else:
            gone = False  # queued or running: its photos are in use
        if gone:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    staging = data / "staging"
    for folder in sorted(staging.iterdir()) if staging.is_dir() else ():
        row = rows.get(folder.name)
        if (row is None or row["status"] not in _LIVE) and now - _mtime(folder) > _ORPHAN_MIN_AGE_S:
            shutil.rmtree(folder, ignore_errors=True)
    return removed


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
