"""The Trash: a deleted model stays restorable for KEEP_DAYS, then goes for good. No Streamlit import.

    trash.move(share_id)      # the share link answers "no longer available" at once; files stay
    trash.restore(share_id)   # undo: the same share link and QR code work again
    trash.purge(now=...)      # models in the Trash longer than KEEP_DAYS: files, photos and row go

The Trash is the `deleted_at` column of the models row, kept in the model's manifest too, so a
database rebuilt from the folders keeps every trashed model in the Trash (and its 30 days).
"""

from __future__ import annotations

import logging
import math
import os
import time

from . import library, model_folders, settings

#: Days a deleted model stays in the Trash before it is deleted for good.
KEEP_DAYS = 30
#: What the merchant is told before a delete (and what the Model page and the Library both say).
DELETE_WARNING = (f"Shoppers who have the link or QR code will see 'no longer available'. "
                  f"You can restore it from the Trash for {KEEP_DAYS} days.")

log = logging.getLogger("plinth.trash")


def move(share_id: str, data_dir: str | os.PathLike | None = None, now: float | None = None) -> bool:
    """Put a model in the Trash; False when there is no such model in the library."""
    data = settings.data_dir(data_dir)
    if library.get_model(share_id, data) is None:
        return False
    return library.set_deleted_at(share_id, time.time() if now is None else float(now), data)


def restore(share_id: str, data_dir: str | os.PathLike | None = None) -> bool:
    """Take a model out of the Trash (same share id, so every link and QR code works again)."""
    data = settings.data_dir(data_dir)
    model = library.get_model(share_id, data, trashed=True)
    if model is None or not model.trashed:
        return False
    return library.set_deleted_at(share_id, None, data)


def delete_forever(share_id: str, data_dir: str | os.PathLike | None = None) -> bool:
    """Delete a model that is in the Trash: its files, its photos and its job (never a live one)."""
    data = settings.data_dir(data_dir)
    model = library.get_model(share_id, data, trashed=True)
    if model is None or not model.trashed:
        return False
    return model_folders.delete_model(share_id, data)


def days_left(model: library.Model, now: float | None = None) -> int:
    """Days until the purge deletes it, rounded up (just deleted: KEEP_DAYS; 0: at the next clean-up)."""
    if model.deleted_at is None:
        return KEEP_DAYS
    now = time.time() if now is None else now
    return max(0, math.ceil((model.deleted_at + KEEP_DAYS * 86400.0 - now) / 86400.0))


def purge(data_dir: str | os.PathLike | None = None, now: float | None = None) -> int:
    """Delete for good every model in the Trash for longer than KEEP_DAYS; returns how many."""
    data = settings.data_dir(data_dir)
    now = time.time() if now is None else now
    removed = 0
    for model in library.list_models(data, trashed=True):
        old = model.deleted_at is not None and now - model.deleted_at > KEEP_DAYS * 86400.0
        if old and model_folders.delete_model(model.share_id, data):
            log.info("deleted a model that was in the Trash for %d days", KEEP_DAYS)
            removed += 1
    return removed
