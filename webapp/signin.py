"""Sign-in rules without any web framework: the first-start set-up code, the lockout after failed
attempts, invite links, where to go after signing in, and the cookie's attributes.

    code = setup_code(data)                  # while no account exists: the one-time set-up link's code
    locked = locked_until(data, email, ip)   # None, or the unix time sign-in may be tried again
    record_failure(data, email, ip)          # a wrong password (or an unknown e-mail) counts
    link_code = invite(data, "bob@shop.example", "Bob")   # shown once; only its hash is stored

Attempts live in SQLite (store: login_attempts) so a restart does not reset a lockout and several
server processes share it. Everything takes `now` so tests move the clock instead of sleeping.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from . import accounts, settings, store

SETUP_FILE = "setup-code"
#: Failed sign-ins counted over this window; reaching a limit locks for LOCK_S after the last one.
WINDOW_S = 15 * 60.0
LOCK_S = 15 * 60.0
EMAIL_LIMIT = 5
IP_LIMIT = 20
INVITE_TTL_S = 7 * 24 * 3600.0
CSRF_COOKIE = "plinth_csrf"


def _digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


# ------------------------------------------------------------------ first start


def setup_code(data: Path) -> str | None:
    """The set-up link's code while no account exists (made once, kept in a 0600 file in the data
    folder so the printed link works after a restart), else None (and the file is gone)."""
    data = settings.data_dir(data)
    path = data / SETUP_FILE
    if accounts.has_users(data):
        clear_setup_code(data)
        return None
    try:
        code = path.read_text().strip()
        if len(code) >= 20:
            return code
    except OSError:
        pass
    code = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(code + "\n")
    os.chmod(path, 0o600)  # an existing file keeps its mode on O_CREAT
    return code


def setup_code_ok(data: Path, given: str | None) -> bool:
    try:
        code = (settings.data_dir(data) / SETUP_FILE).read_text().strip()
    except OSError:
        return False
    return bool(given) and len(code) >= 20 and secrets.compare_digest(code, given.strip())


def clear_setup_code(data: Path) -> None:
    try:
        (settings.data_dir(data) / SETUP_FILE).unlink()
    except FileNotFoundError:
        pass


def create_owner(data: Path, code: str, email: str, password: str, name: str = "") -> accounts.User:
    """The first-start form: the OWNER account, if the code is right and nobody made one meanwhile."""
    if accounts.has_users(data):
        raise accounts.AccountError("The owner account already exists. Sign in instead.")
    if not setup_code_ok(data, code):
        raise accounts.AccountError("This set-up link is not valid. Use the link printed when the server started.")
    user = accounts.add_user(data, email, password, role=accounts.Role.OWNER, name=name)
    clear_setup_code(data)
    return user


# ------------------------------------------------------------------ lockout


@dataclass(frozen=True)
class Lock:
    until: float  # unix time

    def words(self, now: float | None = None) -> str:
        now = time.time() if now is None else now
        minutes = max(1, math.ceil((self.until - now) / 60))
        at = time.strftime("%H:%M", time.localtime(self.until))
        return (f"Too many attempts. Try again at {at} "
                f"(in {minutes} minute{'s' if minutes != 1 else ''}).")


def _keys(email: str, ip: str) -> list[tuple[str, int]]:
    return [(f"email:{(email or '').strip().lower()}", EMAIL_LIMIT), (f"ip:{ip or 'unknown'}", IP_LIMIT)]


def locked_until(data: Path, email: str, ip: str, now: float | None = None) -> Lock | None:
    """A Lock when this e-mail (EMAIL_LIMIT) or this client address (IP_LIMIT) failed too often in
    the last WINDOW_S; it lasts LOCK_S after the last failure (no more are counted while locked)."""
    now = time.time() if now is None else now
    until = 0.0
    with store.connect(settings.data_dir(data)) as con:
        for key, limit in _keys(email, ip):
            row = con.execute("SELECT COUNT(*), MAX(at) FROM login_attempts WHERE key = ? AND at > ?",
                              (key, now - WINDOW_S)).fetchone()
            if row[0] >= limit:
                until = max(until, row[1] + LOCK_S)
    return Lock(until) if until > now else None


def record_failure(data: Path, email: str, ip: str, now: float | None = None) -> None:
    now = time.time() if now is None else now
    with store.connect(settings.data_dir(data)) as con:
        con.execute("DELETE FROM login_attempts WHERE at < ?", (now - WINDOW_S - LOCK_S,))
        con.executemany("INSERT INTO login_attempts (key, at) VALUES (?, ?)",
                        [(key, now) for key, _ in _keys(email, ip)])


def record_success(data: Path, email: str) -> None:
    """A right password clears that e-mail's failures (not the address's: one good account must
    not unlock guessing at others from the same place)."""
    with store.connect(settings.data_dir(data)) as con:
        con.execute("DELETE FROM login_attempts WHERE key = ?", (_keys(email, "")[0][0],))


# ------------------------------------------------------------------ invites


@dataclass(frozen=True)
class Invite:
    email: str
    name: str
    created: float
    expires: float
    code_hash: str


def invite(data: Path, email: str, name: str = "", now: float | None = None) -> str:
    """A new merchant's invite; returns the code for the link (only its hash is kept). Inviting
    the same address again replaces the earlier link."""
    now = time.time() if now is None else now
    email = accounts.clean_email(email)
    if accounts.find_user(data, email):
        raise accounts.AccountError(f"{email} already has an account.")
    code = secrets.token_urlsafe(24)
    with store.connect(settings.data_dir(data)) as con:
        con.execute("DELETE FROM invites WHERE email = ? OR expires < ?", (email, now))
        con.execute("INSERT INTO invites (code_hash, email, name, created, expires) VALUES (?, ?, ?, ?, ?)",
                    (_digest(code), email, (name or "").strip()[:80], now, now + INVITE_TTL_S))
    return code


def _invite(row) -> Invite:
    return Invite(row["email"], row["name"], row["created"], row["expires"], row["code_hash"])


def find_invite(data: Path, code: str | None, now: float | None = None) -> Invite | None:
    if not code or len(code) > 200:
        return None
    now = time.time() if now is None else now
    with store.connect(settings.data_dir(data)) as con:
        row = con.execute("SELECT * FROM invites WHERE code_hash = ? AND expires > ?", (_digest(code), now)).fetchone()
    return _invite(row) if row else None


def pending_invites(data: Path, now: float | None = None) -> list[Invite]:
    now = time.time() if now is None else now
    with store.connect(settings.data_dir(data)) as con:
        rows = con.execute("SELECT * FROM invites WHERE expires > ? ORDER BY created", (now,)).fetchall()
    return [_invite(r) for r in rows]


def cancel_invite(data: Path, code_hash: str) -> None:
    with store.connect(settings.data_dir(data)) as con:
        con.execute("DELETE FROM invites WHERE code_hash = ?", (code_hash,))


def accept_invite(data: Path, code: str, password: str, name: str = "") -> accounts.User:
    found = find_invite(data, code)
    if found is None:
        raise accounts.AccountError("This invite link has expired or was already used. "
                                    "Ask the shop owner for a new one.")
    user = accounts.add_user(data, found.email, password, role=accounts.Role.MERCHANT, name=name or found.name)
    cancel_invite(data, found.code_hash)
    return user


# ------------------------------------------------------------------ cookies and redirects


_SAFE_NEXT = re.compile(r"^/(?![/\\])[^\s\\]*$")
_NOT_NEXT = ("/login", "/logout", "/setup", "/invite")


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (never //other.site or a scheme)."""
    target = (target or "").strip()
    if not _SAFE_NEXT.match(target) or target.split("?")[0] in _NOT_NEXT or len(target) > 2000:
        return "/"
    return target


def cookie_header(token: str, secure: bool, max_age: float = accounts.SESSION_TTL_S) -> str:
    """The Set-Cookie value of a session: HttpOnly (no script reads it), SameSite=Lax (other sites'
    forms do not carry it), Secure over https."""
    parts = [f"{accounts.COOKIE}={token}", "Path=/", f"Max-Age={int(max_age)}", "HttpOnly", "SameSite=Lax"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def clear_cookie_header(secure: bool) -> str:
    return cookie_header("", secure, max_age=0)
