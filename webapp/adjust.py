"""Correct a published model after the fact: rewrite its files from the original, atomically.

No Streamlit import. The geometry is the pipeline's (`pipeline.adjust_model`); this module keeps
the model folder consistent:

* On the first adjustment the files as made are kept beside the public ones (`original.glb`,
  `original.usdz`, `original.obj.zip`, `original.poster.png`, never served) with the row's
  placement, size and report (`original.json`); every later adjustment starts from them, so
  edits never drift or re-compress the texture, and "Undo all changes" puts them back.
* New files are written into a hidden folder inside the model folder, then each is swapped in
  with os.replace; the old ones are hard-linked aside first, so any failure (a full disk, a
  file that cannot be replaced, the database) puts them back and the merchant reads one line.
* The row (placement, size, the Adjustment JSON, the backdrop) and manifest.json are updated;
  the share id never changes. With shared storage the folder is pulled whole first and pushed
  (manifest last) before the row changes, so other machines never read the new row with old files.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import pipeline
from pipeline import Adjustment, PlinthError, atomic_write

from . import disk, library, settings, storage, store

#: public file -> (what export_all names it beside model.glb, the kept original)
FILES = {
    "model.glb": ("model.glb", "original.glb"),
    "model.usdz": ("model.usdz", "original.usdz"),
    "model.obj.zip": ("model.obj.zip", "original.obj.zip"),
    "poster.png": ("model.poster.png", "original.poster.png"),
}
ORIGINAL_ROW = "original.json"
WORK_PREFIX = ".adjust-"
NOT_FOUND = "This model does not exist any more, so it cannot be changed."
FAILED = "The changes could not be saved, so the model was left as it was. Try again."


@dataclass(frozen=True)
class Background:
    """A viewer backdrop: our own constant CSS (never the merchant's), and the poster's colour."""

    label: str
    css: str  # the share page's `--stage` (model-viewer's background)
    rgb: tuple[int, int, int]  # the poster's backdrop


#: The palette the merchant picks from; "" (studio) is the share page's own default look.
BACKGROUNDS: dict[str, Background] = {
    "": Background("Soft grey (standard)", "", (255, 255, 255)),
    "white": Background("White", "#ffffff", (255, 255, 255)),
    "warm": Background("Warm beige", "radial-gradient(120% 90% at 50% 30%, #fffaf2 0%, #efe4d3 100%)",
                       (246, 238, 226)),
    "sage": Background("Sage green", "radial-gradient(120% 90% at 50% 30%, #f4f8f4 0%, #d9e5dc 100%)",
                       (228, 237, 230)),
    "dark": Background("Dark", "radial-gradient(120% 90% at 50% 30%, #4a5160 0%, #1f2430 100%)", (40, 45, 56)),
}


class AdjustError(PlinthError):
    """The model could not be changed; one plain line, and its files are as they were."""

    def __init__(self, message: str):
        super().__init__("adjust", message)


def current(model: library.Model) -> Adjustment:
    """The adjustment the model's files show now (as made: the identity, on its placement)."""
    if model.adjustment:
        try:
            return Adjustment.from_dict(json.loads(model.adjustment))
        except (ValueError, PlinthError):  # a damaged row: start again from the original
            pass
    return Adjustment(placement=model.placement if model.placement in ("floor", "wall") else "floor")


def source(model: library.Model) -> Path:
    """The GLB every adjustment starts from: the kept original, or the model's own file before any."""
    original = model.folder / FILES["model.glb"][1]
    return original if original.is_file() else model.folder / "model.glb"


def background_css(key: str) -> str:
    """Safe CSS for a stored backdrop key ("" for an unknown or the default one)."""
    return BACKGROUNDS.get(key, BACKGROUNDS[""]).css


def revision(model: library.Model) -> str:
    """A short tag that changes with the files' content (a query string for caches), "" as made."""
    return hashlib.sha256(model.adjustment.encode()).hexdigest()[:12] if model.adjustment else ""


def preview(model: library.Model, adjustment: Adjustment, size: int = 360) -> pipeline.AdjustPreview:
    """How the model would look and measure with `adjustment` (nothing is written)."""
    library.local_folder(model)  # shared storage: the original may be on another machine's disk only
    return pipeline.preview_adjustment(source(model), adjustment, size=size)


def adjust(share_id: str, adjustment: Adjustment, data_dir: str | os.PathLike | None = None,
           background: str | None = None) -> library.Model:
    """Rewrite the model's GLB, USDZ, OBJ zip and poster with `adjustment` (relative to the model
    as made) and store it; `background` (a BACKGROUNDS key) also sets the viewer's backdrop and the
    poster's. Returns the updated model; AdjustError (files untouched) when it cannot."""
    data = settings.data_dir(data_dir)
    model = library.get_model(share_id, data)
    if model is None:
        raise AdjustError(NOT_FOUND)
    key = model.background if background is None else background
    if key not in BACKGROUNDS:
        raise AdjustError(f"Unknown background {key!r}; pick one of the list.")
    if adjustment.background != BACKGROUNDS[key].rgb:
        adjustment = replace(adjustment, background=BACKGROUNDS[key].rgb)
    _fetch(model)
    with _locked(model.folder):
        _keep_original(data, model)
        work = model.folder / f"{WORK_PREFIX}{secrets.token_hex(8)}"
        try:
            work.mkdir()
            made = pipeline.adjust_model(source(model), adjustment, work / "model.glb", name=model.name)
            new = {public: work / written for public, (written, _) in FILES.items()}
            changes = _row_changes(model, made.dimensions_m, adjustment.placement, new["model.glb"].stat().st_size,
                                   json.dumps(adjustment.to_dict(), sort_keys=True), key, _resized(model, adjustment))
            _swap_in(data, model, new, changes)
        except PlinthError as error:
            raise AdjustError(error.message) from error
        except (OSError, *store.DB_ERRORS) as error:
            raise AdjustError(library.DISK_FULL if disk.is_full(error, data) else FAILED) from error
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return library.get_model(share_id, data) or model


def reset(share_id: str, data_dir: str | os.PathLike | None = None) -> library.Model:
    """Undo all changes: the files, size, placement and backdrop as the model was made."""
    data = settings.data_dir(data_dir)
    model = library.get_model(share_id, data)
    if model is None:
        raise AdjustError(NOT_FOUND)
    _fetch(model)
    with _locked(model.folder):
        try:
            kept = json.loads((model.folder / ORIGINAL_ROW).read_text())
        except (OSError, ValueError):
            return model  # never adjusted: nothing to undo
        work = model.folder / f"{WORK_PREFIX}{secrets.token_hex(8)}"
        try:
            work.mkdir()
            new = {}
            for public, (_, original) in FILES.items():
                new[public] = work / public
                shutil.copyfile(model.folder / original, new[public])
            changes = {**kept["row"], "adjustment": "", "background": "", "report": json.dumps(kept["report"])}
            _swap_in(data, model, new, changes)
        except (OSError, *store.DB_ERRORS, KeyError, TypeError) as error:
            raise AdjustError(library.DISK_FULL if disk.is_full(error, data) else FAILED) from error
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return library.get_model(share_id, data) or model


def _fetch(model: library.Model) -> None:
    """With shared storage: every file of the model as stored now, before it is rewritten."""
    try:
        library.local_folder(model, fresh=True)
    except (PlinthError, OSError) as error:  # a StorageError names the storage's problem in plain words
        raise AdjustError(getattr(error, "message", FAILED)) from error


def _keep_original(data: Path, model: library.Model) -> None:
    """Copy the files as made to their original.* names once (original.glb last: it marks them complete)."""
    folder = model.folder
    if (folder / FILES["model.glb"][1]).is_file():
        return
    try:
        for public, (_, original) in sorted(FILES.items(), key=lambda item: item[0] == "model.glb"):
            tmp = folder / f".{original}.{secrets.token_hex(4)}.tmp"
            shutil.copyfile(folder / public, tmp)
            if public == "model.glb":
                atomic_write(folder / ORIGINAL_ROW, json.dumps({"row": {
                    "placement": model.placement, "width_m": model.dimensions_m[0], "height_m": model.dimensions_m[1],
                    "depth_m": model.dimensions_m[2], "glb_bytes": model.glb_bytes}, "report": model.report}))
            os.replace(tmp, folder / original)
    except OSError as error:
        for path in folder.glob(".original.*.tmp"):
            path.unlink(missing_ok=True)
        raise AdjustError(library.DISK_FULL if disk.is_full(error, data) else FAILED) from error


def _resized(model: library.Model, adjustment: Adjustment) -> str | None:
    """The report's new "size comes from" line when the merchant set the size here."""
    if adjustment.size is None:
        return None
    return f"the {adjustment.size.axis} you set: {pipeline.format_size(adjustment.size.metres)}"


def _row_changes(model: library.Model, dims, placement: str, glb_bytes: int, adjustment: str, background: str,
                 scale_source: str | None) -> dict:
    kept = _original_report(model)
    report = {**kept, "dimensions_m": [float(d) for d in dims]}
    if scale_source:
        report["scale_source"] = scale_source
    return {"placement": placement, "width_m": float(dims[0]), "height_m": float(dims[1]), "depth_m": float(dims[2]),
            "glb_bytes": int(glb_bytes), "adjustment": adjustment, "background": background,
            "report": json.dumps(report)}


def _original_report(model: library.Model) -> dict:
    try:
        return dict(json.loads((model.folder / ORIGINAL_ROW).read_text())["report"])
    except (OSError, ValueError, KeyError, TypeError):
        return dict(model.report)


_COLUMNS = ("placement", "width_m", "height_m", "depth_m", "glb_bytes", "adjustment", "background", "report")


def _swap_in(data: Path, model: library.Model, new: dict[str, Path], changes: dict) -> None:
    """Replace each public file with `new[public]`, then the report, manifest and row; on any
    failure put every old file back (they were linked aside first) and leave the row as it was."""
    folder = model.folder
    aside = new["model.glb"].parent / "old"
    aside.mkdir()
    for public in FILES:
        try:
            os.link(folder / public, aside / public)
        except OSError:  # a file system without hard links
            shutil.copy2(folder / public, aside / public)
    with store.connect(data) as con:
        old_row = dict(con.execute("SELECT * FROM models WHERE share_id = ?", (model.share_id,)).fetchone())
    replaced = []
    try:
        for public in FILES:
            os.replace(new[public], folder / public)
            replaced.append(public)
        atomic_write(folder / "report.json", json.dumps(json.loads(changes["report"]), indent=1))
        store.write_manifest(folder, {**old_row, **changes})
        try:  # new files, then the manifest, before the row: no machine reads the new row with old files
            storage.push(data, model.rel)
        except storage.StorageError as error:
            raise AdjustError(error.message) from error
        library.mark_fetched(folder, changes["adjustment"])
        with store.connect(data) as con:
            con.execute(f"UPDATE models SET {', '.join(c + ' = ?' for c in _COLUMNS)} WHERE share_id = ?",
                        (*(changes[c] for c in _COLUMNS), model.share_id))
    except BaseException:
        for public in replaced:
            os.replace(aside / public, folder / public)
        atomic_write(folder / "report.json", json.dumps(json.loads(old_row["report"] or "{}"), indent=1))
        store.write_manifest(folder, old_row)
        _push_back(data, model, old_row)
        raise


def _push_back(data: Path, model: library.Model, old_row: dict) -> None:
    """After a failed change: the storage gets the old files back (best effort: its failure may be the cause)."""
    if storage.configured():
        library.mark_fetched(model.folder, old_row["adjustment"] or "")
        try:
            storage.push(data, model.rel)
        except storage.StorageError:
            pass


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One adjustment of a model at a time (two browser tabs, a double click); stale work folders go."""
    with open(folder / ".adjust.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            for stale in folder.glob(f"{WORK_PREFIX}*"):  # we hold the lock: nobody else's work
                shutil.rmtree(stale, ignore_errors=True)
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
