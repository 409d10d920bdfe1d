"""The RQ job engine ($PLINTH_QUEUE) with a real redis-server and real `plinth worker` processes.

Each worker has its own data folder; they share the jobs through one SQLite database
(PLINTH_DATABASE_URL=sqlite:///...) and the files through a storage folder (PLINTH_STORAGE; before
the storage interface exists, job rows hold the submitting folder's absolute photo path, which
works on one machine too). Heartbeats live 3 s here instead of 15.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

import pipeline
from tests.polling import wait_for
from tests.services import redis_server
from tests.test_job_safety import _alive
from webapp import (
    accounts,
    jobqueue,
    jobs,
    library,
    limits,
    logs,
    rq_engine,
    rq_worker,
    store,
    workers,
)
from webapp.jobqueue import QueueName
from webapp.jobs import JobStatus

ROOT = Path(__file__).resolve().parent.parent
FAST = pipeline.Options(size=pipeline.KnownSize("height", 0.85), quality="fast", texture_size=512)
TTL_S = 3.0


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture
def queue_env(redis_url, tmp_path, monkeypatch) -> dict[str, str]:
    """This test process is the web server's side: PLINTH_QUEUE, the shared database, an empty Redis."""
    env = {"PLINTH_QUEUE": redis_url, "PLINTH_DATABASE_URL": f"sqlite:///{tmp_path / 'shared.sqlite3'}",
           "PLINTH_STORAGE": str(tmp_path / "storage"), "PLINTH_HEARTBEAT_TTL_S": str(TTL_S)}
    (tmp_path / "storage").mkdir()  # the folder every machine would mount
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("PLINTH_JOB_RETRIES", raising=False)
    rq_engine.connection().flushall()
    return env


@pytest.fixture(scope="module")
def photo(bench) -> bytes:
    return (bench / "single" / "chair" / "image.jpg").read_bytes()


@contextmanager
def plinth_worker(tmp_path: Path, name: str, *args: str, env: dict[str, str] | None = None):
    """A real `plinth worker` process with its own data folder; killed afterwards if still running."""
    folder = tmp_path / f"worker-{name}"
    folder.mkdir()
    run_env = {**os.environ, "PLINTH_DATA_DIR": str(folder), **(env or {})}
    with open(folder / "worker.log", "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "webapp", "worker", "--name", name, *args],
                                cwd=ROOT, env=run_env, stdout=out, stderr=subprocess.STDOUT)
    proc.log = folder / "worker.log"  # type: ignore[attr-defined]
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _row(data: Path, job_id: str):
    with store.connect(data) as con:
        return con.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()


def _running_child(data: Path, job_id: str, worker: str, timeout: float = 60) -> int:
    """Waits until `worker` runs the job's child past its first progress report; its pid."""
    wait_for(lambda: (r := _row(data, job_id))["worker"] == worker and r["pid"] and r["stage"], timeout,
             f"{worker} to run job {job_id}")
    return _row(data, job_id)["pid"]


def _rq_job(job_id: str, attempts: int = 0):
    from rq.job import Job

    return Job.fetch(rq_engine.rq_job_id(job_id, attempts), connection=rq_engine.connection())


def _queued_ids(name: QueueName) -> list[str]:
    from rq import Queue

    return Queue(name.value, connection=rq_engine.connection()).job_ids


# ---------------------------------------------------------------- routing, timeouts, cancel, status


def test_routing_timeouts_cancel_and_status(queue_env, tmp_path, monkeypatch):
    monkeypatch.setenv("PLINTH_HEARTBEAT_TTL_S", "60")  # the heartbeats written here outlive the test
    cpu_job = jobs.submit([("front.jpg", b"\xff\xd8 x")], "Lamp", FAST, data_dir=tmp_path)
    assert _row(tmp_path, cpu_job)["queue"] == "cpu" and _queued_ids(QueueName.CPU) == [f"plinth-{cpu_job}-0"]
    # RQ's own timeout comes from the job's size, behind the supervisor's limit (RQ's 180 s default would kill it)
    assert _rq_job(cpu_job).timeout == limits.job_time_limit_s(1, "fast") + rq_engine.TIMEOUT_MARGIN_S > 180

    # a live GPU worker's heartbeat (the worker's own code, not a stand-in) sends the next job to 'gpu'
    gpu = rq_worker.Heartbeat(rq_worker.Identity(name="gpu-box", queue=QueueName.GPU, device="cuda:0",
                                                 host="gpu-host", pid=4242, data=tmp_path))
    gpu.beat()
    owner = accounts.add_user(tmp_path, "ada@shop.example", "a long enough password", accounts.Role.OWNER)
    photos = [(f"IMG_{i}.jpg", b"\xff\xd8 x") for i in range(40)]
    big = jobs.submit(photos, "Sofa", pipeline.Options(quality="high"), data_dir=tmp_path, owner=owner.id)
    assert _row(tmp_path, big)["queue"] == "gpu" and _queued_ids(QueueName.GPU) == [f"plinth-{big}-0"]
    assert _rq_job(big).timeout == limits.job_time_limit_s(40, "high") + rq_engine.TIMEOUT_MARGIN_S
    assert _rq_job(big).timeout > _rq_job(cpu_job).timeout

    report = _status(tmp_path, queue_env)
    assert "Queue: RQ on " + queue_env["PLINTH_QUEUE"] in report
    worker_line = next(line for line in report.splitlines() if "gpu-box" in line)
    assert worker_line.split()[:5] == ["gpu-box", "gpu", "cuda:0", "gpu-host", "4242"]
    assert "Queues: gpu 1 waiting, cpu 1 waiting" in report
    sofa = next(line for line in report.splitlines() if line.strip().startswith(big))
    assert sofa.split()[1:4] == ["queued", "ada@shop.example", "40"]
    body = json.loads(_status(tmp_path, queue_env, "--json"))
    assert body["engine"] == "rq" and [w["name"] for w in body["workers"]] == ["gpu-box"]
    assert {q["name"]: q["waiting"] for q in body["queues"]} == {"gpu": 1, "cpu": 1}
    assert [(j["id"], j["photos"], j["queue"]) for j in body["jobs"]] == [(cpu_job, 1, "cpu"), (big, 40, "gpu")]

    # cancel of a queued job: the row says so, and its RQ job leaves the queue
    jobs.cancel(big, tmp_path)
    assert jobs.get_job(big, tmp_path).status is JobStatus.CANCELLED
    assert _queued_ids(QueueName.GPU) == [] and _rq_job(big).get_status() == "canceled"
    me = rq_worker.Identity(name="late", queue=QueueName.GPU, device="cpu", host="h", pid=1, data=tmp_path)
    assert not rq_worker.claim(tmp_path, big, me)  # a worker that dequeued it anyway skips it
    assert jobs.get_job(big, tmp_path).status is JobStatus.CANCELLED and _row(tmp_path, big)["attempts"] == 0

    rq_engine.connection().delete("plinth:worker:gpu-box")  # no GPU worker any more: back to 'cpu'
    third = jobs.submit([("a.jpg", b"\xff\xd8 x")], "Vase", FAST, data_dir=tmp_path)
    assert _row(tmp_path, third)["queue"] == "cpu"
    assert rq_engine.live_workers() == []


def _status(data: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "webapp", "status", *args], cwd=ROOT, capture_output=True, text=True, check=False,
                          env={**os.environ, **env, "PLINTH_DATA_DIR": str(data)}, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_status_in_the_embedded_engine_lists_the_jobs_from_the_database(tmp_path, monkeypatch):
    for name in ("PLINTH_QUEUE", "PLINTH_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    job_id = jobs.submit([("a.jpg", b"\xff\xd8 x"), ("b.jpg", b"\xff\xd8 y")], "Lamp", FAST, data_dir=tmp_path)
    report = _status(tmp_path, {})
    assert report.startswith("Queue: embedded. Jobs run inside plinth serve")
    assert next(line for line in report.splitlines() if job_id in line).split()[1:4] == ["queued", "-", "2"]
    assert json.loads(_status(tmp_path, {}, "--json"))["workers"] == []


@pytest.mark.parametrize("args, env, words", [
    ((), {"PLINTH_QUEUE": ""}, "plinth worker needs PLINTH_QUEUE=redis://"),
    ((), {"PLINTH_QUEUE": "redis://:hunter2@127.0.0.1:9/0"}, "cannot reach the job queue at redis://:***@127.0.0.1:9/0"),
    (("--device", "gpu0"), {}, "--device must be cpu or cuda:N"),
    # checked before the worker registers: it never takes a job it cannot record or whose photos it cannot read
    ((), {"PLINTH_DATABASE_URL": "postgresql://u:hunter2@127.0.0.1:9/x"}, "the database postgresql://u:***@127.0.0.1:9/x"),
    ((), {"PLINTH_STORAGE": "/nonexistent/plinth-shared"}, "/nonexistent/plinth-shared"),
])
def test_worker_refuses_bad_settings_in_one_line(queue_env, tmp_path, args, env, words):
    done = subprocess.run([sys.executable, "-m", "webapp", "worker", *args], cwd=ROOT, capture_output=True, text=True, check=False,
                          env={**os.environ, "PLINTH_DATA_DIR": str(tmp_path), **env}, timeout=60)
    assert done.returncode == 2 and done.stderr.startswith("plinth: ") and words in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1 and "hunter2" not in done.stderr and "Traceback" not in done.stderr


# ---------------------------------------------------------------- real workers


@pytest.mark.slow
def test_a_running_job_stops_when_cancelled_on_another_machine(queue_env, tmp_path, photo):
    with plinth_worker(tmp_path, "w-cancel") as worker:
        job_id = jobs.submit([("front.jpg", photo)], "Chair", FAST, data_dir=tmp_path)
        pid = _running_child(tmp_path, job_id, "w-cancel")
        # CUDA and torch only ever in the job's child: the worker process never loads them
        assert "libtorch" not in Path(f"/proc/{worker.pid}/maps").read_text()
        jobs.cancel(job_id, tmp_path)
        job = wait_for(lambda: (j := jobs.get_job(job_id, tmp_path)).status.finished and j,
                       workers.CANCEL_GRACE_S + 5, "the job to stop")
        wait_for(lambda: not _alive(pid), 5, "the child to be gone")
        assert worker.poll() is None  # the worker goes on to the next job
    assert (job.status, job.message) == (JobStatus.CANCELLED, "Stopped") and job.photos
    assert library.list_models(tmp_path) == []


@pytest.mark.slow
def test_a_job_over_its_time_limit_on_a_worker_fails_as_it_does_in_the_server(queue_env, tmp_path, photo):
    """Also: a GPU worker takes a job sent to 'cpu' (while no GPU worker was up) once 'gpu' is empty."""
    job_id = jobs.submit([("front.jpg", photo)], "Chair", FAST, data_dir=tmp_path)
    assert _row(tmp_path, job_id)["queue"] == "cpu"
    with plinth_worker(tmp_path, "w-slow", "--queue", "gpu", "--device", "cpu", "--burst",
                       env={"PLINTH_JOB_TIME_LIMIT_S": "2"}) as worker:
        assert worker.wait(60) == 0
    job = jobs.get_job(job_id, tmp_path)
    assert (job.status, job.error) == (JobStatus.FAILED, workers.TIME_LIMIT_MESSAGE.format(
        limit="2-second", photos="1 photo")) and job.photos
    row = _row(tmp_path, job_id)
    assert (row["worker"], row["queue"], row["device"], row["attempts"]) == ("w-slow", "cpu", "cpu", 1)
    assert not (tmp_path / "worker-w-slow" / "staging" / job_id).exists()


@pytest.mark.slow
def test_a_killed_worker_fails_its_job_with_the_photos_kept(queue_env, tmp_path, photo):
    with plinth_worker(tmp_path, "w-doomed") as worker:
        job_id = jobs.submit([("front.jpg", photo)], "Chair", FAST, data_dir=tmp_path)
        pid = _running_child(tmp_path, job_id, "w-doomed")
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        wait_for(lambda: not _alive(pid), 5, "the job's child to die with its worker")
    assert jobs.get_job(job_id, tmp_path).status is JobStatus.RUNNING
    assert rq_engine.reap(tmp_path) == 0  # not at the first look: a restarted Redis has no heartbeats for a beat
    # the web server's reaper (the same function it runs every few seconds), once the heartbeat expired
    wait_for(lambda: rq_engine.reap(tmp_path), TTL_S + 5, "the reaper to notice the dead worker")
    job = jobs.get_job(job_id, tmp_path)
    assert (job.status, job.error) == (JobStatus.FAILED, rq_engine.LOST_MESSAGE) and len(job.photos) == 1
    assert rq_engine.reap(tmp_path) == 0  # settled once
    started = rq_engine.connection().zrange("rq:wip:cpu", 0, -1)
    assert not any(m.decode().startswith(f"plinth-{job_id}-") for m in started)  # RQ's record of the run is gone


@pytest.mark.slow
def test_a_worker_stopped_twice_mid_job_settles_it_before_it_exits(queue_env, tmp_path, photo):
    """SIGTERM: RQ's warm stop waits for the job; a second one (after RQ's 1 s) is a cold stop: the
    child is killed and the job settled at once, as if the machine had stopped."""
    with plinth_worker(tmp_path, "w-stopped") as worker:
        job_id = jobs.submit([("front.jpg", photo)], "Chair", FAST, data_dir=tmp_path)
        pid = _running_child(tmp_path, job_id, "w-stopped")
        worker.send_signal(signal.SIGTERM)
        time.sleep(1.5)
        worker.send_signal(signal.SIGTERM)
        worker.wait(20)  # RQ handles the cold stop as a failed job, then exits
        assert not _alive(pid)
    job = jobs.get_job(job_id, tmp_path)
    assert (job.status, job.error) == (JobStatus.FAILED, rq_engine.LOST_MESSAGE) and job.photos
    assert rq_engine.live_workers() == []


@pytest.mark.slow
def test_with_one_retry_a_second_worker_finishes_a_killed_workers_job(queue_env, tmp_path, photo, monkeypatch):
    monkeypatch.setenv("PLINTH_JOB_RETRIES", "1")
    with plinth_worker(tmp_path, "w-first") as first:
        job_id = jobs.submit([("front.jpg", photo)], "Chair", FAST, data_dir=tmp_path)
        _running_child(tmp_path, job_id, "w-first")
        first.send_signal(signal.SIGKILL)
    wait_for(lambda: rq_engine.reap(tmp_path), TTL_S + 5, "the reaper to notice the dead worker")
    row = _row(tmp_path, job_id)
    assert (row["status"], row["attempts"], row["worker"]) == ("queued", 1, "")
    assert _queued_ids(QueueName.CPU) == [f"plinth-{job_id}-1"]
    with plinth_worker(tmp_path, "w-second", "--burst", env={"PLINTH_LOG_FORMAT": "json"}) as second:
        assert second.wait(240) == 0  # --burst: it ends once the queue is empty
    job = jobs.get_job(job_id, tmp_path)
    assert job.status is JobStatus.DONE, job.error
    row = _row(tmp_path, job_id)
    assert (row["attempts"], row["worker"], row["queue"], row["device"]) == (2, "w-second", "cpu", "cpu")
    with store.connect(tmp_path) as con:  # the shared database has the model the second worker made
        assert con.execute("SELECT job_id FROM models WHERE share_id=?", (job.share_id,)).fetchone()[0] == job_id
    # JSON log lines, each about this job naming it and the worker
    lines = [json.loads(line) for line in second.log.read_text().splitlines() if line.startswith("{")]
    mine = [line for line in lines if line["job_id"] == job_id]
    assert {"job started on cpu", "job ended: done"} <= {line["message"] for line in mine}
    assert all(line["worker"] == "w-second" and line["level"] for line in mine)
    assert rq_engine.live_workers() == []  # a worker that ends takes its heartbeat with it


def test_a_restarted_web_server_leaves_remote_jobs_alone_and_reaps_dead_workers(queue_env, tmp_path, monkeypatch):
    """With PLINTH_QUEUE, the server's start-up runs no worker threads and no job_runs.recover: a job
    running on a live worker stays running; the server's reaper settles one whose worker died."""
    monkeypatch.setattr(rq_engine, "REAP_EVERY_S", 0.2)
    alive = rq_worker.Heartbeat(rq_worker.Identity(name="alive", queue=QueueName.CPU, device="cpu", host="h",
                                                   pid=1, data=tmp_path))
    gpu = rq_worker.Heartbeat(rq_worker.Identity(name="gpu", queue=QueueName.GPU, device="cuda:0", host="h",
                                                 pid=2, data=tmp_path))
    gpu.beat()
    embedded, held, orphan, waiting = (jobs.submit([("a.jpg", b"\xff\xd8 x")], n, FAST, data_dir=tmp_path)
                                       for n in "ABCD")
    jobs.update(tmp_path, embedded, status=JobStatus.RUNNING)  # left running by an embedded server (worker '')
    assert _row(tmp_path, waiting)["queue"] == "gpu"
    for job_id, worker in ((held, "alive"), (orphan, "gone")):
        me = rq_worker.Identity(name=worker, queue=QueueName.CPU, device="cpu", host="h", pid=1, data=tmp_path)
        assert rq_worker.claim(tmp_path, job_id, me)
    alive.set_job(held)
    rq_engine.connection().delete("plinth:worker:gpu")  # the only GPU worker is gone: its waiting job moves
    jobqueue.start(tmp_path)
    try:
        def settled():
            alive.beat()  # the live worker keeps beating while the reaper looks
            return (j := jobs.get_job(orphan, tmp_path)).status.finished and j

        failed = wait_for(settled, 15, "the reaper")
        assert (failed.status, failed.error) == (JobStatus.FAILED, rq_engine.LOST_MESSAGE) and failed.photos
        left = jobs.get_job(embedded, tmp_path)
        assert (left.status, left.error) == (JobStatus.FAILED, jobs.RESTART_MESSAGE)
        wait_for(lambda: alive.beat() or _row(tmp_path, waiting)["queue"] == "cpu", 5, "the GPU job to move to cpu")
        assert f"plinth-{waiting}-0" in _queued_ids(QueueName.CPU) and f"plinth-{waiting}-0" not in _queued_ids(QueueName.GPU)
        assert jobs.get_job(held, tmp_path).status is JobStatus.RUNNING
        assert jobs.get_job(waiting, tmp_path).status is JobStatus.QUEUED  # nobody in this process runs jobs
        assert not workers._WORKERS
    finally:
        jobqueue.stop()


def test_a_late_reaper_never_settles_the_next_run_of_a_job(queue_env, tmp_path, monkeypatch):
    """A reaper that read the row of a dead worker's run acts only on that run: once the job was
    queued again and another worker took it, the late verdict changes nothing."""
    monkeypatch.setenv("PLINTH_JOB_RETRIES", "1")
    job_id = jobs.submit([("a.jpg", b"\xff\xd8 x")], "Lamp", FAST, data_dir=tmp_path)
    first, second = (rq_worker.Identity(name=n, queue=QueueName.CPU, device="cpu", host="h", pid=1, data=tmp_path)
                     for n in ("first", "second"))
    assert rq_worker.claim(tmp_path, job_id, first)
    wait_for(lambda: rq_engine.reap(tmp_path), TTL_S + 5, "the reaper")  # "first" has no heartbeat: queued again
    assert rq_worker.claim(tmp_path, job_id, second)
    assert rq_engine._settle_lost(tmp_path, job_id, JobStatus.RUNNING, 1, "first") == 0  # the late one
    row = _row(tmp_path, job_id)
    assert (row["status"], row["worker"], row["attempts"]) == ("running", "second", 2)


def test_log_lines_carry_the_job_id_in_text_and_json(monkeypatch):
    import io
    import logging

    record = logging.LogRecord("plinth.jobs", logging.WARNING, __file__, 1, "job %s", ("ended",), None)
    for fmt, check in (("json", lambda out: json.loads(out)["job_id"] == "job12345678"),
                       ("text", lambda out: out.endswith("plinth.jobs: job ended [job=job12345678 worker=w1]"))):
        monkeypatch.setenv("PLINTH_LOG_FORMAT", fmt)
        stream = io.StringIO()
        handler = logs.handler(stream)
        logs.set_worker("w1")
        with logs.job_context("job12345678"):
            handler.handle(logging.makeLogRecord(record.__dict__))
        assert check(stream.getvalue().strip()), stream.getvalue()
    monkeypatch.setenv("PLINTH_LOG_FORMAT", "json")
    stream = io.StringIO()
    rq_line = logging.makeLogRecord({**record.__dict__, "job_id": rq_engine.rq_job_id("ab-cd_ef-12", 1)})
    logs.handler(stream).handle(rq_line)  # RQ's own lines name its job: shown as the Plinth job's id
    assert json.loads(stream.getvalue())["job_id"] == "ab-cd_ef-12"
    assert jobqueue.engine() in tuple(jobqueue.Engine)


def test_the_embedded_default_never_imports_redis_or_rq(tmp_path):
    code = ("import sys, pipeline; from webapp import cli, jobs, jobqueue, server, worker_cli; "
            "jobs.submit([('a.jpg', b'\\xff\\xd8 x')], 'Lamp', pipeline.Options(), data_dir=sys.argv[1]); "
            "cli.main(['status']); print(sorted(m for m in ('redis', 'rq', 'torch') if m in sys.modules))")
    env = {k: v for k, v in os.environ.items() if k not in ("PLINTH_QUEUE", "PLINTH_DATABASE_URL")}
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                          check=False, env={**env, "PLINTH_DATA_DIR": str(tmp_path)}, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("[]"), done.stdout
