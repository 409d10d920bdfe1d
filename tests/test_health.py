"""/healthz: what it says about the database, the queue and the storage, against the real services
(tests/services.py: redis-server, PostgreSQL, moto's S3 server), and the plain 503 when one of
them is down, quickly, without naming internal hosts."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from dataclasses import dataclass

import pytest

from tests.services import free_port, postgres_server, redis_server, s3_server
from webapp import health, routes, workers

SERVICES = ("PLINTH_QUEUE", "PLINTH_DATABASE_URL", "PLINTH_STORAGE", "PLINTH_S3_ENDPOINT")


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in SERVICES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PLINTH_DATA_DIR", str(tmp_path / "data"))
    health.forget()
    yield monkeypatch
    health.forget()


@dataclass(frozen=True)
class Answer:
    status_code: int
    headers: dict[str, str]
    text: str

    def json(self) -> dict:
        return json.loads(self.text)


def get_healthz() -> Answer:
    """What the /healthz route answers (the route function itself, on a fresh look)."""
    health.forget()
    response = asyncio.run(routes.health(None))
    return Answer(response.status_code, dict(response.headers), response.body.decode())


def look() -> health.Health:
    health.forget()
    return asyncio.run(health.current())


def test_the_embedded_default_reports_itself_and_asks_no_service(clean_env):
    answer = get_healthz()
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    assert answer.json() == {"ok": True, "status": "ok", "database": "sqlite", "queue": "embedded",
                             "workers": len(workers.devices()), "storage": "local"}


def test_redis_counts_live_workers_only_and_a_shared_folder_is_storage(clean_env, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    with redis_server(tmp_path / "redis") as url:
        clean_env.setenv("PLINTH_QUEUE", url)
        clean_env.setenv("PLINTH_STORAGE", str(shared))
        import redis

        client = redis.Redis.from_url(url)
        assert look().body()["workers"] == 0
        # a live `plinth worker`'s heartbeat (rq_worker.Heartbeat), and RQ's own record of a killed one,
        # whose key outlives it by minutes: only the heartbeat counts
        client.set("plinth:worker:alive", '{"name": "alive"}', px=60_000)
        client.sadd("rq:workers", "rq:worker:dead-1a2b3c")
        client.hset("rq:worker:dead-1a2b3c", "state", "busy")
        state = look()
        assert state.ok and state.body() == {"ok": True, "status": "ok", "database": "sqlite", "queue": "redis",
                                             "workers": 1, "storage": "folder"}
        clean_env.setenv("PLINTH_STORAGE", f"file://{shared}")
        assert look().body()["storage"] == "folder"
    started = time.monotonic()
    down = look()  # redis-server stopped
    assert time.monotonic() - started < 2.5
    assert not down.ok and down.body()["problems"] == ["The queue (Redis) does not answer."]
    assert down.body()["queue"] == "redis" and "workers" not in down.body()
    clean_env.setenv("PLINTH_STORAGE", str(tmp_path / "not-there"))
    assert look().body()["problems"][-1] == "The storage (shared folder) does not answer."


def test_s3_storage_is_asked_for_its_bucket(clean_env, tmp_path):
    with s3_server(tmp_path / "s3") as s3:
        for name, value in s3.env().items():
            clean_env.setenv(name, value)
        state = look()
        assert state.ok and state.body()["storage"] == "s3"
        clean_env.setenv("PLINTH_STORAGE", "s3://no-such-bucket/plinth")
        missing = look()
        assert not missing.ok and missing.body()["problems"] == ["The storage (S3 bucket) does not answer."]
        clean_env.setenv("PLINTH_STORAGE", s3.env()["PLINTH_STORAGE"])
        answer = get_healthz()
        assert answer.status_code == 200 and answer.json()["ok"] is True
    clean_env.setenv("PLINTH_S3_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    answer = get_healthz()
    assert answer.status_code == 503
    assert answer.json()["problems"] == ["The storage (S3 bucket) does not answer."]
    assert "127.0.0.1" not in answer.text  # /healthz is public: no internal addresses


def test_postgres_is_asked_once_and_a_dead_one_is_a_plain_503(clean_env, tmp_path):
    with postgres_server(tmp_path / "pg") as url:
        clean_env.setenv("PLINTH_DATABASE_URL", url)
        state = look()
        assert state.ok and state.body()["database"] == "postgres", state.body()
    clean_env.setenv("PLINTH_DATABASE_URL", f"postgresql://plinth@127.0.0.1:{free_port()}/plinth")
    started = time.monotonic()
    answer = get_healthz()
    assert time.monotonic() - started < 2.5
    assert answer.status_code == 503 and answer.json()["database"] == "postgres"
    assert answer.json()["problems"] == ["The database (PostgreSQL) does not answer."] or answer.json()[
        "problems"] == ["The database (PostgreSQL) did not answer within 1.5 s."]


def test_one_answer_serves_every_caller_for_two_seconds(clean_env, tmp_path):
    with redis_server(tmp_path / "redis") as url:
        clean_env.setenv("PLINTH_QUEUE", url)
        first = look()
        import redis

        client = redis.Redis.from_url(url)
        client.set("plinth:worker:new", "{}", px=60_000)
        assert asyncio.run(health.current()) is first  # cached: no second look
        time.sleep(health.CACHE_S + 0.1)
        assert asyncio.run(health.current()).body()["workers"] == 1


def test_a_service_that_hangs_keeps_its_last_answer_briefly_then_is_down(clean_env, tmp_path):
    import redis

    with redis_server(tmp_path / "redis") as url:
        clean_env.setenv("PLINTH_QUEUE", url)
        pid = int(redis.Redis.from_url(url).info("server")["process_id"])
        assert look().ok
        os.kill(pid, signal.SIGSTOP)  # still accepts connections (the kernel does), answers nothing
        try:
            time.sleep(health.CACHE_S + 0.1)
            started = time.monotonic()
            state = asyncio.run(health.current())
            assert time.monotonic() - started < health.ANSWER_WITHIN_S + 0.5
            assert state.ok  # a slow look: the last answer stands meanwhile
            time.sleep(health.CACHE_S + 1.5)  # the hung look has given up by now
            state = asyncio.run(health.current())
            assert not state.ok and state.body()["problems"] == ["The queue (Redis) does not answer."]
        finally:
            os.kill(pid, signal.SIGCONT)
