"""Merchant accounts and their sign-in sessions, in the library database (no Streamlit import).

    owner = add_user(data, "ana@shop.example", "a long passphrase", role=Role.OWNER)
    user = check_password(data, "ana@shop.example", "a long passphrase")   # None if wrong
    token = start_session(data, user.id)       # goes into the COOKIE; only its hash is stored
    session_user(data, token)                  # -> the User, or None once expired or ended

Passwords are hashed with Argon2id (argon2-cffi's defaults); session tokens are 256-bit random
strings stored as SHA-256 hashes, so a copy of the database opens no session. User ids are
random and never shown; e-mail addresses are stored lower-cased and are unique.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from pipeline import PlinthError

from . import settings, store

COOKIE = "plinth_session"
#: A session lasts this long after sign-in (each use does not extend it: a lost laptop's session ends).
SESSION_TTL_S = 14 * 24 * 3600.0
MIN_PASSWORD = 10
MAX_PASSWORD = 1024
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")


class Role(str, Enum):
    OWNER = "owner"  # runs the server: adds merchants, may see every library
    MERCHANT = "merchant"  # sees only their own models, jobs and shop


class AccountError(PlinthError):
    """An account could not be made or changed; one plain line for the merchant."""

    def __init__(self, message: str):
        super().__init__("accounts", message)


@dataclass(frozen=True)
class User:
    id: str  # random, URL-safe, never shown; models.owner and jobs.owner hold it
    email: str  # lower-cased, unique
    name: str  # how the pages greet them ('' = use the e-mail address)
    role: Role
    created: float  # unix time

    @property
    def is_owner(self) -> bool:
        return self.role is Role.OWNER

    @property
    def shown_name(self) -> str:
        return self.name or self.email

    def can_see(self, owner_id: str) -> bool:
        """Whether this user may open an object owned by `owner_id` (the owner may see all)."""
        return self.is_owner or owner_id == self.id


def _hasher():
    from argon2 import PasswordHasher

    return PasswordHasher()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def clean_email(email: str) -> str:
    text = (email or "").strip().lower()
    if not _EMAIL.match(text):
        raise AccountError(f"'{email.strip()}' is not an e-mail address. Type it like name@example.com.")
    return text


def check_new_password(password: str) -> None:
    if len(password or "") < MIN_PASSWORD:
        raise AccountError(f"Choose a password of at least {MIN_PASSWORD} characters "
                           "(a few words in a row is easy to remember and hard to guess).")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"That password is longer than {MAX_PASSWORD} characters; choose a shorter one.")


def _user(row) -> User:
    return User(id=row["id"], email=row["email"], name=row["name"], role=Role(row["role"]),
                created=float(row["created"]))


def add_user(data: Path, email: str, password: str, role: Role = Role.MERCHANT, name: str = "") -> User:
    """Create an account. Raises AccountError (plain words) for a bad e-mail, a short password or
    an address that already has an account."""
    data = settings.data_dir(data)
    email = clean_email(email)
    check_new_password(password)
    user = User(id=secrets.token_urlsafe(12), email=email, name=(name or "").strip()[:80], role=role,
                created=time.time())
    with store.connect(data) as con:
        if con.execute("SELECT 1 FROM users WHERE email = ?", (email,)).fetchone():
            raise AccountError(f"{email} already has an account.")
        con.execute("INSERT INTO users (id, email, name, role, password, created) VALUES (?, ?, ?, ?, ?, ?)",
                    (user.id, email, user.name, role.value, _hasher().hash(password), user.created))
    if role is Role.OWNER:  # the first owner takes over what was made before there were accounts
        store.claim_orphans(data)
    return user


def get_user(data: Path, user_id: str) -> User | None:
    with store.connect(settings.data_dir(data)) as con:
        row = con.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone()
    return _user(row) if row else None


def find_user(data: Path, email: str) -> User | None:
    with store.connect(settings.data_dir(data)) as con:
        row = con.execute("SELECT * FROM users WHERE email = ?", ((email or "").strip().lower(),)).fetchone()
    return _user(row) if row else None


def list_users(data: Path) -> list[User]:
    with store.connect(settings.data_dir(data)) as con:
        rows = con.execute("SELECT * FROM users ORDER BY created").fetchall()
    return [_user(r) for r in rows]


def has_users(data: Path) -> bool:
    with store.connect(settings.data_dir(data)) as con:
        return con.execute("SELECT 1 FROM users LIMIT 1").fetchone() is not None


def owner_account(data: Path) -> User | None:
    """The first owner account (the one made at first start), or None before there is one."""
    with store.connect(settings.data_dir(data)) as con:
        row = con.execute("SELECT * FROM users WHERE role = ? ORDER BY created LIMIT 1",
                          (Role.OWNER.value,)).fetchone()
    return _user(row) if row else None


def check_password(data: Path, email: str, password: str) -> User | None:
    """The user whose e-mail and password these are, else None. Takes the same time for an
    unknown address as for a wrong password, so sign-in does not reveal who has an account."""
    from argon2.exceptions import InvalidHashError, VerificationError

    with store.connect(settings.data_dir(data)) as con:
        row = con.execute("SELECT * FROM users WHERE email = ?", ((email or "").strip().lower(),)).fetchone()
    hasher = _hasher()
    stored = row["password"] if row else _dummy_hash(hasher)
    try:
        hasher.verify(stored, password or "")
    except (VerificationError, InvalidHashError):
        return None
    return _user(row) if row else None


def _dummy_hash(hasher) -> str:
    return hasher.hash(os.urandom(16).hex())


def set_password(data: Path, user_id: str, password: str, keep_token: str | None = None) -> None:
    """Change a password and end every session of that user (signed in elsewhere: signed out),
    except `keep_token`'s (the browser that changed it stays signed in)."""
    check_new_password(password)
    with store.connect(settings.data_dir(data)) as con:
        con.execute("UPDATE users SET password = ? WHERE id = ?", (_hasher().hash(password), user_id))
        con.execute("DELETE FROM sessions WHERE user_id = ? AND token_hash != ?",
                    (user_id, _digest(keep_token) if keep_token else ""))


def set_name(data: Path, user_id: str, name: str) -> None:
    with store.connect(settings.data_dir(data)) as con:
        con.execute("UPDATE users SET name = ? WHERE id = ?", ((name or "").strip()[:80], user_id))


def remove_user(data: Path, user_id: str) -> None:
    """Delete an account and its sessions. Its models and jobs (and their share links) stay and go
    to the first owner (store.claim_orphans), who can keep, hand on or delete them. Refuses to
    remove the last owner: nobody could run the server's accounts any more."""
    with store.connect(settings.data_dir(data)) as con:
        row = con.execute("SELECT role FROM users WHERE id = ?", (user_id,)).fetchone()
        if row is None:
            return
        owners = con.execute("SELECT COUNT(*) FROM users WHERE role = ?", (Role.OWNER.value,)).fetchone()[0]
        if row["role"] == Role.OWNER.value and owners <= 1:
            raise AccountError("This is the only owner account; make another owner before removing it.")
        con.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,))
        con.execute("DELETE FROM users WHERE id = ?", (user_id,))
    store.claim_orphans(settings.data_dir(data))


def start_session(data: Path, user_id: str, ttl_s: float = SESSION_TTL_S, now: float | None = None) -> str:
    """A new sign-in session; returns the token for the cookie (only its hash is stored)."""
    now = time.time() if now is None else now
    token = secrets.token_urlsafe(32)
    with store.connect(settings.data_dir(data)) as con:
        con.execute("DELETE FROM sessions WHERE expires < ?", (now,))
        con.execute("INSERT INTO sessions (token_hash, user_id, created, expires) VALUES (?, ?, ?, ?)",
                    (_digest(token), user_id, now, now + ttl_s))
    return token


def session_user(data: Path, token: str | None, now: float | None = None) -> User | None:
    """The signed-in user of a session token, or None (no token, unknown, ended or expired)."""
    if not token or len(token) > 200:
        return None
    now = time.time() if now is None else now
    with store.connect(settings.data_dir(data)) as con:
        row = con.execute("SELECT users.* FROM sessions JOIN users ON users.id = sessions.user_id "
                          "WHERE sessions.token_hash = ? AND sessions.expires > ?", (_digest(token), now)).fetchone()
    return _user(row) if row else None


def end_session(data: Path, token: str | None) -> None:
    if token:
        with store.connect(settings.data_dir(data)) as con:
            con.execute("DELETE FROM sessions WHERE token_hash = ?", (_digest(token),))
