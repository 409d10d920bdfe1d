"""Real outside services for the tests that need them, each started on a free loopback port in a
temporary folder and stopped afterwards: Debian's `redis-server` and PostgreSQL, and an S3-API
server (moto's server mode, its own process). Nothing here is a mock of ours.

    with redis_server(tmp) as url:       # redis://127.0.0.1:PORT/0
    with postgres_server(tmp) as url:    # postgresql://plinth@127.0.0.1:PORT/plinth
    with s3_server(tmp) as s3:           # S3Server(endpoint, bucket): PLINTH_STORAGE=s3://bucket/prefix

A missing service binary fails the test with the package to install (never a skip): the README's
test command installs them (scripts/setup.sh --test).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

PG_BIN = Path("/usr/lib/postgresql")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, what: str, log: Path, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited at start: {log.read_text(errors='replace')[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout:.0f} s")


def stop_process(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after `grace_s` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _need(binary: str, package: str) -> str:
    found = shutil.which(binary)
    if not found:
        raise RuntimeError(f"'{binary}' is not installed: apt-get install {package} (scripts/setup.sh --test does)")
    return found


@contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """A private redis-server (no persistence) on a free port; yields redis://127.0.0.1:PORT/0."""
    binary = _need("redis-server", "redis-server")
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = folder / "redis.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                 "--appendonly", "no", "--dir", str(folder)], stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_port(port, proc, "redis-server", log)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop_process(proc)


def _pg_bin(name: str) -> str:
    versions = sorted(PG_BIN.glob("*/bin"), key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    for folder in reversed(versions):
        if (folder / name).is_file():
            return str(folder / name)
    return _need(name, "postgresql")


def _as_postgres_user(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: when we are root, run it as the `postgres` account."""
    if os.geteuid() != 0:
        return cmd
    return [_need("runuser", "util-linux"), "-u", "postgres", "--", *cmd]


@contextmanager
def postgres_server(folder: Path) -> Iterator[str]:
    """A private PostgreSQL cluster (trust auth, loopback only) with database `plinth` owned by
    role `plinth`; yields postgresql://plinth@127.0.0.1:PORT/plinth."""
    folder.mkdir(parents=True, exist_ok=True)
    # Its own folder straight under the temp dir: the `postgres` account may not enter pytest's.
    home = Path(tempfile.mkdtemp(prefix="plinth-pg-"))
    cluster, sockets = home / "pgdata", home / "sock"
    sockets.mkdir()
    if os.geteuid() == 0:
        for path in (home, sockets):
            shutil.chown(path, "postgres")
    log = folder / "postgres.log"
    subprocess.run(_as_postgres_user([_pg_bin("initdb"), "-D", str(cluster), "-U", "postgres", "-A", "trust",
                                      "-E", "UTF8", "--no-sync"]), check=True, capture_output=True)
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(_as_postgres_user([
            _pg_bin("postgres"), "-D", str(cluster), "-p", str(port), "-k", str(sockets),
            "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off", "-c", "max_connections=200"]), stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_port(port, proc, "postgres", log)
        psql = [_pg_bin("psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-q"]
        for _ in range(50):  # listening is not yet accepting: retry the first statement briefly
            done = subprocess.run([*psql, "-c", "CREATE ROLE plinth LOGIN"], capture_output=True, text=True)
            if done.returncode == 0:
                break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"could not create the plinth role: {done.stderr}")
        subprocess.run([*psql, "-c", "CREATE DATABASE plinth OWNER plinth"], check=True, capture_output=True)
        yield f"postgresql://plinth@127.0.0.1:{port}/plinth"
    finally:
        stop_process(proc)
        shutil.rmtree(home, ignore_errors=True)


@dataclass(frozen=True)
class S3Server:
    endpoint: str  # http://127.0.0.1:PORT
    bucket: str

    def env(self, prefix: str = "plinth") -> dict[str, str]:
        """The environment a Plinth process needs to use this bucket."""
        return {"PLINTH_STORAGE": f"s3://{self.bucket}/{prefix}", "PLINTH_S3_ENDPOINT": self.endpoint,
                "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}


@contextmanager
def s3_server(folder: Path, bucket: str = "plinth-test") -> Iterator[S3Server]:
    """moto's S3 server in its own process on a free port, with one empty bucket."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = folder / "s3.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_port(port, proc, "moto S3 server", log)
        server = S3Server(f"http://127.0.0.1:{port}", bucket)
        import boto3

        boto3.client("s3", endpoint_url=server.endpoint, aws_access_key_id="test", aws_secret_access_key="test",
                     region_name="us-east-1").create_bucket(Bucket=bucket)
        yield server
    finally:
        stop_process(proc)
