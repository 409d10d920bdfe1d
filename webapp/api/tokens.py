"""API tokens: one merchant may have several (one per shop back-end or chatbot), each revocable.

    text, token = create(data, user.id, "Shop back-end")   # `text` is shown once, never stored
    user_for(data, text)                                   # -> the accounts.User, or None
    revoke(data, user.id, token.id)

A token is `plinth_` + 43 URL-safe characters (256 random bits). Only its SHA-256 is stored, so a
copy of the database lets nobody in; looking a token up by its hash compares nothing in Python,
so the answer's timing says nothing about how close a guess was. A revoked token answers 401 on
its very next request (there is no cache).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from .. import accounts, settings, store

PREFIX = "plinth_"
#: How many characters of a token lists show, so the merchant can tell which one to revoke.
SHOWN = 8
MAX_NAME = 80
MAX_TOKEN_TEXT = 200


@dataclass(frozen=True)
class Token:
    id: str
    user_id: str
    name: str
    prefix: str  # the first SHOWN characters after "plinth_", shown as "plinth_abcd1234…"
    created: float
    last_used: float | None
    revoked: float | None

    @property
    def active(self) -> bool:
        return self.revoked is None

    @property
    def shown(self) -> str:
        return f"{PREFIX}{self.prefix}…"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _token(row) -> Token:
    return Token(id=row["id"], user_id=row["user_id"], name=row["name"], prefix=row["prefix"],
                 created=float(row["created"]), last_used=row["last_used"], revoked=row["revoked"])


def clean_name(name: str) -> str:
    text = " ".join(str(name or "").split())
    text = "".join(ch for ch in text if ch.isprintable())[:MAX_NAME].strip()
    return text or "API token"


def create(data: Path, user_id: str, name: str) -> tuple[str, Token]:
    """A new token for this merchant: (the token text, to show once; its record)."""
    body = secrets.token_urlsafe(32)  # 43 characters
    text = PREFIX + body
    token = Token(id=secrets.token_urlsafe(12), user_id=user_id, name=clean_name(name), prefix=body[:SHOWN],
                  created=time.time(), last_used=None, revoked=None)
    with store.connect(settings.data_dir(data)) as con:
        con.execute("INSERT INTO api_tokens (id, user_id, name, prefix, hash, created) VALUES (?, ?, ?, ?, ?, ?)",
                    (token.id, user_id, token.name, token.prefix, _digest(text), token.created))
    return text, token


def list_for(data: Path, user_id: str, revoked: bool = False) -> list[Token]:
    """This merchant's tokens, newest first (revoked=True: those too)."""
    with store.connect(settings.data_dir(data)) as con:
        rows = con.execute("SELECT * FROM api_tokens WHERE user_id = ? ORDER BY created DESC", (user_id,)).fetchall()
    return [t for t in map(_token, rows) if revoked or t.active]


def revoke(data: Path, user_id: str, token_id: str) -> bool:
    """Revoke one of this merchant's tokens; False for an unknown or another merchant's token."""
    with store.connect(settings.data_dir(data)) as con:
        cur = con.execute("UPDATE api_tokens SET revoked = ? WHERE id = ? AND user_id = ? AND revoked IS NULL",
                          (time.time(), token_id, user_id))
    return cur.rowcount == 1


def lookup(data: Path, text: str | None) -> tuple[Token, accounts.User] | None:
    """The live token and its merchant for a token text, or None (unknown, revoked, malformed,
    or its account is gone). Records when it was last used."""
    if not text or len(text) > MAX_TOKEN_TEXT or not text.startswith(PREFIX):
        return None
    now = time.time()
    with store.connect(settings.data_dir(data)) as con:
        row = con.execute("SELECT * FROM api_tokens WHERE hash = ? AND revoked IS NULL", (_digest(text),)).fetchone()
        if row is None:
            return None
        # Written at most once a minute per token: every request is not worth a write.
        if row["last_used"] is None or now - row["last_used"] > 60:
            con.execute("UPDATE api_tokens SET last_used = ? WHERE id = ?", (now, row["id"]))
    user = accounts.get_user(data, row["user_id"])
    return (_token(row), user) if user is not None else None


def user_for(data: Path, text: str | None) -> accounts.User | None:
    found = lookup(data, text)
    return found[1] if found else None
