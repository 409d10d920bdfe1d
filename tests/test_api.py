"""The HTTP API's parts (tokens, rate limits, webhook signatures, the OpenAPI document, the
Settings section) and, against a real `plinth serve`, its answers: 401 without a valid token
(revocation at once), another merchant's objects answer 404, 429 with Retry-After, the upload
limits as JSON in plain words. The real pipeline's end-to-end run is tests/test_api_e2e.py."""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path

import httpx
import pytest
from streamlit.testing.v1 import AppTest

from webapp import accounts, job_runs, jobs, library, model_folders, routes, ui
from webapp.api import openapi, ratelimit, tokens, webhooks

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_webapp_http import running_server  # noqa: E402

PASSWORD = "a long enough passphrase"


# ------------------------------------------------------------------ parts, on a real database


def test_tokens_are_shown_once_stored_hashed_and_revoked_at_once(tmp_path):
    ana = accounts.add_user(tmp_path, "ana@shop.example", PASSWORD, role=accounts.Role.OWNER)
    bo = accounts.add_user(tmp_path, "bo@shop.example", PASSWORD)
    text, token = tokens.create(tmp_path, ana.id, "  Shop\nback-end  ")
    assert text.startswith("plinth_") and len(text) == len("plinth_") + 43
    assert token.name == "Shop back-end" and text[7:15] == token.prefix and token.shown.startswith("plinth_")
    raw = (tmp_path / "plinth.sqlite3").read_bytes()
    assert text.encode() not in raw and text[7:].encode() not in raw  # only its hash is kept
    assert tokens.user_for(tmp_path, text) == ana
    assert tokens.user_for(tmp_path, text[:-1] + ("A" if text[-1] != "A" else "B")) is None
    assert tokens.user_for(tmp_path, "") is None and tokens.user_for(tmp_path, "x" * 500) is None
    assert tokens.list_for(tmp_path, ana.id)[0].last_used is not None  # it was just used
    assert tokens.list_for(tmp_path, bo.id) == []
    assert not tokens.revoke(tmp_path, bo.id, token.id)  # not Bo's to revoke
    assert tokens.user_for(tmp_path, text) == ana
    assert tokens.revoke(tmp_path, ana.id, token.id)
    assert tokens.user_for(tmp_path, text) is None
    assert tokens.list_for(tmp_path, ana.id) == [] and len(tokens.list_for(tmp_path, ana.id, revoked=True)) == 1


def test_the_rate_window_slides_and_says_when_to_come_back():
    now = [1000.0]
    window = ratelimit.Window(clock=lambda: now[0])
    limit = ratelimit.Limit(3, 60.0, "requests a minute")
    assert [window.hit("t", limit) for _ in range(3)] == [0, 0, 0]
    assert window.hit("t", limit) == 60 and window.hit("other", limit) == 0
    now[0] += 45
    assert window.check("t", limit) == 15 and window.hit("t", limit) == 15
    now[0] += 15
    assert window.hit("t", limit) == 0  # the first three have left the window
    words = ratelimit.message(limit, 15)
    assert "3 requests a minute" in words and "15 seconds" in words


def test_webhook_signatures_verify_and_urls_are_checked(tmp_path):
    ana = accounts.add_user(tmp_path, "ana@shop.example", PASSWORD, role=accounts.Role.OWNER)
    secret = webhooks.secret_for(tmp_path, ana.id)
    assert secret == webhooks.secret_for(tmp_path, ana.id) and secret.startswith("whsec_")
    body = b'{"event": "job.done"}'
    header = webhooks.signature(secret, "1767225600", body)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert webhooks.verify(secret, "1767225600", body, header)
    assert not webhooks.verify(secret, "1767225601", body, header)
    assert not webhooks.verify(secret, "1767225600", body + b" ", header)
    rotated = webhooks.rotate(tmp_path, ana.id)
    assert rotated != secret and webhooks.secret_for(tmp_path, ana.id) == rotated
    assert not webhooks.verify(rotated, "1767225600", body, header)
    assert webhooks.check_url(" https://shop.example/hook ") == "https://shop.example/hook"
    for bad in ("ftp://shop.example/x", "javascript:alert(1)", "file:///etc/passwd", "shop.example", "http://",
                "https://shop.example/a b", "http://shop.example:99999/"):
        with pytest.raises(webhooks.ApiError) as refused:
            webhooks.check_url(bad)
        assert refused.value.status == 422 and "https://" in refused.value.message


def test_a_webhook_that_fails_is_tried_three_times_and_never_changes_the_job(tmp_path, monkeypatch):
    import pipeline
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    import threading

    ana = accounts.add_user(tmp_path, "ana@shop.example", PASSWORD, role=accounts.Role.OWNER)
    job_id = jobs.submit([("card.jpg", _solid_jpeg())], "Card", pipeline.Options(), data_dir=tmp_path, owner=ana.id)
    calls = []

    class Failing(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            calls.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(500)
            self.end_headers()

        def log_message(self, *_args):
            pass

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    monkeypatch.setattr(webhooks, "BACKOFF_S", (0.05, 0.1))  # the real waits are seconds
    try:
        webhooks.register(tmp_path, job_id, ana.id, f"http://127.0.0.1:{receiver.server_port}/hook")
        assert webhooks.due(tmp_path) == []  # still queued: nothing to report yet
        assert job_runs.claim(tmp_path, "cpu") == job_id
        assert job_runs.finish(tmp_path, job_id, jobs.JobStatus.FAILED, error="No product found in card.jpg.")
        assert webhooks.due(tmp_path) == [job_id]
        assert webhooks.deliver(tmp_path, job_id) is False
    finally:
        receiver.shutdown()
    assert len(calls) == webhooks.ATTEMPTS == 3
    event = json.loads(calls[0])
    assert event["event"] == "job.failed" and event["job"]["error"]["message"] == "No product found in card.jpg."
    assert event["model"] is None
    job = jobs.get_job(job_id, tmp_path)
    assert job.status is jobs.JobStatus.FAILED and job.error == "No product found in card.jpg."
    assert webhooks.due(tmp_path) == []  # given up: never called again


def _api_routes() -> set[tuple[str, str]]:
    found = set()
    for route in routes.routes():
        path = getattr(route, "path", "")
        if path.startswith("/api/v1/") and "{rest:path}" not in path:
            found |= {(path.removeprefix("/api/v1"), m.lower()) for m in route.methods if m != "HEAD"}
    return found


def test_the_openapi_document_lists_exactly_the_apps_routes():
    doc = openapi.document("http://x")
    assert doc["openapi"].startswith("3.1")
    documented = {(path, method) for path, item in doc["paths"].items() for method in item if method != "parameters"}
    assert documented == _api_routes()
    assert ("/models", "post") in documented and ("/jobs/{job_id}", "get") in documented
    refs = json.dumps(doc)
    for name in doc["components"]["schemas"]:
        assert f"#/components/schemas/{name}" in refs or name == "Error"


#: The section as the Settings page calls it, for the user the session says is signed in
#: (read here directly: ui.current_user is the sign-in work's, tested there).
SECTION = """
import streamlit as st
from webapp import accounts, settings, ui
from webapp.views import api_tokens
api_tokens.render(accounts.get_user(settings.data_dir(), st.session_state[ui.SIGNED_IN]))
"""


def _texts(at: AppTest) -> str:
    return "\n".join(str(e.value) for kind in ("markdown", "caption", "success", "warning", "code", "info")
                     for e in getattr(at, kind))


def test_settings_section_makes_shows_once_lists_and_revokes_tokens(app_data):
    ana = accounts.add_user(app_data, "ana@shop.example", PASSWORD, role=accounts.Role.OWNER)
    bo = accounts.add_user(app_data, "bo@shop.example", PASSWORD)
    tokens.create(app_data, bo.id, "Bo's bot")
    at = AppTest.from_string(SECTION, default_timeout=30)
    at.session_state[ui.SIGNED_IN] = ana.id
    at.run()
    assert not at.exception and "No tokens yet." in _texts(at) and "Bo's bot" not in _texts(at)
    at.text_input(key="api_token_name").set_value("Shop backend")
    at.button[0].click().run()  # the form's Create token
    shown = [c.value for c in at.code if c.value.startswith("plinth_")]
    assert len(shown) == 1 and "shown only this once" in _texts(at)
    assert tokens.user_for(app_data, shown[0]) == ana
    assert "Shop backend" in _texts(at) and tokens.list_for(app_data, ana.id)[0].shown in _texts(at)
    at.run()  # any later run: the token is not shown again
    assert not [c for c in at.code if c.value.startswith("plinth_")]
    token = tokens.list_for(app_data, ana.id)[0]
    at.button(key=f"api_revoke_{token.id}").click().run()
    assert "cannot be undone" in _texts(at) and tokens.user_for(app_data, shown[0]) == ana  # not yet
    at.button(key=f"api_yes_{token.id}").click().run()
    assert tokens.user_for(app_data, shown[0]) is None and "Revoked." in _texts(at)
    assert "No tokens yet." in _texts(at)
    # the webhook secret: hidden, shown, rotated after a confirmation
    secret = webhooks.secret_for(app_data, ana.id)
    assert secret not in _texts(at)
    at.button(key="api_show").click().run()
    assert secret in _texts(at)
    at.button(key="api_rotate").click().run()
    assert webhooks.secret_for(app_data, ana.id) == secret
    at.button(key="api_rotate_yes").click().run()
    rotated = webhooks.secret_for(app_data, ana.id)
    assert rotated != secret and rotated in _texts(at) and secret not in _texts(at)


# ------------------------------------------------------------------ against a real `plinth serve`

LIMITS = {"PLINTH_MAX_FILE_MB": "1", "PLINTH_MAX_JOB_MB": "3", "PLINTH_API_REQUESTS_PER_MINUTE": "40",
          "PLINTH_API_JOBS_PER_HOUR": "2"}


@pytest.fixture(scope="module")
def api(tmp_path_factory, device):
    """A real server (small upload limits, 40 requests a minute and 2 new models an hour per token) and two merchants:
    Ana (the owner account) and Bo, each with a token."""
    data = tmp_path_factory.mktemp("api-data")
    ana = accounts.add_user(data, "ana@shop.example", PASSWORD, role=accounts.Role.OWNER)
    bo = accounts.add_user(data, "bo@shop.example", PASSWORD)
    with running_server(data, device, env=LIMITS) as base:
        yield {"base": base, "data": data, "ana": ana, "bo": bo,
               "ana_token": tokens.create(data, ana.id, "Ana's shop")[0],
               "bo_token": tokens.create(data, bo.id, "Bo's bot")[0]}


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _error(answer: httpx.Response, status: int) -> dict:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.json()["error"]
    assert set(body) == {"code", "message"} and body["message"] and "Traceback" not in body["message"]
    return body


def _solid_jpeg(size=(640, 480)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, (200, 60, 40)).save(buf, "JPEG")
    return buf.getvalue()


def test_without_a_valid_token_every_route_is_401_but_the_openapi_document_is_public(api):
    base = api["base"]
    calls = [("GET", "/api/v1/models"), ("POST", "/api/v1/models"), ("GET", "/api/v1/models/abcdefgh12345678"),
             ("PATCH", "/api/v1/models/abcdefgh12345678"), ("DELETE", "/api/v1/models/abcdefgh12345678"),
             ("GET", "/api/v1/jobs/abcdefgh12345678")]
    for method, path in calls:
        for headers, code in (({}, "unauthorized"), (_auth("plinth_" + "x" * 43), "invalid_token"),
                              ({"Authorization": "Basic YW5hOnB3"}, "invalid_token"), ({"Authorization": "Bearer"}, "invalid_token")):
            answer = httpx.request(method, base + path, headers=headers, timeout=10)
            assert _error(answer, 401)["code"] == code, (method, path, headers)
            assert answer.headers["www-authenticate"].startswith("Bearer")
    doc = httpx.get(base + "/api/v1/openapi.json", timeout=10)
    assert doc.status_code == 200 and doc.json()["servers"][0]["url"] == base + "/api/v1"
    assert _error(httpx.get(base + "/api/v1/nothing-here", headers=_auth(api["ana_token"]), timeout=10),
                  404)["code"] == "not_found"


def test_a_revoked_token_stops_working_at_once(api):
    text, token = tokens.create(api["data"], api["bo"].id, "short-lived")
    assert httpx.get(api["base"] + "/api/v1/models", headers=_auth(text), timeout=10).status_code == 200
    assert tokens.revoke(api["data"], api["bo"].id, token.id)
    answer = httpx.get(api["base"] + "/api/v1/models", headers=_auth(text), timeout=10)
    assert _error(answer, 401)["code"] == "invalid_token" and "revoked" in answer.json()["error"]["message"]


def test_two_merchants_never_see_each_others_models_or_jobs(api, chair_model, chair_photo):
    base, data, ana, bo = api["base"], api["data"], api["ana"], api["bo"]
    mine = model_folders.add_model(chair_model, "Oak chair", [chair_photo], data_dir=data, owner=ana.id)
    assert mine.model_id and mine.model_id != mine.share_id
    a, b = _auth(api["ana_token"]), _auth(api["bo_token"])
    listed = httpx.get(f"{base}/api/v1/models", headers=a, timeout=10).json()["models"]
    assert [m["id"] for m in listed] == [mine.model_id]
    assert listed[0]["share_url"] == f"{base}/ar/{mine.share_id}" and listed[0]["files"]["glb"].endswith("/model.glb")
    assert abs(listed[0]["dimensions_m"]["height"] - 0.85) < 0.01 and listed[0]["report"]
    assert httpx.get(f"{base}/api/v1/models", headers=b, timeout=10).json() == {"models": [], "next_cursor": None}
    # Bo gets exactly what an unknown id gets, for every verb; the share id is no merchant id
    unknown = httpx.get(f"{base}/api/v1/models/{'z' * 16}", headers=b, timeout=10)
    for method, kwargs in (("GET", {}), ("PATCH", {"json": {"name": "Mine now"}}), ("DELETE", {})):
        answer = httpx.request(method, f"{base}/api/v1/models/{mine.model_id}", headers=b, timeout=10, **kwargs)
        assert answer.status_code == 404 and answer.json() == unknown.json(), method
    assert httpx.get(f"{base}/api/v1/models/{mine.share_id}", headers=a, timeout=10).status_code == 404
    assert library.get_model(mine.share_id, data).name == "Oak chair"  # Bo changed nothing
    # a job Ana starts through the API: hers to follow, a 404 for Bo
    posted = httpx.post(f"{base}/api/v1/models", headers=a, timeout=30, data={"name": "Red card", "quality": "fast"},
                        files=[("photos", ("card.jpg", _solid_jpeg(), "image/jpeg"))])
    assert posted.status_code == 202, posted.text
    job_id = posted.json()["job_id"]
    assert posted.json()["status_url"] == f"{base}/api/v1/jobs/{job_id}" and posted.json()["status"] == "queued"
    assert jobs.get_job(job_id, data).owner == ana.id
    status = httpx.get(posted.json()["status_url"], headers=a, timeout=10)
    assert status.status_code == 200 and status.json()["id"] == job_id and status.json()["stage_words"]
    assert httpx.get(posted.json()["status_url"], headers=b, timeout=10).json() == unknown.json()
    jobs.cancel(job_id, data)  # its model is not what this test is about
    # Ana's own changes work
    changed = httpx.patch(f"{base}/api/v1/models/{mine.model_id}", headers=a, timeout=10,
                          json={"name": "Oak chair, natural", "product_url": "shop.example/p/oak"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["name"] == "Oak chair, natural" and changed.json()["product_url"] == "https://shop.example/p/oak"
    bad = httpx.patch(f"{base}/api/v1/models/{mine.model_id}", headers=a, timeout=10, json={"product_url": "javascript:x"})
    assert "https://" in _error(bad, 422)["message"]
    assert _error(httpx.patch(f"{base}/api/v1/models/{mine.model_id}", headers=a, timeout=10,
                              json={"expires": "2001-01-01"}), 422)["message"].startswith("That day has already passed")
    gone = httpx.delete(f"{base}/api/v1/models/{mine.model_id}", headers=a, timeout=10)
    assert gone.status_code == 204
    assert httpx.get(f"{base}/api/v1/models/{mine.model_id}", headers=a, timeout=10).status_code == 404
    assert library.get_model(mine.share_id, data, trashed=True).trashed  # in the Trash, like the UI's delete
    assert httpx.get(f"{base}/ar/{mine.share_id}", timeout=10).status_code == 410


def test_models_come_in_pages(api, chair_model, chair_photo):
    data, base = api["data"], api["base"]
    text = tokens.create(data, api["bo"].id, "pager")[0]
    made = [model_folders.add_model(chair_model, f"Chair {i}", [chair_photo], data_dir=data, owner=api["bo"].id)
            for i in range(3)]
    first = httpx.get(f"{base}/api/v1/models?limit=2", headers=_auth(text), timeout=10).json()
    assert [m["name"] for m in first["models"]] == ["Chair 2", "Chair 1"] and first["next_cursor"]
    rest = httpx.get(f"{base}/api/v1/models?limit=2&cursor={first['next_cursor']}", headers=_auth(text), timeout=10).json()
    assert [m["id"] for m in rest["models"]] == [made[0].model_id] and rest["next_cursor"] is None
    for query in ("limit=0", "limit=many", "cursor=nope"):
        assert _error(httpx.get(f"{base}/api/v1/models?{query}", headers=_auth(text), timeout=10), 400)


def test_too_many_requests_get_429_with_retry_after(api):
    text = tokens.create(api["data"], api["bo"].id, "busy bot")[0]
    url = api["base"] + "/api/v1/models"
    answers = [httpx.get(url, headers=_auth(text), timeout=10).status_code for _ in range(40)]
    assert answers == [200] * 40
    refused = httpx.get(url, headers=_auth(text), timeout=10)
    body = _error(refused, 429)
    assert body["code"] == "rate_limited" and "40 requests a minute" in body["message"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert httpx.get(url, headers=_auth(api["bo_token"]), timeout=10).status_code == 200  # per token


def test_uploads_over_the_limits_or_unusable_get_json_in_plain_words(api):
    import http.client
    from urllib.parse import urlsplit

    url, a = api["base"] + "/api/v1/models", _auth(api["ana_token"])

    def post(files, **data):
        return httpx.post(url, headers=a, files=files, data=data or {"name": "x"}, timeout=60)

    many = [("photos", (f"p{i}.jpg", b"tiny", "image/jpeg")) for i in range(101)]
    assert "more than the 100 one model can use" in _error(post(many), 413)["message"]
    big = [("photos", ("huge.jpg", b"\xff" * int(1.5 * 2**20), "image/jpeg"))]
    assert "each may be at most 1 MB" in _error(post(big), 413)["message"]
    parts = urlsplit(api["base"])
    con = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    con.putrequest("POST", "/api/v1/models")
    for name, value in {**a, "Content-Type": "multipart/form-data; boundary=x", "Content-Length": str(50 * 2**20)}.items():
        con.putheader(name, value)
    con.endheaders()
    declared = con.getresponse()
    assert declared.status == 413 and "at most 3 MB" in json.loads(declared.read())["error"]["message"]
    con.close()
    def chunked():  # no Content-Length: counted as it arrives, cut off past the limit
        yield b'--x\r\nContent-Disposition: form-data; name="photos"; filename="a.jpg"\r\n\r\n'
        for _ in range(80):
            yield b"\xff" * 65536
        yield b"\r\n--x--\r\n"

    streamed = httpx.post(url, headers={**a, "Content-Type": "multipart/form-data; boundary=x"}, content=chunked(),
                          timeout=30)
    assert "at most 3 MB" in _error(streamed, 413)["message"]
    garbage = [("photos", ("broken.jpg", b"not a photo at all", "image/jpeg"))]
    assert "broken.jpg" in _error(post(garbage), 422)["message"]
    photo = [("photos", ("card.jpg", _solid_jpeg(), "image/jpeg"))]
    assert "mm, cm, m, in" in _error(post(photo, size="30", unit="furlong"), 422)["message"]
    assert "between 5 mm and 20 m" in _error(post(photo, size="30000", unit="cm"), 422)["message"]
    assert "Unknown kind" in _error(post(photo, kind="blob"), 422)["message"]
    assert "https://" in _error(post(photo, webhook_url="ftp://shop.example/x"), 422)["message"]
    assert _error(post([("notes", ("a.txt", b"x", "text/plain"))], name="nothing"), 422)["code"] == "no_photos"
    assert _error(httpx.post(url, headers=a, json={"photos": []}, timeout=10), 400)["code"] == "not_multipart"
    assert not [j for j in jobs.list_jobs(tuple(jobs.JobStatus), api["data"]) if j.name == "x"]  # nothing queued


def test_new_models_per_hour_are_limited_per_token(api):
    text = tokens.create(api["data"], api["ana"].id, "eager bot")[0]
    photo = [("photos", ("card.jpg", _solid_jpeg(), "image/jpeg"))]
    made = []
    for _ in range(2):
        answer = httpx.post(api["base"] + "/api/v1/models", headers=_auth(text), files=photo,
                            data={"name": "Hourly", "quality": "fast"}, timeout=30)
        assert answer.status_code == 202, answer.text
        made.append(answer.json()["job_id"])
        jobs.cancel(made[-1], api["data"])  # only the counting matters here, not the models
    refused = httpx.post(api["base"] + "/api/v1/models", headers=_auth(text), files=photo,
                         data={"name": "Hourly"}, timeout=30)
    body = _error(refused, 429)
    assert "2 new models an hour" in body["message"] and "minutes" in body["message"]
    assert 60 < int(refused.headers["retry-after"]) <= 3600
    assert len([j for j in jobs.list_jobs(tuple(jobs.JobStatus), api["data"]) if j.name == "Hourly"]) == 2
    # reading still works for that token, and other tokens may still make models
    assert httpx.get(api["base"] + "/api/v1/models", headers=_auth(text), timeout=10).status_code == 200
