"""The optional webhook: when an API job ends (done, failed or cancelled), POST what happened to
the URL the caller gave, signed with the merchant's webhook secret.

    X-Plinth-Timestamp: 1767225600
    X-Plinth-Signature: sha256=<hex HMAC-SHA256 over "<timestamp>.<body>", keyed by the secret>

A background thread of the server watches the jobs that asked for one (table api_webhooks) and
makes up to ATTEMPTS tries with backoff; the job's outcome never depends on it. The thread
starts with the first API request of a server process, so calls still waiting when a server
stopped go out after its restart as soon as the API is used again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from .. import jobs, library, settings, store
from . import present
from .errors import ApiError

log = logging.getLogger("plinth.webhooks")

ATTEMPTS = 3
BACKOFF_S = (1.0, 4.0)  # waits before the second and third tries
TIMEOUT_S = 10.0
POLL_S = 1.0
MAX_URL = 2000
BAD_URL = ("The webhook_url should be a web address that starts with https:// or http:// "
           "(for example https://shop.example/plinth-hook).")


def check_url(url: str) -> str:
    """The URL itself, or ApiError 422 for anything but an http(s) address with a host."""
    text = str(url or "").strip()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        parts = None
    if (len(text) > MAX_URL or parts is None or parts.scheme.lower() not in ("http", "https")
            or not parts.hostname or any(ch.isspace() for ch in text)):
        raise ApiError(422, "bad_webhook_url", BAD_URL)
    return text


def secret_for(data: Path, user_id: str) -> str:
    """This merchant's signing secret, made on first use."""
    with store.connect(settings.data_dir(data)) as con:
        row = con.execute("SELECT secret FROM api_secrets WHERE user_id = ?", (user_id,)).fetchone()
        if row is not None:
            return row["secret"]
        secret = "whsec_" + secrets.token_urlsafe(32)
        con.execute("INSERT INTO api_secrets (user_id, secret, created) VALUES (?, ?, ?) ON CONFLICT (user_id) DO NOTHING",
                    (user_id, secret, time.time()))
        return con.execute("SELECT secret FROM api_secrets WHERE user_id = ?", (user_id,)).fetchone()["secret"]


def rotate(data: Path, user_id: str) -> str:
    """A new secret for this merchant; calls signed from now on use it."""
    secret = "whsec_" + secrets.token_urlsafe(32)
    with store.connect(settings.data_dir(data)) as con:
        con.execute("INSERT INTO api_secrets (user_id, secret, created) VALUES (?, ?, ?) ON CONFLICT(user_id) "
                    "DO UPDATE SET secret = excluded.secret, created = excluded.created", (user_id, secret, time.time()))
    return secret


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, timestamp: str, body: bytes, header: str) -> bool:
    """What a receiver does (docs/api.md shows the same in a few lines)."""
    return hmac.compare_digest(signature(secret, timestamp, body), header or "")


def register(data: Path, job_id: str, user_id: str, url: str) -> None:
    with store.connect(settings.data_dir(data)) as con:
        con.execute("INSERT INTO api_webhooks (job_id, user_id, url, state, attempts, updated) "
                    "VALUES (?, ?, ?, 'waiting', 0, ?) ON CONFLICT (job_id) DO UPDATE SET user_id = excluded.user_id, "
                    "url = excluded.url, state = excluded.state, attempts = excluded.attempts, updated = excluded.updated",
                    (job_id, user_id, url, time.time()))


def body_for(job: jobs.Job, data: Path) -> bytes:
    base = settings.public_url(data)
    model = library.get_model(job.share_id, data, trashed=True) if job.share_id else None
    return json.dumps({"event": f"job.{job.status.value}", "job": present.job_json(job, base, model),
                       "model": present.model_json(model, base) if model is not None else None}).encode()


def _post(url: str, secret: str, body: bytes) -> bool:
    timestamp = str(int(time.time()))
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": "Plinth-Webhook/1",
        "X-Plinth-Timestamp": timestamp, "X-Plinth-Signature": signature(secret, timestamp, body)})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as answer:
            return 200 <= answer.status < 300
    except (urllib.error.URLError, OSError, ValueError) as error:
        log.info("webhook %s not delivered: %s", url, error)
        return False


def deliver(data: Path, job_id: str) -> bool:
    """Send one job's call (up to ATTEMPTS tries); records the outcome. True when delivered."""
    with store.connect(data) as con:
        row = con.execute("SELECT * FROM api_webhooks WHERE job_id = ?", (job_id,)).fetchone()
    job = jobs.get_job(job_id, data)
    if row is None or job is None:
        _mark(data, job_id, "gave_up", 0)
        return False
    body, secret = body_for(job, data), secret_for(data, row["user_id"])
    for attempt in range(ATTEMPTS):
        if attempt:
            time.sleep(BACKOFF_S[min(attempt - 1, len(BACKOFF_S) - 1)])
        if _post(row["url"], secret, body):
            _mark(data, job_id, "delivered", attempt + 1)
            return True
    _mark(data, job_id, "gave_up", ATTEMPTS)
    return False


def _mark(data: Path, job_id: str, state: str, attempts: int) -> None:
    with store.connect(data) as con:
        con.execute("UPDATE api_webhooks SET state = ?, attempts = ?, updated = ? WHERE job_id = ?",
                    (state, attempts, time.time(), job_id))


def due(data: Path) -> list[str]:
    """Jobs whose call is waiting and that have ended (or vanished)."""
    ended = tuple(s.value for s in jobs.JobStatus if s.finished)
    with store.connect(data) as con:
        rows = con.execute(
            "SELECT w.job_id FROM api_webhooks w LEFT JOIN jobs j ON j.id = w.job_id WHERE w.state = 'waiting' "
            f"AND (j.id IS NULL OR j.status IN ({', '.join('?' * len(ended))}))", ended).fetchall()
    return [r[0] for r in rows]


_started: dict[str, threading.Thread] = {}
_guard = threading.Lock()


def start(data: Path) -> None:
    """Start this process's watcher for `data` (once; a no-op when it runs)."""
    data = settings.data_dir(data)
    with _guard:
        thread = _started.get(str(data))
        if thread is not None and thread.is_alive():
            return
        thread = threading.Thread(target=_watch, args=(data,), name="plinth-webhooks", daemon=True)
        _started[str(data)] = thread
        thread.start()


def _watch(data: Path) -> None:
    try:  # calls a stopped server had picked but not finished: this is the only watcher of the folder now
        with store.connect(data) as con:
            con.execute("UPDATE api_webhooks SET state = 'waiting' WHERE state = 'sending'")
    except Exception:
        log.exception("webhook watcher start")
    while data.is_dir():  # a data folder that went away (a test's) ends its watcher
        try:
            for job_id in due(data):
                _mark(data, job_id, "sending", 0)  # picked once: never two calls for one job
                threading.Thread(target=_deliver_quietly, args=(data, job_id), daemon=True).start()
        except Exception:  # a locked or full database: try again at the next look
            log.exception("webhook watcher")
        time.sleep(POLL_S)


def _deliver_quietly(data: Path, job_id: str) -> None:
    try:
        deliver(data, job_id)
    except Exception:
        log.exception("webhook for job %s", job_id)
