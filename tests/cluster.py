"""Plinth spread over processes as docs/deploy.md spreads it over machines: one `plinth serve`
and N `plinth worker`s, each with its own working folder, sharing only the queue (Redis), the
database (PostgreSQL, or one SQLite file on one machine) and the storage (an S3 bucket or a
shared folder). For tests/test_distributed.py and bench/queue_speed.py; nothing here is a mock.

    shared = Shared(queue=redis_url, database=pg_url, storage=s3.env())
    with Cluster(tmp / "cluster", shared, device="cpu") as cluster:
        token = cluster.merchant_token()
        cluster.start_web(); cluster.start_worker("w1"); cluster.start_worker("w2")
        job_id = cluster.submit(token, photo)
        job = cluster.wait(token, [job_id])[job_id]
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self
from urllib.parse import unquote, urlsplit

import httpx

from tests.services import free_port, stop_process

ROOT = Path(__file__).resolve().parent.parent
#: Settings of the caller's environment that would change what these processes do.
_OURS = ("PLINTH_DATA_DIR", "PLINTH_PUBLIC_URL", "PLINTH_ALLOWED_HOSTS", "PLINTH_DEVICES", "PLINTH_QUEUE",
         "PLINTH_DATABASE_URL", "PLINTH_STORAGE", "PLINTH_S3_ENDPOINT", "PLINTH_JOB_RETRIES", "PLINTH_SERVER",
         "PLINTH_TOKEN", "PLINTH_HEARTBEAT_TTL_S")
PASSWORD = "a long enough passphrase"


@dataclass(frozen=True)
class Shared:
    """What every process of the cluster shares, and nothing else."""

    queue: str  # redis://127.0.0.1:PORT/0
    database: str  # postgresql://... or sqlite:///ABS/PATH
    storage: dict[str, str]  # PLINTH_STORAGE, and for S3 PLINTH_S3_ENDPOINT and the AWS_* credentials

    def env(self) -> dict[str, str]:
        return {"PLINTH_QUEUE": self.queue, "PLINTH_DATABASE_URL": self.database, **self.storage}

    @property
    def storage_kind(self) -> str:
        return "s3" if self.storage["PLINTH_STORAGE"].startswith("s3://") else "folder"

    def stored_photos(self, job_id: str) -> list[str]:
        """The photo files of a job in the shared storage itself (not in anyone's working folder)."""
        url = self.storage["PLINTH_STORAGE"]
        if self.storage_kind == "folder":
            folder = Path(unquote(urlsplit(url).path) if url.startswith("file://") else url) / "jobs" / job_id / "photos"
            return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
        import boto3

        parts = urlsplit(url)
        prefix = f"{parts.path.strip('/')}/jobs/{job_id}/photos/".lstrip("/")
        s3 = boto3.client("s3", endpoint_url=self.storage["PLINTH_S3_ENDPOINT"],
                          aws_access_key_id=self.storage["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=self.storage["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1")
        listed = s3.list_objects_v2(Bucket=parts.netloc, Prefix=prefix)
        return sorted(item["Key"][len(prefix):] for item in listed.get("Contents", ()))

    def job_rows(self) -> dict[str, tuple[str, str, int]]:
        """job id -> (status, worker, attempts), read straight from the shared database."""
        sql = "SELECT id, status, worker, attempts FROM jobs"
        if self.database.startswith("sqlite://"):
            import sqlite3

            with sqlite3.connect(self.database[len("sqlite://"):], timeout=15) as con:
                rows = con.execute(sql).fetchall()
        else:
            import psycopg

            with psycopg.connect(self.database, connect_timeout=5) as con:
                rows = con.execute(sql).fetchall()
        return {r[0]: (r[1], r[2] or "", int(r[3] or 0)) for r in rows}


@dataclass
class Timings:
    """Response times of the web server, sampled while the cluster works."""

    seconds: dict[str, list[float]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)  # "PATH: what went wrong"

    def worst(self) -> float:
        return max((max(v) for v in self.seconds.values() if v), default=0.0)

    def summary(self, path: str) -> tuple[float, float, float]:
        """(median, 95th percentile, max) seconds of one path."""
        values = sorted(self.seconds.get(path, ()))
        if not values:
            return (float("nan"),) * 3
        return statistics.median(values), percentile(values, 95), values[-1]


def percentile(values: list[float], pct: float) -> float:
    """The nearest-rank percentile of `values` (any order)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), -(-len(ordered) * pct // 100)))
    return ordered[int(rank) - 1]


class Pinger(threading.Thread):
    """GETs each path every `every` seconds and times it, until stopped."""

    def __init__(self, base: str, paths: tuple[str, ...] = ("/healthz", "/login"), every: float = 0.5):
        super().__init__(name="plinth-pinger", daemon=True)
        self.base, self.paths, self.every = base, paths, every
        self.timings = Timings({path: [] for path in paths})
        self.halt = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self.halt.wait(self.every):
                for path in self.paths:
                    started = time.monotonic()
                    try:
                        status = client.get(self.base + path).status_code
                    except httpx.HTTPError as error:
                        status, why = 0, f"{type(error).__name__}"
                    else:
                        why = f"status {status}"
                    self.timings.seconds[path].append(time.monotonic() - started)
                    if status != 200:
                        self.timings.failures.append(f"{path}: {why}")

    def stop(self) -> Timings:
        self.halt.set()
        self.join(15)
        return self.timings


class Cluster:
    """The processes, their working folders under `root` and their logs (root/<name>.log)."""

    def __init__(self, root: Path, shared: Shared, device: str = "cpu", env: dict[str, str] | None = None):
        self.root, self.shared, self.device = root, shared, device
        root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        clean = {k: v for k, v in os.environ.items() if k not in _OURS}
        # As docs/deploy.md says: every machine names the public address, so links are the same everywhere.
        # The API's per-token limits (120 requests a minute, 20 new models an hour) are not under test:
        # one token here polls many jobs at once.
        self.env = {**clean, **shared.env(), "PLINTH_PUBLIC_URL": self.base, "PLINTH_API_REQUESTS_PER_MINUTE": "100000",
                    "PLINTH_API_JOBS_PER_HOUR": "10000", **(env or {})}
        self.web: subprocess.Popen | None = None
        self.workers: dict[str, subprocess.Popen] = {}

    def folder(self, name: str) -> Path:
        """The working folder of one process: its own, never shared."""
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        with open(self.root / f"{name}.log", "ab") as log:  # a file: an unread pipe would stall the process
            return subprocess.Popen([sys.executable, "-m", "webapp", *args], cwd=ROOT, stdout=log,
                                    stderr=subprocess.STDOUT,
                                    env={**self.env, "PLINTH_DATA_DIR": str(self.folder(name))})

    def log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace") if path.is_file() else ""

    def run(self, name: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """A one-off `plinth ARGS` in its own working folder (plinth status, say)."""
        return subprocess.run([sys.executable, "-m", "webapp", *args], cwd=ROOT, capture_output=True, text=True,
                              check=False, timeout=timeout, env={**self.env, "PLINTH_DATA_DIR": str(self.folder(name))})

    def python(self, name: str, code: str, *args: str, timeout: float = 120) -> str:
        """Run `code` with Plinth's public functions in a fresh process (own working folder, passed
        as sys.argv[1]); returns what it printed."""
        done = subprocess.run([sys.executable, "-c", code, str(self.folder(name)), *args], cwd=ROOT,
                              capture_output=True, text=True, check=False, timeout=timeout,
                              env={**self.env, "PLINTH_DATA_DIR": str(self.folder(name))})
        if done.returncode != 0:
            raise RuntimeError(f"{name} failed: {done.stderr[-3000:]}")
        return done.stdout.strip()

    def merchant_token(self) -> str:
        """The owner account and one merchant, made through accounts.add_user and tokens.create against the
        shared database from a process of their own; returns the merchant's API token."""
        return self.python("admin", f"""
import sys
from pathlib import Path
from webapp import accounts
from webapp.api import tokens
data = Path(sys.argv[1])
accounts.add_user(data, "owner@shop.example", {PASSWORD!r}, role=accounts.Role.OWNER)
user = accounts.add_user(data, "mia@shop.example", {PASSWORD!r})
print(tokens.create(data, user.id, "distributed test")[0])
""").splitlines()[-1]

    def start_web(self, timeout: float = 90) -> str:
        self.web = self._spawn("web", ["serve", "--host", "127.0.0.1", "--port", str(self.port)])
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.web.poll() is not None:
                raise RuntimeError(f"plinth serve exited: {self.log('web')[-3000:]}")
            try:
                if httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    return self.base
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"plinth serve did not become healthy in {timeout:.0f} s: {self.log('web')[-3000:]}")

    def start_worker(self, name: str, queue: str = "cpu", timeout: float = 60) -> subprocess.Popen:
        """`plinth worker --queue Q --device D --name NAME`; returns once its start line is in its log."""
        proc = self._spawn(name, ["worker", "--queue", queue, "--device", self.device, "--name", name])
        self.workers[name] = proc
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if proc.poll() is not None:
                raise RuntimeError(f"plinth worker {name} exited: {self.log(name)[-3000:]}")
            if f"plinth worker {name}:" in self.log(name):
                return proc
            time.sleep(0.2)
        raise RuntimeError(f"plinth worker {name} did not start in {timeout:.0f} s: {self.log(name)[-3000:]}")

    def kill_worker(self, name: str) -> None:
        """SIGKILL the worker process, as a machine that loses power (its job's child dies with it)."""
        proc = self.workers[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def submit(self, token: str, photo: Path, name: str, size_cm: str = "85") -> str:
        """POST one photo to /api/v1/models at the quickest quality; returns the job id."""
        posted = httpx.post(f"{self.base}/api/v1/models", headers={"Authorization": f"Bearer {token}"}, timeout=60,
                            data={"name": name, "size": size_cm, "unit": "cm", "axis": "height", "quality": "fast"},
                            files=[("photos", (photo.name, photo.read_bytes(), "image/jpeg"))])
        if posted.status_code != 202:
            raise RuntimeError(f"POST /api/v1/models answered {posted.status_code}: {posted.text[:500]}")
        return posted.json()["job_id"]

    def job(self, token: str, job_id: str) -> dict:
        answer = httpx.get(f"{self.base}/api/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {token}"},
                           timeout=10)
        answer.raise_for_status()
        return answer.json()

    def wait(self, token: str, job_ids: list[str], timeout: float = 180, on_poll=None,
             every: float = 0.3) -> dict[str, dict]:
        """Poll each job every `every` seconds until it is finished (done, failed or cancelled);
        returns the last answers. `on_poll(answers)` runs after each round. RuntimeError naming the
        jobs still open at `timeout`."""
        answers: dict[str, dict] = {}
        end = time.monotonic() + timeout
        while True:
            for job_id in job_ids:
                if not answers.get(job_id, {}).get("finished"):
                    answers[job_id] = self.job(token, job_id)
            if on_poll is not None:
                on_poll(answers)
            if all(a.get("finished") for a in answers.values()):
                return answers
            if time.monotonic() > end:
                stuck = {j: (a.get("status"), a.get("stage_words")) for j, a in answers.items() if not a.get("finished")}
                raise RuntimeError(f"jobs not finished after {timeout:.0f} s: {stuck}")
            time.sleep(every)

    def stop(self) -> None:
        for proc in [*self.workers.values(), self.web]:
            if proc is not None:
                stop_process(proc, grace_s=20)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()
