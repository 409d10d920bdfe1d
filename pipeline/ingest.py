"""Ingest stage: read the merchant's photo files into `Photo`s at working size.

Entry points:
* `photo_paths(photos) -> list[Path]` and `header_pixels(paths) -> int`: the checks the
  orchestrator makes before any decoding (a clear list of files; how many pixels they hold).
* `load_photos(paths, cfg) -> Ingested`: what the orchestrator calls.
* `check_photo(path) -> tuple[str, ...]`: a quick per-upload check for the web app (plain-words
  warnings; raises InputError when the file cannot be used at all).

Every user mistake (not an image, damaged, too small, huge) becomes a one-line InputError naming
the file. EXIF is read only for orientation and the focal length prior; no metadata goes further.
"""

from __future__ import annotations

import os
import warnings as _warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import InputError
from .types import Ingested, Photo

STAGE = "ingest"
#: The smallest usable photo: its shorter side (after EXIF rotation) must have at least this many
#: pixels. The rule (`IngestConfig.min_side`) and the merchant's message both read it.
MIN_SIDE = 256


@dataclass(frozen=True)
class IngestConfig:
    max_side: int = 1600  # working size: the long side is downscaled to this (never upscaled)
    min_side: int = MIN_SIDE  # reject photos whose short side (after EXIF rotation) is below this
    max_pixels: int = 100_000_000  # reject larger files before decoding (decompression bombs)
    # Warn when the original's short side is below this. 720 and not 800, so that 1024x768 captures
    # (the benchmark's, older phones' 'small' setting) are not nagged: they texture fine at 2048.
    low_res_side: int = 720


PRESETS: dict[str, IngestConfig] = {
    "fast": IngestConfig(max_side=1024),
    "balanced": IngestConfig(max_side=1600),
    "high": IngestConfig(max_side=2048),
}

#: Quality thresholds, measured on a 1024 px long-side grey copy (see `_quality_warnings`).
#: See `sharpness` for how the blur threshold was calibrated.
_SHARPNESS_MIN = 0.2
_DARK_MEAN = 45.0  # mean luma 0..255
_BRIGHT_CLIPPED = 0.30  # share of the product's pixels at >= 250 luma (a white backdrop excluded)
_CLIPPED = 250.0
#: An enclosed white patch whose surroundings average at least this luma is a blown highlight on
#: the product; darker surroundings mean a hole that shows the backdrop (between a chair's slats).
_HIGHLIGHT_RING = 200.0
_ANALYSIS_SIDE = 1024
_CUTOUT_SHARE = 0.01  # alpha is a real cut-out when >= 1% of pixels are see-through and >= 1% solid

# EXIF tags (Exif IFD 0x8769)
_EXIF_IFD = 0x8769
_TAG_FOCAL = 37386
_TAG_FOCAL_35 = 41989


def photo_paths(photos: object) -> list[Path]:
    """The photos as a list of paths, in order; InputError (one line) when it is not one.

    One path (str or PathLike) on its own is one photo, not a list of characters. Refused: an
    empty list, something that is not a list of paths, an empty name, the same file twice.
    """
    if isinstance(photos, (str, os.PathLike)):
        photos = [photos]
    if isinstance(photos, (bytes, bytearray, dict)) or not hasattr(photos, "__iter__"):
        raise InputError(STAGE, f"The photos must be a list of file paths, not {type(photos).__name__}.")
    items = list(photos)
    if not items:
        raise InputError(STAGE, "No photos were given. Add at least one photo of the item.")
    paths: list[Path] = []
    seen: dict[Path, int] = {}
    for i, item in enumerate(items, 1):
        if isinstance(item, bytes) or not isinstance(item, (str, os.PathLike)):
            raise InputError(STAGE, f"Photo {i} is not a file path: {item!r}.")
        text = os.fspath(item)
        if isinstance(text, bytes) or not text.strip():
            raise InputError(STAGE, f"Photo {i} has an empty or unreadable file name: {item!r}.")
        if "\0" in text:
            raise InputError(STAGE, f"Photo {i}'s file name holds a character file names cannot have (a NUL).")
        path = Path(text)
        key = Path(os.path.realpath(path))  # the same file by another spelling is still the same photo
        if key in seen:
            raise InputError(STAGE, f"{path.name} is given twice (photos {seen[key]} and {i}): give each photo once.")
        seen[key] = i
        paths.append(path)
    return paths


def header_pixels(paths: Sequence[Path], cfg: IngestConfig = PRESETS["balanced"]) -> int:
    """Original pixels of all photos together, from the file headers only (nothing decoded).

    Files that cannot be opened, or that `load_photos` refuses for size anyway, count 0: they
    are reported one by one when the photos are read.
    """
    from PIL import Image

    _register_heif()
    total = 0
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        for path in paths:
            try:
                with Image.open(path) as im:
                    w, h = im.size
            except Exception:  # unreadable files get their own message from load_photos
                continue
            if w * h <= cfg.max_pixels:
                total += w * h
    return total


def load_photos(paths: Sequence[str | Path], cfg: IngestConfig = PRESETS["balanced"]) -> Ingested:
    """Decode `paths` in order. Unusable files are skipped with a message in `Ingested.rejected`.

    `Photo.index` is the position among the usable photos (photo 0 is the front view).
    Raises InputError when no photo can be used.
    """
    paths = list(paths)
    if not paths:
        raise InputError(STAGE, "No photos were given. Add at least one photo of the item.")
    photos: list[Photo] = []
    rejected: list[str] = []
    for path in paths:
        try:
            photos.append(_load_one(Path(path), len(photos), cfg))
        except InputError as err:
            rejected.append(err.message)
    if not photos:
        if len(paths) == 1:
            raise InputError(STAGE, rejected[0])
        raise InputError(STAGE, f"None of the {len(paths)} photos could be read: {rejected[0]}")
    return Ingested(photos=tuple(photos), rejected=tuple(rejected))


def check_photo(path: str | Path, cfg: IngestConfig = PRESETS["fast"]) -> tuple[str, ...]:
    """Plain-words quality warnings for one uploaded file (cheap: decodes at `cfg.max_side`).

    Returns () for a good photo. Raises InputError (one line naming the file) when the file
    would be rejected by `load_photos`.
    """
    return _load_one(Path(path), 0, cfg).warnings


def _load_one(path: Path, index: int, cfg: IngestConfig) -> Photo:
    from PIL import Image, ImageFile, UnidentifiedImageError

    _register_heif()
    # A truncated file must fail loudly, not decode as a grey lower half.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    name = path.name

    def fail(reason: str) -> InputError:
        return InputError(STAGE, f"{name}: {reason}")

    try:
        if not path.exists():
            raise fail("the file does not exist.")
        if path.is_dir():
            raise fail("this is a folder, not a photo.")
        if path.stat().st_size == 0:
            raise fail("the file is empty (0 bytes).")
    except OSError as error:  # a name too long for the disk, a folder we may not look into, ...
        raise fail(f"the file could not be opened ({error.strerror or error}).") from None

    with _warnings.catch_warnings():
        # Pillow warns above ~89 MP; our own limit below decides.
        _warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(path)
        except Image.DecompressionBombError:
            raise fail("the image is far too large to process (over 100 megapixels).") from None
        except UnidentifiedImageError:
            raise fail("this is not a photo Plinth can read. Use JPEG, PNG, WebP or HEIC.") from None
        except (OSError, SyntaxError, ValueError, EOFError):
            raise fail("the file is damaged and could not be read.") from None
        try:
            return _decode(im, path, index, cfg, fail)
        finally:
            im.close()


def _decode(im, path: Path, index: int, cfg: IngestConfig, fail) -> Photo:
    from PIL import Image

    w0, h0 = im.size  # header size: checked before any pixel is decoded
    if w0 * h0 > cfg.max_pixels:
        raise fail(f"the image is far too large to process ({w0}x{h0} pixels, over 100 megapixels).")
    exif = _exif(im)
    orientation = int(exif.get(0x0112, 1) or 1) if exif else 1
    # Short and long side are unchanged by rotation, so the size checks work before transposing.
    if min(w0, h0) < cfg.min_side:
        raise fail(f"the image is too small ({w0}x{h0} pixels): its shorter side must be at least "
                   f"{cfg.min_side} pixels. Use the full-size photo from your camera.")
    rotated = orientation in (5, 6, 7, 8)
    orig_size = (h0, w0) if rotated else (w0, h0)

    scale = min(1.0, cfg.max_side / max(w0, h0))
    if im.format == "JPEG" and scale < 0.5:
        # DCT-domain downscale: decodes a 12 MP phone photo several times faster (still reads it all).
        im.draft(im.mode, (int(w0 * scale) + 1, int(h0 * scale) + 1))
    try:
        im.load()
    except Image.DecompressionBombError:
        raise fail("the image is far too large to process (over 100 megapixels).") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError):
        raise fail("the file is truncated or damaged and could not be fully read.") from None

    rgb, alpha = _to_rgb_alpha(im)
    if orientation != 1:
        rgb, alpha = _orient(rgb, orientation), (None if alpha is None else _orient(alpha, orientation))
    rgb, alpha = _resize(rgb, alpha, cfg.max_side)

    focal = _focal_px(exif, max(rgb.shape[:2]))
    warns = _quality_warnings(rgb, alpha, orig_size, cfg)
    return Photo(
        name=path.name,
        index=index,
        rgb=np.ascontiguousarray(rgb),
        alpha=alpha,
        focal_px=focal,
        original_size=orig_size,
        warnings=warns,
    )


def _register_heif() -> None:
    try:
        import pillow_heif
    except ImportError:  # HEIC support is optional at runtime; other formats still work
        return
    pillow_heif.register_heif_opener()


def _exif(im) -> dict[int, object]:
    """Top-level EXIF tags merged with the Exif sub-IFD; {} when absent or unreadable."""
    try:
        exif = im.getexif()
        tags = dict(exif)
        tags.update(exif.get_ifd(_EXIF_IFD))
        return tags
    except Exception:  # malformed EXIF must not reject an otherwise fine photo
        return {}


def _focal_px(exif: dict[int, object], long_side: int) -> float | None:
    """Focal length in working pixels from the 35 mm-equivalent EXIF value (36 mm wide frame)."""
    try:
        f35 = float(exif.get(_TAG_FOCAL_35, 0) or 0)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    # A bare FocalLength without the sensor size cannot give pixels, so it is ignored.
    if not 8.0 <= f35 <= 1000.0:
        return None
    return f35 / 36.0 * long_side


def _to_rgb_alpha(im) -> tuple[np.ndarray, np.ndarray | None]:
    """Any Pillow mode -> ((H, W, 3) uint8, (H, W) uint8 alpha or None when not a real cut-out)."""
    mode = im.mode
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode in ("PA", "LA", "La", "RGBa"):
        im = im.convert("RGBA")
    elif mode == "L" and "transparency" in im.info:
        im = im.convert("RGBA")
    elif mode.startswith("I") or mode == "F":
        # 16/32-bit and float greyscale: Pillow's convert clips at 255, so rescale by hand.
        a = np.asarray(im).astype(np.float64)
        top = float(a.max()) if a.size else 0.0
        if mode == "F":
            hi = 1.0 if top <= 1.0 else top  # float images are 0..1 by convention
        else:
            hi = 65535.0 if (mode.startswith("I;16") or 255 < top <= 65535) else max(top, 255.0)
        g = np.clip(a / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(g[:, :, None], 3, axis=2), None
    elif mode not in ("RGB", "RGBA"):
        im = im.convert("RGB")  # CMYK, YCbCr, LAB, 1, L ...
    arr = np.asarray(im)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.shape[2] == 3:
        return arr, None
    rgb, alpha = arr[:, :, :3].copy(), arr[:, :, 3].copy()
    see_through = np.mean(alpha < 250)
    solid = np.mean(alpha > 127)
    if see_through < _CUTOUT_SHARE or solid < _CUTOUT_SHARE:
        return rgb, None  # an opaque (or empty) alpha channel carries no cut-out
    # Fully transparent pixels often hold junk colours; a white backdrop is the product-photo norm.
    rgb[alpha == 0] = 255
    return rgb, alpha


def _orient(a: np.ndarray, orientation: int) -> np.ndarray:
    """Apply EXIF orientation 1..8 to an (H, W[, C]) array (same result as ImageOps.exif_transpose)."""
    if orientation == 2:
        return a[:, ::-1]
    if orientation == 3:
        return a[::-1, ::-1]
    if orientation == 4:
        return a[::-1]
    if orientation == 5:
        return np.swapaxes(a, 0, 1)
    if orientation == 6:
        return np.rot90(a, -1)
    if orientation == 7:
        return np.swapaxes(a, 0, 1)[::-1, ::-1]
    if orientation == 8:
        return np.rot90(a, 1)
    return a


def _resize(rgb: np.ndarray, alpha: np.ndarray | None, max_side: int):
    import cv2

    h, w = rgb.shape[:2]
    s = max_side / max(h, w)
    if s >= 1.0:
        return np.ascontiguousarray(rgb), None if alpha is None else np.ascontiguousarray(alpha)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    rgb = cv2.resize(np.ascontiguousarray(rgb), size, interpolation=cv2.INTER_AREA)
    if alpha is not None:
        alpha = cv2.resize(np.ascontiguousarray(alpha), size, interpolation=cv2.INTER_AREA)
    return rgb, alpha


def sharpness(rgb: np.ndarray) -> float:
    """Blur score: fine-detail over mid-scale detail on a <= 1024 px grey copy (about 0.1-0.7).

    A ratio of band energies (measured where the image has structure) does not depend on how
    busy or contrasty the scene is, only on how much of the finest detail survived. Bench renders
    score 0.24-0.50, real phone photos about 0.5-0.6, a Gaussian blur of sigma 3 px gives <= 0.20.
    Returns 1.0 for images without any structure (nothing to judge).
    """
    import cv2

    g = _analysis_grey(rgb)
    b1 = cv2.GaussianBlur(g, (0, 0), 1.0)
    b2 = cv2.GaussianBlur(g, (0, 0), 2.0)
    b4 = cv2.GaussianBlur(g, (0, 0), 4.0)
    fine, mid = np.abs(g - b1), np.abs(b2 - b4)
    edge = mid >= np.percentile(mid, 90)
    if float(mid[edge].mean()) < 0.5:
        return 1.0
    return float(fine[edge].mean() / mid[edge].mean())


def _analysis_grey(rgb: np.ndarray) -> np.ndarray:
    import cv2

    g = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY).astype(np.float32)
    h, w = g.shape
    s = _ANALYSIS_SIDE / max(h, w)
    if s < 1.0:
        g = cv2.resize(g, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    return g


def _quality_warnings(
    rgb: np.ndarray, alpha: np.ndarray | None, orig_size: tuple[int, int], cfg: IngestConfig
) -> tuple[str, ...]:
    out = []
    if min(orig_size) < cfg.low_res_side:
        out.append(
            f"Low resolution ({orig_size[0]}x{orig_size[1]} pixels): the texture will look soft. "
            "Use the full-size photo from your camera."
        )
    if sharpness(rgb) < _SHARPNESS_MIN:
        out.append("The photo looks blurry: hold the camera still or tap to focus on the item.")
    g = _analysis_grey(rgb)
    if alpha is not None:  # a cut-out's backdrop is not part of the exposure
        import cv2

        g = g[cv2.resize(alpha, (g.shape[1], g.shape[0]), interpolation=cv2.INTER_AREA) > 127]
    if g.size and g.mean() < _DARK_MEAN:
        out.append("The photo is very dark: add light or move closer to a window.")
    elif g.size and (np.mean(g >= _CLIPPED) if alpha is not None else _blown_share(g)) > _BRIGHT_CLIPPED:
        # A cut-out's pixels are all product; otherwise a white backdrop is set apart first.
        out.append("The product looks overexposed (parts of it are plain white): reduce the light or tap on "
                   "the product so the camera exposes for it.")
    return tuple(out)


def _blown_share(g: np.ndarray) -> float:
    """Share of the product's pixels that are clipped white, on a (H, W) float luma image.

    White backdrops are the norm for product photos, so clipped white that reaches the frame's
    edge is backdrop, and so is an enclosed white patch framed by darker pixels (a gap in the
    product showing the backdrop). What stays clipped is the product's own blown highlights. A
    frame that is all backdrop (nothing else left) is blown out as a whole.
    """
    import cv2

    clipped = (g >= _CLIPPED).astype(np.uint8)
    count, labels = cv2.connectedComponents(clipped, connectivity=8)
    if count <= 1:
        return 0.0
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    backdrop = np.zeros(count, bool)
    backdrop[edge] = True
    backdrop[0] = False
    # Mean luma of the 3-pixel ring around each enclosed patch (a dilated label image; where two
    # rings meet the higher label wins, which only blurs the call between neighbours).
    grown = cv2.dilate(labels.astype(np.float32), np.ones((7, 7), np.uint8)).astype(np.int64)
    ring = (clipped == 0) & (grown > 0)
    sums = np.bincount(grown[ring], weights=g[ring], minlength=count)
    sizes = np.bincount(grown[ring], minlength=count)
    ring_luma = np.where(sizes > 0, sums / np.maximum(sizes, 1), 255.0)
    backdrop |= ring_luma < _HIGHLIGHT_RING
    backdrop[0] = False
    product = ~backdrop[labels]
    if product.mean() < 0.02:
        return 1.0
    return float(np.mean(clipped[product]))
