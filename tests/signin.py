"""Signed-in page tests: AppTests cannot send the sign-in cookie, so they name the user in the
session state (ui.SIGNED_IN), which the pages read when there is no cookie; HTTP tests send a real
session cookie (accounts.start_session)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from webapp import accounts, store, ui

APP = str(Path(__file__).resolve().parent.parent / "webapp" / "app.py")
OWNER_EMAIL = "owner@shop.example"


@dataclass(frozen=True)
class Merchants:
    owner: accounts.User
    a: accounts.User
    b: accounts.User


def owner(data: Path) -> accounts.User:
    """The data folder's first owner account, made if there is none yet."""
    return accounts.owner_account(data) or accounts.add_user(data, OWNER_EMAIL, "owner-password",
                                                             role=accounts.Role.OWNER)


def app(data: Path, user: accounts.User | None = None, timeout: float = 60):
    """An AppTest of the whole app signed in as `user` (default: the owner account). Models the
    test added without an owner go to the owner first, as a restart of the server would do."""
    from streamlit.testing.v1 import AppTest

    user = user or owner(data)
    store.claim_orphans(data)
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.session_state[ui.SIGNED_IN] = user.id
    return at


def cookie(data: Path, user: accounts.User) -> dict[str, str]:
    """The sign-in cookie of a new session of `user`, for an HTTP client."""
    return {accounts.COOKIE: accounts.start_session(data, user.id)}
