"""The Model page's "Add it to your shop" section: the snippets to paste into a product page, the
product page's address (the share page's "Back to the product" link) and the link's expiry date."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from webapp import ar_page, library, settings, shop, ui

#: Copy buttons always showing (Streamlit only shows them on hover, which phones never do).


def _end_of_day(day: dt.date) -> float:
    """The link works through the whole of its last day (the server's local time)."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time()).timestamp()


def _save(model: library.Model, data) -> None:
    state = st.session_state
    try:
        url = shop.clean_url(state.get("embed_product_url", ""), "The product page address")
    except shop.ShopError as error:
        state["embed_feedback"] = ("error", error.message)
        return
    expires = None
    if state.get("embed_expiry_on"):
        day = state.get("embed_expiry_day")
        if not isinstance(day, dt.date):
            state["embed_feedback"] = ("error", "Pick the last day the link should work.")
            return
        expires = _end_of_day(day)
        if expires <= dt.datetime.now().timestamp():
            state["embed_feedback"] = ("error", "That day has already passed: pick today or a later day.")
            return
    library.set_link(model.share_id, url, expires, data)
    state["embed_feedback"] = ("ok", "Saved. The share page shows it now.")


def section(model: library.Model, data) -> None:
    """Under the share link: the two snippets with Copy buttons, then the link's settings."""
    base = settings.public_url(data, seen_at=ui.browser_url())
    with st.container(key="embed"):
        st.subheader("Add it to your shop")
        st.markdown("Paste this into your product page's HTML. It shows the 3D model with its "
                    "**View in your room** button, right on your page. Use the **Copy** button at the "
                    "top right of the box.")
        st.code(ar_page.iframe_snippet(model, base), language="html", wrap_lines=True)
        st.markdown("Or, if you style your page yourself, paste this 3D viewer instead:")
        st.code(ar_page.viewer_snippet(model, base), language="html", wrap_lines=True)

        st.markdown("**Link settings**")
        st.text_input("Your product page", value=model.product_url, key="embed_product_url",
                      placeholder="https://myshop.example/products/oak-chair",
                      help="Shoppers see a “Back to the product” link to it on the share page.")
        expiry = dt.datetime.fromtimestamp(model.expires).date() - dt.timedelta(days=1) if model.expires else None
        on = st.checkbox("Stop the link working after a date", value=expiry is not None, key="embed_expiry_on")
        if on:
            st.date_input("Last day it works", value=expiry or dt.date.today() + dt.timedelta(days=30),
                          min_value=dt.date.today(), key="embed_expiry_day", format="DD/MM/YYYY")
        st.button("Save link settings", on_click=_save, args=(model, data), icon=":material/save:")
        kind, text = st.session_state.pop("embed_feedback", (None, ""))
        if kind == "error":
            st.error(ui.md(text), icon=":material/error:")
        elif kind == "ok":
            st.success(text, icon=":material/check:")
        if model.expired():
            st.warning("This link has expired: shoppers who open it see “This link has expired”.",
                       icon=":material/timer_off:")
        elif model.expires:
            st.caption(f"The link works until the end of {ui.md(expiry.strftime('%d %b %Y'))}.")
