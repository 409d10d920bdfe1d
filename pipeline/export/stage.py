"""Export stage: GLB, USDZ, OBJ zip and a poster PNG, all in the product frame.

This is the only place geometry is mapped into the product frame (metres, +Y up, +Z front,
origin at the bottom centre), by applying `TexturedMesh.placement` once. Every file is written to
a temporary name in the target folder and renamed, so a half-written file is never served.
"""

from __future__ import annotations

import io
import json
import math
import struct
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from .. import geom
from ..errors import CaptureError, InputError
from ..files import atomic_write
from ..types import Adjusted, Adjustment, AdjustPreview, Exports, TexturedMesh
from .adjust import placed
from .config import GENERATOR, PRESETS, STAGE, ExportConfig
from .gltf_read import read_glb


def export_all(textured: TexturedMesh, out_glb: Path, cfg: ExportConfig, name: str,
               encoded_texture: bytes | None = None) -> Exports:
    """Write `<stem>.glb`, `<stem>.usdz`, `<stem>.obj.zip` and `<stem>.poster.png` beside out_glb.

    `encoded_texture`: `textured.texture` as already encoded (the JPEG of an earlier export, when a
    model is adjusted), used as is while the GLB fits the cap, so the texture is never re-compressed.
    """
    from PIL import Image

    out_glb = Path(out_glb)
    points, faces, normals, uv = product_geometry(textured)
    texture = np.asarray(textured.texture, np.uint8)
    _check(textured, texture)

    glb, jpeg, tex_size = _fit_glb(points, faces, normals, uv, texture, name, cfg, encoded_texture)
    out_glb.parent.mkdir(parents=True, exist_ok=True)  # only now: a cap it cannot meet leaves nothing
    atomic_write(out_glb, glb)
    stem = out_glb.with_suffix("")
    paths = {k: Path(f"{stem}{suffix}") for k, suffix in
             (("usdz", ".usdz"), ("obj", ".obj.zip"), ("poster", ".poster.png"))}
    if cfg.usdz:
        from .usdz import write_usdz

        write_usdz(paths["usdz"], points, faces, normals, uv, jpeg, "jpg", name, cfg.roughness)
    if cfg.obj:
        atomic_write(paths["obj"], _obj_zip(points, faces, normals, uv, jpeg, name))
    if cfg.poster:
        from .poster import render_poster

        img = render_poster(points, faces, normals, uv, texture, size=cfg.poster_size,
                            azimuth_deg=cfg.poster_yaw_deg, elevation_deg=cfg.poster_pitch_deg,
                            supersample=cfg.poster_supersample, background=cfg.poster_background)
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="PNG", optimize=False)
        atomic_write(paths["poster"], buf.getvalue())
    return Exports(
        glb=str(out_glb), usdz=str(paths["usdz"]) if cfg.usdz else "",
        obj_zip=str(paths["obj"]) if cfg.obj else "", poster=str(paths["poster"]) if cfg.poster else "",
        triangles=int(len(faces)), glb_bytes=len(glb), texture_size=tex_size,
    )


def adjust_model(source_glb: str | Path, adjustment: Adjustment, out_glb: str | Path,
                 cfg: ExportConfig | None = None, name: str = "") -> Adjusted:
    """Write `out_glb` and its USDZ, OBJ zip and poster (as `export_all` names them) from the
    original `source_glb` with `adjustment` applied. InputError for a file that is not ours or a
    size that cannot apply; nothing is written then."""
    if not isinstance(adjustment, Adjustment):
        raise InputError(STAGE, f"Expected an Adjustment, not {type(adjustment).__name__}.")
    stored = read_glb(source_glb)
    textured, dims = placed(stored, adjustment)
    base = cfg or PRESETS["balanced"]
    # The original met its own cap with this texture: a larger cap it was made under still holds.
    cap = max(base.max_bytes, Path(source_glb).stat().st_size + 4096)
    cfg = replace(base, max_bytes=cap, poster_yaw_deg=adjustment.poster_yaw_deg,
                  poster_pitch_deg=adjustment.poster_pitch_deg, poster_background=adjustment.background)
    exports = export_all(textured, Path(out_glb), cfg, name or stored.name or "Model",
                         encoded_texture=stored.encoded_texture)
    return Adjusted(exports=exports, dimensions_m=dims)


def preview_adjustment(source_glb: str | Path, adjustment: Adjustment, size: int = 360) -> AdjustPreview:
    """The poster view of `source_glb` with `adjustment` applied, and the size it would have.
    Nothing is written."""
    from .poster import render_poster

    textured, dims = placed(read_glb(source_glb), adjustment)
    points, faces, normals, uv = product_geometry(textured)
    image = render_poster(points, faces, normals, uv, textured.texture, size=int(size),
                          azimuth_deg=adjustment.poster_yaw_deg, elevation_deg=adjustment.poster_pitch_deg,
                          supersample=1.0, background=adjustment.background)
    return AdjustPreview(image=image, dimensions_m=dims)


def product_geometry(textured: TexturedMesh) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Apply the placement once: points (V, 3) float32 metres, faces (F, 3) CCW, unit normals, uv."""
    P = np.asarray(textured.placement, float)
    points = geom.apply(P, np.asarray(textured.vertices, float))
    faces = np.asarray(textured.faces, np.int64)
    if np.linalg.det(P[:3, :3]) < 0:  # a mirroring placement would turn the mesh inside out
        faces = faces[:, ::-1]
    return points.astype(np.float32), faces, vertex_normals(points, faces), np.asarray(textured.uv, np.float32)


def vertex_normals(points: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 3) float32 area-weighted normals, shared by vertices at the same position (no seam lines)."""
    _, weld = np.unique(points, axis=0, return_inverse=True)
    weld = weld.ravel()
    p = points.astype(np.float64)
    fn = np.cross(p[faces[:, 1]] - p[faces[:, 0]], p[faces[:, 2]] - p[faces[:, 0]])
    acc = np.zeros((weld.max() + 1, 3))
    for k in range(3):
        np.add.at(acc, weld[faces[:, k]], fn)
    n = acc[weld]
    length = np.linalg.norm(n, axis=1, keepdims=True)
    n = np.where(length > 1e-20, n / np.maximum(length, 1e-20), [0.0, 1.0, 0.0])
    return n.astype(np.float32)


def _check(textured: TexturedMesh, texture: np.ndarray) -> None:
    s = texture.shape[0]
    if texture.ndim != 3 or texture.shape[1] != s or texture.shape[2] != 3 or s & (s - 1):
        raise InputError(STAGE, f"The texture must be square with a power-of-two side, not {texture.shape}.")
    if len(textured.faces) == 0 or len(textured.uv) != len(textured.vertices):
        raise InputError(STAGE, "The model has no surface or its texture coordinates do not match.")


def _jpeg(texture: np.ndarray, quality: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    # 4:4:4 chroma at high quality keeps small coloured print crisp; optimize=True breaks on big noisy images.
    Image.fromarray(texture).save(buf, format="JPEG", quality=int(quality), subsampling=0 if quality >= 90 else 2)
    return buf.getvalue()


def _fit_glb(points, faces, normals, uv, texture, name, cfg: ExportConfig,
             encoded: bytes | None = None) -> tuple[bytes, bytes, int]:
    """Encode the GLB, lowering JPEG quality and then texture size until it is under the cap
    (an already encoded texture first, as it is)."""
    import cv2

    if encoded is not None:
        glb = build_glb(points, faces, normals, uv, encoded, name, cfg.roughness)
        if len(glb) <= cfg.max_bytes:
            return glb, encoded, int(texture.shape[0])
    tex = texture
    while True:
        quality = cfg.jpeg_quality
        while True:
            jpeg = _jpeg(tex, quality)
            glb = build_glb(points, faces, normals, uv, jpeg, name, cfg.roughness)
            if len(glb) <= cfg.max_bytes or quality <= cfg.min_jpeg_quality:
                break
            quality = max(cfg.min_jpeg_quality, quality - 10)
        if len(glb) <= cfg.max_bytes:
            return glb, jpeg, int(tex.shape[0])
        if tex.shape[0] <= 64:  # nothing left to shrink: never write a file over the merchant's cap
            need = math.ceil(len(glb) / 1e4) / 100
            raise CaptureError(STAGE, f"This model cannot be made under {cfg.max_bytes / 1e6:g} MB; "
                               f"it needs at least {need:.2f} MB.", "Allow a larger size (--max-mb) "
                               "or fewer triangles (--max-triangles).")
        half = tex.shape[0] // 2
        tex = cv2.resize(tex, (half, half), interpolation=cv2.INTER_AREA)


def build_glb(points, faces, normals, uv, image: bytes, name: str, roughness: float = 0.8) -> bytes:
    """glTF 2.0 binary: one node/mesh/primitive, one PBR material with an embedded JPEG base colour."""
    n_vert = len(points)
    index_type, index_fmt = (5123, np.uint16) if n_vert < 65536 else (5125, np.uint32)
    chunks = [
        np.ascontiguousarray(faces, index_fmt).tobytes(),
        np.ascontiguousarray(points, np.float32).tobytes(),
        np.ascontiguousarray(normals, np.float32).tobytes(),
        np.ascontiguousarray(uv, np.float32).tobytes(),
        image,
    ]
    views, blob = [], bytearray()
    for data in chunks:
        blob += b"\0" * (-len(blob) % 4)  # accessors need 4-byte alignment
        views.append({"buffer": 0, "byteOffset": len(blob), "byteLength": len(data)})
        blob += data
    blob += b"\0" * (-len(blob) % 4)
    views[0]["target"] = 34963  # ELEMENT_ARRAY_BUFFER
    for v in views[1:4]:
        v["target"] = 34962  # ARRAY_BUFFER
    p32 = np.asarray(points, np.float32)
    doc = {
        "asset": {"version": "2.0", "generator": GENERATOR},
        "scene": 0,
        "scenes": [{"name": name, "nodes": [0]}],
        "nodes": [{"name": name, "mesh": 0}],
        "meshes": [{"name": name, "primitives": [{
            "attributes": {"POSITION": 1, "NORMAL": 2, "TEXCOORD_0": 3},
            "indices": 0, "material": 0, "mode": 4,
        }]}],
        "materials": [{
            "name": f"{name} material",
            "pbrMetallicRoughness": {
                "baseColorTexture": {"index": 0, "texCoord": 0},
                "metallicFactor": 0.0, "roughnessFactor": float(roughness),
            },
            "doubleSided": False,
        }],
        "textures": [{"sampler": 0, "source": 0}],
        "samplers": [{"magFilter": 9729, "minFilter": 9987, "wrapS": 10497, "wrapT": 10497}],
        "images": [{"bufferView": 4, "mimeType": "image/jpeg"}],
        "accessors": [
            {"bufferView": 0, "componentType": index_type, "count": int(faces.size), "type": "SCALAR"},
            {"bufferView": 1, "componentType": 5126, "count": n_vert, "type": "VEC3",
             "min": [float(x) for x in p32.min(0)], "max": [float(x) for x in p32.max(0)]},
            {"bufferView": 2, "componentType": 5126, "count": n_vert, "type": "VEC3"},
            {"bufferView": 3, "componentType": 5126, "count": n_vert, "type": "VEC2"},
        ],
        "bufferViews": views,
        "buffers": [{"byteLength": len(blob)}],
    }
    js = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    js += b" " * (-len(js) % 4)
    total = 12 + 8 + len(js) + 8 + len(blob)
    return b"".join([
        struct.pack("<4sII", b"glTF", 2, total),
        struct.pack("<I4s", len(js), b"JSON"), js,
        struct.pack("<I4s", len(blob), b"BIN\0"), bytes(blob),
    ])


def _obj_zip(points, faces, normals, uv, jpeg: bytes, name: str) -> bytes:
    """model.obj + model.mtl + texture.jpg; OBJ texture coordinates have v = 0 at the bottom."""
    out = io.StringIO()
    out.write(f"# {GENERATOR}: {' '.join(name.split())}\n# units: metres, +Y up, front faces +Z\nmtllib model.mtl\n")
    np.savetxt(out, points, fmt="v %.6f %.6f %.6f")
    np.savetxt(out, np.stack([uv[:, 0], 1.0 - uv[:, 1]], 1), fmt="vt %.6f %.6f")
    np.savetxt(out, normals, fmt="vn %.5f %.5f %.5f")
    out.write("usemtl material\n")
    f1 = np.asarray(faces) + 1
    np.savetxt(out, np.repeat(f1, 3, axis=1), fmt="f %d/%d/%d %d/%d/%d %d/%d/%d")
    mtl = ("newmtl material\nKa 1 1 1\nKd 1 1 1\nKs 0 0 0\nNs 10\nillum 1\nd 1\nmap_Kd texture.jpg\n")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("model.obj", out.getvalue())
        z.writestr("model.mtl", mtl)
        z.writestr("texture.jpg", jpeg, compress_type=zipfile.ZIP_STORED)
    return buf.getvalue()
