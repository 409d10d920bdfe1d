"""Quick checks of one uploaded photo for the Create page: a thumbnail and plain-words warnings.

No Streamlit import (so it can be tested directly). Reads pixels only; never changes the upload.
"""

from __future__ import annotations

import io
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class PhotoCheck:
    thumbnail: bytes | None  # JPEG, no metadata; None when the file cannot be read
    warnings: tuple[str, ...]
    error: str = ""  # set when the photo cannot be used at all


def check_upload(filename: str, data: bytes) -> PhotoCheck:
    from PIL import Image, ImageOps

    import pipeline

    try:
        import pillow_heif

        pillow_heif.register_heif_opener()
    except ImportError:  # HEIC thumbnails then fail with a friendly message below
        pass
    suffix = Path(filename).suffix.lower() or ".jpg"
    with tempfile.NamedTemporaryFile(suffix=suffix) as tmp:
        tmp.write(data)
        tmp.flush()
        try:
            warnings = tuple(pipeline.check_photo(tmp.name))
        except pipeline.PlinthError as error:
            return PhotoCheck(None, (), error.message.replace(Path(tmp.name).name, filename))
    try:
        with Image.open(io.BytesIO(data)) as im:
            im = ImageOps.exif_transpose(im)
            im.thumbnail((360, 360))
            rgb = np.asarray(im.convert("RGB"))
            buf = io.BytesIO()
            Image.fromarray(rgb).save(buf, format="JPEG", quality=85)
            thumb = buf.getvalue()
    except Exception:  # decodable by the pipeline but not for a thumbnail: still usable
        return PhotoCheck(None, warnings)
    cut = cut_off_warning(rgb)
    return PhotoCheck(thumb, warnings + ((cut,) if cut else ()))


def count_notice(count: int) -> str:
    """What the number of photos will give, said at upload (before a job is made): "" for one
    photo (a quick model, as the page says) and for enough photos for a full scan."""
    import pipeline

    if count <= 1 or count >= pipeline.FEW_PHOTOS:
        return ""
    lead = f"For a full 3D scan take {pipeline.FEW_PHOTOS} or more photos all around the product; "
    if count < pipeline.MIN_MULTIVIEW_PHOTOS:
        return lead + (f"with {count} photos only the first one is used, for a quick model from one photo "
                       "(its back is estimated).")
    return lead + (f"with {count} photos the 3D shape and size may come out wrong. Add "
                   f"{pipeline.FEW_PHOTOS - count} more, or go ahead and see.")


def cut_off_warning(rgb: np.ndarray) -> str:
    """Warn when the product seems to run off the frame (only judged on plain backgrounds).

    The background colour is the median of the outer ring; pixels far from it that sit on the
    frame edge are probably the product. On busy backgrounds nothing is said (no false alarms).
    """
    img = rgb.astype(np.float32)
    ring = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
    bg = np.median(ring, axis=0)
    far = np.linalg.norm(ring - bg, axis=1) > 60.0
    plain = np.mean(np.linalg.norm(ring[~far] - bg, axis=1)) < 18.0 if (~far).any() else False
    if not plain:
        return ""
    sides = [img[0], img[-1], img[:, 0], img[:, -1]]
    touched = sum(np.mean(np.linalg.norm(s - bg, axis=1) > 60.0) > 0.08 for s in sides)
    has_object = np.mean(np.linalg.norm(img[::4, ::4] - bg, axis=2) > 60.0) > 0.03
    if has_object and 0 < touched < 4:
        return "The product seems to touch the edge of the photo: step back so all of it is in the frame."
    return ""
