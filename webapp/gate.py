"""ASGI middleware: nothing but the public paths answers without a signed-in session.

Deny by default: a path is public only when it is listed in PUBLIC (share pages, their files, the
viewer's assets, the token-authenticated API, health checks and the sign-in pages themselves), or,
only while single sign-on is configured, in sso.PATHS (the OpenID Connect round trip).
Everything else, whatever route serves it (Streamlit's index page for every merchant page, its
websocket, uploads, media, our /preview/), needs a valid session cookie (accounts.COOKIE):

* a GET or HEAD of a page (not one of Streamlit's machine endpoints): 303 to /login?next=<path>,
  or to /setup while no account exists yet;
* any other request: 401 with one plain line;
* a websocket: closed before it is accepted, so no page session ever starts.

A route added later is therefore private unless someone adds it to PUBLIC on purpose (and
tests/test_signin.py lists every route and checks each one).
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import HTTPConnection
from starlette.responses import PlainTextResponse, RedirectResponse

from . import accounts, settings, sso

#: Exact public paths, and public path prefixes.
PUBLIC_PATHS = frozenset({"/login", "/logout", "/setup", "/invite", "/healthz", "/_stcore/health"})
PUBLIC_PREFIXES = ("/ar/", "/models/", "/assets/", "/api/")
#: Streamlit's machine endpoints: a GET there without a session is a 401, not a trip to the sign-in page.
MACHINE_PREFIXES = ("/_stcore/", "/media/", "/component/", "/static/", "/app/static/", "/preview/")


def is_public(path: str) -> bool:
    if path in sso.PATHS:  # Streamlit's OpenID Connect routes and ours before them: only in SSO mode
        return sso.enabled()
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES) or path == "/api"


def signed_in(scope) -> accounts.User | None:
    token = HTTPConnection(scope).cookies.get(accounts.COOKIE)
    if not token:
        return None
    try:
        return accounts.session_user(settings.data_dir(), token)
    except Exception:  # an unreadable database signs nobody in; the pages then say so
        return None


class Gate:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket") or is_public(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        if signed_in(scope) is not None:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})  # policy violation; the handshake gets 403
            return
        await refusal(scope)(scope, receive, send)


def refusal(scope):
    path = scope.get("path", "")
    headers = {"Cache-Control": "no-store"}
    if scope.get("method") in ("GET", "HEAD") and not path.startswith(MACHINE_PREFIXES):
        query = scope.get("query_string", b"").decode("latin-1")
        asked = path + (f"?{query}" if query else "")
        try:
            first_start = not accounts.has_users(settings.data_dir())
        except Exception:
            first_start = False
        where = "/setup" if first_start else "/login"
        target = where if asked == "/" else f"{where}?next={quote(asked, safe='')}"
        return RedirectResponse(target, status_code=303, headers=headers)
    return PlainTextResponse("Please sign in first.", status_code=401, headers=headers)
