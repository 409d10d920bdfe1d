"""The job panel on the Create page: queue position, stages in plain words, a time estimate,
failure and retry.

While the job may still change, the whole page reruns about every second (a short sleep, then
st.rerun). It used to be an auto-rerunning st.fragment alone, and a fragment the server dropped
in a full rerun at submission ("The fragment with id ... does not exist anymore") left its tab
on "Your model is next in line" for good; a full rerun is never dropped. Only the first run of a
job page in a session finishes normally instead, so the page it replaced (the Create form) is
cleared, and a small auto-rerunning fragment starts the polling from there; it keeps ticking
until one tick gets through, and every full run after it polls by itself.
"""

from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

import pipeline
from webapp import accounts, eta, jobqueue, jobs, library, limits, ui
from webapp.jobs import JobStatus

#: Seconds between two looks at the job record.
POLL_S = 1.0


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
    with st.container(horizontal=True, gap="small"):  # side by side, on phones too
        if st.button("Change the photos and try again", type="primary", icon=":material/add_photo_alternate:"):
            st.switch_page(ui.LIBRARY, query_params={"retry": job_id})  # views/retry.py: leave out, add, start
        st.button("Try again with the same photos", on_click=_retry, args=(job_id, data), icon=":material/refresh:")
        st.button("Start over", on_click=_start_over, icon=":material/add_a_photo:")


def _stages_for(job: jobs.Job) -> list[tuple[str, str]]:
    """(stage id, plain words) for the stages this job goes through, in the pipeline's order."""
    return [(stage, pipeline.STAGE_WORDS[stage]) for stage in pipeline.stages_for(len(job.photos))]


def show(job_id: str, data: Path, user: accounts.User) -> None:
    job = jobs.get_owned(job_id, user, data)  # another merchant's job reads as an unknown one
    if job is None:
        st.title("Create a 3D model")
        st.warning("We could not find this job. It may belong to another Plinth, or the link is incomplete.")
        st.button("Start a new model", on_click=_start_over, type="primary")
        return
    st.title(ui.md(job.name))
    live = _panel(job, job_id, data)
    if not live:
        return
    polling = f"polling-{job_id}"
    if not st.session_state.get(polling):
        st.session_state[polling] = True
        st.session_state["_poll_full_run"] = True
        _start_polling()
        st.session_state["_poll_full_run"] = False
    elif st.context.headers:  # only a browser session has headers: AppTest drives its reruns itself
        time.sleep(POLL_S)
        st.rerun()


@st.fragment(run_every=POLL_S)
def _start_polling() -> None:
    """Its first tick hands over to full-page reruns (the run that drew it has ended normally)."""
    if not st.session_state.get("_poll_full_run"):
        st.rerun(scope="app")


def _panel(job: jobs.Job, job_id: str, data: Path) -> bool:
    """Draw the job; True while it may still change (queued, running, stopping)."""
    done = job.status is JobStatus.DONE and job.share_id
    made = library.get_model(job.share_id, data, trashed=True) if done else None
    if made is not None:  # the Model page is opened by the merchant-side id, never the share id
        st.switch_page(ui.MODEL, query_params={"id": made.model_id})
    if job.status is JobStatus.FAILED:
        st.error(ui.md(job.error or "The model could not be made."), icon=":material/error:")
        _ended(job, job_id, data)
        return False
    if job.status is JobStatus.CANCELLED:
        st.info("You stopped this model." + ("" if job.photos_deleted else " Your photos are kept."))
        _ended(job, job_id, data)
        return False
    if job.status is JobStatus.DONE:  # done without a model: nothing more will come
        st.info("This model is finished.")
        return False
    if job.status is JobStatus.QUEUED:
        ahead = job.position - 1
        wait = ("Your model is next in line." if ahead == 0 else
                f"Waiting for {ahead} other model{'s' if ahead != 1 else ''} to finish first.")
        if jobqueue.no_machine_running():  # models are made on worker machines, and none is up
            wait = ("No machine is making models on this Plinth right now, so yours is waiting. It is kept, "
                    "and starts by itself as soon as one is running.")
        st.info(wait + " You can leave this page: the work continues, and this link brings you back.",
                icon=":material/hourglass_top:")
        st.button("Cancel", on_click=jobs.cancel, args=(job_id, data))
        return True
    stages = _stages_for(job)
    keys = [k for k, _ in stages]
    current = keys.index(job.stage) if job.stage in keys else 0
    count = len(job.photos)
    overall = eta.done_share(job.stage, job.fraction, count) if job.stage in keys else 0.0
    label = dict(stages).get(job.stage, "Starting")
    left = eta.time_left(job.stage, job.fraction, count, time.time() - job.started) if job.started else ""
    with st.container(border=True):
        st.markdown(f"**:material/autorenew: Making your 3D model: {label.lower()}…**")
        st.progress(overall, text=ui.md(job.message or label))  # messages may quote file names
        if left:
            st.markdown(f":material/schedule: {left}")
        lines = []
        for i, (_, words) in enumerate(stages):
            mark = (":green[:material/check_circle:]" if i < current else
                    ":orange[:material/pending:]" if i == current else ":gray[:material/radio_button_unchecked:]")
            lines.append(f"{mark} {words}" if i != current else f"{mark} **{words}**")
        st.markdown("  \n".join(lines))
        st.caption("You can leave or reload this page: the work continues, and this link brings you back.")
    st.button("Stop", on_click=jobs.cancel, args=(job_id, data), icon=":material/stop_circle:")
    return True
