"""What one job may use on this server: upload bytes, photo counts, free disk, time.

No Streamlit import. The upload guard (upload_guard.py), job submission (jobs.py) and the workers
(workers.py) all read these, so the limits the widget shows are the limits the server enforces.
Each can be changed with an environment variable for a bigger or smaller machine.
"""

from __future__ import annotations

import os

import pipeline


def _env_float(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if value > 0 and value == value and value != float("inf") else default


#: One photo file, as uploaded.
MAX_FILE_MB = _env_float("PLINTH_MAX_FILE_MB", 50.0)
#: All photos of one job (and everything one browser session holds at once).
MAX_JOB_MB = _env_float("PLINTH_MAX_JOB_MB", 1000.0)
#: Photos per job: the pipeline's own cap.
MAX_JOB_PHOTOS = pipeline.MAX_PHOTOS
#: Uploads are refused when less than this would be left on the data folder's disk.
MIN_FREE_MB = _env_float("PLINTH_MIN_FREE_MB", 500.0)
#: Failed and cancelled jobs keep their photos (for Try again) this many days, then they are deleted.
KEEP_FAILED_DAYS = _env_float("PLINTH_KEEP_FAILED_DAYS", 7.0)

#: Seconds a job takes, measured on a 2-core CPU without a GPU: 36 photos "balanced" took
#: 160-230 s (about 6.4 s a photo at worst), one photo 5-30 s; 8 photos "fast" 23 s (2.8 s a
#: photo). The estimate rounds these up; the limit is four times it and never under 10 minutes,
#: so only a job that is truly stuck (or a machine far slower than that one) meets it.
_BASE_S = 30.0
_PER_PHOTO_S = {"fast": 4.0, "balanced": 7.0, "high": 14.0}
MIN_JOB_TIME_LIMIT_S = 600.0


def job_time_limit_s(photos: int, quality: str) -> float:
    """Seconds a job of `photos` photos at `quality` may run before it is stopped.

    $PLINTH_JOB_TIME_LIMIT_S, when set, is the limit for every job (operators, tests)."""
    override = _env_float("PLINTH_JOB_TIME_LIMIT_S", 0.0)
    if override:
        return override
    estimate = _BASE_S + _PER_PHOTO_S.get(quality, _PER_PHOTO_S["high"]) * max(1, int(photos))
    return max(MIN_JOB_TIME_LIMIT_S, 4.0 * estimate)
