"""What a job may be given: photo uploads checked against the server's limits before a byte is
written. No Streamlit import. `jobs` re-exports these (jobs.JobRefused, jobs.check_upload).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import pipeline

from . import limits


class JobRefused(Exception):
    """A job that cannot be accepted (too many or too big photos, a full disk, photos gone).

    `message` is one plain line for the merchant; nothing was written."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def safe_suffix(filename: str) -> str:
    suffix = Path(filename).suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,5}", suffix) else ".img"


def check_upload(sizes: Sequence[int], data: Path) -> None:
    """Raise JobRefused unless photos of these sizes (bytes) may become one job on this server."""
    mb = 1024 * 1024
    if not sizes:
        raise JobRefused("Add at least one photo of the product.")
    if len(sizes) > limits.MAX_JOB_PHOTOS:
        raise JobRefused(f"{len(sizes)} photos is more than the {limits.MAX_JOB_PHOTOS} one model can use. "
                         f"Pick the best {limits.MAX_JOB_PHOTOS} or fewer (20 to 80 is plenty).")
    biggest = max(sizes)
    if biggest > limits.MAX_FILE_MB * mb:
        raise JobRefused(f"One photo is {biggest / mb:.0f} MB; each may be at most {limits.MAX_FILE_MB:.0f} MB. "
                         "Use a smaller copy of it.")
    total = sum(sizes)
    if total > limits.MAX_JOB_MB * mb:
        raise JobRefused(f"These photos add up to {total / mb:.0f} MB; one model may use at most "
                         f"{limits.MAX_JOB_MB:.0f} MB. Use fewer or smaller photos.")
    free = shutil.disk_usage(data).free
    if free < limits.MIN_FREE_MB * mb + total:
        raise JobRefused("The server's disk is almost full, so it cannot take these photos now. "
                         "Ask whoever runs it to free some space, then try again.")


def check_request(files, options) -> None:
    """JobRefused for what a caller (the page, later the HTTP API) may get wrong: not (name, bytes)
    pairs, or options the pipeline would refuse. Checked before a byte is written."""
    check_files(files)
    if not isinstance(options, pipeline.Options):
        raise JobRefused("The model's settings are missing.")
    try:
        options.check()
    except pipeline.InputError as error:
        raise JobRefused(error.message) from None


def check_files(files) -> None:
    """JobRefused unless `files` is a list of (name, non-empty bytes) pairs."""
    if isinstance(files, (str, bytes)) or not isinstance(files, Sequence):
        raise JobRefused("The photos must be a list of files.")
    for i, item in enumerate(files):
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)
                and isinstance(item[1], (bytes, bytearray))):
            raise JobRefused(f"Photo {i + 1} is not a file upload (a name and its bytes).")
        if not item[1]:
            raise JobRefused(f"The photo '{item[0][:80]}' is empty (0 bytes). Add it again or pick another one.")
