"""Strip metadata (EXIF, GPS, XMP, comments) from every file we publish.

Original photos can carry GPS positions. The pipeline bakes textures from pixels, but published
files are cleaned here anyway so that no future change can leak a location: JPEG APPn/COM
segments and PNG text/EXIF chunks are dropped from images embedded in the GLB and USDZ, and the
poster is re-encoded from its pixels.
"""

from __future__ import annotations

import io
import json
import shutil
import struct
import zipfile
from pathlib import Path

_JPEG_KEEP_APP = {0xE0, 0xEE}  # JFIF header and Adobe colour-transform flag carry no metadata
_PNG_DROP = {b"eXIf", b"tEXt", b"zTXt", b"iTXt", b"tIME"}
_GLB_MAGIC, _JSON_CHUNK, _BIN_CHUNK = 0x46546C67, 0x4E4F534A, 0x004E4942


def strip_image(data: bytes) -> bytes:
    """JPEG or PNG bytes without metadata (pixels untouched); other data returned as is."""
    if data[:2] == b"\xff\xd8":
        return _strip_jpeg(data)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return _strip_png(data)
    return data


def _strip_jpeg(data: bytes) -> bytes:
    out, i = bytearray(b"\xff\xd8"), 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0xDA:  # start of scan: the rest is image data
            break
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        segment = data[i:i + 2 + length]
        is_meta = (0xE1 <= marker <= 0xEF and marker not in _JPEG_KEEP_APP) or marker == 0xFE
        if not is_meta:
            out += segment
        i += 2 + length
    out += data[i:]
    return bytes(out)


def _strip_png(data: bytes) -> bytes:
    out, i = bytearray(data[:8]), 8
    while i + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[i:i + 8])
        end = i + 12 + length
        if kind not in _PNG_DROP:
            out += data[i:end]
        i = end
    return bytes(out)


def has_metadata(data: bytes) -> bool:
    return strip_image(data) != data


def clean_glb(src: Path, dst: Path) -> None:
    """Copy a GLB, stripping metadata from its embedded images (buffer views are repacked)."""
    raw = Path(src).read_bytes()
    magic, _version, _length = struct.unpack("<III", raw[:12])
    if magic != _GLB_MAGIC:
        raise ValueError(f"{src} is not a GLB file")
    json_len, json_type = struct.unpack("<II", raw[12:20])
    doc = json.loads(raw[20:20 + json_len])
    rest = raw[20 + json_len:]
    binary = b""
    if len(rest) >= 8:
        bin_len, bin_type = struct.unpack("<II", rest[:8])
        if bin_type == _BIN_CHUNK:
            binary = rest[8:8 + bin_len]
    views = doc.get("bufferViews", [])
    image_views = {img["bufferView"] for img in doc.get("images", []) if "bufferView" in img}
    pieces = [binary[v.get("byteOffset", 0):v.get("byteOffset", 0) + v["byteLength"]] for v in views]
    changed = False
    for index in image_views:
        cleaned = strip_image(pieces[index])
        changed |= cleaned != pieces[index]
        pieces[index] = cleaned
    if not changed or any(v.get("buffer", 0) != 0 for v in views):
        shutil.copyfile(src, dst)
        return
    packed = bytearray()
    for view, piece in zip(views, pieces):
        packed += b"\0" * (-len(packed) % 4)  # accessors need 4-byte aligned views
        view["byteOffset"], view["byteLength"] = len(packed), len(piece)
        packed += piece
    packed += b"\0" * (-len(packed) % 4)
    doc["buffers"][0]["byteLength"] = len(packed)
    text = json.dumps(doc, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    body = struct.pack("<II", len(text), _JSON_CHUNK) + text + struct.pack("<II", len(packed), _BIN_CHUNK) + packed
    Path(dst).write_bytes(struct.pack("<III", _GLB_MAGIC, 2, 12 + len(body)) + body)


def clean_usdz(src: Path, dst: Path) -> None:
    """Copy a USDZ, rewriting it (stored, 64-byte aligned, as USDZ requires) only if an image has metadata."""
    with zipfile.ZipFile(src) as zf:
        entries = [(info, zf.read(info)) for info in zf.infolist()]
    cleaned = [(info, strip_image(data)) for info, data in entries]
    if all(a[1] == b[1] for a, b in zip(entries, cleaned)):
        shutil.copyfile(src, dst)
        return
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as out:
        for info, data in cleaned:
            name = info.filename.encode()
            offset = buf.tell() + 30 + len(name) + 4
            pad = -offset % 64
            entry = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            entry.extra = struct.pack("<HH", 0x1986, pad) + b"\0" * pad
            out.writestr(entry, data)
    Path(dst).write_bytes(buf.getvalue())


def clean_poster(src: Path, dst: Path) -> None:
    """Re-encode the poster from its pixels (PNG, no text/EXIF chunks)."""
    from PIL import Image

    with Image.open(src) as im:
        im.load()
        mode = "RGBA" if im.mode in ("RGBA", "LA", "P") else "RGB"
        pixels = Image.new(mode, im.size)
        pixels.paste(im.convert(mode))
    pixels.save(dst, format="PNG", optimize=True)
