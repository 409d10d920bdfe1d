"""Log lines for `plinth serve`, `plinth worker` and the job child: plain text, or JSON lines.

$PLINTH_LOG_FORMAT=json makes every line one JSON object (for a log collector):

    {"time": "2026-12-02T02:40:01.123Z", "level": "INFO", "logger": "plinth.worker",
     "message": "job started", "job_id": "q9X...", "worker": "gpu-box-1"}

Every line about a job carries its id: code that works on one job runs inside `job_context(job_id)`
(a contextvar, so threads and the RQ worker each keep their own), or passes `extra={"job_id": ...}`.
The job child process is started with the worker's name in $PLINTH_WORKER_NAME (WORKER_ENV).
No heavy import: the embedded default pays nothing for this.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum

#: The `plinth worker` a job child runs for ('' = inside `plinth serve`).
WORKER_ENV = "PLINTH_WORKER_NAME"
FORMAT_ENV = "PLINTH_LOG_FORMAT"

_RQ_JOB = re.compile(r"^plinth-(.+)-\d+$")  # rq_engine.rq_job_id
_JOB: contextvars.ContextVar[str] = contextvars.ContextVar("plinth_job_id", default="")
_WORKER: contextvars.ContextVar[str] = contextvars.ContextVar("plinth_worker", default="")


class LogFormat(str, Enum):
    TEXT = "text"
    JSON = "json"


def log_format() -> LogFormat:
    """$PLINTH_LOG_FORMAT: 'json' for JSON lines; anything else (or unset) is plain text."""
    return LogFormat.JSON if os.environ.get(FORMAT_ENV, "").strip().lower() == "json" else LogFormat.TEXT


@contextmanager
def job_context(job_id: str) -> Iterator[None]:
    """Every log line written inside this block (in this thread) names `job_id`."""
    token = _JOB.set(job_id)
    try:
        yield
    finally:
        _JOB.reset(token)


def set_worker(name: str) -> None:
    """The worker name every later log line of this process carries (`plinth worker`, the job child)."""
    _WORKER.set(name)


class _Context(logging.Filter):
    """Puts job_id and worker on every record (from `extra`, else from the context)."""

    def filter(self, record: logging.LogRecord) -> bool:
        given = getattr(record, "job_id", "")
        if given:  # RQ's own lines name its job (plinth-<job>-<run>): the job id is the one people look up
            record.job_id = _RQ_JOB.sub(r"\1", str(given))
        else:
            record.job_id = _JOB.get()
        if not getattr(record, "worker", ""):
            record.worker = _WORKER.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601 with ms), level, logger, message, job_id, worker
    (and the traceback as `exception` when there is one)."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        line = {"time": stamp, "level": record.levelname, "logger": record.name, "message": record.getMessage(),
                "job_id": getattr(record, "job_id", "") or "", "worker": getattr(record, "worker", "") or ""}
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`time level logger: message [job J] [worker W]`: the job and worker only when there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        tags = [f"job={record.job_id}"] if getattr(record, "job_id", "") else []
        tags += [f"worker={record.worker}"] if getattr(record, "worker", "") else []
        if not tags:
            return text
        head, sep, tail = text.partition("\n")  # after the message line, before any traceback
        return f"{head} [{' '.join(tags)}]{sep}{tail}"


def handler(stream=None) -> logging.Handler:
    """A stream handler (stderr by default) in the format $PLINTH_LOG_FORMAT asks for."""
    out = logging.StreamHandler(stream or sys.stderr)
    out.setFormatter(JsonFormatter() if log_format() is LogFormat.JSON else TextFormatter())
    out.addFilter(_Context())
    return out


def setup(logger: str = "", level: int = logging.INFO, worker: str | None = None) -> None:
    """Send `logger`'s lines ('' = the root logger, 'plinth' = only ours) to stderr in the chosen format,
    replacing handlers set up before by this function (so calling it twice does not double lines)."""
    target = logging.getLogger(logger)
    for old in [h for h in target.handlers if getattr(h, "_plinth", False)]:
        target.removeHandler(old)
    new = handler()
    new._plinth = True  # type: ignore[attr-defined]
    target.addHandler(new)
    target.setLevel(level)
    if logger:
        target.propagate = False  # Streamlit's root handler would print the line a second time
    if worker is not None:
        set_worker(worker)
