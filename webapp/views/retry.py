"""Try again with changes (the Library's ?retry=<job id>): the kept photos with their own file
names, leave some out, add new ones (checked as on the Create page), start a new job. The old
job's photos stay as they are until the new job is accepted, so a refused try loses nothing."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from webapp import accounts, jobs, library, limits, photo_check, ui

UPLOAD_TYPES = ["jpg", "jpeg", "png", "webp", "heic", "heif"]


@st.cache_data(show_spinner=False, max_entries=200)
def _check(filename: str, content: bytes) -> photo_check.PhotoCheck:
    return photo_check.check_upload(filename, content)


def _named_by_checks(job: jobs.Job, data: Path) -> set[str]:
    """The photos the quality checks asked to take again, when the job made a model that failed them."""
    model = library.get_model(job.share_id, data) if job.share_id else None
    return {str(name) for name in (model.report.get("reshoot") or ())} if model else set()


def _back() -> None:
    st.query_params.pop("retry", None)


def show(job_id: str, data: Path, user: accounts.User) -> None:
    job = jobs.get_owned(job_id, user, data)  # another merchant's job: as if its photos were gone
    if job is None or not job.photos or not job.status.finished:
        st.title("Try again")
        st.info("These photos are no longer here: they were deleted, or this model was already made again. "
                "Your library shows what is left.")
        st.button("Back to the library", on_click=_back, icon=":material/arrow_back:")
        return
    st.title(f"Try again: {ui.md(job.name)}")
    flagged = _named_by_checks(job, data)
    if job.error:
        st.error(ui.md(job.error), icon=":material/error:")
    elif flagged:
        st.error("This model failed Plinth's checks. The photos the checks named are marked to leave out.",
                 icon=":material/error:")
    st.markdown("Leave out photos that are blurred or show something else, add new ones, then make the model "
                "again. The first photo is used as the front.")

    named = job.named_photos
    st.subheader("Your photos")
    removed = set()
    tiles = ui.tile_row(len(named), width=160, border=True, keys=[f"kept-{i}" for i in range(len(named))])
    for i, (cell, (path, name)) in enumerate(zip(tiles, named)):
        with cell:
            thumb = ui.photo_thumbnail(path)
            if thumb:
                st.image(thumb, width="stretch")
            st.caption(ui.md(name))
            named_by_checks = path.name in flagged or name in flagged
            if named_by_checks:
                st.markdown(":orange[:material/warning: Take this one again]")
            if st.checkbox("Leave out", value=named_by_checks, key=f"leave-{job_id}-{i}"):
                removed.add(i)

    st.subheader("Add photos")
    uploads = st.file_uploader("New photos of the product", type=UPLOAD_TYPES, accept_multiple_files=True,
                               max_upload_size=int(limits.MAX_FILE_MB), help=ui.upload_limits_help(),
                               key=f"add-{job_id}") or []
    added = []
    for cell, upload in zip(ui.tile_row(len(uploads), width=160, border=True), uploads):
        check = _check(upload.name, upload.getvalue())
        with cell:
            if check.thumbnail:
                st.image(check.thumbnail, width="stretch")
            st.caption(ui.md(upload.name))
            if check.error:
                st.error(ui.md(check.error), icon=":material/block:")
            else:
                added.append((upload.name, upload.getvalue()))
            for warning in check.warnings:
                st.warning(ui.md(warning), icon=":material/info:")

    total = len(named) - len(removed) + len(added)
    st.caption(f"The new model will use {total} photo{'s' if total != 1 else ''}.")
    with st.container(horizontal=True, gap="small"):
        start = st.button("Make the model again", type="primary", icon=":material/view_in_ar:")
        st.button("Back to the library", on_click=_back, icon=":material/arrow_back:")
    if start:
        try:  # the same limits as a new upload, checked before anything is written
            new_id = jobs.retry(job_id, data, remove=removed, add=added)
        except jobs.JobRefused as refused:
            st.error(ui.md(refused.message), icon=":material/block:")
            return
        st.switch_page(ui.CREATE, query_params={"job": new_id})
