"""The job panel on the Create page: queue position, stages in plain words, failure and retry."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

import pipeline
from webapp import jobs, limits, ui
from webapp.jobs import JobStatus


def _start_over() -> None:
    st.query_params.clear()


def _retry(job_id: str, data: Path) -> None:
    try:
        new_id = jobs.retry(job_id, data)
    except jobs.JobRefused as refused:  # photos past retention, a limit, or a full disk
        st.session_state["retry_refused"] = refused.message
        return
    if new_id:
        st.query_params["job"] = new_id


def _ended(job: jobs.Job, job_id: str, data: Path) -> None:
    """Try again (while the photos are kept) and Start over, under a failed or stopped job."""
    refused = st.session_state.pop("retry_refused", "")
    if refused:
        st.warning(ui.md(refused), icon=":material/info:")
    if job.photos_deleted:  # nothing to try again with: say why, and offer the one way on
        st.caption(ui.md(jobs.PHOTOS_DELETED_MESSAGE.format(days=f"{limits.KEEP_FAILED_DAYS:g}")))
        st.button("Start over", on_click=_start_over, type="primary", icon=":material/add_a_photo:")
        return
    if st.button("Change the photos and try again", type="primary", icon=":material/add_photo_alternate:"):
        st.switch_page(ui.LIBRARY, query_params={"retry": job_id})  # views/retry.py: leave out, add, start
    a, b, _ = st.columns([1, 1, 3])
    a.button("Try again", on_click=_retry, args=(job_id, data), type="primary", icon=":material/refresh:")
    b.button("Start over", on_click=_start_over, icon=":material/add_a_photo:")


def _stages_for(job: jobs.Job) -> list[tuple[str, str]]:
    """(stage id, plain words) for the stages this job goes through, in the pipeline's order."""
    return [(stage, pipeline.STAGE_WORDS[stage]) for stage in pipeline.stages_for(len(job.photos))]


def show(job_id: str, data: Path) -> None:
    job = jobs.get_job(job_id, data)
    if job is None:
        st.title("Create a 3D model")
        st.warning("We could not find this job. It may belong to another Plinth, or the link is incomplete.")
        st.button("Start a new model", on_click=_start_over, type="primary")
        return
    st.title(ui.md(job.name))
    _panel(job_id, data)


@st.fragment(run_every=1.0)
def _panel(job_id: str, data: Path) -> None:
    job = jobs.get_job(job_id, data)
    if job is None:
        return
    if job.status is JobStatus.DONE and job.share_id:
        st.switch_page(ui.MODEL, query_params={"id": job.share_id})
    if job.status is JobStatus.FAILED:
        st.error(ui.md(job.error or "The model could not be made."), icon=":material/error:")
        _ended(job, job_id, data)
        return
    if job.status is JobStatus.CANCELLED:
        st.info("You stopped this model." + ("" if job.photos_deleted else " Your photos are kept."))
        _ended(job, job_id, data)
        return
    if job.status is JobStatus.QUEUED:
        ahead = job.position - 1
        st.info(
            "Your model is next in line." if ahead == 0 else
            f"Waiting for {ahead} other model{'s' if ahead != 1 else ''} to finish first. "
            "You can leave this page: the work continues, and this link brings you back.",
            icon=":material/hourglass_top:",
        )
        st.button("Cancel", on_click=jobs.cancel, args=(job_id, data))
        return
    stages = _stages_for(job)
    keys = [k for k, _ in stages]
    current = keys.index(job.stage) if job.stage in keys else 0
    overall = min(1.0, (current + max(0.0, min(1.0, job.fraction))) / len(stages))
    label = dict(stages).get(job.stage, "Starting")
    with st.container(border=True):
        st.markdown(f"**:material/autorenew: Making your 3D model: {label.lower()}…**")
        st.progress(overall, text=ui.md(job.message or label))  # messages may quote file names
        lines = []
        for i, (_, words) in enumerate(stages):
            mark = (":green[:material/check_circle:]" if i < current else
                    ":orange[:material/pending:]" if i == current else ":gray[:material/radio_button_unchecked:]")
            lines.append(f"{mark} {words}" if i != current else f"{mark} **{words}**")
        st.markdown("  \n".join(lines))
        st.caption("You can leave or reload this page: the work continues, and this link brings you back.")
    st.button("Stop", on_click=jobs.cancel, args=(job_id, data), icon=":material/stop_circle:")
