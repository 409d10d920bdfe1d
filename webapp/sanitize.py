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


# ---------------------------------------------------------------- originals: location only
#
# Photos kept for the pipeline (a job's uploads, a model's photos/) must still give the same pixels,
# orientation and focal length, so they cannot be re-encoded or stripped bare: only what says where
# or who goes. EXIF is rebuilt from a short list of tags the pipeline reads or that say nothing about
# a place or a person.

_KEEP_IFD0 = {0x010F, 0x0110, 0x0112, 0x011A, 0x011B, 0x0128}  # Make, Model, Orientation, resolution
_KEEP_EXIF = {0x920A, 0xA405, 0xA001, 0xA002, 0xA003}  # FocalLength(+35mm), ColorSpace, pixel size
_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_TIFF_TYPE_SIZE = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8}


def strip_location(data: bytes) -> bytes:
    """Photo bytes without GPS or other location/identity metadata; pixels bit-identical.

    Kept: EXIF Orientation, FocalLength, FocalLengthIn35mmFilm, Make, Model (the pipeline reads
    orientation and focal length), plus ICC colour profiles. Dropped: the GPS IFD, every other EXIF
    tag (maker notes, serial numbers, owner, dates), XMP, IPTC, comments.

    * JPEG: rewritten losslessly (the Exif APP1 segment is rebuilt, metadata segments and anything
      after the end of the image, such as MPF preview images, are dropped; the scans are copied).
    * PNG: eXIf, tEXt, zTXt, iTXt and tIME chunks are dropped.
    * WebP: the EXIF chunk is rebuilt as for JPEG and the XMP chunk dropped.
    * HEIC/HEIF and other containers cannot be rewritten here without re-encoding, so the GPS IFD
      and any XMP packet are blanked in place (same length, every offset stays valid); anything else
      is returned unchanged.
    """
    try:
        if data[:2] == b"\xff\xd8":
            return _locationless_jpeg(data)
        if data[:8] == b"\x89PNG\r\n\x1a\n":
            return _strip_png(data)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _locationless_webp(data)
        if data[4:8] == b"ftyp":
            return _blank_in_place(data)
    except (ValueError, IndexError, struct.error):
        pass  # malformed: fall through to the in-place blanking, which never changes a length
    return _blank_in_place(data)


def _kept_exif(tiff: bytes) -> bytes | None:
    """TIFF-format EXIF (no 'Exif\\0\\0' prefix) with only the kept tags; None: nothing worth keeping."""
    from PIL import Image

    old = Image.Exif()
    old.load(b"Exif\x00\x00" + tiff)
    new = Image.Exif()
    for tag, value in old.items():
        if tag in _KEEP_IFD0:
            new[tag] = value
    sub = {tag: value for tag, value in old.get_ifd(_EXIF_IFD).items() if tag in _KEEP_EXIF}
    if sub:
        new.get_ifd(_EXIF_IFD).update(sub)
    if not len(new) and not sub:
        return None
    out = new.tobytes()
    return out[6:] if out.startswith(b"Exif\x00\x00") else out


def _locationless_jpeg(data: bytes) -> bytes:
    out, i = bytearray(b"\xff\xd8"), 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        if marker == 0xDA:
            break
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        segment, body = data[i:i + 2 + length], data[i + 4:i + 2 + length]
        i += 2 + length
        if marker == 0xE1 and body.startswith(b"Exif\x00\x00"):
            try:
                kept = _kept_exif(body[6:])
            except Exception:  # unreadable EXIF: the pipeline could not read it either, so drop it
                kept = None
            if kept is not None and len(kept) + 8 <= 0xFFFF:
                out += b"\xff\xe1" + struct.pack(">H", len(kept) + 8) + b"Exif\x00\x00" + kept
            continue
        if marker == 0xE2 and body.startswith(b"ICC_PROFILE\x00"):
            out += segment
            continue
        if (0xE1 <= marker <= 0xEF and marker not in _JPEG_KEEP_APP) or marker == 0xFE:
            continue
        out += segment
    out += data[i:_jpeg_end(data, i)]
    return bytes(out)


def _jpeg_end(data: bytes, i: int) -> int:
    """Index just past the EOI of the image whose first scan starts at `i` (len(data) if none).

    Inside entropy-coded data 0xFF is followed only by 0x00 (stuffing) or RST0-7, so the next
    other marker is a real one; segments between scans (progressive JPEG) carry their length."""
    n = len(data)
    while i + 4 <= n and data[i] == 0xFF:
        marker = data[i + 1]
        if marker == 0xD9:
            return i + 2
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        i += 2 + length
        if marker != 0xDA:
            continue
        while i + 1 < n:  # entropy-coded scan data
            if data[i] == 0xFF and data[i + 1] not in (0x00, 0xFF) and not 0xD0 <= data[i + 1] <= 0xD7:
                break
            i += 1
    return n


def _locationless_webp(data: bytes) -> bytes:
    chunks, i = [], 12
    while i + 8 <= len(data):
        kind, size = data[i:i + 4], struct.unpack("<I", data[i + 4:i + 8])[0]
        payload = data[i + 8:i + 8 + size]
        i += 8 + size + (size & 1)
        if kind == b"XMP ":
            continue
        if kind == b"EXIF":
            tiff = payload[6:] if payload.startswith(b"Exif\x00\x00") else payload
            try:
                kept = _kept_exif(tiff)
            except Exception:
                kept = None
            if kept is None:
                continue
            payload = kept
        chunks.append([kind, payload])
    has = {kind for kind, _ in chunks}
    for chunk in chunks:
        if chunk[0] == b"VP8X":  # feature flags: EXIF 0x08, XMP 0x04
            flags = chunk[1][0] & ~0x04 & ~(0 if b"EXIF" in has else 0x08)
            chunk[1] = bytes([flags]) + chunk[1][1:]
    body = b"".join(kind + struct.pack("<I", len(p)) + p + (b"\0" if len(p) & 1 else b"") for kind, p in chunks)
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


def _blank_in_place(data: bytes) -> bytes:
    """Empty every GPS IFD found in embedded TIFF/EXIF blocks and space out XMP packets; same length."""
    buf = bytearray(data)
    for header in (b"MM\x00\x2a\x00\x00\x00\x08", b"II\x2a\x00\x08\x00\x00\x00"):
        start = buf.find(header)
        while start >= 0:
            try:
                _blank_gps(buf, start)
            except (IndexError, struct.error):
                pass
            start = buf.find(header, start + 1)
    start = buf.find(b"<x:xmpmeta")
    while start >= 0:
        end = buf.find(b"</x:xmpmeta>", start)
        if end < 0:
            break
        end += len(b"</x:xmpmeta>")
        buf[start:end] = b" " * (end - start)  # XMP allows whitespace padding; offsets are unchanged
        start = buf.find(b"<x:xmpmeta", end)
    return bytes(buf)


def _blank_gps(buf: bytearray, base: int) -> None:
    """Zero the GPS IFD (entries and values) of the TIFF block at `base`, leaving it empty (0 entries)."""
    end = ">" if buf[base:base + 2] == b"MM" else "<"
    ifd = base + struct.unpack(end + "I", buf[base + 4:base + 8])[0]
    count = struct.unpack(end + "H", buf[ifd:ifd + 2])[0]
    if not 0 < count < 1000 or ifd + 2 + 12 * count > len(buf):
        return
    for k in range(count):
        tag, kind, n, value = struct.unpack(end + "HHII", buf[ifd + 2 + 12 * k:ifd + 14 + 12 * k])
        if tag != _GPS_IFD or kind not in (4, 13):
            continue
        gps = base + value
        entries = struct.unpack(end + "H", buf[gps:gps + 2])[0]
        if gps + 2 + 12 * entries + 4 > len(buf):
            return
        for j in range(entries):
            e = gps + 2 + 12 * j
            _t, gkind, gn, goff = struct.unpack(end + "HHII", buf[e:e + 12])
            size = _TIFF_TYPE_SIZE.get(gkind, 1) * gn
            if size > 4 and base + goff + size <= len(buf):
                buf[base + goff:base + goff + size] = bytes(size)
        buf[gps:gps + 2 + 12 * entries] = bytes(2 + 12 * entries)  # count 0, entries zeroed
