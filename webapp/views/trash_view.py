"""The Library's Trash: deleted models for KEEP_DAYS days, with Restore (the same link works
again) and Delete forever."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from webapp import library, trash, ui


def _restore(share_id: str, data: Path) -> None:
    if trash.restore(share_id, data):
        st.toast("Restored. Its link and QR code work again.", icon=":material/undo:")


def _forget(share_id: str, data: Path) -> None:
    if trash.delete_forever(share_id, data):
        st.toast("Deleted for good.", icon=":material/delete_forever:")


def section(data: Path, owner: str | None) -> None:
    """The Trash of `owner` (a users.id; None: everyone's)."""
    binned = sorted(library.list_models(data, trashed=True, owner=owner), key=lambda m: m.deleted_at or 0, reverse=True)
    with st.expander(f"Trash ({len(binned)})", icon=":material/delete:", expanded=False):
        if not binned:
            st.caption(f"The Trash is empty. Deleted models wait here for {trash.KEEP_DAYS} days before "
                       "they are deleted for good.")
            return
        st.caption(f"Deleted models wait here for {trash.KEEP_DAYS} days, then they are deleted for good. "
                   "Meanwhile shoppers who open their link see 'no longer available'.")
        for model in binned:
            with st.container(border=True, key=f"trash-{model.share_id}"):
                left = trash.days_left(model)
                st.markdown(f"**{ui.md(model.name)}**")
                st.caption(f"Deleted {ui.when(model.deleted_at)} · deleted for good in "
                           f"{left} day{'s' if left != 1 else ''}")
                with st.container(horizontal=True, gap="small"):
                    st.button("Restore", key=f"restore-{model.share_id}", on_click=_restore,
                              args=(model.share_id, data), type="primary", icon=":material/restore_from_trash:")
                    with st.popover("Delete forever", icon=":material/delete_forever:"):
                        st.markdown("Its files, photos and link go for good. This cannot be undone.")
                        sure = st.checkbox("Yes, delete it for good", key=f"forget-sure-{model.share_id}")
                        st.button("Delete forever", key=f"forget-{model.share_id}", disabled=not sure,
                                  on_click=_forget, args=(model.share_id, data), icon=":material/delete_forever:")
