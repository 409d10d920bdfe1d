"""Several merchants on one server for the isolation tests: the owner account (tests.signing's,
which the other page tests sign in as) and two merchants, A and B; and a real sign-in cookie for
HTTP clients (accounts.start_session, as /login makes)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from webapp import accounts


@dataclass(frozen=True)
class Merchants:
    owner: accounts.User
    a: accounts.User
    b: accounts.User


def two_merchants(data: Path) -> Merchants:
    from tests.signing import owner_account

    return Merchants(owner=owner_account(data),
                     a=accounts.add_user(data, "a@oak.example", "password-of-a", name="Ana of Oak & Co"),
                     b=accounts.add_user(data, "b@birch.example", "password-of-b", name="Ben of Birch"))


def cookie(data: Path, user: accounts.User) -> dict[str, str]:
    """The sign-in cookie of a new session of `user`, for an HTTP client."""
    return {accounts.COOKIE: accounts.start_session(data, user.id)}
