"""Library page: every model with its poster, name, date, size and quality verdict; open, rename, delete."""

import streamlit as st

import pipeline
from webapp import library, ui, verdicts

ui.header("library")
data = ui.data_dir()
st.title("Your 3D models")
models = library.list_models(data)
if not models:
    st.info("No models yet. Create your first one from a photo of a product.")
    st.page_link(ui.CREATE, label="Create a 3D model", icon=":material/add_a_photo:")
    st.stop()

st.caption(f"{len(models)} model{'s' if len(models) != 1 else ''}")


def _rename(sid: str) -> None:
    library.rename_model(sid, st.session_state.get(f"name-{sid}", ""), data)


def _delete(sid: str) -> None:
    library.delete_model(sid, data)


cols = st.columns(3, gap="medium")
for i, model in enumerate(models):
    with cols[i % 3], st.container(border=True):
        poster = model.file("poster.png")
        if poster:
            st.image(str(poster), width="stretch")
        st.markdown(f"**{ui.md(model.name)}**")
        badge = verdicts.label(model.judgement, model.published_anyway)
        if badge:  # our own words, so the colour and icon syntax is ours too
            judgement = model.judgement
            look = (":red[:material/error:" if judgement.failed else
                    ":orange[:material/warning:" if judgement.warned else ":green[:material/verified:")
            st.markdown(f"{look} {badge}]")
        st.caption(f"{ui.when(model.created)}  \n{pipeline.format_dimensions(model.dimensions_m)}")
        a, b = st.columns(2)
        if a.button("Open", key=f"open-{model.share_id}", type="primary", width="stretch",
                    icon=":material/view_in_ar:"):
            st.switch_page(ui.MODEL, query_params={"id": model.share_id})
        with b.popover("More", width="stretch", icon=":material/more_horiz:"):
            st.text_input("Name", value=model.name, key=f"name-{model.share_id}", max_chars=120)
            st.button("Rename", key=f"ren-{model.share_id}", on_click=_rename, args=(model.share_id,))
            st.divider()
            sure = st.checkbox("Yes, delete it", key=f"sure-{model.share_id}")
            st.button("Delete", key=f"del-{model.share_id}", on_click=_delete, args=(model.share_id,),
                      icon=":material/delete:", disabled=not sure)
