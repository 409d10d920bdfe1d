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

from webapp import accounts, jobs, library, routes, ui
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
