"""The Settings page's "API access" section: API tokens (made, shown once, revoked) and the
webhook signing secret (shown on request, rotated). The Settings page calls render(user)."""

from __future__ import annotations

import streamlit as st

from webapp import accounts, settings, ui
from webapp.api import tokens, webhooks

_NEW = "api_new_token"  # the token just made: shown once, in this session only
_REVOKING = "api_revoking"  # the token id waiting for "Yes, revoke it"
_SHOW_SECRET = "api_show_secret"
_ROTATING = "api_rotating"
_CSS = settings.STATIC_DIR / "api_access.css"


def _create(user: accounts.User) -> None:
    name = st.session_state.get("api_token_name", "")
    text, token = tokens.create(ui.data_dir(), user.id, name)
    st.session_state[_NEW] = (text, token.name)
    st.session_state["api_token_name"] = ""


def _revoke(user: accounts.User, token_id: str) -> None:
    tokens.revoke(ui.data_dir(), user.id, token_id)
    st.session_state.pop(_REVOKING, None)
    st.session_state["api_feedback"] = "Revoked. Programs using that token are refused from now on."


def _rotate(user: accounts.User) -> None:
    webhooks.rotate(ui.data_dir(), user.id)
    st.session_state.pop(_ROTATING, None)
    st.session_state[_SHOW_SECRET] = True
    st.session_state["api_feedback"] = ("A new webhook secret is in use. Put it in your shop's back-end: "
                                        "calls from now on are signed with it.")


def _token_row(user: accounts.User, token: tokens.Token) -> None:
    with st.container(border=True, key=f"api_token_{token.id}"):
        st.markdown(f"**{ui.md(token.name)}** · `{token.shown}`")
        used = f"last used {ui.when(token.last_used)}" if token.last_used else "never used yet"
        st.caption(f"Made {ui.when(token.created)}, {used}.")
        if st.session_state.get(_REVOKING) == token.id:
            st.warning("Revoke this token? Anything that uses it stops working at once; this cannot be undone.",
                       icon=":material/warning:")
            with st.container(horizontal=True, gap="small"):
                st.button("Yes, revoke it", key=f"api_yes_{token.id}", type="primary",
                          on_click=_revoke, args=(user, token.id))
                st.button("Keep it", key=f"api_keep_{token.id}", on_click=st.session_state.pop, args=(_REVOKING, None))
        else:
            st.button("Revoke", key=f"api_revoke_{token.id}", icon=":material/block:",
                      on_click=st.session_state.__setitem__, args=(_REVOKING, token.id))


def render(user: accounts.User) -> None:
    st.html(_CSS)
    with st.container(key="api_access"):
        _section(user)


def _section(user: accounts.User) -> None:
    st.subheader("API access")
    st.markdown("Let your shop's back-end or a chatbot turn photos into 3D models and share links for you. "
                "Give each program its own token. Whoever sets it up finds the guide in **docs/api.md** "
                "(and every request at `/api/v1/openapi.json` on this server).")
    feedback = st.session_state.pop("api_feedback", "")
    if feedback:
        st.success(feedback, icon=":material/check_circle:")

    new = st.session_state.pop(_NEW, None)
    if new:
        text, name = new
        st.success(f"Your new token “{ui.md(name)}”. Copy it now with the **Copy** button: "
                   "**it is shown only this once**, and Plinth keeps no copy of it.", icon=":material/key:")
        st.code(text, language=None)
        st.caption("Keep it secret, like a password: anyone with it can make and delete your models.")

    with st.form("api_new_token_form", clear_on_submit=False, border=False):
        st.text_input("Name of the new token", key="api_token_name", max_chars=tokens.MAX_NAME,
                      placeholder="e.g. Shop back-end")
        st.form_submit_button("Create token", icon=":material/add:", on_click=_create, args=(user,))

    live = tokens.list_for(ui.data_dir(), user.id)
    if live:
        st.markdown(f"**Your tokens** ({len(live)})")
        for token in live:
            _token_row(user, token)
    else:
        st.caption("No tokens yet.")

    st.markdown("**Webhook secret**")
    st.caption("When you give a webhook address with a new model, Plinth calls it when the model is ready and "
               "signs the call with this secret, so your back-end can check the call came from here.")
    secret = webhooks.secret_for(ui.data_dir(), user.id)
    shown = bool(st.session_state.get(_SHOW_SECRET))
    if shown:
        st.code(secret, language=None)
    else:  # no code box: its Copy button would copy the dots
        st.markdown("`whsec_" + "•" * 20 + "`")
    with st.container(horizontal=True, gap="small"):
        st.button("Hide" if shown else "Show", key="api_show", icon=":material/visibility:",
                  on_click=st.session_state.__setitem__, args=(_SHOW_SECRET, not shown))
        if not st.session_state.get(_ROTATING):
            st.button("Rotate", key="api_rotate", icon=":material/autorenew:",
                      on_click=st.session_state.__setitem__, args=(_ROTATING, True))
    if st.session_state.get(_ROTATING):
        st.warning("Make a new secret? Calls signed with the old one stop being made at once, so your back-end "
                   "must switch to the new one.", icon=":material/warning:")
        with st.container(horizontal=True, gap="small"):
            st.button("Yes, make a new secret", key="api_rotate_yes", type="primary", on_click=_rotate, args=(user,))
            st.button("Keep this one", key="api_rotate_no", on_click=st.session_state.pop, args=(_ROTATING, None))
