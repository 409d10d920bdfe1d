"""Streamlit entry point: page set-up and routing only (the pages live in webapp/views/)."""

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:  # `streamlit run webapp/app.py` from anywhere
    sys.path.insert(0, str(_ROOT))

import streamlit as st  # noqa: E402

from webapp import ui  # noqa: E402

st.set_page_config(page_title="Plinth · 3D models for your shop", page_icon=ui.favicon(), layout="wide")
ui.style()
ui.workers_started(str(ui.data_dir()))

# Every page has its own address: /create, /library, /model?id=..., and / opens Create too. The
# default page is served at / only (its own url_path answers "Page not found"), so Create is
# listed twice: first under /create, which page links and switch_page pick for the script, then
# as the default under /.
page = st.navigation(
    [
        st.Page(ui.CREATE, title="Create", url_path="create"),
        st.Page(ui.MODEL, title="Model", url_path="model"),
        st.Page(ui.LIBRARY, title="Library", url_path="library"),
        st.Page(ui.SHOP, title="Your shop", url_path="shop"),
        st.Page(ui.SETTINGS, title="Settings", url_path="settings"),
        st.Page(ui.CREATE, title="Create", url_path="home", default=True),
    ],
    position="hidden",
)
page.run()
