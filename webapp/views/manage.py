"""Rename and delete, as the Library cards and the Model page both offer them: a rename says it
worked (or why not), a delete says what shoppers will see, moves the model to the Trash, and the
Library then offers Undo right away."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from webapp import accounts, library, trash, ui

#: Session key: the share id of the model deleted last, while its Undo is offered.
UNDO = "plinth_undo_delete"
EMPTY_NAME = "Give the product a name: it cannot be empty."


def _rename(share_id: str, key: str, data: Path) -> None:
    name = library.clean_name(st.session_state.get(key, ""), fallback="")
    if not name:
        st.session_state[f"{key}-error"] = EMPTY_NAME
        return
    st.session_state.pop(f"{key}-error", None)
    if library.rename_model(share_id, name, data):
        st.toast(f"Renamed to “{ui.md(name)}”", icon=":material/check_circle:")


def rename_controls(model: library.Model, key: str, data: Path, label: str = "Name") -> None:
    st.text_input(label, value=model.name, key=key, max_chars=library.MAX_NAME)
    error = st.session_state.get(f"{key}-error")
    if error:
        st.error(error, icon=":material/error:")
    st.button("Rename", key=f"{key}-button", on_click=_rename, args=(model.share_id, key, data),
              icon=":material/edit:")


def delete_controls(model: library.Model, key: str, data: Path) -> bool:
    """The warning, a confirmation tick and the Delete button; True when the model was just moved
    to the Trash (the caller then leaves the page or reruns it, and the Library offers Undo).
    Not an on_click callback: the Model page reruns without the model before the callback's page
    could send the merchant on."""
    st.warning(trash.DELETE_WARNING if model.shared else
               f"It goes to the Trash, where you can restore it for {trash.KEEP_DAYS} days.",
               icon=":material/info:")
    sure = st.checkbox("Yes, move it to the Trash", key=f"{key}-sure")
    if st.button("Delete", key=f"{key}-delete", disabled=not sure, icon=":material/delete:") and trash.move(
            model.share_id, data):
        st.session_state[UNDO] = model.share_id
        return True
    return False


def _undo(share_id: str, data: Path) -> None:
    st.session_state.pop(UNDO, None)
    if trash.restore(share_id, data):
        st.toast("Restored. Its link and QR code work again.", icon=":material/undo:")


def undo_banner(data: Path, user: accounts.User) -> None:
    """After a delete: what happened, and Undo (until the next delete or a dismiss)."""
    share_id = st.session_state.get(UNDO)
    model = library.get_model(share_id, data, trashed=True) if share_id else None
    if model is None or not model.trashed or not user.can_see(model.owner):  # signed out and in as another
        st.session_state.pop(UNDO, None)
        return
    with st.container(border=True, key="undo-banner", horizontal=True, vertical_alignment="center"):
        st.markdown(f":material/delete: **{ui.md(model.name)}** is in the Trash. Shoppers who open its link "
                    "now see 'no longer available'.", width="stretch")
        st.button("Undo", key="undo-delete", on_click=_undo, args=(share_id, data), type="primary",
                  icon=":material/undo:")
        st.button("Dismiss", key="undo-dismiss", on_click=st.session_state.pop, args=(UNDO, None))
