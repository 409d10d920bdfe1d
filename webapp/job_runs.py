"""A job record while a worker runs it: claim, progress, verdict, and recovery after a dead server.

The worker side of webapp/jobs.py (whose records and reads the UI, the API and the workers all
share), kept apart because only the job engines write through it: the embedded worker threads and
their child processes (webapp/workers.py), `plinth worker` (webapp/rq_worker.py) and the reaper
(webapp/rq_engine.py). A job's first verdict is final: finish and record_progress change only a
job still running (jobs.LIVE).
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

from . import settings, store
from .jobs import LIVE, RESTART_MESSAGE, JobStatus


def recover(data_dir: str | os.PathLike | None = None) -> int:
    """At start-up: jobs left running by a dead server are marked failed (photos kept). Final:
    a child of the dead server that still runs is stopped, and nothing it writes later counts.
    Embedded engine only: with $PLINTH_QUEUE, `plinth worker`s on other machines own the running
    jobs, and the reaper (rq_engine.reap) settles those whose worker died."""
    data = settings.data_dir(data_dir)
    with store.connect(data) as con:
        rows = con.execute("SELECT id, pid FROM jobs WHERE status IN (?, ?)", LIVE).fetchall()
        cur = con.execute(
            "UPDATE jobs SET status=?, error=?, finished=? WHERE status IN (?, ?)",
            (JobStatus.FAILED.value, RESTART_MESSAGE, time.time(), *LIVE),
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
                          (*fields.values(), job_id, *LIVE))
    return cur.rowcount == 1


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
                    (stage, float(fraction), message or "", job_id, *LIVE))
        row = con.execute("SELECT status FROM jobs WHERE id=?", (job_id,)).fetchone()
    return JobStatus(row[0]) if row else None
