"""The Settings page's "Machines" section (the owner only): where models are made, which
`plinth worker` machines are running, and what waits. The same facts `plinth status` prints
(webapp/queue_status.py). The Settings page calls render()."""

from __future__ import annotations

import streamlit as st

from webapp import jobqueue, queue_status, ui
from webapp.jobqueue import Engine


def _ago(seconds: float) -> str:
    return "just now" if seconds < 2 else f"{seconds:.0f} s ago"


def render() -> None:
    st.subheader("Machines")
    try:
        report = queue_status.status(ui.data_dir())
    except jobqueue.QueueUnavailable as error:  # Redis down: say so, the rest of Settings still works
        st.error(ui.md(error.message), icon=":material/error:")
        return
    waiting = sum(1 for j in report.jobs if j.status == "queued")
    running = len(report.jobs) - waiting
    if report.engine is Engine.EMBEDDED:
        st.markdown("Models are made on this server, one at a time per device. "
                    f"Now: {running} being made, {waiting} waiting.")
        st.caption("To make them on other machines (GPU machines too), see docs/deploy.md.")
        return
    st.markdown(f"Models are made by worker machines (the queue is at {ui.md(report.queue_url)}). "
                f"Now: {running} being made, {waiting} waiting.")
    if not report.workers:
        st.warning("No worker machine is running, so new models wait. Start one with `plinth worker` "
                   "on a machine that reaches this queue, the database and the storage.", icon=":material/warning:")
        return
    rows = [{"Machine": w.name, "Kind": "GPU" if w.queue.value == "gpu" else "CPU", "Device": w.device,
             "Host": w.host, "Making": w.job_id or "nothing (ready)", "Last heard": _ago(w.heartbeat_age_s)}
            for w in report.workers]
    st.dataframe(rows, hide_index=True, width="stretch")
