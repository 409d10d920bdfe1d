"""Result page: the quality verdict, the model in a viewer, its real size, the share link and QR
code, downloads, the quality report in plain words, rename and delete. A model that failed its
checks gets no share link, QR code or AR: what went wrong and what to re-shoot instead, and the
merchant's explicit choices (views/quality.py).

Opened by /model?id=<model_id>, the merchant-side id: a share id (which every shopper holding the
link knows) opens nothing here, and neither does another merchant's model id ("not found", as an
unknown id)."""

import streamlit as st

import pipeline
from webapp import adjust, library, trash, ui
from webapp.views import adjust as adjust_section
from webapp.views import embed, manage, quality

user = ui.require_user()  # the iso work passes it to the library calls
ui.header("model")
data = ui.data_dir()
model_id = st.query_params.get("id", "")
model = library.get_owned(model_id, user, data)
if model is None:
    binned = library.get_owned(model_id, user, data, trashed=True)
    if binned is not None:  # deleted, but still restorable: say so rather than "not found"
        st.title(ui.md(binned.name))
        st.warning(f"This model is in the Trash. Shoppers who open its link see 'no longer available'. "
                   f"It is deleted for good in {trash.days_left(binned)} days unless you restore it.",
                   icon=":material/delete:")
        if st.button("Restore it", type="primary", icon=":material/restore_from_trash:"):
            trash.restore(binned.share_id, data)
            st.rerun()
    else:
        st.title("Model not found")
        st.info("This model does not exist or was deleted for good. Pick one from your library.")
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
        rev = adjust.revision(model)  # a new address when adjusted, so the viewer reloads the new files
        st.iframe(f"/ar/{model.share_id}?embed=1" + (f"&v={rev}" if rev else ""), height=520)
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

adjust_section.section(model, data)  # turn, resize, floor or wall, poster and backdrop (views/adjust.py)

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
        f"- Shape: {ui.md(ui.KIND_LABELS.get(report.get('kind', model.kind), 'made from photos all around it'))}. "
        f"{ui.md(pipeline.sentence(report.get('kind_reason', '')))}\n"
        f"- Photos used: {photos}\n"
        f"- {model.triangles:,} triangles, {model.glb_bytes / 1e6:.1f} MB, "
        f"{report.get('texture_size', '?')} px texture\n"
        f"- Made in {report.get('seconds', 0):.0f} seconds\n"
        f"{quality.details(model)}"
    )


st.subheader("Manage")
r, dl = st.columns(2, gap="large")
with r:
    manage.rename_controls(model, "new_name", data, label="Product name")
with dl:
    if manage.delete_controls(model, "model", data):
        st.switch_page(ui.LIBRARY)  # where Undo is offered
