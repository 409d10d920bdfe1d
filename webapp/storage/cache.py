"""The data folder as a cache of the storage, for model folders whose files change in place.

An adjusted model (webapp/adjust.py) gets new files under the same names, so "the file is here"
is not enough: hidden marks in the local model folder (never pushed) hold the revision its files
were fetched at: `.revision` for the public files (fetched one by one, on demand), `.pulled` for
the whole folder. A revision is a tag of the model's row (library.revision_tag): equal tags,
equal files. Only used with a storage configured.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pipeline import atomic_write

REVISION_MARK, PULLED_MARK = ".revision", ".pulled"


def mark(folder: Path, name: str) -> str:
    try:
        return (folder / name).read_text()
    except OSError:
        return ""  # no mark: fetched as made (or made in this folder)


def drop_if_stale(folder: Path, tag: str, names: Iterable[str]) -> None:
    """Delete the local `names` of an older revision than `tag`, so the next read fetches the current ones."""
    if not folder.is_dir() or mark(folder, REVISION_MARK) == tag:
        return
    for name in names:
        (folder / name).unlink(missing_ok=True)
    (folder / PULLED_MARK).unlink(missing_ok=True)
    atomic_write(folder / REVISION_MARK, tag)


def whole(folder: Path, tag: str) -> bool:
    """Whether the local folder holds every file of revision `tag`."""
    return (folder / PULLED_MARK).is_file() and mark(folder, PULLED_MARK) == tag


def set_marks(folder: Path, tag: str) -> None:
    """The local folder holds all files of revision `tag` (pulled whole, or rewritten here)."""
    atomic_write(folder / REVISION_MARK, tag)
    atomic_write(folder / PULLED_MARK, tag)
