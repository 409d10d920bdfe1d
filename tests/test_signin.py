"""Accounts and the gate over HTTP, against a real `plinth serve` and its real SQLite database:
first start and its one-time link, sign-in and sign-out, sessions that survive a reload and end,
the lockout, invites, anonymous visitors sent to the sign-in page for every merchant page (and
every route the server has either public on purpose or refused), while share pages and their
files stay public. Clocks are moved in the database or through `now=`, never by sleeping."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_webapp_http import ROOT, running_server  # noqa: E402

from tests.browsing import TEST_OWNER, sign_in_token  # noqa: E402
from webapp import accounts, gate, signin, sso, store  # noqa: E402

MERCHANT_PAGES = ["/", "/create", "/library", "/model?id=abc", "/shop", "/settings", "/no-such-page"]
LOCK_WORDS = re.compile(r"Too many attempts\. Try again at \d\d:\d\d \(in 15 minutes\)\.")
WRONG = "That e-mail address and password do not match an account."


@pytest.fixture(scope="module")
def site(tmp_path_factory, chair_model):
    """A server whose data folder has the owner account and one published model."""
    from webapp import model_folders

    data = tmp_path_factory.mktemp("signin")
    accounts.add_user(data, *TEST_OWNER, role=accounts.Role.OWNER, name="Ana")
    model = model_folders.add_model(chair_model, "Oak chair", [], data_dir=data)
    with running_server(data) as base:
        yield base, data, model


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def post_login(client: httpx.Client, email: str, password: str, next_path: str = "/") -> httpx.Response:
    form = client.get("/login")
    assert form.status_code == 200, form.text
    # Over https the form's cookie is Secure, and httpx keeps it from this plain-http test server
    if "Secure" in form.headers.get("set-cookie", ""):
        client.cookies.set(signin.CSRF_COOKIE, csrf_of(form.text), domain="127.0.0.1")
    return client.post("/login", data={"csrf": csrf_of(form.text), "email": email, "password": password,
                                       "next": next_path})


def refused(response: httpx.Response) -> bool:
    location = response.headers.get("location", "")
    return response.status_code == 401 or (response.status_code == 303 and location.startswith(("/login", "/setup")))


# ---------------------------------------------------------------- first start


def test_first_start_prints_a_one_time_link_that_creates_the_owner(tmp_path):
    with running_server(tmp_path) as base, httpx.Client(base_url=base, timeout=30) as client:
        log = (tmp_path / "server.log").read_text()
        found = re.search(r"create the owner account at (http://\S+/setup\?code=(\S+))", log)
        assert found, log
        code = found.group(2)
        code_file = tmp_path / signin.SETUP_FILE
        assert code_file.read_text().strip() == code
        assert stat.S_IMODE(code_file.stat().st_mode) == 0o600
        assert "plinth user add" in log

        first = client.get("/library")  # before any account: to the set-up words, not to a sign-in form
        assert first.status_code == 303 and first.headers["location"].startswith("/setup")
        wrong = client.get("/setup?code=not-the-code")
        assert wrong.status_code == 403 and "printed when the server started" in wrong.text
        assert 'name="password"' not in wrong.text
        assert "printed when the server started" in client.get("/setup").text

        form = client.get(f"/setup?code={code}")
        assert form.status_code == 200 and 'name="password2"' in form.text
        fields = {"csrf": csrf_of(form.text), "code": code, "name": "Ana", "email": "ana@shop.example",
                  "password": "correct horse battery", "password2": "correct horse batterx"}
        mismatch = client.post("/setup", data=fields)
        assert mismatch.status_code == 400 and "not the same" in mismatch.text and "ana@shop.example" in mismatch.text
        forged = client.post("/setup", data={**fields, "password2": fields["password"], "csrf": "forged" * 5})
        assert forged.status_code == 400 and not accounts.has_users(tmp_path)
        done = client.post("/setup", data={**fields, "password2": fields["password"]})
        assert done.status_code == 303 and done.headers["location"] == "/"
        owner = accounts.find_user(tmp_path, "ana@shop.example")
        assert owner is not None and owner.is_owner and owner.name == "Ana"
        assert not code_file.exists()
        assert client.get("/library").status_code == 200  # signed in by the set-up itself
        again = httpx.get(f"{base}/setup?code={code}", timeout=10)  # the link works once
        assert again.status_code == 303 and again.headers["location"] == "/login"


def test_plinth_user_commands_make_list_and_remove_accounts(tmp_path):
    env = {**os.environ, "PLINTH_DATA_DIR": str(tmp_path)}

    def plinth(*args, stdin=""):
        return subprocess.run([sys.executable, "-m", "webapp", "user", *args], cwd=ROOT, env=env, input=stdin,
                              capture_output=True, text=True)

    signin.setup_code(tmp_path)  # a first start happened: its link must stop working once the owner exists
    made = plinth("add", "ana@shop.example", "--owner", "--name", "Ana", "--password-stdin",
                  stdin="correct horse battery\n")
    assert made.returncode == 0, made.stderr
    assert not (tmp_path / signin.SETUP_FILE).exists()
    short = plinth("add", "bob@shop.example", "--password-stdin", stdin="short\n")
    assert short.returncode != 0 and "at least 10 characters" in short.stderr and "Traceback" not in short.stderr
    assert plinth("add", "bob@shop.example", "--password-stdin", stdin="bob's long password\n").returncode == 0
    listed = plinth("list").stdout
    assert "ana@shop.example\towner\tAna" in listed and "bob@shop.example\tmerchant" in listed
    assert accounts.check_password(tmp_path, "bob@shop.example", "bob's long password") is not None
    assert plinth("passwd", "bob@shop.example", "--password-stdin", stdin="a brand new password\n").returncode == 0
    assert accounts.check_password(tmp_path, "bob@shop.example", "a brand new password") is not None
    last = plinth("remove", "ana@shop.example")
    assert last.returncode != 0 and "only owner" in last.stderr
    assert plinth("remove", "bob@shop.example").returncode == 0
    assert accounts.find_user(tmp_path, "bob@shop.example") is None
    unknown = plinth("remove", "nobody@shop.example")
    assert unknown.returncode != 0 and "no account for nobody@shop.example" in unknown.stderr


# ---------------------------------------------------------------- sign in, reload, sign out


def test_sign_in_survives_reloads_and_sign_out_ends_the_session(site):
    base, data, _ = site
    with httpx.Client(base_url=base, timeout=30) as client:
        asked = client.get("/library?sort=name")
        assert asked.status_code == 303 and asked.headers["location"] == "/login?next=%2Flibrary%3Fsort%3Dname"
        signed = post_login(client, TEST_OWNER[0].upper(), TEST_OWNER[1], "/library?sort=name")
        assert signed.status_code == 303 and signed.headers["location"] == "/library?sort=name"
        cookie = signed.headers["set-cookie"]
        assert cookie.startswith(f"{accounts.COOKIE}=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert "Secure" not in cookie  # plain http: a Secure cookie would never come back
        assert f"Max-Age={int(accounts.SESSION_TTL_S)}" in cookie
        for _ in range(3):  # reloads
            assert client.get("/library").status_code == 200
        assert client.get("/login").headers["location"] == "/"  # signed in: the form is skipped
        token = client.cookies[accounts.COOKIE]
        out = client.post("/logout", data={"csrf": client.cookies[signin.CSRF_COOKIE]})
        assert out.status_code == 303 and out.headers["location"] == "/login?out=1"
        assert "Max-Age=0" in out.headers["set-cookie"]
        assert "You are signed out." in client.get("/login?out=1").text
    assert accounts.session_user(data, token) is None  # the row is gone, not just the cookie
    replay = httpx.get(f"{base}/library", cookies={accounts.COOKIE: token}, timeout=10)
    assert refused(replay)


def test_sign_in_over_https_sets_a_secure_cookie_and_next_stays_on_this_site(site):
    base, _, _ = site
    for evil in ("//evil.example/x", "https://evil.example", "/\\evil.example", "/logout"):
        with httpx.Client(base_url=base, timeout=30, headers={"X-Forwarded-Proto": "https"}) as client:
            signed = post_login(client, *TEST_OWNER, next_path=evil)
            assert signed.status_code == 303 and signed.headers["location"] == "/", evil
            assert "Secure" in signed.headers["set-cookie"]


def test_wrong_password_and_unknown_email_get_the_same_plain_line(site):
    base, data, _ = site
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            wrong = post_login(client, TEST_OWNER[0], "not the password")
            unknown = post_login(client, "nobody@shop.example", "not the password")
            for response in (wrong, unknown):
                assert response.status_code == 401 and WRONG in response.text
                assert accounts.COOKIE not in response.headers.get("set-cookie", "")
            assert 'value="nobody@shop.example"' in unknown.text  # what was typed is kept
            stale = client.post("/login", data={"csrf": "x" * 32, "email": TEST_OWNER[0], "password": TEST_OWNER[1]})
            assert stale.status_code == 400 and "expired" in stale.text
    finally:
        with store.connect(data) as con:
            con.execute("DELETE FROM login_attempts")


def test_an_expired_session_sends_the_merchant_to_sign_in(site):
    base, data, _ = site
    owner = accounts.find_user(data, TEST_OWNER[0])
    old = accounts.start_session(data, owner.id, now=time.time() - accounts.SESSION_TTL_S - 60)
    assert refused(httpx.get(f"{base}/library", cookies={accounts.COOKIE: old}, timeout=10))
    fresh = accounts.start_session(data, owner.id)
    assert httpx.get(f"{base}/library", cookies={accounts.COOKIE: fresh}, timeout=10).status_code == 200


# ---------------------------------------------------------------- lockout


def test_five_wrong_passwords_lock_the_account_until_the_time_it_says(site):
    base, data, _ = site
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            answers = [post_login(client, TEST_OWNER[0], f"wrong guess {i}") for i in range(signin.EMAIL_LIMIT)]
            assert [a.status_code for a in answers] == [401] * (signin.EMAIL_LIMIT - 1) + [429]
            assert LOCK_WORDS.search(answers[-1].text), answers[-1].text
            right = post_login(client, *TEST_OWNER)  # even the right password waits
            assert right.status_code == 429 and LOCK_WORDS.search(right.text)
            assert accounts.COOKIE not in right.headers.get("set-cookie", "")
            with store.connect(data) as con:  # 16 minutes pass
                con.execute("UPDATE login_attempts SET at = at - ?", (16 * 60,))
            assert post_login(client, *TEST_OWNER).status_code == 303
    finally:
        with store.connect(data) as con:
            con.execute("DELETE FROM login_attempts")


def test_twenty_failures_from_one_address_lock_it_for_every_email(site):
    base, data, _ = site
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            for i in range(signin.IP_LIMIT - 1):
                assert post_login(client, f"guess{i}@shop.example", "a wrong password").status_code == 401
            last = post_login(client, "guess-last@shop.example", "a wrong password")
            assert last.status_code == 429 and LOCK_WORDS.search(last.text)
            assert post_login(client, *TEST_OWNER).status_code == 429  # from this address, every account waits
    finally:
        with store.connect(data) as con:
            con.execute("DELETE FROM login_attempts")


def test_lock_words_and_unlock_follow_the_clock(tmp_path):
    t0 = 1_000_000.0
    for i in range(signin.EMAIL_LIMIT):
        assert signin.locked_until(tmp_path, "ana@shop.example", "10.0.0.1", now=t0 + i) is None
        signin.record_failure(tmp_path, "ana@shop.example", "10.0.0.1", now=t0 + i)
    lock = signin.locked_until(tmp_path, "Ana@Shop.example", "10.0.0.2", now=t0 + 10)
    assert lock is not None and lock.until == t0 + signin.EMAIL_LIMIT - 1 + signin.LOCK_S
    at = time.strftime("%H:%M", time.localtime(lock.until))
    assert lock.words(now=t0 + 10) == f"Too many attempts. Try again at {at} (in 15 minutes)."
    assert "(in 1 minute)." in lock.words(now=lock.until - 30)
    assert signin.locked_until(tmp_path, "bob@shop.example", "10.0.0.2", now=t0 + 10) is None
    assert signin.locked_until(tmp_path, "ana@shop.example", "10.0.0.2", now=lock.until + 1) is None
    # a restart (a new process) keeps the count: it is in SQLite
    check = subprocess.run([sys.executable, "-c", "import sys; from webapp import signin; "
                            f"print(signin.locked_until(sys.argv[1], 'ana@shop.example', 'x', now={t0 + 10}))",
                            str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
    assert "Lock(until=" in check.stdout, check.stderr


# ---------------------------------------------------------------- invites


def test_an_invite_link_lets_a_merchant_choose_a_password_once(site):
    base, data, _ = site
    code = signin.invite(data, "Bob@Shop.example", "Bob")
    with store.connect(data) as con:  # stored hashed: a copy of the database opens no invite
        stored = [r[0] for r in con.execute("SELECT code_hash FROM invites WHERE email = 'bob@shop.example'")]
    assert len(stored) == 1 and code not in stored
    with httpx.Client(base_url=base, timeout=30) as client:
        form = client.get(f"/invite?code={code}")
        assert form.status_code == 200 and "bob@shop.example" in form.text
        fields = {"csrf": csrf_of(form.text), "code": code, "name": "Bob", "password": "bob's long password",
                  "password2": "bob's other password"}
        assert "not the same" in client.post("/invite", data=fields).text
        done = client.post("/invite", data={**fields, "password2": fields["password"]})
        assert done.status_code == 303 and client.get("/library").status_code == 200
    bob = accounts.find_user(data, "bob@shop.example")
    assert bob is not None and bob.role is accounts.Role.MERCHANT and bob.name == "Bob"
    used = httpx.get(f"{base}/invite?code={code}", timeout=10)
    assert used.status_code == 404 and "expired or was already used" in used.text
    late = signin.invite(data, "carol@shop.example", now=time.time() - signin.INVITE_TTL_S - 1)
    assert httpx.get(f"{base}/invite?code={late}", timeout=10).status_code == 404
    with pytest.raises(accounts.AccountError):
        signin.invite(data, "bob@shop.example")  # already has an account
    accounts.remove_user(data, bob.id)


# ---------------------------------------------------------------- the gate


def test_anonymous_visitors_get_the_sign_in_page_for_every_merchant_page(site):
    base, _, _ = site
    for path in MERCHANT_PAGES:
        r = httpx.get(base + path, timeout=10)
        assert r.status_code == 303 and r.headers["location"].startswith("/login"), path
        page = httpx.get(base + path, timeout=10, follow_redirects=True)
        assert page.status_code == 200 and "<h1>Sign in</h1>" in page.text and "_stcore" not in page.text, path


def test_the_page_websocket_refuses_a_visitor_without_a_session(site):
    base, data, _ = site
    ws = base.replace("http://", "ws://") + "/_stcore/stream"
    with pytest.raises(InvalidStatus) as refusal:
        connect(ws, origin=base, subprotocols=["streamlit"], open_timeout=10).close()
    assert refusal.value.response.status_code == 403
    with pytest.raises(InvalidStatus):
        connect(ws, origin=base, subprotocols=["streamlit"], open_timeout=10,
                additional_headers={"Cookie": f"{accounts.COOKIE}=made-up-token"}).close()
    token = sign_in_token(data)
    with connect(ws, origin=base, subprotocols=["streamlit"], open_timeout=10,
                 additional_headers={"Cookie": f"{accounts.COOKIE}={token}"}):
        pass  # the control: with a session it opens


def test_share_pages_and_their_files_load_without_signing_in(site):
    base, _, model = site
    page = httpx.get(f"{base}/ar/{model.share_id}", timeout=10)
    assert page.status_code == 200 and "<model-viewer" in page.text
    glb = httpx.get(f"{base}/models/{model.share_id}/model.glb", timeout=30)
    assert glb.status_code == 200 and glb.content[:4] == b"glTF"
    assert httpx.get(f"{base}/assets/model-viewer.min.js", timeout=10).status_code == 200
    assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200
    assert refused(httpx.get(f"{base}/preview/{model.share_id}", timeout=10))  # the merchant's look stays private
    assert refused(httpx.get(f"{base}/preview/{model.share_id}/model.glb", timeout=10))


ROUTES_SCRIPT = """
import json
from webapp import server
app = server.build_app()._build_starlette_app()
print(json.dumps([[type(r).__name__, getattr(r, "path", ""), sorted(getattr(r, "methods", None) or [])]
                  for r in app.routes]))
"""
#: Everything the gate lets through without a session, on purpose.
PUBLIC = ({"/login", "/logout", "/setup", "/invite", "/healthz", "/_stcore/health"},
          ("/ar/", "/models/", "/assets/", "/api/"))


def test_every_route_is_public_on_purpose_or_refuses_without_a_session(site, tmp_path):
    """The server's own route list (ours and Streamlit's, read from the app it builds): each one,
    with every method it answers, is either in the public list or refuses a visitor without a
    session, so a route added later cannot be public by accident."""
    base, _, _ = site
    assert (gate.PUBLIC_PATHS, gate.PUBLIC_PREFIXES) == PUBLIC
    # Public only while single sign-on is configured (tests/test_sso.py); this server has none, so
    # the loop below checks that each of them refuses too.
    assert sso.PATHS == {"/auth/login", "/oauth2callback", "/sso/start"}
    listed = subprocess.run([sys.executable, "-c", ROUTES_SCRIPT], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "PLINTH_DATA_DIR": str(tmp_path)}, timeout=120)
    assert listed.returncode == 0, listed.stderr
    routes = json.loads(listed.stdout.strip().splitlines()[-1])
    assert any(r[1] == "/_stcore/stream" for r in routes) and any(r[1] == "/login" for r in routes)
    checked = 0
    for kind, pattern, methods in routes:
        path = re.sub(r"\{[^}:]+:path\}", "abc/def", pattern)
        path = re.sub(r"\{[^}]+\}", "abc123", path)
        if kind == "Mount":  # Streamlit's static files: its index page for every other path
            for page in ("/", "/library", "/static/js/index.js", "/favicon.png", "/robots.txt"):
                assert refused(httpx.get(base + page, timeout=10)), page
                checked += 1
            continue
        if kind == "WebSocketRoute":
            with pytest.raises(InvalidStatus):
                connect(base.replace("http://", "ws://") + path, open_timeout=10).close()
            checked += 1
            continue
        for method in methods:
            if gate.is_public(path):
                continue
            r = httpx.request(method, base + path, timeout=10)
            assert refused(r), (method, path, r.status_code)
            checked += 1
    assert checked > 25

