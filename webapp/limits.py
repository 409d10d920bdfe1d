"""What one job may use on this server: upload bytes, photo counts, free disk, time.

No Streamlit import. The upload guard (routes.py), job submission (jobs.py) and the workers
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
