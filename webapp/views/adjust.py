"""The Model page's "Adjust" section: turn, stand up or lay down, resize, floor or wall, the poster
angle and the viewer's backdrop, with a live preview. Widgets only: the preview and the new files
come from webapp/adjust.py, which calls the pipeline (no geometry here)."""

from __future__ import annotations

import json
from pathlib import Path

import streamlit as st

import pipeline
from pipeline import Adjustment, KnownSize, Tip
from webapp import adjust, library, ui

#: Which of its sides (as made, seen from the front) faces the customer, by quarter turns.
FRONT_LABELS = {0: "The front, as made", 3: "Its right side", 2: "Its back", 1: "Its left side"}
TIP_LABELS = {
    Tip.NONE: "Its bottom, as made",
    Tip.BACK: "Its back (lay it down, face up)",
    Tip.FRONT: "Its front (lay it down, face down)",
    Tip.LEFT: "Its left side",
    Tip.RIGHT: "Its right side",
    Tip.TOP: "Its top (turn it upside down)",
}
SIDES = {"height": "Height", "width": "Width", "depth": "Depth"}
_AXIS = {"width": 0, "height": 1, "depth": 2}


@st.cache_data(show_spinner=False, max_entries=32)
def _preview(glb: str, stamp: float, wanted: str, _model: library.Model) -> pipeline.AdjustPreview:
    """Cached per source file (path and time) and adjustment (its JSON)."""
    return adjust.preview(_model, Adjustment.from_dict(json.loads(wanted)), size=360)


def section(model: library.Model, data: Path) -> None:
    """Only for a shared model: one that failed its checks needs new photos, not a turn, and its
    3D view opens only on purpose (views/quality.py)."""
    if not model.shared:
        return
    sid = model.share_id
    stored = adjust.current(model)
    k = lambda name: f"adjust:{name}:{sid}"  # noqa: E731 - widget keys of this model
    state = st.session_state
    state.setdefault(k("front"), stored.quarter_turns)

    def turn(by: int) -> None:
        state[k("front")] = (state[k("front")] + by) % 4

    with st.container(key="adjust_section"):
        st.subheader("Adjust the model")
        with st.expander("Turn it, set its size, choose the poster and background", icon=":material/tune:"):
            st.caption("Fix how the model stands, faces and measures. Your share link and QR code stay the same.")
            controls, look = st.columns([3, 2], gap="large")
            with controls:
                st.markdown("**Turn it**")
                with st.container(horizontal=True, gap="small", key=k("turns")):
                    st.button("Turn a quarter to the left", icon=":material/rotate_left:", key=k("left"),
                              on_click=turn, args=(-1,))
                    st.button("Turn a quarter to the right", icon=":material/rotate_right:", key=k("right"),
                              on_click=turn, args=(1,))
                quarters = st.radio("Which side is the front?", list(FRONT_LABELS), key=k("front"),
                                    format_func=FRONT_LABELS.get, horizontal=True)
                fine = st.slider("Fine turn (degrees)", -45, 45, int(round(stored.turn_deg)), key=k("fine"),
                                 help="Turn it a little, for a front that is not quite square to the camera.")
                tip = st.selectbox("Which side does it stand on?", list(TIP_LABELS), key=k("tip"),
                                   index=list(TIP_LABELS).index(stored.tip), format_func=TIP_LABELS.get,
                                   help="For a model that came out lying down, or one that should lie flat.")
                placement = st.radio("Where does it go?", list(ui.PLACEMENT_LABELS), key=k("place"),
                                     index=list(ui.PLACEMENT_LABELS).index(stored.placement),
                                     format_func=ui.PLACEMENT_LABELS.get, horizontal=True)
                size, problem = _size_inputs(model, stored, k)
                st.markdown("**Poster and background**")
                yaw = st.slider("Poster angle: around the item (degrees)", -180, 180, int(round(stored.poster_yaw_deg)),
                                key=k("yaw"),
                                help="0 looks straight at the front. Shops and messages show this picture.")
                lo, hi = (int(v) for v in pipeline.POSTER_PITCH_RANGE)
                pitch = st.slider("Poster angle: from above (degrees)", lo, hi, int(round(stored.poster_pitch_deg)),
                                  key=k("pitch"))
                keys = list(adjust.BACKGROUNDS)
                backdrop = st.selectbox("Background", keys, key=k("bg"),
                                        format_func=lambda b: adjust.BACKGROUNDS[b].label,
                                        index=keys.index(model.background) if model.background in keys else 0)
            wanted = Adjustment(tip=tip, quarter_turns=quarters, turn_deg=float(fine), size=size, placement=placement,
                                poster_yaw_deg=float(yaw), poster_pitch_deg=float(pitch),
                                background=adjust.BACKGROUNDS[backdrop].rgb)
            changed = wanted != stored or backdrop != model.background
            with look:
                try:
                    glb = adjust.source(model)
                    shown = _preview(str(glb), glb.stat().st_mtime, _json(wanted), model)
                    st.image(shown.image, caption="Preview of the poster with your changes", width="stretch")
                    st.markdown(f"**New size:** {ui.md(pipeline.format_dimensions(shown.dimensions_m))}")
                except pipeline.PlinthError as error:
                    problem = problem or error.message
                if problem:
                    st.error(ui.md(problem), icon=":material/error:")
                if state.get(k("saved")):
                    st.success(state.pop(k("saved")), icon=":material/check_circle:")
                if st.button("Apply changes", type="primary", icon=":material/check:", key=k("apply"),
                             disabled=bool(problem) or not changed, width="stretch"):
                    _save(lambda: adjust.adjust(sid, wanted, data, background=backdrop), sid, state, k,
                          "Saving your changes to every file…",
                          "Saved. Your share link and QR code show the new version.")
                if st.button("Undo all changes", icon=":material/undo:", key=k("undo"), width="stretch",
                             disabled=not model.adjustment and not model.background):
                    _save(lambda: adjust.reset(sid, data), sid, state, k,
                          "Putting back the model as it was made…", "Back to the model as it was made.")


def _size_inputs(model, stored: Adjustment, k) -> tuple[KnownSize | None, str]:
    """The one size the merchant knows (the others follow): (the size to apply, or None for the
    size as made; a problem in plain words, or ""). Left as shown, the stored choice stands."""
    st.markdown("**Set the size**")
    axes = list(SIDES)
    axis = st.radio("Which side do you know?", axes, key=k("axis"), format_func=SIDES.get, horizontal=True,
                    index=axes.index(stored.size.axis) if stored.size else 0)
    mine = stored.size is not None and stored.size.axis == axis
    shown = f"{(stored.size.metres if mine else model.dimensions_m[_AXIS[axis]]) * 100:.1f} cm"
    text = st.text_input(SIDES[axis], value=shown, key=k(f"size-{axis}"),
                         help="Type it with a unit, like 85 cm, 0.85 m or 33.5 in. The other sides follow.")
    if text.strip() == shown:
        return stored.size, ""
    try:
        return KnownSize(axis, pipeline.parse_size(text, default_unit="cm")), ""
    except pipeline.InputError as error:
        return stored.size, error.message


def _json(a: Adjustment) -> str:
    return json.dumps(a.to_dict(), sort_keys=True)


def _forget(sid: str) -> None:
    """Drop this model's widget values, so the section shows what was saved."""
    for name in [n for n in st.session_state if isinstance(n, str) and n.startswith("adjust:") and n.endswith(sid)]:
        del st.session_state[name]


def _save(action, sid: str, state, k, doing: str, done: str) -> None:
    """Run one file-rewriting action (Apply or Undo) under a spinner: its plain message on failure,
    else the saved note and a fresh page."""
    with st.spinner(doing):
        try:
            action()
        except adjust.AdjustError as error:
            st.error(ui.md(error.message), icon=":material/error:")
            return
    _forget(sid)
    state[k("saved")] = done
    st.rerun()
