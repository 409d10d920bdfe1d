"""The Library's job sections: "In progress" (live, each linking to its progress page) and
"Needs attention" (failed and stopped jobs with their kept photos, Try again with changes,
Delete these photos)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

import pipeline
from webapp import job_photos, jobs, limits, ui
from webapp.jobs import JobStatus

#: Thumbnails shown per job in "Needs attention" (the rest are counted).
STRIP = 6


def photo_strip(job: jobs.Job, limit: int = STRIP) -> None:
    """The job's kept photos as small thumbnails with the merchant's own file names."""
    named = job.named_photos
    for cell, (path, name) in zip(ui.tile_row(min(len(named), limit), width=110), named[:limit]):
        thumb = ui.photo_thumbnail(path, 240)
        with cell:
            if thumb:
                st.image(thumb, width="stretch")
            st.caption(ui.md(name))
    if len(named) > limit:
        st.caption(f"and {len(named) - limit} more")


def _stage_words(job: jobs.Job) -> str:
    if job.status is JobStatus.QUEUED:
        return ("Next in line" if job.position <= 1 else
                f"Waiting for {job.position - 1} other model{'s' if job.position != 2 else ''} to finish first")
    if job.status is JobStatus.CANCELLING:
        return "Stopping"
    return pipeline.STAGE_WORDS.get(job.stage, "Starting")


def _whose(job: jobs.Job, whose: dict[str, str] | None) -> None:
    """In the owner's view of everyone's jobs: the merchant each job is for."""
    if whose is not None:
        st.caption(f":material/person: {ui.md(whose.get(job.owner, 'No account'))}")


def in_progress(data: Path, owner: str | None, whose: dict[str, str] | None = None) -> bool:
    """Live: a job that finishes reruns the whole page, so its model appears in the library.
    Only `owner`'s jobs (a users.id; None: everyone's, each named from `whose`). True when there
    was something to show."""
    shown = tuple(j.id for j in jobs.list_jobs(jobs.ACTIVE, data, owner=owner))
    _live(data, shown, owner, whose)
    return bool(shown)


@st.fragment(run_every=2.0)
def _live(data: Path, shown: tuple[str, ...], owner: str | None, whose: dict[str, str] | None) -> None:
    active = jobs.list_jobs(jobs.ACTIVE, data, owner=owner)
    if tuple(j.id for j in active) != shown:
        st.rerun()  # one started or finished: the sections and the models change
    if not active:
        return
    st.subheader("In progress")
    for job in active:
        with st.container(border=True, key=f"job-{job.id}"):
            words = _stage_words(job)
            st.markdown(f"**{ui.md(job.name)}**  \n:material/autorenew: {words}")
            _whose(job, whose)
            if job.status is JobStatus.RUNNING:
                st.progress(max(0.0, min(1.0, job.fraction)), text=ui.md(job.message or words))
            if st.button("Follow it", key=f"follow-{job.id}", icon=":material/visibility:"):
                st.switch_page(ui.CREATE, query_params={"job": job.id})


def _discard(job_id: str, data: Path) -> None:
    if job_photos.discard(job_id, data):
        st.toast("The photos were deleted.", icon=":material/delete:")


def needs_attention(data: Path, owner: str | None, whose: dict[str, str] | None = None) -> bool:
    waiting = jobs.needing_attention(data, owner=owner)
    if not waiting:
        return False
    st.subheader("Needs attention")
    st.caption(f"These models could not be made. Their photos are kept for {limits.KEEP_FAILED_DAYS:g} days, "
               "so you can add better ones, leave some out and try again.")
    for job in waiting:
        with st.container(border=True, key=f"attention-{job.id}"):
            stopped = job.status is JobStatus.CANCELLED
            st.markdown(f"**{ui.md(job.name)}**  \n"
                        + (":gray[:material/stop_circle:] You stopped it" if stopped else
                           ":red[:material/error:] It could not be made")
                        + f" · {ui.when(job.finished or job.created)}")
            _whose(job, whose)
            if not stopped:
                st.markdown(ui.md(job.error or "The model could not be made."))
            photo_strip(job)
            with st.container(horizontal=True, gap="small"):
                if st.button("Try again with changes", key=f"retry-{job.id}", type="primary",
                             icon=":material/refresh:"):
                    st.query_params["retry"] = job.id
                    st.rerun()
                with st.popover("Delete these photos", icon=":material/delete:"):
                    st.markdown(f"Delete the {len(job.photos)} photo{'s' if len(job.photos) != 1 else ''} "
                                "of this model? This cannot be undone.")
                    sure = st.checkbox("Yes, delete these photos", key=f"sure-job-{job.id}")
                    st.button("Delete photos", key=f"discard-{job.id}", disabled=not sure, on_click=_discard,
                              args=(job.id, data), icon=":material/delete:")
    return True
