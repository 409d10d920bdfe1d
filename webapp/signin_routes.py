"""The sign-in routes beside the Streamlit app: /login, /logout, /setup (first start), /invite.

Forms carry a CSRF token that must equal the `signin.CSRF_COOKIE` cookie (double submit: another
site can neither read the cookie nor set it, and it is SameSite=Strict). A successful sign-in sets
the session cookie (signin.cookie_header) and goes on to the page asked for (signin.safe_next).
"""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from . import accounts, settings, signin, sso
from . import signin_pages as pages

_EXPIRED_FORM = "This form had expired, so nothing was changed. Please try again."
_WRONG = "That e-mail address and password do not match an account. Check them and try again."
_MISMATCH = "The two passwords are not the same. Type the same password twice."


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "") == "https"


def _html(body: str, request: Request, status: int = 200, csrf: str | None = None) -> HTMLResponse:
    response = HTMLResponse(body, status_code=status, headers={
        "Cache-Control": "no-store", "Content-Security-Policy": pages.CSP, "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"})
    if csrf and request.cookies.get(signin.CSRF_COOKIE) != csrf:
        response.set_cookie(signin.CSRF_COOKIE, csrf, httponly=True, samesite="strict", secure=_secure(request),
                            path="/")
    return response


def _csrf(request: Request) -> str:
    """This browser's form token (kept while its cookie lasts, so two open tabs both work)."""
    have = request.cookies.get(signin.CSRF_COOKIE, "")
    return have if 20 <= len(have) <= 100 else secrets.token_urlsafe(24)


async def _form(request: Request) -> tuple[dict[str, str], bool]:
    """The posted fields (text only) and whether its CSRF token is right."""
    async with request.form(max_files=0, max_fields=20) as data:
        fields = {k: v for k, v in data.items() if isinstance(v, str)}
    cookie = request.cookies.get(signin.CSRF_COOKIE, "")
    return fields, bool(cookie) and secrets.compare_digest(cookie, fields.get("csrf", ""))


def _signed_in(request: Request, user: accounts.User, go: str) -> Response:
    token = accounts.start_session(settings.data_dir(), user.id)
    response = RedirectResponse(signin.safe_next(go), status_code=303, headers={"Cache-Control": "no-store"})
    response.headers.append("Set-Cookie", signin.cookie_header(token, _secure(request)))
    return response


def _current(request: Request) -> accounts.User | None:
    return accounts.session_user(settings.data_dir(), request.cookies.get(accounts.COOKIE))


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def login(request: Request) -> Response:
    data = settings.data_dir()
    if not accounts.has_users(data):
        return RedirectResponse("/setup", status_code=303)
    csrf = _csrf(request)
    if request.method != "POST":
        go = signin.safe_next(request.query_params.get("next"))
        if _current(request) is not None:
            return RedirectResponse(go, status_code=303)
        came_back = sso.identity(request)
        if came_back is not None:
            return _sso_returned(request, came_back, csrf)
        notice = "You are signed out." if request.query_params.get("out") == "1" else ""
        return _html(pages.login(csrf, go, notice=notice, sso=_sso_buttons(go)), request, csrf=csrf)
    fields, ok = await _form(request)
    email, go = fields.get("email", "").strip()[:320], signin.safe_next(fields.get("next"))
    if not ok:
        return _html(pages.login(csrf, go, email, _EXPIRED_FORM, _sso_buttons(go)), request, 400, csrf)
    lock = signin.locked_until(data, email, _client(request))
    if lock is None:
        user = accounts.check_password(data, email, fields.get("password", ""))
        if user is not None:
            signin.record_success(data, email)
            return _signed_in(request, user, go)
        signin.record_failure(data, email, _client(request))
        lock = signin.locked_until(data, email, _client(request))
    if lock is not None:
        return _html(pages.login(csrf, go, email, lock.words(), _sso_buttons(go)), request, 429, csrf)
    return _html(pages.login(csrf, go, email, _WRONG, _sso_buttons(go)), request, 401, csrf)


def _sso_buttons(go: str) -> tuple[tuple[str, str], ...]:
    return tuple((f"/sso/start?{urlencode({'provider': p.name, 'next': go})}", p.label) for p in sso.configured())


def _sso_returned(request: Request, who: sso.Identity, csrf: str) -> Response:
    """Back from the provider: an existing account with that confirmed e-mail is signed in; anyone
    else gets plain words and no session. Either way Streamlit's identity cookie goes."""
    go = signin.safe_next(sso.remembered_next(request))
    user = accounts.find_user(settings.data_dir(), who.email) if who.verified else None
    if user is not None:
        response = _signed_in(request, user, go)
    else:
        words = (f"{who.email} has no Plinth account here. Ask the shop owner to invite you." if who.verified else
                 f"Your sign-in provider has not confirmed {who.email}. Confirm it there, or sign in with "
                 "your Plinth password.")
        response = _html(pages.login(csrf, go, error=words, sso=_sso_buttons(go)), request, 403, csrf)
    for cookie in sso.cookies_to_clear(request):
        response.headers.append("Set-Cookie", cookie)
    return response


async def sso_start(request: Request) -> Response:
    """The "Sign in with ..." button: remember where to go after, then Streamlit's login route."""
    chosen = sso.provider(request.query_params.get("provider"))
    if chosen is None:
        return RedirectResponse("/login", status_code=303)
    response = RedirectResponse(sso.start_url(chosen.name), status_code=303, headers={"Cache-Control": "no-store"})
    response.headers.append("Set-Cookie", sso.next_cookie(signin.safe_next(request.query_params.get("next")),
                                                          _secure(request)))
    return response


async def logout(request: Request) -> Response:
    token = request.cookies.get(accounts.COOKIE)
    csrf = _csrf(request)
    if request.method != "POST":
        if _current(request) is None:
            return RedirectResponse("/login", status_code=303)
        # A click on "Sign out" in our own pages (the browser says so) signs out at once; a link
        # from anywhere else first asks, so another site cannot sign a merchant out.
        if request.headers.get("sec-fetch-site") != "same-origin":
            return _html(pages.logout(csrf), request, csrf=csrf)
    else:
        _fields, ok = await _form(request)
        if not ok:
            return _html(pages.logout(csrf), request, 400, csrf)
    accounts.end_session(settings.data_dir(), token)
    response = RedirectResponse("/login?out=1", status_code=303, headers={"Cache-Control": "no-store"})
    response.headers.append("Set-Cookie", signin.clear_cookie_header(_secure(request)))
    for cookie in sso.cookies_to_clear(request):  # else /login would sign the same person in again
        response.headers.append("Set-Cookie", cookie)
    return response


def _no_setup(request: Request) -> Response:
    return _html(pages.message(
        "Create the owner account",
        "Open the set-up link that Plinth printed when the server started (the code is also in the file "
        "setup-code in Plinth's data folder), or create the account from a terminal on the server:",
        code="plinth user add you@example.com --owner"), request, 403)


async def setup(request: Request) -> Response:
    data = settings.data_dir()
    if accounts.has_users(data):
        return RedirectResponse("/login", status_code=303)
    csrf = _csrf(request)
    if request.method != "POST":
        code = request.query_params.get("code", "")
        if not signin.setup_code_ok(data, code):
            return _no_setup(request)
        return _html(pages.setup(csrf, code), request, csrf=csrf)
    fields, ok = await _form(request)
    code, name, email = fields.get("code", ""), fields.get("name", ""), fields.get("email", "")
    if not signin.setup_code_ok(data, code):
        return _no_setup(request)
    if not ok:
        return _html(pages.setup(csrf, code, name, email, _EXPIRED_FORM), request, 400, csrf)
    if fields.get("password", "") != fields.get("password2", ""):
        return _html(pages.setup(csrf, code, name, email, _MISMATCH), request, 400, csrf)
    try:
        user = signin.create_owner(data, code, email, fields.get("password", ""), name)
    except accounts.AccountError as error:
        return _html(pages.setup(csrf, code, name, email, error.message), request, 400, csrf)
    return _signed_in(request, user, "/")


async def invite(request: Request) -> Response:
    data = settings.data_dir()
    csrf = _csrf(request)
    fields, ok = (await _form(request)) if request.method == "POST" else (dict(request.query_params), True)
    code = fields.get("code", "")
    found = signin.find_invite(data, code)
    if found is None:
        return _html(pages.message("This invite link does not work",
                                   "It has expired or was already used. Ask the shop owner for a new one.",
                                   link=("/login", "Go to sign in")), request, 404)
    if request.method != "POST":
        return _html(pages.invite(csrf, code, found.email, found.name), request, csrf=csrf)
    name = fields.get("name", "")
    if not ok:
        return _html(pages.invite(csrf, code, found.email, name, _EXPIRED_FORM), request, 400, csrf)
    if fields.get("password", "") != fields.get("password2", ""):
        return _html(pages.invite(csrf, code, found.email, name, _MISMATCH), request, 400, csrf)
    try:
        user = signin.accept_invite(data, code, fields.get("password", ""), name)
    except accounts.AccountError as error:
        return _html(pages.invite(csrf, code, found.email, name, error.message), request, 400, csrf)
    return _signed_in(request, user, "/")


def routes() -> list[Route]:
    return [
        Route("/login", login, methods=["GET", "HEAD", "POST"]),
        Route("/logout", logout, methods=["GET", "HEAD", "POST"]),
        Route("/setup", setup, methods=["GET", "HEAD", "POST"]),
        Route("/invite", invite, methods=["GET", "HEAD", "POST"]),
        Route("/sso/start", sso_start, methods=["GET"]),  # the gate opens it only while SSO is on
    ]
