"""Optional single sign-on through Streamlit's own OpenID Connect routes (the ones behind st.login).

SSO is on only when Streamlit's secrets (its usual .streamlit/secrets.toml, or the file that
$PLINTH_SECRETS names) have an `[auth]` section with a provider in it. Then:

    /login shows "Sign in with <label>" -> /sso/start?provider=NAME&next=/library
    /sso/start remembers `next` (NEXT_COOKIE, 10 minutes) and goes to Streamlit's
    /auth/login?provider=<signed token>; Streamlit talks to the provider, and its /oauth2callback
    sets its signed identity cookie and redirects to /; the gate sends that to /login, which calls
    identity(request), signs in the account with that e-mail (never makes one), and clears
    Streamlit's cookies again, so Plinth's own session is the only sign-in that lasts.

An e-mail counts as confirmed when the provider says `email_verified: true` or does not send the
claim at all (some company providers never do; they only hand out addresses they own). An explicit
`email_verified: false` is refused: anyone can type an unconfirmed address into some providers.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

from starlette.requests import HTTPConnection

#: The routes the gate opens while SSO is on (Streamlit's two, and ours that leads to them).
PATHS = frozenset({"/auth/login", "/oauth2callback", "/sso/start"})
NEXT_COOKIE = "plinth_sso_next"
NEXT_TTL_S = 600
_PROVIDER_KEYS = ("client_id", "client_secret", "server_metadata_url")


@dataclass(frozen=True)
class Provider:
    name: str  # the secrets section's name ("default" for keys directly under [auth])
    label: str  # what the button says after "Sign in with"


@dataclass(frozen=True)
class Identity:
    email: str
    verified: bool
    provider: str


def secrets_files() -> list[str] | None:
    """Streamlit's `secrets.files` option when $PLINTH_SECRETS names a file, else None (Streamlit's
    own search: .streamlit/secrets.toml in the working directory, then in ~/.streamlit)."""
    path = os.environ.get("PLINTH_SECRETS", "").strip()
    return [str(Path(path).expanduser().resolve())] if path else None


def _auth_section() -> dict:
    try:
        from streamlit.auth_util import get_secrets_auth_section

        return get_secrets_auth_section().to_dict()
    except Exception:  # an unreadable secrets file: SSO is off, the built-in sign-in still works
        return {}


def configured() -> list[Provider]:
    """The providers sign-in offers; empty when SSO is off."""
    auth = _auth_section()
    if not auth.get("redirect_uri", "").rstrip("/").endswith("/oauth2callback") or not auth.get("cookie_secret"):
        return []
    found = []
    if all(auth.get(key) for key in _PROVIDER_KEYS):
        found.append(Provider("default", str(auth.get("label") or "your work account")))
    for name, section in auth.items():
        if isinstance(section, dict) and all(section.get(key) for key in _PROVIDER_KEYS) and "_" not in name:
            found.append(Provider(name, str(section.get("label") or name.replace("-", " ").title())))
    return found


def enabled() -> bool:
    return bool(configured())


def provider(name: str | None) -> Provider | None:
    return next((p for p in configured() if p.name == name), None)


def start_url(name: str) -> str:
    """Streamlit's login route for this provider (its token is signed and lasts two minutes)."""
    from streamlit.auth_util import encode_provider_token

    return f"/auth/login?provider={encode_provider_token(name)}"


def _decode(request: HTTPConnection, cookie: str) -> bytes | None:
    from streamlit.web.server.server_util import get_cookie_secret
    from streamlit.web.server.starlette.starlette_app_utils import decode_signed_value

    value = request.cookies.get(cookie)
    if value is None:
        return None
    try:
        return decode_signed_value(get_cookie_secret(), cookie, value.encode("latin-1"))
    except Exception:
        return None


def identity(request: HTTPConnection) -> Identity | None:
    """Who Streamlit's signed identity cookie says this browser signed in as, or None (no cookie,
    a forged or expired one, SSO off, or no e-mail in it)."""
    if not enabled():
        return None
    from streamlit.auth_util import get_cookie_with_chunks
    from streamlit.web.server.starlette.starlette_server_config import USER_COOKIE_NAME

    raw = get_cookie_with_chunks(lambda name: _decode(request, name), USER_COOKIE_NAME)
    try:
        claims = json.loads(raw) if raw else None
    except (ValueError, TypeError):
        return None
    if not isinstance(claims, dict) or not claims.get("is_logged_in") or not isinstance(claims.get("email"), str):
        return None
    said = claims.get("email_verified", True)
    verified = said is True or (isinstance(said, str) and said.strip().lower() == "true")
    return Identity(claims["email"].strip().lower(), verified, str(claims.get("provider", "")))


def cookies_to_clear(request: HTTPConnection) -> list[str]:
    """Set-Cookie values that delete Streamlit's identity cookies (and their chunks) and our `next`."""
    from streamlit.web.server.starlette.starlette_server_config import (
        TOKENS_COOKIE_NAME,
        USER_COOKIE_NAME,
    )

    names = [n for n in request.cookies if n == NEXT_COOKIE or any(
        n == base or (n.startswith(base + "_") and n[len(base) + 1:].isdigit())
        for base in (USER_COOKIE_NAME, TOKENS_COOKIE_NAME))]
    return [f"{name}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax" for name in names]


def next_cookie(target: str, secure: bool) -> str:
    parts = [f"{NEXT_COOKIE}={quote(target, safe='/')}", "Path=/", f"Max-Age={NEXT_TTL_S}", "HttpOnly", "SameSite=Lax"]
    return "; ".join(parts + (["Secure"] if secure else []))


def remembered_next(request: HTTPConnection) -> str:
    return unquote(request.cookies.get(NEXT_COOKIE, "/"))
