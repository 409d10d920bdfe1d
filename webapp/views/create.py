"""Create page: upload photos, describe the product, start a job; then follow its progress."""

import streamlit as st

import pipeline
from webapp import jobs, limits, photo_check, ui
from webapp.views import progress

user = ui.require_user()  # the iso work passes it to the library calls
ui.header("create")
data = ui.data_dir()

job_id = st.query_params.get("job")
if job_id:
    progress.show(job_id, data, user)
    st.stop()


@st.cache_data(show_spinner=False, max_entries=200)
def _check(filename: str, content: bytes) -> photo_check.PhotoCheck:
    return photo_check.check_upload(filename, content)


#: Thumbnail card width (px): two side by side on a 390 px phone, five or six on a laptop.
THUMB_WIDTH = 168

st.title("Create a 3D model")
st.markdown(
    "Add photos of one product. **One clear front photo** gives a quick model; "
    "**20 or more photos taken all around it** give a full 3D scan. Use good light and keep the whole "
    "product in the frame."
)

uploads = st.file_uploader(
    "Product photos",
    type=["jpg", "jpeg", "png", "webp", "heic", "heif"],
    accept_multiple_files=True,
    max_upload_size=int(limits.MAX_FILE_MB),
    help=ui.upload_limits_help(),
)
uploads = uploads or []
unusable = []
if uploads:
    total_mb = sum(u.size for u in uploads) / 2**20
    st.caption(f"{len(uploads)} photo{'s' if len(uploads) != 1 else ''}, {total_mb:.1f} MB "
               f"(one model takes up to {limits.MAX_JOB_PHOTOS} photos and {limits.MAX_JOB_MB:g} MB). "
               "The first one is used as the front.")
    notice = photo_check.count_notice(len(uploads))
    if notice:
        st.info(notice, icon=":material/photo_library:")
    # One wrapping row of fixed-width cards: they stay in upload order on every screen (columns
    # stack column by column on a phone, which put photo 5 second).
    with st.container(horizontal=True, gap="small", key="thumbs"):
        for upload in uploads:
            check = _check(upload.name, upload.getvalue())
            with st.container(border=True, width=THUMB_WIDTH):
                if check.thumbnail:
                    st.image(check.thumbnail, width="stretch")
                st.caption(ui.md(upload.name))  # a file name is never Markdown, a link, a colour or LaTeX
                if check.error:
                    unusable.append(upload.name)
                    st.error(ui.md(check.error), icon=":material/block:")
                for warning in check.warnings:  # small print: a boxed warning is a word a line in a card
                    st.caption(f":orange[:material/info:] :orange[{ui.md(warning)}]")
    if len(uploads) >= limits.MAX_JOB_PHOTOS or total_mb > limits.MAX_JOB_MB - limits.MAX_FILE_MB:
        # The uploader itself can only say "status code 413" beside a photo the server refused.
        st.warning(f"One model can use at most {limits.MAX_JOB_PHOTOS} photos and {limits.MAX_JOB_MB:g} MB; "
                   "photos marked with an error in the list above did not fit. "
                   "20 to 80 photos all around the product is plenty.", icon=":material/info:")

name = st.text_input("Product name", placeholder="e.g. Oak dining chair", max_chars=120)

st.markdown("**One real measurement** (so the model has its true size in AR)")
c_axis, c_value, c_unit = st.columns([1.2, 1, 1], vertical_alignment="bottom")
axis = c_axis.selectbox("Which side did you measure?", ["height", "width", "depth"], format_func=str.capitalize)
value = c_value.number_input("Measurement", min_value=0.0, max_value=2000.0, value=None, step=0.5,
                             format="%.1f", placeholder="e.g. 85")
unit = c_unit.segmented_control("Unit", ["cm", "in"], default="cm", key="unit")

c_kind, c_place = st.columns(2)
kind = c_kind.selectbox("Shape", list(ui.KIND_LABELS), format_func=ui.KIND_LABELS.get,
                        help="Used when you give one photo. 'Decide for me' works for most products.")
placement = c_place.radio("Where does it go?", list(ui.PLACEMENT_LABELS), format_func=ui.PLACEMENT_LABELS.get,
                          horizontal=True)
with st.expander("More options"):
    quality = st.radio("Detail", list(ui.QUALITY_LABELS), index=pipeline.QUALITIES.index(pipeline.Options().quality),
                       horizontal=True, format_func=ui.QUALITY_LABELS.get)

if st.button("Create 3D model", type="primary", icon=":material/view_in_ar:"):
    problems = []
    if not uploads:
        problems.append("Add at least one photo of your product.")
    elif len(unusable) == len(uploads):
        problems.append("None of the photos can be used. Please add other photos.")
    size_m = None
    if value:
        try:
            size_m = pipeline.parse_size(f"{value}{unit or 'cm'}")
        except pipeline.PlinthError as error:
            problems.append(str(error))
    for problem in problems:
        st.error(ui.md(problem))
    if not problems:
        files = [(u.name, u.getvalue()) for u in uploads if u.name not in unusable]
        # No texture size: the pipeline picks the quality's own (pipeline.TEXTURE_SIZES).
        options = pipeline.Options(kind=kind, placement=placement, quality=quality or pipeline.Options().quality,
                                   size=pipeline.KnownSize(axis, size_m) if size_m else None)
        try:  # submit checks the server's limits (photo count, bytes, free disk) before writing anything
            new_id = jobs.submit(files, name.strip() or "My product", options, data_dir=data, owner=user.id)
        except jobs.JobRefused as refused:
            st.error(ui.md(refused.message))
            st.stop()
        st.query_params["job"] = new_id
        st.rerun()
