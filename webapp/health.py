"""What /healthz reports: this server and the services it depends on (docs/deploy.md).

    state = await current()      # Health; state.ok, state.body() -> the JSON /healthz answers

Each configured service costs at most one round trip per look, looks run in threads (never on
the event loop that serves the merchant pages), each client gives up after PROBE_TIMEOUT_S, and
one answer serves every caller for CACHE_S, so a load balancer polling every second adds almost
nothing. The route waits ANSWER_WITHIN_S for a new look; a look still under way keeps the last
answer a little longer (a busy machine makes a service slow, not down). A service that does not answer makes the whole answer 503 with plain words; the error
itself only goes to the log, since /healthz is public (webapp/gate.py) and must not tell
strangers the internal host names.

The embedded default (no PLINTH_QUEUE, PLINTH_DATABASE_URL or PLINTH_STORAGE) looks at nothing
outside this process: SQLite in the data folder, in-process workers, files in the data folder.
No heavy import here: redis, psycopg and boto3 load only in the probes that need them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from urllib.parse import unquote, urlsplit

from . import settings

log = logging.getLogger("plinth.health")

#: One answer serves every caller for this long (seconds).
CACHE_S = 2.0
#: Each service's client gives up after this (seconds): it is then reported down.
PROBE_TIMEOUT_S = 1.5
#: The route waits this long (seconds) for a new look; a slower one keeps the last answer meanwhile.
ANSWER_WITHIN_S = 0.5


class Part(str, Enum):
    DATABASE = "database"
    QUEUE = "queue"
    STORAGE = "storage"


@dataclass(frozen=True)
class Check:
    """One service as /healthz reports it."""

    part: Part
    kind: str  # database: sqlite | postgres; queue: embedded | redis; storage: local | folder | s3
    ok: bool
    problem: str = ""  # plain words when not ok
    workers: int | None = None  # queue only: live workers (embedded: this server's worker threads)


@dataclass(frozen=True)
class Health:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def body(self) -> dict:
        body: dict = {"ok": self.ok, "status": "ok" if self.ok else "down"}
        for check in self.checks:
            body[check.part.value] = check.kind
            if check.workers is not None:
                body["workers"] = check.workers
        problems = [check.problem for check in self.checks if not check.ok]
        if problems:
            body["problems"] = problems
        return body


# ---------------------------------------------------------------- the probes (each runs in a thread)

_NAMES = {"postgres": "PostgreSQL", "redis": "Redis", "s3": "S3 bucket", "folder": "shared folder"}


def _database() -> Check:
    from . import store

    if store.engine() is store.Engine.SQLITE:
        return Check(Part.DATABASE, "sqlite", True)  # a file on this machine: nothing to ask
    with store.connect(settings.data_dir()) as con:  # this process's pool: one SELECT, no new connection
        con.execute("SELECT 1").fetchone()
    return Check(Part.DATABASE, "postgres", True)


# Counts the workers whose heartbeat key (rq_engine: plinth:worker:<name>, expiring after
# PLINTH_HEARTBEAT_TTL_S without a beat) exists, in one round trip: the same "live" as plinth status.
_LIVE_WORKERS = """
local n, cursor = 0, '0'
repeat
  local page = redis.call('SCAN', cursor, 'MATCH', ARGV[1], 'COUNT', 1000)
  cursor = page[1]
  n = n + #page[2]
until cursor == '0'
return n
"""


@functools.lru_cache(maxsize=4)
def _redis(url: str):
    import redis

    return redis.Redis.from_url(url, socket_timeout=PROBE_TIMEOUT_S, socket_connect_timeout=PROBE_TIMEOUT_S)


def _queue() -> Check:
    url = settings.queue_url()
    if url is None:
        from . import workers

        return Check(Part.QUEUE, "embedded", True, workers=len(workers.devices()))
    from . import rq_engine

    live = int(_redis(url).eval(_LIVE_WORKERS, 0, rq_engine.HEARTBEAT_KEY + "*"))
    return Check(Part.QUEUE, "redis", True, workers=live)


@functools.lru_cache(maxsize=4)
def _s3(endpoint: str | None):
    import boto3
    from botocore.config import Config

    # Path-style addressing with an endpoint, as webapp/storage does: MinIO's host name has no bucket subdomains.
    config = Config(connect_timeout=PROBE_TIMEOUT_S, read_timeout=PROBE_TIMEOUT_S, retries={"max_attempts": 1},
                    s3={"addressing_style": "path"} if endpoint else None)
    return boto3.client("s3", endpoint_url=endpoint or None, config=config)


def storage_kind(url: str | None) -> str:
    """'local' (the data folder), 's3' or 'folder', from a $PLINTH_STORAGE value."""
    if not url:
        return "local"
    return "s3" if url.startswith("s3://") else "folder"


def _storage() -> Check:
    url = settings.storage_url()
    kind = storage_kind(url)
    if kind == "local":
        return Check(Part.STORAGE, "local", True)
    if kind == "s3":
        bucket = urlsplit(url).netloc
        _s3(os.environ.get("PLINTH_S3_ENDPOINT", "").strip() or None).head_bucket(Bucket=bucket)
        return Check(Part.STORAGE, "s3", True)
    folder = Path(unquote(urlsplit(url).path) if url.startswith("file://") else url).expanduser()
    if not (folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)):
        raise OSError(f"{folder} is not a folder this server can write")
    return Check(Part.STORAGE, "folder", True)


def _configured_kind(part: Part) -> str:
    """The kind a part is configured as, for the report of a probe that raised or hung."""
    if part is Part.DATABASE:
        from . import store

        try:
            return store.engine().value
        except store.DatabaseUnavailable:  # a URL Plinth does not know: say what was configured
            return "unknown"
    if part is Part.QUEUE:
        return "redis" if settings.queue_url() else "embedded"
    return storage_kind(settings.storage_url())


_PROBES: dict[Part, Callable[[], Check]] = {Part.DATABASE: _database, Part.QUEUE: _queue, Part.STORAGE: _storage}


def _down(part: Part, why: str) -> Check:
    kind = _configured_kind(part)
    return Check(part, kind, False, f"The {part.value} ({_NAMES.get(kind, kind)}) {why}.")


# ---------------------------------------------------------------- one look at a time, cached

_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=len(_PROBES), thread_name_prefix="plinth-health")
_LOCK = threading.Lock()
#: The look in progress per part, and when it began: a hung service gets no second thread meanwhile.
_RUNNING: dict[Part, tuple[concurrent.futures.Future, float]] = {}
#: The last answer of each part's probe, and when it came (monotonic seconds).
_LAST: dict[Part, tuple[Check, float]] = {}
_CACHED: list[tuple[float, Health]] = []


def _guarded(part: Part) -> Check:
    try:
        check = _PROBES[part]()
    except Exception as error:  # noqa: BLE001 - any failure of the service is "down"; details to the log only
        log.warning("health: the %s does not answer: %s: %s", part.value, type(error).__name__, error)
        check = _down(part, "does not answer")
    with _LOCK:
        _LAST[part] = (check, time.monotonic())
    return check


def _start(part: Part) -> tuple[concurrent.futures.Future, float]:
    with _LOCK:
        running = _RUNNING.get(part)
        if running is None or running[0].done():
            running = _RUNNING[part] = (_POOL.submit(_guarded, part), time.monotonic())
        return running


def _settle(part: Part, future: concurrent.futures.Future, since: float) -> Check:
    """A look that has not answered yet: its last answer stands while the look is younger than
    PROBE_TIMEOUT_S plus a margin (a busy machine makes a fast service slow, not down); then, or
    with no earlier answer, the part is down."""
    if future.done():
        return future.result()
    with _LOCK:
        last = _LAST.get(part)
    if last is not None and time.monotonic() - since < 2 * PROBE_TIMEOUT_S:
        return last[0]
    log.warning("health: the %s did not answer within %.1f s", part.value, time.monotonic() - since)
    return _down(part, f"did not answer within {PROBE_TIMEOUT_S:g} s")


async def current() -> Health:
    """This server's health, looked at once per CACHE_S at most. Answers within ANSWER_WITHIN_S
    once every service has answered once (before that, within PROBE_TIMEOUT_S and a little)."""
    with _LOCK:
        if _CACHED and time.monotonic() - _CACHED[0][0] < CACHE_S:
            return _CACHED[0][1]
    if _embedded():
        health = Health(tuple(_PROBES[part]() for part in Part))  # nothing outside this process: no threads
    else:
        looks = {part: _start(part) for part in Part}
        with _LOCK:
            first = any(part not in _LAST for part in Part)
        wait = PROBE_TIMEOUT_S + 0.2 if first else ANSWER_WITHIN_S
        await asyncio.wait([asyncio.wrap_future(f) for f, _ in looks.values()], timeout=wait)
        health = Health(tuple(_settle(part, *look) for part, look in looks.items()))
    with _LOCK:
        _CACHED[:] = [(time.monotonic(), health)]
    return health


def _embedded() -> bool:
    return not (settings.queue_url() or settings.database_url() or settings.storage_url())


def forget() -> None:
    """Drop the cached answer and the last looks (tests, or after the settings changed)."""
    with _LOCK:
        _CACHED.clear()
        _LAST.clear()
