"""The quality gate's verdict on the Model page: what went wrong, what to re-shoot, and the
merchant's explicit choices for a model that failed (look at it, download it, publish it anyway).

Widgets only: the verdict comes from webapp.verdicts, the choices go to the library and the jobs.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from webapp import jobs, library, routes, ui, verdicts

DOWNLOADS = (
    ("model.glb", "GLB (web, Android, Shopify)"),
    ("model.usdz", "USDZ (iPhone and iPad)"),
    ("model.obj.zip", "OBJ (3D software)"),
    ("poster.png", "Poster image (PNG)"),
)


def _bullets(lines) -> str:
    return "\n".join(f"- {ui.md(line)}" for line in lines)


def _reshoot_line(judgement: verdicts.Judgement, lead: str) -> str:
    if not judgement.reshoot:
        return ""
    return f"\n\n**{lead}** " + ", ".join(ui.md(name) for name in judgement.reshoot)


def banner(model: library.Model) -> None:
    """Above the model: the verdict in plain words (nothing for a model made before the checks)."""
    judgement = model.judgement
    if judgement.failed:
        head = ("**This model failed Plinth's checks, and you chose to publish it anyway.** Customers can "
                "see it at its share link." if model.published_anyway else
                "**This model failed Plinth's checks, so it is not published.** It would show your customers "
                "a wrong copy of your product, so it has no share link, no QR code and no "
                "\u201cView in your room\u201d.")
        body = "\n\n**What went wrong**\n\n" + _bullets(judgement.problems or (
            "The checks found the model does not match your photos.",))
        if judgement.cautions:
            body += "\n\n**Also worth knowing**\n\n" + _bullets(judgement.cautions)
        st.error(head + body + _reshoot_line(judgement, "Take these photos again:"), icon=":material/error:")
    elif judgement.warned:
        body = _bullets(judgement.cautions) if judgement.cautions else ""
        st.warning("**Usable, with warnings.** It is published; read these before you share it.\n\n" + body
                   + _reshoot_line(judgement, "Photos worth taking again:"), icon=":material/warning:")
    elif judgement.checked_good:
        st.success("**Checked: looks right.** Plinth compared the model with your photos and found nothing wrong.",
                   icon=":material/verified:")


def downloads(model: library.Model) -> None:
    for public_name, label in DOWNLOADS:
        path = model.file(public_name)
        if path is None:
            continue
        st.download_button(
            label, data=path.read_bytes, file_name=routes.download_name(model.name, public_name),
            mime=library.PUBLIC_FILES[public_name][1], on_click="ignore", width="stretch",
            icon=":material/download:", key=f"dl-{public_name}",
        )


def failed_choices(model: library.Model, data: Path) -> None:
    """For a failed model that is not published: make it again, look at it, download it, or
    (explicitly) publish it anyway."""
    job = jobs.get_job(model.job_id, data) if model.job_id else None
    a, b, _ = st.columns([1.3, 1.3, 1])
    if a.button("Make it again with new photos", type="primary", icon=":material/add_a_photo:"):
        if job is not None and job.photos:  # views/retry.py: keep the good photos, replace the named ones
            st.switch_page(ui.LIBRARY, query_params={"retry": job.id})
        st.switch_page(ui.CREATE)
    if job is not None and job.photos and b.button("Try again with the same photos", icon=":material/refresh:"):
        try:
            new_id = jobs.retry(job.id, data)
        except jobs.JobRefused as refused:
            st.warning(ui.md(refused.message), icon=":material/info:")
        else:
            st.switch_page(ui.CREATE, query_params={"job": new_id})

    with st.expander("Look at it anyway", icon=":material/visibility:"):
        st.caption("A private preview, only for you. Download the files on purpose if you want to look at "
                   "them in other software; do not put them in your shop as they are.")
        view, side = st.columns([3, 2], gap="large")
        with view:
            st.iframe(f"/preview/{model.share_id}?embed=1", height=420)
        with side:
            downloads(model)

    with st.expander("Publish it anyway", icon=":material/public:"):
        st.markdown("Only if you have looked at it and are sure it shows your product well enough: "
                    "customers will see it at a share link, and Plinth's warning stays on this page.")
        sure = st.checkbox("I have looked at this model and want to publish it, although it failed the checks",
                           key="confirm_publish_anyway")
        if st.button("Publish anyway", disabled=not sure, icon=":material/public:"):
            library.publish_anyway(model.share_id, True, data)
            st.rerun()


def stop_sharing(model: library.Model, data: Path) -> None:
    """For a failed model the merchant published anyway: take the choice back."""
    if st.button("Stop sharing it", icon=":material/public_off:",
                 help="The share link and QR code stop working at once; the model stays in your library."):
        library.publish_anyway(model.share_id, False, data)
        st.rerun()


def details(model: library.Model) -> str:
    """The checks line for the Details list."""
    judgement = model.judgement
    if not judgement.checks:
        return "- Quality checks: none ran on this model (it was made before Plinth checked its models)"
    passed = judgement.checks - judgement.failed_checks - judgement.warned_checks
    return f"- Quality checks: {passed} passed, {judgement.warned_checks} warned, {judgement.failed_checks} failed"
