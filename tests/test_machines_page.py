"""Where models are made, as the merchant and the owner see it (real SQLite, real pages in AppTest,
a real redis-server): the owner's Settings lists the running `plinth worker` machines or says
none is running; a waiting job says no machine is making models rather than "next in line"."""

from __future__ import annotations

import os
import socket

import pytest

from tests.services import redis_server
from tests.signing import signed_in_apptest
from tests.test_webapp_apptest import APP
from tests.test_settings_page import _settings, _texts
from webapp import accounts, jobqueue, jobs, rq_engine, rq_worker
from webapp.api import present
from webapp.jobqueue import QueueName

FAST = jobs.pipeline.Options(quality="fast")


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


def _merchant(data):
    return accounts.add_user(data, "bob@shop.example", "bob's long password", role=accounts.Role.MERCHANT)


def test_the_owner_sees_models_are_made_here_and_a_merchant_sees_no_machines(app_data, signed_in_user):
    at = _settings(signed_in_user.id)
    assert "Machines" in _texts(at) and "Models are made on this server" in _texts(at)
    assert not jobqueue.no_machine_running()  # the embedded engine always has its workers
    as_bob = _settings(_merchant(app_data).id)
    assert "Machines" not in _texts(as_bob)


def test_with_worker_machines_the_owner_sees_them_and_a_waiting_job_says_when_none_runs(
        app_data, signed_in_user, redis_url, monkeypatch):
    monkeypatch.setenv("PLINTH_QUEUE", redis_url)
    rq_engine.connection().flushall()
    try:
        job_id = jobs.submit([("a.jpg", b"\xff\xd8 x")], "Lamp", FAST, data_dir=app_data)
        at = _settings(signed_in_user.id)
        assert "No worker machine is running, so new models wait" in _texts(at)
        assert "1 waiting" in _texts(at)
        assert jobqueue.no_machine_running()
        words = present.job_json(jobs.get_job(job_id, app_data), "http://x", None)["stage_words"]
        assert "no machine is making models right now" in words, words
        page = signed_in_apptest(APP, default_timeout=30)
        page.query_params["job"] = job_id
        page.run()
        assert any("No machine is making models on this Plinth right now" in i.value for i in page.info)
        assert not any("next in line" in i.value for i in page.info)

        me = rq_worker.Identity(name="gpu-box-1", queue=QueueName.GPU, device="cuda:0", host=socket.gethostname(),
                                pid=os.getpid(), data=app_data)
        beat = rq_worker.become_worker(me)
        try:
            assert not jobqueue.no_machine_running()
            at = _settings(signed_in_user.id)
            table = at.dataframe[0].value
            assert list(table["Machine"]) == ["gpu-box-1"] and list(table["Kind"]) == ["GPU"]
            assert "No worker machine" not in _texts(at)
            words = present.job_json(jobs.get_job(job_id, app_data), "http://x", None)["stage_words"]
            assert "no machine" not in words, words
        finally:
            beat.end()
        assert jobqueue.no_machine_running()  # a worker that stops says so at once (its heartbeat goes)
    finally:
        jobqueue.stop()
