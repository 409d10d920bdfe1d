"""Result page: the quality verdict, the model in a viewer, its real size, the share link and QR
code, downloads, the quality report in plain words, rename and delete. A model that failed its
checks gets no share link, QR code or AR: what went wrong and what to re-shoot instead, and the
merchant's explicit choices (views/quality.py)."""

import streamlit as st

import pipeline
from webapp import library, ui
from webapp.views import embed, quality

ui.header("model")
data = ui.data_dir()
share_id = st.query_params.get("id", "")
model = library.get_model(share_id, data) if share_id else None
if model is None:
    st.title("Model not found")
    st.info("This model does not exist or was deleted. Pick one from your library.")
    st.page_link(ui.LIBRARY, label="Open the library", icon=":material/grid_view:")
    st.stop()

st.title(ui.md(model.name))
st.caption(f"Made {ui.when(model.created)}  ·  {pipeline.format_dimensions(model.dimensions_m)}")
judgement = model.judgement
quality.banner(model)  # the verdict comes before the model

if not model.shared:  # failed its checks: no share link, QR code or AR, unless the merchant chooses
    quality.failed_choices(model, data)
else:
    if judgement.failed:  # published anyway: the merchant can take that back
        quality.stop_sharing(model, data)
    url = library.share_url(model.share_id, seen_at=ui.browser_url(), data_dir=data)
    view, side = st.columns([3, 2], gap="large")
    with view:
        st.iframe(f"/ar/{model.share_id}?embed=1", height=520)
        w, h, d = model.dimensions_m
        with st.container(horizontal=True, gap="medium", key="dims"):  # stays one row on phones
            for label, value in (("Width", w), ("Height", h), ("Depth", d)):
                cm, inch = pipeline.format_size(value).split(" (")
                st.metric(label, cm, inch.rstrip(")"), delta_color="off", delta_arrow="off", width="stretch")

    with side:
        st.subheader("Share and view in AR")
        q, t = st.columns([1, 1], vertical_alignment="center")
        # "stretch" keeps the code inside its column: a fixed width overflowed onto the text beside it.
        q.image(ui.qr_png(url), caption="Scan with your phone", width="stretch")
        t.markdown("Scan the code with a phone camera to place the product in your room at its real size. "
                   "Send the link to customers or add it to your shop.")
        st.code(url, language=None, wrap_lines=True)
        st.link_button("Open the AR page", url, icon=":material/open_in_new:", width="stretch")
        st.subheader("Download")
        quality.downloads(model)
    embed.section(model, data)  # "Add it to your shop": snippets, product page, expiry

st.subheader("How good is this model?")
report = model.report
# A failed model is not "A full 3D scan, ...": the banner above says what it is instead.
if report.get("summary") and not judgement.failed:
    st.markdown(ui.md(report["summary"]))
if report.get("advice"):
    st.info("**How to make it better**\n\n" + "\n".join(f"- {ui.md(line)}" for line in report["advice"]),
            icon=":material/lightbulb:")
if report.get("warnings"):
    st.warning("**Good to know**\n\n" + "\n".join(f"- {ui.md(line)}" for line in report["warnings"]),
               icon=":material/info:")
with st.expander("Details"):
    photos = f"{report.get('photos_placed', '?')} of {report.get('photos_total', '?')}"
    st.markdown(
        f"- Size comes from: {ui.md(report.get('scale_source', 'unknown'))}\n"
        f"- Shape: {ui.md(report.get('kind', model.kind))}. {ui.md(report.get('kind_reason', ''))}\n"
        f"- Photos used: {photos}\n"
        f"- {model.triangles:,} triangles, {model.glb_bytes / 1e6:.1f} MB, "
        f"{report.get('texture_size', '?')} px texture\n"
        f"- Made in {report.get('seconds', 0):.0f} seconds\n"
        f"{quality.details(model)}"
    )


def _rename(sid: str) -> None:
    library.rename_model(sid, st.session_state.get("new_name", ""), data)


def _delete(sid: str) -> None:
    library.delete_model(sid, data)
    st.query_params.clear()


st.subheader("Manage")
r, dl = st.columns(2, vertical_alignment="bottom")
with r:
    st.text_input("Product name", value=model.name, key="new_name", max_chars=120)
    st.button("Rename", on_click=_rename, args=(model.share_id,), icon=":material/edit:")
with dl:
    sure = st.checkbox("Yes, delete this model, its photos and its share link" if model.shared else
                       "Yes, delete this model and its photos", key="confirm_delete")
    if st.button("Delete model", disabled=not sure, icon=":material/delete:"):
        _delete(model.share_id)
        st.switch_page(ui.LIBRARY)
