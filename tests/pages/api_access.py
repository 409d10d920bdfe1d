"""A page with only the Settings page's "API access" section, for the browser test
(tests/test_browser_api_tokens.py): the merchant is $PLINTH_TEST_USER (a users.id), since
signing in is the sign-in pages' own work and is tested there."""

import os

import streamlit as st

from webapp import accounts, settings, ui
from webapp.views import api_tokens

st.set_page_config(page_title="Settings · Plinth", layout="centered")
ui.style()  # the app's own stylesheet, as app.py loads it for every page
st.title("Settings")
api_tokens.render(accounts.get_user(settings.data_dir(), os.environ["PLINTH_TEST_USER"]))
