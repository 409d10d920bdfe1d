"""The model library: published models in SQLite plus private folders under data/models/.

No Streamlit import: `plinth make --publish` uses this module directly.

    url = publish(result, name="Oak chair", photos=[Path("chair.jpg")], placement="floor")

Layout (private; the web server maps share ids to folders through the database only):

    data/models/<random folder>/model.glb, model.usdz, model.obj.zip, poster.png, report.json
    data/models/<random folder>/manifest.json   the model's database row, so the row can be rebuilt
    data/models/<random folder>/photos/...   originals without location metadata, never served

With shared storage ($PLINTH_STORAGE, webapp/storage) the data folder is this process's cache of
it: add_model pushes the finished folder before the row exists, every later write pushes what it
changed, and `Model.file` / `local_folder` pull on demand (again after the model was adjusted on
another machine: the hidden .revision / .pulled marks hold the revision the local copy has).

The database is not the only truth (store.open_library rebuilds it from the manifests), and reads
never write: get_model and list_models open it read-only and, if it cannot answer, read the
manifests, so share links keep working on a full, read-only or damaged disk.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import sqlite3
import time
from dataclasses import asdict, dataclass, is_dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Sequence

from pipeline import PlinthError, Result, Verdict, atomic_write

from . import disk, sanitize, settings, storage, store, verdicts
from .storage import cache

#: Public file name -> (file in the model folder, content type). Only these are ever served.
PUBLIC_FILES: dict[str, tuple[str, str]] = {
    "model.glb": ("model.glb", "model/gltf-binary"),
    "model.usdz": ("model.usdz", "model/vnd.usdz+zip"),
    "model.obj.zip": ("model.obj.zip", "application/zip"),
    "poster.png": ("poster.png", "image/png"),
}
MAX_NAME = 120
#: Hidden folders under data/models/: a publish in progress, a delete in progress.
TEMP_PREFIXES = (".incoming-", ".deleted-")
_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
DISK_FULL = ("The server's disk is full, so the model could not be saved. "
             "Free some space (for example delete old models) and try again.")
NOT_PUBLISHED = ("This model failed Plinth's quality checks, so it was not published: it would show "
                 "customers a wrong copy of the item. Re-shoot the photos the checks name and make it again.")

log = logging.getLogger("plinth.library")


class LibraryError(PlinthError):
    """The library could not do what was asked (disk full, ...); one plain line."""

    def __init__(self, message: str):
        super().__init__("publish", message)




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
    job_id: str | None = None  # the job that made it (None: published from the command line)
    published_anyway: bool = False  # the merchant chose to share it although it failed its checks
    adjustment: str = ""  # pipeline.Adjustment JSON of the merchant's correction ("": as made; webapp/adjust.py)
    background: str = ""  # the share page's viewer backdrop, a webapp/adjust.py BACKGROUNDS key ("": default)
    deleted_at: float | None = None  # in the Trash since (unix time); None: in the library
    product_url: str = ""  # the shop's page for this product (http(s) only, checked by shop.clean_url)
    expires: float | None = None  # unix time after which its share link answers "expired"
    owner: str = ""  # the merchant's users.id ('' only before any account existed)
    model_id: str = ""  # the merchant-side id (pages, API): random, unrelated to share_id

    @property
    def trashed(self) -> bool:
        return self.deleted_at is not None

    def expired(self, now: float | None = None) -> bool:
        return self.expires is not None and (time.time() if now is None else now) >= self.expires

    @property
    def judgement(self) -> verdicts.Judgement:
        """The quality gate's verdict, from the stored report (None for models made before the gate)."""
        return verdicts.read(self.report)

    @property
    def shared(self) -> bool:
        """Whether the share page and the public file routes serve it: a model that failed its
        checks is private until the merchant explicitly publishes it anyway."""
        return self.published_anyway or not self.judgement.failed

    def file(self, public_name: str) -> Path | None:
        """Path of a public file, or None if the name is not one we serve or it is missing."""
        entry = PUBLIC_FILES.get(public_name)
        if entry is None:
            return None
        path = self.folder / entry[0]
        if storage.configured():
            # The storage is the truth and this data folder a cache: fetch the file on first use, and
            # again once the model was adjusted on another machine (its revision moved on).
            cache.drop_if_stale(self.folder, revision_tag(self.adjustment), (name for name, _ in PUBLIC_FILES.values()))
            if not path.is_file():
                storage.pull(self.data, f"{self.rel}/{entry[0]}")
        return path if path.is_file() else None

    def has_file(self, public_name: str) -> bool:
        """Whether the model has this public file, without fetching it (listings, the API): with shared
        storage every model has all of PUBLIC_FILES (add_model writes each), else the local file says."""
        if public_name not in PUBLIC_FILES:
            return False
        return storage.configured() or (self.folder / PUBLIC_FILES[public_name][0]).is_file()

    @property
    def data(self) -> Path:
        """The data folder this model was read from (its folder is data/models/<name>)."""
        return self.folder.parent.parent

    @property
    def rel(self) -> str:
        """The model folder relative to a data folder, and its key in the storage: models/<name>."""
        return f"models/{self.folder.name}"


def revision_tag(adjustment: str) -> str:
    """What a model's files follow: its stored adjustment JSON ("" as made). Equal tags, equal files."""
    return hashlib.sha256(adjustment.encode()).hexdigest()[:16] if adjustment else ""


def local_folder(model: Model, fresh: bool = False) -> Path:
    """The model's folder with every file in it (originals, report, manifest), for code that reads or
    rewrites more than the public files (webapp/adjust.py). With shared storage it is pulled whole
    unless this copy already has the model's current revision (`fresh`: pulled anyway, before a write)."""
    if storage.configured() and (fresh or not cache.whole(model.folder, revision_tag(model.adjustment))):
        if not storage.pull(model.data, model.rel):
            raise LibraryError("This model's files are missing from the shared storage.")
        mark_fetched(model.folder, model.adjustment)
    return model.folder


def mark_fetched(folder: Path, adjustment: str) -> None:
    """With shared storage: the local `folder` now holds all files of the model with this adjustment
    (pulled whole, or rewritten here)."""
    if storage.configured():
        cache.set_marks(folder, revision_tag(adjustment))


def new_share_id() -> str:
    """192 random bits, URL-safe; unrelated to the folder name."""
    return secrets.token_urlsafe(24)


def new_model_id() -> str:
    """128 random bits, URL-safe: the merchant-side id, never derivable from the share id."""
    return secrets.token_urlsafe(16)


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
    return _row_to_model(data, row)


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
        job_id=store.column(row, "job_id", None),
        published_anyway=bool(store.column(row, "published_anyway", 0)),
        adjustment=store.column(row, "adjustment", "") or "",
        background=store.column(row, "background", "") or "",
        deleted_at=store.column(row, "deleted_at", None),
        product_url=store.column(row, "product_url", "") or "",
        expires=store.column(row, "expires", None),
        owner=store.column(row, "owner", "") or "",
        model_id=store.column(row, "model_id", "") or "",
    )


def _manifest_rows(data: Path) -> list[dict[str, Any]]:
    """Rows from the manifests of complete model folders: the read path when the database cannot answer."""
    rows = [store.read_manifest(folder) for folder in store.model_folders(data) if (folder / "model.glb").is_file()]
    return [row for row in rows if row is not None]


class ShareStatus(Enum):
    """What a share link points at, so the public routes can tell "gone for now" from "never was"."""

    LIVE = "live"  # served
    PRIVATE = "private"  # failed its checks and not published anyway: answered like an unknown link
    TRASHED = "trashed"  # in the Trash: "no longer available" (restoring it brings the same link back)
    UNKNOWN = "unknown"  # no such model (or deleted for good)


def get_model(share_id: str, data_dir: str | os.PathLike | None = None, trashed: bool = False) -> Model | None:
    """The model with this share id, or None (also for malformed ids, and for a model in the Trash
    unless `trashed`). Never writes."""
    model = _find(share_id, settings.data_dir(data_dir))
    return model if model is not None and (trashed or not model.trashed) else None


def share_status(share_id: str, data_dir: str | os.PathLike | None = None) -> ShareStatus:
    model = _find(share_id, settings.data_dir(data_dir))
    if model is None:
        return ShareStatus.UNKNOWN
    if model.trashed:
        return ShareStatus.TRASHED
    return ShareStatus.LIVE if model.shared else ShareStatus.PRIVATE


def _find(share_id: str, data: Path) -> Model | None:
    if not isinstance(share_id, str) or not 16 <= len(share_id) <= 64:
        return None
    try:
        with store.connect(data, readonly=True) as con:
            row = con.execute("SELECT * FROM models WHERE share_id = ?", (share_id,)).fetchone()
    except store.DB_ERRORS as error:
        log.warning("library database unreadable (%s); reading the model folders", error)
        row = next((r for r in _manifest_rows(data) if r["share_id"] == share_id), None)
    return _row_to_model(data, row) if row else None


def get_owned(model_id: str, user, data_dir: str | os.PathLike | None = None, trashed: bool = False) -> Model | None:
    """The model with this merchant-side id if `user` (an accounts.User) may see it, else None:
    an unknown id and another merchant's model look the same (callers answer 404, never 403).
    In the Trash: only with `trashed`. Never writes."""
    if not isinstance(model_id, str) or not 16 <= len(model_id) <= 64 or user is None:
        return None
    data = settings.data_dir(data_dir)
    try:
        with store.connect(data, readonly=True) as con:
            row = con.execute("SELECT * FROM models WHERE model_id = ?", (model_id,)).fetchone()
    except store.DB_ERRORS as error:
        log.warning("library database unreadable (%s); reading the model folders", error)
        row = next((r for r in _manifest_rows(data) if r.get("model_id") == model_id), None)
    model = _row_to_model(data, row) if row else None
    if model is None or not user.can_see(model.owner) or (model.trashed and not trashed):
        return None
    return model


def list_models(data_dir: str | os.PathLike | None = None, trashed: bool = False,
                owner: str | None = None) -> list[Model]:
    """The models in the library (trashed=True: those in the Trash instead), newest first; only
    `owner`'s (a users.id) when given, everyone's when None. Never writes."""
    data = settings.data_dir(data_dir)
    try:
        with store.connect(data, readonly=True) as con:
            rows = con.execute("SELECT * FROM models ORDER BY created DESC").fetchall()
    except store.DB_ERRORS as error:
        log.warning("library database unreadable (%s); reading the model folders", error)
        rows = sorted(_manifest_rows(data), key=lambda r: r["created"], reverse=True)
    # Filtered here, not in SQL: a read-only connection to an older database has no deleted_at column.
    return [m for m in (_row_to_model(data, row) for row in rows)
            if m.trashed == trashed and (owner is None or m.owner == owner)]


def rename_model(share_id: str, name: str, data_dir: str | os.PathLike | None = None) -> bool:
    """Rename in the database and in the model's manifest (so a rebuild keeps the new name)."""
    return _update(share_id, "name", clean_name(name), data_dir)


def publish_anyway(share_id: str, yes: bool = True, data_dir: str | os.PathLike | None = None) -> bool:
    """The merchant's explicit choice to share a model that failed its checks (yes=False takes it
    back: the share link stops working at once). Kept in the manifest too, so a rebuild keeps it."""
    return _update(share_id, "published_anyway", 1 if yes else 0, data_dir)


def set_deleted_at(share_id: str, when: float | None, data_dir: str | os.PathLike | None = None) -> bool:
    """In the Trash since `when` (None: back in the library), in the database and the manifest (webapp.trash)."""
    return _update(share_id, "deleted_at", when, data_dir)


def set_link(share_id: str, product_url: str, expires: float | None,
             data_dir: str | os.PathLike | None = None) -> bool:
    """The share link's shop settings: the product page (already checked, see shop.clean_url)
    and the expiry time (None: never). Kept in the manifest too."""
    return (_update(share_id, "product_url", product_url, data_dir)
            and _update(share_id, "expires", None if expires is None else float(expires), data_dir))


def _update(share_id: str, column: str, value: Any, data_dir: str | os.PathLike | None) -> bool:
    """Set one column of a model (a name from our own code, never the caller's) in the database
    and its manifest."""
    assert column in ("name", "published_anyway", "deleted_at", "product_url", "expires"), column
    data = settings.data_dir(data_dir)
    with store.connect(data) as con:
        cur = con.execute(f"UPDATE models SET {column} = ? WHERE share_id = ?", (value, share_id))
        row = con.execute("SELECT * FROM models WHERE share_id = ?", (share_id,)).fetchone()
    folder = data / "models" / row["folder"] if row is not None else None
    if folder is not None and (folder.is_dir() or storage.configured()):
        folder.mkdir(parents=True, exist_ok=True)  # with storage: a model made elsewhere may have no local copy
        store.write_manifest(folder, dict(row))
        try:
            storage.push(data, f"models/{row['folder']}/{store.MANIFEST}")
        except storage.StorageError as error:  # the row (the truth for reads) has it; the mirror is for rebuilds
            log.warning("could not update a model's manifest in the storage: %s", error)
    return cur.rowcount > 0


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
