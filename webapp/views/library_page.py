"""Library page: models being made, models that need attention, every model (search, sort, open,
rename, delete with Undo) and the Trash, all the signed-in merchant's own (the owner account may
show everyone's). `?retry=<job id>` shows Try again with changes instead."""

import streamlit as st

import pipeline
from webapp import accounts, library, listing, ui, verdicts
from webapp.views import library_jobs, manage, retry, trash_view

user = ui.require_user()  # the iso work passes it to the library calls
retry_id = st.query_params.get("retry")
ui.header("retry" if retry_id else "library")  # from Try again, the Library link leads back
data = ui.data_dir()

if retry_id:
    retry.show(retry_id, data, user)
    st.stop()

st.title("Your 3D models")
everyone = user.is_owner and st.toggle("Show everyone's models", key="everyone",
                                       help="You run this Plinth: see the models of every merchant on it.")
scope = None if everyone else user.id  # None: every merchant's (library.list_models)
whose = {u.id: u.shown_name for u in accounts.list_users(data)} if everyone else {}
manage.undo_banner(data, user)
busy = library_jobs.in_progress(data, scope, whose if everyone else None)
busy = library_jobs.needs_attention(data, scope, whose if everyone else None) or busy

models = library.list_models(data, owner=scope)
if not models:
    st.info("No finished models yet." if busy else "No models yet. Create your first one from a photo of a product.")
    st.page_link(ui.CREATE, label="Create a 3D model", icon=":material/add_a_photo:")
    trash_view.section(data, scope)
    st.stop()

if busy:  # the sections above are about models still to come
    st.subheader("Made")
with st.container(horizontal=True, gap="small", vertical_alignment="bottom", key="find"):
    query = st.text_input("Search by name", placeholder="e.g. chair", key="search", width="stretch")
    order = st.selectbox("Sort", list(listing.Order), format_func=listing.ORDER_LABELS.get, key="order",
                         width=260)
shown = listing.arrange(models, query, order)
if not shown:
    st.info(f"No model's name has “{ui.md(query.strip())}” in it.")
else:
    st.caption(f"{len(shown)} model{'s' if len(shown) != 1 else ''}"
               + (f" of {len(models)}" if len(shown) != len(models) else ""))

for cell, model in zip(ui.card_grid(len(shown)), shown):
    with cell, st.container(border=True, key=f"card-{model.share_id}"):
        poster = model.file("poster.png")
        if poster:
            st.image(str(poster), width="stretch")
        st.markdown(f"**{ui.md(model.name)}**")
        if everyone:
            st.caption(f":material/person: {ui.md(whose.get(model.owner, 'No account'))}")
        badge = verdicts.label(model.judgement, model.published_anyway)
        if badge:  # our own words, so the colour and icon syntax is ours too
            judgement = model.judgement
            look = (":red[:material/error:" if judgement.failed else
                    ":orange[:material/warning:" if judgement.warned else ":green[:material/verified:")
            st.markdown(f"{look} {badge}]")
        st.caption(f"{ui.when(model.created)}  \n{pipeline.format_dimensions(model.dimensions_m)}")
        buttons = st.container(horizontal=True, gap="small")  # one row on a phone too
        if buttons.button("Open", key=f"open-{model.share_id}", type="primary", width="stretch",
                          icon=":material/view_in_ar:"):
            st.switch_page(ui.MODEL, query_params={"id": model.model_id})
        with buttons.popover("More", width="stretch", icon=":material/more_horiz:"):
            manage.rename_controls(model, f"name-{model.share_id}", data)
            st.divider()
            if manage.delete_controls(model, f"del-{model.share_id}", data):
                st.rerun()  # the card goes, the Undo banner comes

trash_view.section(data, scope)
