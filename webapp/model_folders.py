"""A model folder's life: made whole (add_model, publish), deleted for good (delete_model), and the
leftovers of a crash cleaned at start-up (remove_orphans). No Streamlit import.

The write side of webapp/library.py, kept apart from the reads and the one-column changes there
because these are the steps that must be atomic across the folder, the storage and the database:
a model's files and manifest are renamed into place (and pushed to the shared storage) before its
row exists, and a deleted model's folder is renamed away before its row goes, so neither a crash
nor a rebuild from the manifests (store.open_library) ever shows half a model.

    url = publish(result, name="Oak chair", photos=[Path("chair.jpg")], placement="floor")
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import sqlite3
import time
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Sequence

from pipeline import Result, Verdict, atomic_write

from . import disk, sanitize, settings, storage, store
from .library import (DISK_FULL, NOT_PUBLISHED, TEMP_PREFIXES, LibraryError, Model, clean_name, new_model_id,
                      new_share_id, row_to_model, share_url)

_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")

log = logging.getLogger("plinth.library")


def publish(
    result: Result,
    name: str,
    photos: Sequence[str | os.PathLike],
    placement: str = "floor",
    data_dir: str | os.PathLike | None = None,
    owner: str = "",
) -> str:
    """Add a `pipeline.reconstruct` result to the library and return its share URL.

    A result whose verdict is "failed" is never published this way: LibraryError(NOT_PUBLISHED),
    nothing written (the web app keeps such a model privately with add_model)."""
    if result.report.verdict is Verdict.FAILED:
        raise LibraryError(NOT_PUBLISHED)
    model = add_model(result, name, photos, placement, data_dir=data_dir, owner=owner)
    return share_url(model.share_id, data_dir=data_dir)


def add_model(
    result: Result,
    name: str,
    photos: Sequence[str | os.PathLike],
    placement: str = "floor",
    data_dir: str | os.PathLike | None = None,
    job_id: str | None = None,
    owner: str = "",
) -> Model:
    """Copy the result's files (metadata stripped) into a new folder, then register it.

    Atomic: files and the manifest go to a hidden temporary folder that is renamed into place
    before the database row exists, so the server never sees a half-written model and a lost
    row can be rebuilt. Earlier models are never touched. A model whose verdict is "failed" is
    stored privately: `Model.shared` is False until `publish_anyway`. A full disk raises LibraryError
    (DISK_FULL) and leaves no folder behind. Photos are copied without location metadata.
    """
    data = settings.data_dir(data_dir)
    models_dir = data / "models"
    exports = result.exports
    folder_name = secrets.token_hex(16)
    tmp = models_dir / f"{TEMP_PREFIXES[0]}{folder_name}"
    final = models_dir / folder_name
    width, height, depth = (float(v) for v in result.report.dimensions_m)
    report = _report_dict(result.report)
    row = {
        "share_id": new_share_id(), "folder": folder_name, "name": clean_name(name),
        "placement": placement if placement in ("floor", "wall") else "floor", "created": time.time(),
        "width_m": width, "height_m": height, "depth_m": depth, "glb_bytes": 0,
        "triangles": int(result.report.triangles), "kind": str(result.report.kind),
        "report": json.dumps(report), "job_id": job_id, "published_anyway": 0, "adjustment": "", "background": "",
        "deleted_at": None, "product_url": "", "expires": None, "owner": owner, "model_id": new_model_id(),
    }
    try:
        store.open_library(data)  # checked before our folder appears, so it is not "found" as unregistered
        models_dir.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
        try:
            _fill(tmp, exports, report, photos)
            row["glb_bytes"] = (tmp / "model.glb").stat().st_size
            store.write_manifest(tmp, row)
            _fsync_tree(tmp)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        try:  # in the storage before the row exists, manifest last (storage.push): like the rename above
            storage.push(data, f"models/{folder_name}")
        except BaseException:
            shutil.rmtree(final, ignore_errors=True)
            _forget_stored(data, f"models/{folder_name}")
            raise
        try:
            with store.connect(data) as con:
                store.register(con, row)
        except BaseException:
            shutil.rmtree(final, ignore_errors=True)  # no row, no folder: nothing half-published
            _forget_stored(data, f"models/{folder_name}")
            raise
    except (OSError, sqlite3.OperationalError) as error:
        if disk.is_full(error, data):
            raise LibraryError(DISK_FULL) from error
        raise
    return row_to_model(data, row)


def _fill(tmp: Path, exports, report: dict[str, Any], photos: Sequence[str | os.PathLike]) -> None:
    sanitize.clean_glb(Path(exports.glb), tmp / "model.glb")
    sanitize.clean_usdz(Path(exports.usdz), tmp / "model.usdz")
    shutil.copyfile(exports.obj_zip, tmp / "model.obj.zip")
    sanitize.clean_poster(Path(exports.poster), tmp / "poster.png")
    atomic_write(tmp / "report.json", json.dumps(report, indent=1))
    private = tmp / "photos"
    private.mkdir()
    for i, photo in enumerate(photos):
        photo = Path(photo)
        if photo.is_file():
            (private / f"{i:03d}{photo.suffix.lower()}").write_bytes(sanitize.strip_location(photo.read_bytes()))


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())


def _report_dict(report: Any) -> dict[str, Any]:
    if is_dataclass(report):
        return json.loads(json.dumps(asdict(report), default=str))
    return dict(report)


def delete_model(share_id: str, data_dir: str | os.PathLike | None = None, with_job: bool = True) -> bool:
    """Stop serving the model at once, then remove its folder, its job record and the job's uploads.

    with_job=False keeps the job's record and folder (a worker withdrawing a model whose job's
    verdict is "failed, photos kept for Try again").

    The folder is renamed to .deleted-<name> before the row goes, so its manifest can never bring
    the model back (a rebuild only reads visible folders); the job's folder under data/jobs holds
    the merchant's original uploads, GPS included, so it goes too.
    """
    data = settings.data_dir(data_dir)
    with store.connect(data) as con:
        row = con.execute("SELECT folder, job_id FROM models WHERE share_id = ?", (share_id,)).fetchone()
    if row is None:
        return False
    folder = data / "models" / row["folder"]
    trash = folder.with_name(f"{TEMP_PREFIXES[1]}{folder.name}")
    if folder.is_dir():
        os.replace(folder, trash)
    with store.connect(data) as con:
        con.execute("DELETE FROM models WHERE share_id = ?", (share_id,))
        job_id = row["job_id"] if with_job else None
        if job_id:
            con.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
    shutil.rmtree(trash, ignore_errors=True)
    _forget_stored(data, f"models/{row['folder']}")
    if job_id and _JOB_ID.match(job_id):
        shutil.rmtree(data / "jobs" / job_id, ignore_errors=True)
        _forget_stored(data, f"jobs/{job_id}")
    return True


def _forget_stored(data: Path, rel: str) -> None:
    """Remove `rel` in the storage, best effort (the row is gone already, so nothing serves it)."""
    try:
        storage.remove(data, rel)
    except storage.StorageError as error:
        log.warning("could not remove %s in the storage: %s", rel, error)


def remove_orphans(data_dir: str | os.PathLike | None = None, min_age_s: float = 3600.0) -> int:
    """Clean data/models/ at start-up; returns how many temporary folders were deleted.

    Only what is provably left over goes: `.incoming-*` (a publish that crashed before its
    rename) and `.deleted-*` (a delete that crashed) folders older than `min_age_s`. A model
    folder with a valid manifest but no row is registered again; any other folder is left alone
    (`plinth doctor` reports it).
    """
    data = settings.data_dir(data_dir)
    models_dir = data / "models"
    if not models_dir.is_dir():
        return 0
    removed = 0
    now = time.time()
    for path in models_dir.iterdir():
        if path.is_dir() and path.name.startswith(TEMP_PREFIXES) and now - path.stat().st_mtime > min_age_s:
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    with store.connect(data) as con:
        adopted = store.adopt(con, data)
    if adopted:
        log.warning("registered %d model folder(s) that had no database row", adopted)
    return removed
