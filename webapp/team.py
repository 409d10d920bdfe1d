"""The settings page's account and team actions, without widgets (webapp/views/settings_page.py)."""

from __future__ import annotations

from pathlib import Path
from . import accounts, settings


def change_password(data: Path, user: accounts.User, current: str, new: str, again: str,
                    keep_token: str | None) -> str:
    """'' when changed (other sessions ended, this one kept), else what to tell the merchant."""
    if accounts.check_password(data, user.email, current) is None:
        return "Your current password is not right, so nothing was changed."
    if new != again:
        return "The two new passwords are not the same. Type the same password twice."
    try:
        accounts.set_password(data, user.id, new, keep_token=keep_token)
    except accounts.AccountError as error:
        return error.message
    return ""


def invite_url(code: str, seen_at: str | None) -> str:
    """The invite link at the address the owner's browser uses (else the server's public one)."""
    return f"{settings.public_url(seen_at=seen_at)}/invite?code={code}"


def remove(data: Path, by: accounts.User, member_id: str) -> str:
    if not by.is_owner:
        return "Only the owner can remove merchants."
    if member_id == by.id:
        return "You cannot remove your own account."
    try:
        accounts.remove_user(data, member_id)
    except accounts.AccountError as error:
        return error.message
    return ""

