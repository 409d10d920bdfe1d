"""One server per data folder: an exclusive `flock` on data/server.lock, held for the server's life.

    held = lock.acquire(data, url="http://localhost:8501")   # raises lock.Busy when another holds it
    ...
    held.release()

The kernel drops the lock when the process dies (even by kill -9), so a stale lock file never
blocks a restart. `plinth doctor --repair` and `plinth restore` take the same lock, so they never
change a data folder under a running server. Job child processes do not inherit it (Python opens
files non-inheritable), so a leftover child cannot keep a new server out.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path

LOCK_NAME = "server.lock"


class Busy(Exception):
    """Another process holds the data folder's lock; `owner` is what it wrote there (pid, url, what)."""

    def __init__(self, data: Path, owner: dict):
        self.data, self.owner = data, owner
        super().__init__(self.message())

    def message(self) -> str:
        what = self.owner.get("what") or "server"
        pid = self.owner.get("pid")
        url = self.owner.get("url")
        who = ", ".join(str(x) for x in (f"pid {pid}" if pid else None, url) if x)
        who = f" ({who})" if who else ""
        if what == "server":
            return (f"Another Plinth server{who} is already using the data folder {self.data}. "
                    "Stop it first, or set PLINTH_DATA_DIR to another folder.")
        return f"A Plinth {what}{who} is using the data folder {self.data}. Wait until it finishes."


@dataclass
class Held:
    path: Path
    handle: object

    def release(self) -> None:
        try:
            self.handle.close()  # closing the file drops the flock
        except OSError:
            pass


def acquire(data: Path, url: str | None = None, what: str = "server") -> Held:
    """Take data/server.lock exclusively, without waiting; record who holds it. Raises Busy."""
    path = Path(data) / LOCK_NAME
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = _read(handle)
        handle.close()
        raise Busy(Path(data), owner) from None
    # Rewritten in place under the lock: a reader sees the old holder's words or ours, never a mix.
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps({"pid": os.getpid(), "url": url, "what": what}))
    handle.flush()
    return Held(path, handle)


def holder(data: Path) -> dict | None:
    """Who holds the lock ({pid, url, what}), or None when nobody does. Takes nothing."""
    path = Path(data) / LOCK_NAME
    if not path.exists():
        return None
    try:
        held = acquire(data, what="check")
    except Busy as busy:
        return busy.owner
    except OSError:
        return None
    held.release()
    return None


def _read(handle) -> dict:
    try:
        handle.seek(0)
        owner = json.loads(handle.read() or "{}")
        return owner if isinstance(owner, dict) else {}
    except (OSError, ValueError):
        return {}
