"""How long a running job has left, in plain words, from its stage, the stage's fraction and
the time it has run. No Streamlit import (tested directly)."""

from __future__ import annotations

import pipeline

#: Before this much of the job (or this many seconds) an estimate is a guess: none is shown.
MIN_DONE = 0.03
MIN_ELAPSED_S = 5.0


def done_share(stage: str, fraction: float, photo_count: int) -> float:
    """How much of the whole job is done (0..1), weighting each stage by its usual share of the time."""
    shares = pipeline.stage_shares(photo_count)
    if stage not in shares:
        return 0.0
    before = 0.0
    for name, share in shares.items():
        if name == stage:
            return min(1.0, before + share * max(0.0, min(1.0, fraction)))
        before += share
    return before


def seconds_left(stage: str, fraction: float, photo_count: int, elapsed_s: float) -> float | None:
    """The remaining seconds if the rest goes at the pace so far; None while it is too early to tell."""
    done = done_share(stage, fraction, photo_count)
    if done < MIN_DONE or elapsed_s < MIN_ELAPSED_S:
        return None
    return elapsed_s * (1.0 - done) / done


def time_left(stage: str, fraction: float, photo_count: int, elapsed_s: float) -> str:
    """"About 2 minutes left", "Less than a minute left", or "" while it is too early to tell."""
    left = seconds_left(stage, fraction, photo_count, elapsed_s)
    if left is None:
        return ""
    if left < 45:
        return "Less than a minute left"
    if left < 90:
        return "About a minute left"
    minutes = round(left / 60)
    if minutes < 90:
        return f"About {minutes} minutes left"
    return f"About {round(left / 3600)} hour{'s' if left >= 5400 else ''} left"
