"""The job queue's records in SQLite: submit, retry, cancel, read, recover. No Streamlit import.

The workers that run the jobs live in webapp/workers.py; this module is only the records, so
the UI, the workers and the child process all read and write jobs the same way.

    job_id = submit([("front.jpg", data)], name="Oak chair",
                    options=pipeline.Options(size=pipeline.KnownSize("height", 0.85)))
    job = get_job(job_id)                 # status, stage, fraction, message, error, share_id
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import sqlite3
import signal
import threading
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import pipeline

from . import disk, jobqueue, limits, sanitize, settings, storage, store, trash
from .intake import JobRefused, check_files, check_request, check_upload, stored_name


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
STORAGE_MESSAGE = ("The photos could not be stored ({why}) Nothing was kept; try again in a minute, and if it "
                   "keeps happening tell whoever runs this server.")
PHOTOS_DELETED_MESSAGE = ("The photos of this job were deleted after {days} days, as this server keeps them. "
                          "Upload them again to make the model.")
#: Folders under data/jobs younger than this are never purged: submit writes the photos before the row.
_ORPHAN_MIN_AGE_S = 3600.0


log = logging.getLogger("plinth.jobs")

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
    photo_names: tuple[str, ...] = ()  # the merchant's file names, in the photos' order (older jobs: none)
    retried_as: str | None = None  # the job "Try again with changes" made from this one
    owner: str = ""  # the merchant's users.id ('' only before any account existed)

    @property
    def named_photos(self) -> list[tuple[Path, str]]:
        """(stored photo, the merchant's own file name), in order; older jobs show the stored name."""
        photos = self.photos
        names = self.photo_names if len(self.photo_names) == len(photos) else [p.name for p in photos]
        return list(zip(photos, names))

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


def submit(
    files: Sequence[tuple[str, bytes]],
    name: str,
    options: pipeline.Options,
    data_dir: str | os.PathLike | None = None,
    owner: str = "",
) -> str:
    """Store the photos privately (location stripped) and queue a job. Returns the job id
    (random, URL-safe). Raises JobRefused, having written nothing, when the upload breaks a limit."""
    data = settings.data_dir(data_dir)
    check_request(files, options)
    check_upload([len(content) for _, content in files], data)
    return _queue(data, name, options, list(files), owner)


def retry(job_id: str, data_dir: str | os.PathLike | None = None, remove: Collection[int] = (),
          add: Sequence[tuple[str, bytes]] = ()) -> str | None:
    """Queue a new job with the photos and options of an earlier one, less the photos at the
    positions in `remove` (0 = the first of `Job.photos`), plus the uploads in `add` (name, bytes)
    after them. Returns the new id, None for an unknown job. JobRefused, having written nothing
    and left the old job as it was, when its photos were deleted, none would be left, or the
    result breaks a limit. The old job keeps its photos (until its own retention ends) and
    records the new id (`Job.retried_as`), so the Library stops asking about it."""
    data = settings.data_dir(data_dir)
    old = get_job(job_id, data)
    if old is None:
        return None
    try:  # taken on another machine (or this copy was dropped): the storage has them
        fetch_photos(data, old)
    except storage.StorageError as error:
        raise JobRefused(STORAGE_MESSAGE.format(why=error.message)) from error
    named = old.named_photos
    if not named and old.status is JobStatus.DONE and not old.keeps_photos:
        raise JobRefused("This model is made, and its photos were kept only with it. "
                         "Upload the photos again to make another one.")
    if not named:
        raise JobRefused(PHOTOS_DELETED_MESSAGE.format(days=f"{limits.KEEP_FAILED_DAYS:g}"))
    check_files(add)
    kept: list[tuple[str, Path | bytes]] = [(n, p) for i, (p, n) in enumerate(named) if i not in set(remove)]
    photos = kept + [(n, bytes(content)) for n, content in add]
    if not photos:
        raise JobRefused("Keep at least one photo, or add new ones, to make the model again.")
    check_upload([p.stat().st_size if isinstance(p, Path) else len(p) for _, p in photos], data)
    new_id = _queue(data, old.name, old.options, photos, old.owner)
    update(data, job_id, retried_as=new_id)
    return new_id


def _queue(data: Path, name: str, options: pipeline.Options, photos: list[tuple[str, Path | bytes]],
           owner: str) -> str:
    """Write the photos (a stored photo is copied; new bytes lose their location) into a new job's
    folder, all at once, then insert its row."""
    job_id = secrets.token_urlsafe(12)
    photo_dir = data / "jobs" / job_id / "photos"
    tmp = photo_dir.with_name(".photos-incoming")
    tmp.mkdir(parents=True)
    try:
        for i, (filename, content) in enumerate(photos):
            # Each photo in its own numbered folder under the merchant's own name, so every
            # message the pipeline writes names their file (not one we invented).
            (tmp / f"{i:03d}").mkdir()
            target = tmp / f"{i:03d}" / stored_name(filename)
            if isinstance(content, Path):
                shutil.copyfile(content, target)
            else:  # the originals may carry where the merchant lives (GPS): it never reaches the disk
                target.write_bytes(sanitize.strip_location(content))
        os.replace(tmp, photo_dir)  # a worker never sees half the photos
    except OSError as error:
        shutil.rmtree(photo_dir.parent, ignore_errors=True)
        if disk.is_full(error, data):
            raise JobRefused("The server's disk is full, so it cannot take these photos now. "
                             "Ask whoever runs it to free some space, then try again.") from error
        raise
    try:  # the storage (when configured) has the photos before the row exists: any worker can pull them
        storage.push(data, photos_rel(job_id))
    except storage.StorageError as error:
        shutil.rmtree(photo_dir.parent, ignore_errors=True)
        _forget_stored(data, f"jobs/{job_id}")
        raise JobRefused(STORAGE_MESSAGE.format(why=error.message)) from error
    names = [Path(filename).name[:200] for filename, _ in photos]
    with store.connect(data) as con:
        con.execute(
            "INSERT INTO jobs (id, status, created, name, options, photo_dir, message, photo_names, owner) "
            "VALUES (?,?,?,?,?,?,?,?,?)",
            (job_id, JobStatus.QUEUED.value, time.time(), name, json.dumps(options.to_dict()), photos_rel(job_id),
             "Waiting to start", json.dumps(names), owner),
        )
    jobqueue.dispatch(data, job_id)  # the engine starts it: this process's workers, or RQ
    return job_id


def photos_rel(job_id: str) -> str:
    """Where a job's photos are, relative to a data folder (and in the storage): jobs/<id>/photos.
    Job rows store this, so each process resolves it against its own data folder."""
    return f"jobs/{job_id}/photos"


def fetch_photos(data: Path, job: Job) -> bool:
    """With shared storage: pull the job's photos into this data folder unless they are here (a pulled
    folder appears whole: storage.pull). True when they are here now. StorageError when it cannot answer."""
    data = settings.data_dir(data)
    if job.photo_dir.is_dir():
        return True
    if not storage.configured() or job.photo_dir != data / photos_rel(job.id):  # an old absolute row: local only
        return False
    return storage.pull(data, photos_rel(job.id))


def _forget_stored(data: Path, rel: str) -> None:
    """Remove `rel` in the storage, best effort: a failure here must not hide the one being reported."""
    try:
        storage.remove(data, rel)
    except storage.StorageError as error:
        log.warning("could not remove %s in the storage: %s", rel, error)


def list_jobs(statuses: Collection[JobStatus], data_dir: str | os.PathLike | None = None,
              owner: str | None = None) -> list[Job]:
    """Jobs in these states, newest first (queued ones with their place in line); only `owner`'s
    (a users.id) when given. The place in line counts every merchant's jobs: they share the workers."""
    data = settings.data_dir(data_dir)
    mine = "" if owner is None else " AND owner = ?"
    with store.connect(data) as con:
        ids = [r[0] for r in con.execute(
            f"SELECT id FROM jobs WHERE status IN ({', '.join('?' * len(statuses))}){mine} ORDER BY seq DESC",
            (*(s.value for s in statuses), *(() if owner is None else (owner,))))]
    return [job for job in (get_job(i, data) for i in ids) if job is not None]


def needing_attention(data_dir: str | os.PathLike | None = None, owner: str | None = None) -> list[Job]:
    """Failed and stopped jobs whose photos are still kept and that were not tried again yet."""
    return [job for job in list_jobs((JobStatus.FAILED, JobStatus.CANCELLED), data_dir, owner)
            if job.retried_as is None and job.photos]


def get_owned(job_id: str, user, data_dir: str | os.PathLike | None = None) -> Job | None:
    """The job if `user` (an accounts.User) may see it, else None: an unknown id and another
    merchant's job look the same (callers answer 404, never 403)."""
    job = get_job(job_id, data_dir) if user is not None else None
    return job if job is not None and user.can_see(job.owner) else None


def discard(job_id: str, data_dir: str | os.PathLike | None = None) -> bool:
    """Delete a failed or stopped job's photos and its record (the merchant's "Delete these photos")."""
    data = settings.data_dir(data_dir)
    job = get_job(job_id, data)
    if job is None or job.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
        return False
    with store.connect(data) as con:
        con.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
    shutil.rmtree(data / "jobs" / job_id, ignore_errors=True)
    _forget_stored(data, f"jobs/{job_id}")
    return True


def get_job(job_id: str, data_dir: str | os.PathLike | None = None) -> Job | None:
    if not isinstance(job_id, str) or not 8 <= len(job_id) <= 64:
        return None
    data = settings.data_dir(data_dir)
    try:
        found = _read_job(data, job_id, readonly=False)
    except sqlite3.OperationalError:  # a full disk ("disk I/O error"): a page that polls still gets an answer
        found = _read_job(data, job_id, readonly=True)
    if found is None:
        return None
    row, status, position = found
    error, damaged = row["error"], False
    stored = store.column(row, "verdict", "")  # '' for jobs done before the quality gate
    verdict = pipeline.Verdict(stored) if stored in {v.value for v in pipeline.Verdict} else None
    try:
        options = options_from_record(row["options"])
    except (pipeline.InputError, ValueError):  # one damaged row fails that job, not the whole queue
        options, damaged = pipeline.Options(), True
    job = Job(
        id=row["id"], status=status, created=row["created"], started=row["started"],
        finished=row["finished"], name=row["name"], options=options,
        photo_dir=_photo_dir(data, row["photo_dir"]), stage=row["stage"], fraction=row["fraction"],
        message=row["message"], error=error, share_id=row["share_id"], position=position, damaged=damaged,
        verdict=verdict, photo_names=_names(store.column(row, "photo_names", "[]")),
        retried_as=store.column(row, "retried_as", None), owner=store.column(row, "owner", "") or "",
    )
    _fetch_kept_photos(data, job)
    return job


def _fetch_kept_photos(data: Path, job: Job) -> None:
    """With shared storage: a finished job whose photos are kept for Try again (by the rules purge
    applies) but that this data folder has no copy of (taken on another web server, or this one's
    folder is new) gets them pulled, so its page shows them rather than "deleted"."""
    if (not storage.configured() or not job.keeps_photos or job.photo_dir.is_dir()
            or (job.finished or 0.0) < time.time() - limits.KEEP_FAILED_DAYS * 86400.0):
        return
    try:
        fetch_photos(data, job)
    except (storage.StorageError, OSError) as error:  # the page still answers; the next read tries again
        log.warning("could not fetch the kept photos of job %s: %s", job.id, error)


def _photo_dir(data: Path, stored: str) -> Path:
    """A row's photo_dir: relative ("jobs/<id>/photos", since shared storage) to this process's data
    folder; rows written before that hold an absolute path, still read as it is."""
    path = Path(stored)
    return path if path.is_absolute() else data / path


def _read_job(data: Path, job_id: str, readonly: bool):
    """(row, status, place in the queue: 1 = next, 0 when not waiting), or None for an unknown id."""
    with store.connect(data, readonly=readonly) as con:
        row = con.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            return None
        status = JobStatus(row["status"])
        position = 0
        if status is JobStatus.QUEUED:
            position = 1 + con.execute(
                "SELECT COUNT(*) FROM jobs WHERE status = ? AND seq < ?", (JobStatus.QUEUED.value, row["seq"])
            ).fetchone()[0]
    return row, status, position


def _names(text: str) -> tuple[str, ...]:
    try:
        names = json.loads(text or "[]")
    except ValueError:
        return ()
    return tuple(str(n) for n in names) if isinstance(names, list) else ()


def cancel(job_id: str, data_dir: str | os.PathLike | None = None) -> None:
    """Ask a job to stop: a queued job stops at once, a running one at its next progress report."""
    data = settings.data_dir(data_dir)
    with store.connect(data) as con:
        for old, new in ((JobStatus.QUEUED, JobStatus.CANCELLED), (JobStatus.RUNNING, JobStatus.CANCELLING)):
            con.execute("UPDATE jobs SET status=?, finished=? WHERE id=? AND status=?",
                        (new.value, time.time(), job_id, old.value))
    jobqueue.cancelled(data, job_id)  # RQ: a queued job also leaves its queue; a running one stops by its row


def recover(data_dir: str | os.PathLike | None = None) -> int:
    """At start-up: jobs left running by a dead server are marked failed (photos kept). Final:
    a child of the dead server that still runs is stopped, and nothing it writes later counts.
    Embedded engine only: with $PLINTH_QUEUE, `plinth worker`s on other machines own the running
    jobs, and the reaper (rq_engine.reap) settles those whose worker died."""
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
        for _ in range(5):
            row = con.execute(
                "UPDATE jobs SET status=?, started=?, device=?, message='Starting' "
                "WHERE seq = (SELECT seq FROM jobs WHERE status=? ORDER BY seq LIMIT 1) AND status=? RETURNING id",
                (JobStatus.RUNNING.value, time.time(), device or "", JobStatus.QUEUED.value, JobStatus.QUEUED.value),
            ).fetchone()
            # Postgres: the loser of a race for the oldest job gets no row while others wait: try again
            if row is not None or con.execute("SELECT 1 FROM jobs WHERE status=? LIMIT 1",
                                              (JobStatus.QUEUED.value,)).fetchone() is None:
                break
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
    _forget_stored(data, f"jobs/{job_id}")
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
    writes the photos before the row) or, for staging, no running job. Also empties the Trash of
    models deleted more than trash.KEEP_DAYS ago (not counted in the return value)."""
    data = settings.data_dir(data_dir)
    now = time.time() if now is None else now
    keep_until = now - limits.KEEP_FAILED_DAYS * 86400.0
    with store.connect(data) as con:
        rows = {r["id"]: r for r in con.execute("SELECT id, status, finished, verdict FROM jobs")}
    removed = 0
    jobs_dir = data / "jobs"
    local = {folder.name for folder in jobs_dir.iterdir()} if jobs_dir.is_dir() else set()
    for name in sorted(local | _stored_jobs(data)):
        folder = jobs_dir / name
        row = rows.get(name)
        if row is None:  # only a local folder has an age we can read (submit writes photos before the row)
            gone = name in local and now - _mtime(folder) > _ORPHAN_MIN_AGE_S
        elif row["status"] == JobStatus.DONE.value and row["verdict"] != pipeline.Verdict.FAILED.value:
            gone = True
        elif row["status"] in (JobStatus.DONE.value, JobStatus.FAILED.value, JobStatus.CANCELLED.value):
            gone = (row["finished"] or 0.0) < keep_until
        else:
            gone = False  # queued or running: its photos are in use
        if gone:
            shutil.rmtree(folder, ignore_errors=True)
            _forget_stored(data, f"jobs/{name}")
            removed += 1
    trash.purge(data, now)  # models in the Trash past their 30 days (their count is not photos)
    staging = data / "staging"
    for folder in sorted(staging.iterdir()) if staging.is_dir() else ():
        row = rows.get(folder.name)
        if (row is None or row["status"] not in _LIVE) and now - _mtime(folder) > _ORPHAN_MIN_AGE_S:
            shutil.rmtree(folder, ignore_errors=True)
    return removed


def _stored_jobs(data: Path) -> set[str]:
    """Job folders in the storage (none without one): photos another machine took are purged here too."""
    if not storage.configured():
        return set()
    try:
        return set(storage.children(data, "jobs"))
    except storage.StorageError as error:  # the local clean-up still runs; the next round tries again
        log.warning("could not list the jobs in the storage: %s", error)
        return set()


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
