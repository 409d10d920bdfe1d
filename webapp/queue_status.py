"""What the job machinery is doing now: live workers, queue lengths, waiting and running jobs.

Read by `plinth status` (webapp/worker_cli.py) and by the owner's Settings page, so both say the
same. No Streamlit import; redis and rq are imported only when $PLINTH_QUEUE is set.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from . import jobqueue, settings, store
from .jobqueue import Engine, QueueName, WorkerInfo


@dataclass(frozen=True)
class QueueLength:
    name: QueueName
    waiting: int


@dataclass(frozen=True)
class JobLine:
    id: str
    status: str
    owner: str  # the merchant's e-mail, else their users.id ('' before accounts)
    photos: int
    age_s: float  # since it was submitted
    worker: str  # '' while waiting, or in the embedded engine
    queue: str


@dataclass(frozen=True)
class Status:
    engine: Engine
    queue_url: str  # without its password; '' for the embedded engine
    workers: tuple[WorkerInfo, ...]
    queues: tuple[QueueLength, ...]
    jobs: tuple[JobLine, ...]


def status(data: Path) -> Status:
    from .jobs import JobStatus

    now = time.time()
    with store.connect(data) as con:
        emails = {r["id"]: r["email"] for r in con.execute("SELECT id, email FROM users")}
        rows = con.execute("SELECT id, status, owner, photo_names, created, worker, queue FROM jobs "
                           "WHERE status IN (?, ?, ?) ORDER BY seq",
                           (JobStatus.QUEUED.value, JobStatus.RUNNING.value, JobStatus.CANCELLING.value)).fetchall()
    lines = tuple(JobLine(id=r["id"], status=r["status"], owner=emails.get(r["owner"], r["owner"] or ""),
                          photos=_count(r["photo_names"]), age_s=max(0.0, now - r["created"]),
                          worker=r["worker"] or "", queue=r["queue"] or "") for r in rows)
    if jobqueue.engine() is Engine.EMBEDDED:
        return Status(Engine.EMBEDDED, "", (), (), lines)
    from rq import Queue

    from . import rq_engine

    con = rq_engine.connection()
    with rq_engine.redis_trouble():
        queues = tuple(QueueLength(q, Queue(q.value, connection=con).count) for q in QueueName)
    return Status(Engine.RQ, rq_engine.shown_url(settings.queue_url() or ""), tuple(jobqueue.live_workers()),
                  queues, lines)


def _count(names: str) -> int:
    try:
        found = json.loads(names or "[]")
    except ValueError:
        return 0
    return len(found) if isinstance(found, list) else 0
