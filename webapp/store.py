"""The SQLite database beside the data folder: one file, WAL mode, a short connection per call.

Tables:
* models: published models. `share_id` is the public, unguessable id; `folder` is the private
  folder name under data/models/ (random too, and never shown).
* jobs: queued, running and finished reconstructions, with live progress.
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

DB_NAME = "plinth.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS models (
    share_id   TEXT PRIMARY KEY,
    folder     TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    placement  TEXT NOT NULL DEFAULT 'floor',
    created    REAL NOT NULL,
    width_m    REAL NOT NULL,
    height_m   REAL NOT NULL,
    depth_m    REAL NOT NULL,
    glb_bytes  INTEGER NOT NULL DEFAULT 0,
    triangles  INTEGER NOT NULL DEFAULT 0,
    kind       TEXT NOT NULL DEFAULT '',
    report     TEXT NOT NULL DEFAULT '{}',
    job_id     TEXT
);
CREATE TABLE IF NOT EXISTS jobs (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    status     TEXT NOT NULL,          -- queued | running | cancelling | done | failed | cancelled
    created    REAL NOT NULL,
    started    REAL,
    finished   REAL,
    name       TEXT NOT NULL,
    options    TEXT NOT NULL,          -- JSON: pipeline.Options.to_dict() (older rows: kind, placement,
                                       -- size_axis, size_m, quality, texture_size; both are read)
    photo_dir  TEXT NOT NULL,
    stage      TEXT NOT NULL DEFAULT '',
    fraction   REAL NOT NULL DEFAULT 0,
    message    TEXT NOT NULL DEFAULT '',
    error      TEXT NOT NULL DEFAULT '',
    share_id   TEXT,
    device     TEXT,
    pid        INTEGER
);
"""


_READY: set[str] = set()


def db_path(data: Path) -> Path:
    return data / DB_NAME


@contextmanager
def connect(data: Path) -> Iterator[sqlite3.Connection]:
    """A connection that commits on success; WAL lets the UI read while a job writes progress."""
    con = sqlite3.connect(db_path(data), timeout=15.0, isolation_level=None)
    con.row_factory = sqlite3.Row
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA busy_timeout=15000")
        key = str(db_path(data))
        if key not in _READY:
            con.executescript(_SCHEMA)
            _READY.add(key)
        yield con
    finally:
        con.close()
