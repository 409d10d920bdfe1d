"""Signed-in Streamlit AppTests: the pages end their run without a signed-in merchant
(ui.require_user), and an AppTest cannot send the session cookie, so the owner's id goes into the
session state under ui.SIGNED_IN, which is what ui.current_user reads when there is no cookie."""

from __future__ import annotations

from tests.browsing import TEST_OWNER


def owner_account(data=None):
    """The test owner account of `data` (default: $PLINTH_DATA_DIR), made when missing."""
    from webapp import accounts, settings

    data = settings.data_dir(data)
    return accounts.find_user(data, TEST_OWNER[0]) or accounts.add_user(
        data, TEST_OWNER[0], TEST_OWNER[1], role=accounts.Role.OWNER, name="Test Owner")


def signed_in_apptest(script: str, data=None, user=None, **kwargs):
    """AppTest.from_file(script, **kwargs), signed in as `user` (default: the test owner of `data`)."""
    from streamlit.testing.v1 import AppTest

    from webapp import ui

    at = AppTest.from_file(script, **kwargs)
    at.session_state[ui.SIGNED_IN] = (user or owner_account(data)).id
    return at
