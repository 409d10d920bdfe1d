"""The Settings page in Streamlit AppTest (real SQLite, real pages): the owner's team (invite,
remove) is the owner's only, names and passwords change only as asked, and a page run without a
signed-in merchant shows nothing but the way to sign in."""

from __future__ import annotations

import re

from tests.browsing import TEST_OWNER
from webapp import accounts, signin



def _settings(user_id: str | None):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from tests.test_webapp_apptest import APP
    from webapp import ui

    st.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=60)
    if user_id:
        at.session_state[ui.SIGNED_IN] = user_id
    at.run()
    at.switch_page("views/settings_page.py").run()
    assert not at.exception, at.exception
    return at


def _texts(at) -> str:
    """What the page says, with ui.md's escapes taken out again."""
    return " ".join(e.value for kind in ("title", "subheader", "markdown", "caption", "info", "success", "error",
                                         "warning") for e in getattr(at, kind)
                    if isinstance(e.value, str)).replace("\u2060", "").replace("\\", "")


def _field(at, label: str):
    return next(t for t in at.text_input if t.label == label)


def _button(at, label: str):
    return next(b for b in at.button if b.label == label)


def test_settings_shows_the_team_to_the_owner_only_and_invites_and_removes(app_data, signed_in_user):
    owner = signed_in_user
    at = _settings(owner.id)
    assert "Your team" in _texts(at) and owner.email in _texts(at)
    _field(at, "Your name").input("Ana Silva")
    _button(at, "Save name").click().run()
    assert accounts.get_user(app_data, owner.id).name == "Ana Silva" and "Saved." in _texts(at)
    assert any(link.label == "Ana Silva" for link in at.get("page_link"))  # the header greets the new name
    _field(at, "E-mail").input("Bob@Shop.example")
    _field(at, "Name").input("Bob")
    _button(at, "Make an invite link").click().run()
    link = at.code[0].value
    assert re.fullmatch(r"http://\S+/invite\?code=[\w-]{30,}", link), link
    found = signin.find_invite(app_data, link.rsplit("=", 1)[1])
    assert found is not None and found.email == "bob@shop.example" and found.name == "Bob"
    assert "shown only now" in _texts(at)
    at.run()
    assert not at.code  # shown once

    bob = signin.accept_invite(app_data, link.rsplit("=", 1)[1], "bob's long password")
    as_bob = _settings(bob.id)
    assert "Your team" not in _texts(as_bob) and "Make an invite link" not in [b.label for b in as_bob.button]
    assert not any(b.label == "Remove" for b in as_bob.button)

    at = _settings(owner.id)
    assert [b.key for b in at.button if b.label == "Remove"] == [f"remove_{bob.id}"]  # never the owner's own
    _button(at, "Remove").click().run()
    assert "Remove bob@shop.example?" in _texts(at)
    _button(at, "Yes, remove").click().run()
    assert accounts.find_user(app_data, "bob@shop.example") is None
    assert not any(b.label == "Remove" for b in at.button)


def test_settings_changes_the_password_only_with_the_current_one(app_data, signed_in_user):
    elsewhere = accounts.start_session(app_data, signed_in_user.id)
    at = _settings(signed_in_user.id)
    _field(at, "Current password").input("not my password")
    _field(at, "New password").input("a brand new password")
    _field(at, "New password again").input("a brand new password")
    _button(at, "Change password").click().run()
    assert "not right, so nothing was changed" in _texts(at)
    assert accounts.session_user(app_data, elsewhere) is not None
    _field(at, "Current password").input(TEST_OWNER[1])
    _field(at, "New password").input("a brand new password")
    _field(at, "New password again").input("a brand new password")
    _button(at, "Change password").click().run()
    assert "Password changed" in _texts(at)
    assert accounts.check_password(app_data, TEST_OWNER[0], "a brand new password") is not None
    assert accounts.session_user(app_data, elsewhere) is None  # other browsers are signed out


def test_a_password_change_keeps_the_browser_that_made_it(tmp_path):
    user = accounts.add_user(tmp_path, "ana@shop.example", "correct horse battery")
    here, there = accounts.start_session(tmp_path, user.id), accounts.start_session(tmp_path, user.id)
    accounts.set_password(tmp_path, user.id, "a brand new password", keep_token=here)
    assert accounts.session_user(tmp_path, here) == user and accounts.session_user(tmp_path, there) is None


def test_a_page_without_a_signed_in_merchant_shows_nothing_but_sign_in(app_data):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from tests.test_webapp_apptest import APP

    st.cache_resource.clear()
    for page in ("views/create.py", "views/library_page.py", "views/shop_page.py", "views/settings_page.py",
                 "views/model.py"):
        at = AppTest.from_file(APP, default_timeout=60).run()
        at.switch_page(page).run()
        assert not at.exception
        assert [t.value for t in at.title] == ["You are signed out"], page
        assert not at.text_input and not at.button and not at.file_uploader, page
