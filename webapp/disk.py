"""Is this error the disk running out of space? One answer for the library, the jobs and backups.

No Streamlit import. Used where a write may fail, so that the merchant reads "the server's disk
is full" instead of "something went wrong", and nothing else is mistaken for it.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

#: No space, no quota left, or a file-size limit (RLIMIT_FSIZE): the kernel refuses the write itself.
FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def is_full(error: BaseException | None, data: Path | None = None) -> bool:
    """True when `error`, or an error it came from, is the disk refusing a write for lack of space.

    SQLite says SQLITE_FULL for some of these and only "disk I/O error" for others; for the
    latter, when `data` is given, a small probe write there tells whether space is the cause."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in FULL_ERRNOS:
            return True
        code = getattr(error, "sqlite_errorcode", None) if isinstance(error, sqlite3.Error) else None
        if code is not None and code & 0xFF == sqlite3.SQLITE_FULL:
            return True
        if code is not None and code & 0xFF == sqlite3.SQLITE_IOERR and data is not None:
            return _probe_full(data)
        error = error.__cause__ or error.__context__
    return False


def _probe_full(data: Path) -> bool:
    probe = data / f".space-probe-{os.getpid()}.tmp"
    try:
        with open(probe, "wb") as fh:
            fh.write(b"\0" * 65536)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as error:
        return error.errno in FULL_ERRNOS
    finally:
        probe.unlink(missing_ok=True)
    return False
