"""Builds a corpus of awkward and broken input files in a temporary folder (for tests).

    from tests.badinputs import make_corpus, EXPECTED
    files = make_corpus(tmp_path)          # name -> Path
    EXPECTED["empty"].valid                # False: a one-line message is expected
    EXPECTED["empty"].stage                # "ingest": which stage's InputError / CaptureError

The good photo in it is `tests.scenes.synthetic_object()` (its pixels and ground-truth mask).
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tests.scenes import synthetic_object


@dataclass(frozen=True)
class Expected:
    valid: bool  # True: a model (or at least a usable Photo + Mask) is expected
    stage: str | None  # where a one-line error comes from: "ingest" (InputError), "segment" (CaptureError)
    words: str = ""  # a word the error message must contain (lower case)


EXPECTED: dict[str, Expected] = {
    "good": Expected(True, None),
    "empty": Expected(False, "ingest", "empty"),
    "text_as_jpg": Expected(False, "ingest", "not a photo"),
    "truncated": Expected(False, "ingest", "truncated"),
    "tiny": Expected(False, "ingest", "too small"),
    "bomb": Expected(False, "ingest", "too large"),
    "missing": Expected(False, "ingest", "does not exist"),
    "cmyk": Expected(True, None),
    "gray16": Expected(True, None),
    "grey": Expected(True, None),
    "palette": Expected(True, None),
    "bilevel": Expected(True, None),
    "grey_alpha": Expected(True, None),
    "rgba_cutout": Expected(True, None),
    "heic": Expected(True, None),
    "webp": Expected(True, None),
    "blank": Expected(False, "segment", "no distinct object"),
    "gradient": Expected(False, "segment", "no distinct object"),
}


def _bomb_png(width: int, height: int) -> bytes:
    """A valid-looking PNG whose header claims width x height but which holds almost no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)  # a sliver of the first row: never enough to decode
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def make_corpus(folder: Path) -> dict[str, Path]:
    """Write every corpus file into `folder` (created if needed); returns name -> path.

    "missing" points at a file that is not there. Everything is small (under 1 MB in all).
    """
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rgb, mask = synthetic_object()
    good = Image.fromarray(rgb)
    out: dict[str, Path] = {}

    def path(name: str, ext: str) -> Path:
        p = folder / f"{name}.{ext}"
        out[name] = p
        return p

    good.save(path("good", "jpg"), quality=92)
    path("empty", "jpg").write_bytes(b"")
    path("text_as_jpg", "jpg").write_text("These are my product notes, not a photo.\n" * 20)
    buf = io.BytesIO()
    good.save(buf, "JPEG", quality=92)
    path("truncated", "jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    Image.new("RGB", (1, 1), (200, 10, 10)).save(path("tiny", "png"))
    path("bomb", "png").write_bytes(_bomb_png(20000, 20000))
    out["missing"] = folder / "missing_photo.jpg"

    good.convert("CMYK").save(path("cmyk", "jpg"), quality=92)
    grey16 = (np.asarray(good.convert("L")).astype(np.uint16) * 257).astype(np.uint16)
    Image.fromarray(grey16).save(path("gray16", "png"))  # 16-bit greyscale PNG (mode I;16)
    good.convert("L").save(path("grey", "jpg"), quality=92)
    good.quantize(64).save(path("palette", "png"))
    good.convert("L").point(lambda v: 255 if v > 125 else 0).convert("1").save(path("bilevel", "png"))
    la = good.convert("L")
    la.putalpha(Image.fromarray(np.where(mask, 255, 0).astype(np.uint8)))
    la.save(path("grey_alpha", "png"))
    cut = good.convert("RGBA")
    cut.putalpha(Image.fromarray(np.where(mask, 255, 0).astype(np.uint8)))
    cut.save(path("rgba_cutout", "png"))
    _save_heic(good, path("heic", "heic"))
    good.save(path("webp", "webp"), quality=90)

    Image.new("RGB", (640, 480), (128, 128, 128)).save(path("blank", "png"))
    ramp = np.linspace(60, 200, 640, dtype=np.float32)[None, :, None] * np.ones((480, 1, 3), np.float32)
    ramp[..., 2] *= 0.9
    Image.fromarray(ramp.astype(np.uint8)).save(path("gradient", "png"))
    return out


def _save_heic(image, p: Path) -> None:
    # pillow-heif ships the x265 encoder in its wheels; fail loudly (not skip) if it cannot write.
    import pillow_heif

    pillow_heif.register_heif_opener()
    image.save(p, format="HEIF", quality=90)
