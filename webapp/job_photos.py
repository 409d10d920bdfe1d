"""Keeping a job's photos, and letting them go: after the model is made, after retention, on request.

Separate from webapp/jobs.py (which writes the photos at submit and reads them) because this is the
clean-up side: it deletes from the data folder and, with shared storage, from the storage too, and
it also empties the Trash (webapp/trash.py) on each purge. The photos of a failed or stopped job,
and of a done job whose model failed its checks, stay limits.KEEP_FAILED_DAYS for Try again.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

import pipeline

from . import limits, settings, storage, store, trash
from .jobs import LIVE, JobStatus, forget_stored, get_job

log = logging.getLogger("plinth.jobs")

#: Folders under data/jobs younger than this are never purged: submit writes the photos before the row.
_ORPHAN_MIN_AGE_S = 3600.0


def discard(job_id: str, data_dir: str | os.PathLike | None = None) -> bool:
    """Delete a failed or stopped job's photos and its record (the merchant's "Delete these photos")."""
    data = settings.data_dir(data_dir)
    job = get_job(job_id, data)
    if job is None or job.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
        return False
    with store.connect(data) as con:
        con.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
    shutil.rmtree(data / "jobs" / job_id, ignore_errors=True)
    forget_stored(data, f"jobs/{job_id}")
    return True


def release_photos(data: Path, job_id: str) -> None:
    """Delete a finished job's uploaded photos (the row stays). The model keeps its own copy."""
    folder = data / "jobs" / job_id
    shutil.rmtree(folder / "photos", ignore_errors=True)
    shutil.rmtree(folder / ".photos-incoming", ignore_errors=True)
    forget_stored(data, f"jobs/{job_id}")
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
            forget_stored(data, f"jobs/{name}")
            removed += 1
    trash.purge(data, now)  # models in the Trash past their 30 days (their count is not photos)
    staging = data / "staging"
    for folder in sorted(staging.iterdir()) if staging.is_dir() else ():
        row = rows.get(folder.name)
        if (row is None or row["status"] not in LIVE) and now - _mtime(folder) > _ORPHAN_MIN_AGE_S:
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
