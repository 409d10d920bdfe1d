"""The one way Plinth writes a file: a temporary file in the same folder, fsync, atomic rename.

A reader (the web server, a phone downloading the model) never sees half a file, and a failed
write (a full disk, an interrupt) leaves the old file and no temporary one behind.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write(path: str | os.PathLike, data: bytes | str, mode: int = 0o644) -> Path:
    """Write `data` (str is UTF-8 encoded) to `path` atomically; returns the path.

    `mode` is the permission of the new file: mkstemp makes 0600, web servers need to read it.
    """
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
