"""The model library: published models in SQLite plus private folders under data/models/.

No Streamlit import: `plinth make --publish` uses this module directly.

    url = publish(result, name="Oak chair", photos=[Path("chair.jpg")], placement="floor")

Layout (private; the web server maps share ids to folders through the database only):

    data/models/<random folder>/model.glb, model.usdz, model.obj.zip, poster.png, report.json
    data/models/<random folder>/photos/...   originals, never served
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any, Sequence

from pipeline import Result, atomic_write

from . import sanitize, settings, store

#: Public file name -> (file in the model folder, content type). Only these are ever served.
PUBLIC_FILES: dict[str, tuple[str, str]] = {
    "model.glb": ("model.glb", "model/gltf-binary"),
    "model.usdz": ("model.usdz", "model/vnd.usdz+zip"),
    "model.obj.zip": ("model.obj.zip", "application/zip"),
    "poster.png": ("poster.png", "image/png"),
}
MAX_NAME = 120


@dataclass(frozen=True)
class Model:
    """One published model, as the UI and the AR page see it."""

    share_id: str
    name: str
    placement: str
    created: float  # unix time
    dimensions_m: tuple[float, float, float]  # width (x), height (y), depth (z)
    glb_bytes: int
    triangles: int
    kind: str
    report: dict[str, Any]
    folder: Path  # private

    def file(self, public_name: str) -> Path | None:
        """Path of a public file, or None if the name is not one we serve or it is missing."""
        entry = PUBLIC_FILES.get(public_name)
        if entry is None:
            return None
        path = self.folder / entry[0]
        return path if path.is_file() else None


def new_share_id() -> str:
    """192 random bits, URL-safe; unrelated to the folder name."""
    return secrets.token_urlsafe(24)


def clean_name(name: str, fallback: str = "My product") -> str:
    """One line, printable, at most MAX_NAME characters (HTML escaping happens at render time)."""
    text = " ".join(str(name or "").split())
    text = "".join(ch for ch in text if ch.isprintable())[:MAX_NAME].strip()
    return text or fallback


def share_url(share_id: str, seen_at: str | None = None, data_dir: str | os.PathLike | None = None) -> str:
    """The AR page link for a model: {settings.public_url}/ar/{share_id}; `seen_at` as there."""
    return f"{settings.public_url(settings.data_dir(data_dir), seen_at=seen_at)}/ar/{share_id}"


def publish(
    result: Result,
    name: str,
    photos: Sequence[str | os.PathLike],
    placement: str = "floor",
    data_dir: str | os.PathLike | None = None,
) -> str:
    """Add a `pipeline.reconstruct` result to the library and return its share URL."""
    model = add_model(result, name, photos, placement, data_dir=data_dir)
    return share_url(model.share_id, data_dir=data_dir)


def add_model(
    result: Result,
    name: str,
    photos: Sequence[str | os.PathLike],
    placement: str = "floor",
    data_dir: str | os.PathLike | None = None,
    job_id: str | None = None,
) -> Model:
    """Copy the result's files (metadata stripped) into a new folder, then register it.

    Atomic: files go to a hidden temporary folder that is renamed into place before the database
    row exists, so the server never sees a half-written model. Earlier models are never touched.
    """
    data = settings.data_dir(data_dir)
    models_dir = data / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    exports = result.exports
    folder_name = secrets.token_hex(16)
    tmp = models_dir / f".incoming-{folder_name}"
    tmp.mkdir()
    try:
        sanitize.clean_glb(Path(exports.glb), tmp / "model.glb")
        sanitize.clean_usdz(Path(exports.usdz), tmp / "model.usdz")
        shutil.copyfile(exports.obj_zip, tmp / "model.obj.zip")
        sanitize.clean_poster(Path(exports.poster), tmp / "poster.png")
        report = _report_dict(result.report)
        atomic_write(tmp / "report.json", json.dumps(report, indent=1))
        private = tmp / "photos"
        private.mkdir()
        for i, photo in enumerate(photos):
            photo = Path(photo)
            if photo.is_file():
                shutil.copyfile(photo, private / f"{i:03d}{photo.suffix.lower()}")
        for path in tmp.rglob("*"):
            if path.is_file():
                with open(path, "rb") as fh:
                    os.fsync(fh.fileno())
        final = models_dir / folder_name
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    width, height, depth = (float(v) for v in result.report.dimensions_m)
    model = Model(
        share_id=new_share_id(),
        name=clean_name(name),
        placement=placement if placement in ("floor", "wall") else "floor",
        created=time.time(),
        dimensions_m=(width, height, depth),
        glb_bytes=(final / "model.glb").stat().st_size,
        triangles=int(result.report.triangles),
        kind=str(result.report.kind),
        report=report,
        folder=final,
    )
    with store.connect(data) as con:
        con.execute(
            "INSERT INTO models (share_id, folder, name, placement, created, width_m, height_m, depth_m,"
            " glb_bytes, triangles, kind, report, job_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (model.share_id, folder_name, model.name, model.placement, model.created, width, height, depth,
             model.glb_bytes, model.triangles, model.kind, json.dumps(report), job_id),
        )
    return model


def _report_dict(report: Any) -> dict[str, Any]:
    if is_dataclass(report):
        return json.loads(json.dumps(asdict(report), default=str))
    return dict(report)


def _row_to_model(data: Path, row) -> Model:
    return Model(
        share_id=row["share_id"],
        name=row["name"],
        placement=row["placement"],
        created=row["created"],
        dimensions_m=(row["width_m"], row["height_m"], row["depth_m"]),
        glb_bytes=row["glb_bytes"],
        triangles=row["triangles"],
        kind=row["kind"],
        report=json.loads(row["report"] or "{}"),
        folder=data / "models" / row["folder"],
    )


def get_model(share_id: str, data_dir: str | os.PathLike | None = None) -> Model | None:
    """The model with this share id, or None (also for malformed ids)."""
    if not isinstance(share_id, str) or not 16 <= len(share_id) <= 64:
        return None
    data = settings.data_dir(data_dir)
    with store.connect(data) as con:
        row = con.execute("SELECT * FROM models WHERE share_id = ?", (share_id,)).fetchone()
    return _row_to_model(data, row) if row else None


def list_models(data_dir: str | os.PathLike | None = None) -> list[Model]:
    """All models, newest first."""
    data = settings.data_dir(data_dir)
    with store.connect(data) as con:
        rows = con.execute("SELECT * FROM models ORDER BY created DESC").fetchall()
    return [_row_to_model(data, row) for row in rows]


def rename_model(share_id: str, name: str, data_dir: str | os.PathLike | None = None) -> bool:
    data = settings.data_dir(data_dir)
    with store.connect(data) as con:
        cur = con.execute("UPDATE models SET name = ? WHERE share_id = ?", (clean_name(name), share_id))
    return cur.rowcount > 0


def delete_model(share_id: str, data_dir: str | os.PathLike | None = None) -> bool:
    """Stop serving the model at once, then remove its folder (photos included)."""
    model = get_model(share_id, data_dir)
    if model is None:
        return False
    data = settings.data_dir(data_dir)
    with store.connect(data) as con:
        con.execute("DELETE FROM models WHERE share_id = ?", (share_id,))
    trash = model.folder.with_name(f".deleted-{model.folder.name}")
    try:
        os.replace(model.folder, trash)
        shutil.rmtree(trash, ignore_errors=True)
    except OSError:
        pass
    return True


def remove_orphans(data_dir: str | os.PathLike | None = None, min_age_s: float = 3600.0) -> int:
    """Delete folders left by a crash mid-publish (not in the database). Returns how many.

    Only folders older than `min_age_s` go: a publish may be between its rename and its insert.
    """
    data = settings.data_dir(data_dir)
    models_dir = data / "models"
    if not models_dir.is_dir():
        return 0
    with store.connect(data) as con:
        known = {row[0] for row in con.execute("SELECT folder FROM models")}
    removed = 0
    for path in models_dir.iterdir():
        old = time.time() - path.stat().st_mtime > min_age_s
        if path.is_dir() and path.name not in known and old:
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed
