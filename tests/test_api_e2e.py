"""The API end to end, with a real `plinth serve`, the real pipeline and a real webhook receiver:
a merchant's token POSTs one bench photo with its height, polls the job to done, opens the share
page and the GLB; the receiver gets one correctly signed call naming the job. Then
`plinth make --server --token` does the same from the command line, and fails in one plain line
for a bad token or an unreachable server."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from webapp import accounts, jobs
from webapp.api import tokens, webhooks

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_webapp_http import free_port, running_server  # noqa: E402

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


class Receiver:
    """A shop back-end's webhook endpoint: records every call it gets."""

    def __init__(self):
        self.calls: list[tuple[dict[str, str], bytes]] = []
        calls = self.calls

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                calls.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/plinth-hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture(scope="module")
def merchant(tmp_path_factory, device):
    data = tmp_path_factory.mktemp("api-e2e")
    accounts.add_user(data, "owner@shop.example", "a long enough passphrase", role=accounts.Role.OWNER)
    user = accounts.add_user(data, "mia@shop.example", "a long enough passphrase")
    with running_server(data, device) as base:
        yield {"base": base, "data": data, "user": user, "token": tokens.create(data, user.id, "chatbot")[0]}


def test_post_a_photo_poll_to_done_open_the_share_page_and_get_a_signed_webhook(merchant, chair_photo):
    base, data, token = merchant["base"], merchant["data"], merchant["token"]
    receiver = Receiver()
    try:
        started = time.monotonic()
        posted = httpx.post(f"{base}/api/v1/models", headers={"Authorization": f"Bearer {token}"}, timeout=60,
                            data={"name": "Chair", "size": "85", "unit": "cm", "axis": "height", "quality": "fast",
                                  "webhook_url": receiver.url},
                            files=[("photos", ("chair.jpg", chair_photo.read_bytes(), "image/jpeg"))])
        assert posted.status_code == 202, posted.text
        job_id, status_url = posted.json()["job_id"], posted.json()["status_url"]
        seen = set()
        while True:
            job = httpx.get(status_url, headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
            seen.add(job["stage_words"])
            if job["finished"]:
                break
            assert time.monotonic() - started < 300, job
            time.sleep(0.5)
        assert job["status"] == "done" and job["error"] is None, job
        assert job["fraction"] == 1.0 and len(seen) >= 2  # it said, in words, what it was doing
        model = job["model"]
        assert abs(model["dimensions_m"]["height"] - 0.85) < 0.01 and model["verdict"] in ("good", "warnings")
        page = httpx.get(model["share_url"], timeout=10)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "<model-viewer" in page.text
        glb = httpx.get(model["files"]["glb"], timeout=10)
        assert glb.status_code == 200 and glb.content[:4] == b"glTF" and len(glb.content) > 1000
        assert httpx.get(f"{base}/api/v1/models/{model['id']}", headers={"Authorization": f"Bearer {token}"},
                         timeout=10).json()["share_url"] == model["share_url"]
        # the webhook: one call, signed with Mia's secret, naming the job
        end = time.monotonic() + 30
        while not receiver.calls and time.monotonic() < end:
            time.sleep(0.2)
        time.sleep(2.5)  # a second call (a double delivery) would come within the watcher's next looks
        assert len(receiver.calls) == 1
        headers, body = receiver.calls[0]
        secret = webhooks.secret_for(data, merchant["user"].id)
        assert webhooks.verify(secret, headers["x-plinth-timestamp"], body, headers["x-plinth-signature"])
        assert abs(int(headers["x-plinth-timestamp"]) - time.time()) < 600
        event = json.loads(body)
        assert event["event"] == "job.done" and event["job"]["id"] == job_id
        assert event["model"]["share_url"] == model["share_url"]
        assert jobs.get_job(job_id, data).owner == merchant["user"].id
        print(f"API job to done in {time.monotonic() - started:.1f} s")
    finally:
        receiver.close()


def _plinth(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "webapp", "make", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_plinth_make_with_server_and_token_uses_the_api(merchant, chair_photo, tmp_path):
    base, token = merchant["base"], merchant["token"]
    out = tmp_path / "cli" / "chair.glb"
    run = _plinth(str(chair_photo), "--out", str(out), "--height", "85cm", "--quality", "fast",
                  "--server", base, "--token", token, "--name", "CLI chair")
    assert run.returncode == 0, run.stdout + run.stderr
    links = re.findall(r"^Share link: (\S+)$", run.stdout, re.M)
    assert links and links[0].startswith(f"{base}/ar/")
    assert httpx.get(links[0], timeout=10).status_code == 200
    assert out.read_bytes()[:4] == b"glTF" and out.with_suffix(".usdz").stat().st_size > 0
    assert (tmp_path / "cli" / "chair.poster.png").read_bytes()[:4] == b"\x89PNG"
    assert "Finding the product" in run.stderr  # progress in plain words
    assert re.search(r"^  size     .* H x", run.stdout, re.M) and "85" in run.stdout
    assert "Traceback" not in run.stderr


def test_plinth_make_with_server_fails_in_one_plain_line(merchant, chair_photo, tmp_path):
    out = str(tmp_path / "x.glb")
    cases = [
        (("--server", merchant["base"], "--token", "plinth_" + "n" * 43), "refused the API token"),
        (("--server", f"http://127.0.0.1:{free_port()}", "--token", merchant["token"]), "Could not reach the Plinth server"),
        (("--server", merchant["base"]), "Give the API token with --token"),
    ]
    for extra, words in cases:
        run = _plinth(str(chair_photo), "--out", out, *extra, env_extra={"PLINTH_TOKEN": ""})
        assert run.returncode == 2, run.stderr
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("plinth: ") and words in lines[0], run.stderr
    bad = tmp_path / "notes.jpg"
    bad.write_bytes(b"this is not a photo")
    run = _plinth(str(bad), "--out", out, "--server", merchant["base"], "--token", merchant["token"])
    assert run.returncode == 2 and run.stderr.startswith("plinth: ") and "notes.jpg" in run.stderr and "Traceback" not in run.stderr
