"""Read back a GLB that `build_glb` wrote: the geometry, UVs and the encoded base-colour texture.

Only what adjusting a finished model needs, and only the layout Plinth writes (one node without
a transform, one mesh, one triangle primitive, one material with an embedded image); anything else
is refused with one plain line rather than guessed at.
"""

from __future__ import annotations

import io
import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from .config import STAGE

_COMPONENTS = {5121: np.uint8, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}
_WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3}
_NOT_OURS = "This file is not a model Plinth made ({}), so it cannot be adjusted."


@dataclass(frozen=True)
class StoredModel:
    """A GLB's contents in its own (product) frame."""

    name: str
    points: np.ndarray  # (V, 3) float64 metres
    faces: np.ndarray  # (F, 3) int64, counter-clockwise seen from outside
    uv: np.ndarray  # (V, 2) float32, glTF convention (v = 0 at the top)
    encoded_texture: bytes  # the embedded JPEG/PNG, byte for byte
    texture: np.ndarray  # (S, S, 3) uint8 sRGB, decoded from it


def read_glb(path: str | Path) -> StoredModel:
    """Parse `path`; InputError (stage "export") for a file that is missing, damaged or not ours."""
    from PIL import Image, UnidentifiedImageError

    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        raise InputError(STAGE, f"The model file could not be read ({error.strerror or error}).") from None
    try:
        doc, binary = _chunks(raw)
        prim = _only(_only(doc.get("meshes"), "meshes").get("primitives"), "primitives")
        node = _only(doc.get("nodes"), "nodes")
        if prim.get("mode", 4) != 4 or any(k in node for k in ("matrix", "rotation", "scale", "translation")):
            raise ValueError("not a plain triangle mesh")
        attributes = prim["attributes"]
        points = _accessor(doc, binary, attributes["POSITION"], "VEC3").astype(np.float64)
        uv = _accessor(doc, binary, attributes["TEXCOORD_0"], "VEC2").astype(np.float32)
        faces = _accessor(doc, binary, prim["indices"], "SCALAR").astype(np.int64).reshape(-1, 3)
        material = doc["materials"][prim["material"]]
        texture = doc["textures"][material["pbrMetallicRoughness"]["baseColorTexture"]["index"]]
        encoded = _view(doc, binary, doc["images"][texture["source"]]["bufferView"])
    except (KeyError, IndexError, TypeError, ValueError, struct.error) as error:
        raise InputError(STAGE, _NOT_OURS.format(error)) from None
    if len(points) != len(uv) or len(faces) == 0 or faces.min() < 0 or faces.max() >= len(points):
        raise InputError(STAGE, _NOT_OURS.format("its faces and points do not match"))
    if not np.isfinite(points).all():
        raise InputError(STAGE, _NOT_OURS.format("its points are not numbers"))
    try:
        with Image.open(io.BytesIO(encoded)) as im:
            pixels = np.array(im.convert("RGB"), np.uint8)  # writable: torch warns on read-only arrays
    except (UnidentifiedImageError, OSError) as error:
        raise InputError(STAGE, _NOT_OURS.format(f"its texture cannot be read: {error}")) from None
    name = str((doc.get("scenes") or [{}])[0].get("name") or node.get("name") or "")
    return StoredModel(name=name, points=points, faces=faces, uv=uv, encoded_texture=bytes(encoded), texture=pixels)


def _chunks(raw: bytes) -> tuple[dict, bytes]:
    magic, version, total = struct.unpack_from("<4sII", raw, 0)
    if magic != b"glTF" or version != 2 or total != len(raw):
        raise ValueError("not a glTF 2.0 binary")
    length, kind = struct.unpack_from("<I4s", raw, 12)
    if kind != b"JSON":
        raise ValueError("no JSON chunk")
    doc = json.loads(raw[20:20 + length])
    rest = 20 + length
    bin_length, bin_kind = struct.unpack_from("<I4s", raw, rest)
    if bin_kind != b"BIN\0":
        raise ValueError("no binary chunk")
    return doc, raw[rest + 8:rest + 8 + bin_length]


def _only(items, what: str) -> dict:
    if not isinstance(items, list) or len(items) != 1:
        raise ValueError(f"{len(items) if isinstance(items, list) else 'no'} {what}, not one")
    return items[0]


def _view(doc: dict, binary: bytes, index: int) -> bytes:
    view = doc["bufferViews"][index]
    if view.get("buffer", 0) != 0:
        raise ValueError("an external buffer")
    start = int(view.get("byteOffset", 0))
    end = start + int(view["byteLength"])
    if end > len(binary):
        raise ValueError("a buffer view past the end of the data")
    return binary[start:end]


def _accessor(doc: dict, binary: bytes, index: int, kind: str) -> np.ndarray:
    acc = doc["accessors"][index]
    if acc.get("type") != kind or acc.get("sparse") or acc.get("normalized"):
        raise ValueError(f"accessor {index} is not a plain {kind}")
    dtype = np.dtype(_COMPONENTS[acc["componentType"]])
    width = _WIDTH[kind]
    view = doc["bufferViews"][acc["bufferView"]]
    if view.get("byteStride", dtype.itemsize * width) != dtype.itemsize * width:
        raise ValueError("interleaved data")
    data = _view(doc, binary, acc["bufferView"])
    offset, count = int(acc.get("byteOffset", 0)), int(acc["count"])
    values = np.frombuffer(data, dtype, count * width, offset)
    return values.reshape(count, width) if width > 1 else values
