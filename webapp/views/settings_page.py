"""Settings: your account (name, password), your team (the owner only: invite and remove
merchants), the API tokens section, and (the owner only) the machines that make the models."""

import streamlit as st

from webapp import accounts, signin, team, ui
from webapp.views import api_tokens, machines

REMOVE = "settings_remove_member"  # the member whose Remove was clicked, until Yes or Keep

user = ui.require_user()
ui.header("settings")
data = ui.data_dir()

st.title("Settings")

st.subheader("Your account")
st.caption(f"Signed in as {ui.md(user.email)}" + (" · owner of this Plinth" if user.is_owner else ""))
with st.form("account_name", border=True):
    name = st.text_input("Your name", value=user.name, max_chars=80, placeholder="Ana Silva")
    if st.form_submit_button("Save name", icon=":material/save:"):
        accounts.set_name(data, user.id, name)
        st.session_state["settings_name_saved"] = True
        st.rerun()  # the header shows the new name too
if st.session_state.pop("settings_name_saved", False):
    st.success("Saved.", icon=":material/check:")

with st.form("account_password", border=True, clear_on_submit=True):
    st.markdown("**Change your password**")
    current = st.text_input("Current password", type="password", autocomplete="current-password")
    new = st.text_input("New password", type="password", autocomplete="new-password",
                        help=f"At least {accounts.MIN_PASSWORD} characters. A few words in a row is easy to remember.")
    again = st.text_input("New password again", type="password", autocomplete="new-password")
    if st.form_submit_button("Change password", icon=":material/key:"):
        problem = team.change_password(data, user, current, new, again, keep_token=ui.session_token())
        if problem:
            st.error(ui.md(problem), icon=":material/error:")
        else:
            st.success("Password changed. Other browsers signed in to your account were signed out.",
                       icon=":material/check:")

if user.is_owner:
    st.subheader("Your team")
    st.markdown("Invite the merchants who make models on this Plinth. Each one has their own library, "
                "jobs and shop; as the owner you can see everything.")
    with st.form("invite", border=True, clear_on_submit=True):
        left, right = st.columns(2)
        email = left.text_input("E-mail", placeholder="bob@shop.example")
        invitee = right.text_input("Name", max_chars=80, placeholder="Bob")
        if st.form_submit_button("Make an invite link", icon=":material/person_add:", type="primary"):
            try:
                code = signin.invite(data, email, invitee)
            except accounts.AccountError as error:
                st.error(ui.md(error.message), icon=":material/error:")
            else:
                st.session_state["invite_link"] = (email.strip().lower(), team.invite_url(code, ui.browser_url()))
    if shown := st.session_state.pop("invite_link", None):
        st.success(f"Send this link to {ui.md(shown[0])}. It works once, for 7 days, and is shown only now.",
                   icon=":material/mail:")
        st.code(shown[1], language=None)
    for member in accounts.list_users(data):
        with st.container(border=True, horizontal=True, vertical_alignment="center", key=f"member_{member.id}"):
            role = "owner" if member.is_owner else "merchant"
            st.markdown(f"**{ui.md(member.shown_name)}**  \n{ui.md(member.email)} · {role}", width="stretch")
            if member.id == user.id:
                st.caption("You", width="content")
            elif st.button("Remove", key=f"remove_{member.id}", icon=":material/person_remove:", width="content"):
                st.session_state[REMOVE] = member.id
            if st.session_state.get(REMOVE) == member.id:
                st.warning(f"Remove {ui.md(member.email)}? They can no longer sign in. Their models stay "
                           "in your library and their share links keep working.")
                yes, no = st.columns(2)
                if yes.button("Yes, remove", key=f"yes_{member.id}", type="primary"):
                    st.session_state.pop(REMOVE, None)
                    error = team.remove(data, user, member.id)
                    if error:
                        st.error(ui.md(error), icon=":material/error:")
                    else:
                        st.rerun()
                if no.button("Keep", key=f"no_{member.id}"):
                    st.session_state.pop(REMOVE, None)
                    st.rerun()
    for pending in signin.pending_invites(data):
        with st.container(border=True, horizontal=True, vertical_alignment="center",
                          key=f"invite_{pending.code_hash[:16]}"):
            st.markdown(f"**{ui.md(pending.name or pending.email)}**  \n{ui.md(pending.email)} · invited, "
                        f"link valid until {ui.when(pending.expires)}", width="stretch")
            if st.button("Cancel invite", key=f"cancel_{pending.code_hash[:16]}", width="content"):
                signin.cancel_invite(data, pending.code_hash)
                st.rerun()

# API access (tokens for shop back-ends, the webhook secret): webapp/views/api_tokens.py
api_tokens.render(user)

if user.is_owner:  # where models are made: webapp/views/machines.py
    machines.render()
