"""Held-out check for the texture stage: render the textured model into photos left out of the bake.

The mean absolute colour difference (0..255) inside the object mask tells how well geometry, poses
and texture agree in a view that did not paint the texture, the honest photometric error.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..geom import project_torch
from ..raster import rasterize
from ..types import Camera
from .views import grid_sample_colour


def pick_heldout(views: Sequence[Camera | None], count: int, min_views: int) -> tuple[int, ...]:
    """Evenly spaced placed photos to leave out of the bake; never photo 0 (the front view)."""
    placed = [i for i, cam in enumerate(views) if cam is not None and i != 0]
    if count <= 0 or len(placed) + 1 < min_views:
        return ()
    step = len(placed) / count
    return tuple(placed[int(step * (k + 0.5))] for k in range(count))


def heldout_error(
    camera: Camera, rgb: np.ndarray, mask: np.ndarray, vertices: np.ndarray, faces: np.ndarray,
    uv: np.ndarray, texture: np.ndarray, size: int, device: str,
) -> float | None:
    """Mean abs RGB error of the textured mesh rendered into one photo at `size` px long side.

    vertices (V, 3), faces (F, 3), uv (V, 2) glTF convention, texture (S, S, 3) uint8.
    Returns None when the model covers almost nothing of the photo's mask.
    """
    import cv2

    h, w = rgb.shape[:2]
    scale = min(1.0, size / max(w, h))
    sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
    dev = torch.device(device)
    R = torch.as_tensor(camera.R, dtype=torch.float32, device=dev)
    t = torch.as_tensor(camera.t, dtype=torch.float32, device=dev)
    v = torch.as_tensor(vertices, dtype=torch.float32, device=dev)
    f = torch.as_tensor(faces, dtype=torch.long, device=dev)
    K = torch.as_tensor(camera.K, dtype=torch.float32, device=dev)
    pix, z = project_torch(K, R, t, v, camera.orthographic)
    face_id, bary, _ = rasterize(((pix + 0.5) * scale - 0.5)[f], sw, sh, z[f])

    small_mask = cv2.resize(np.asarray(mask, np.uint8), (sw, sh), interpolation=cv2.INTER_NEAREST)
    small_mask = cv2.erode(small_mask, np.ones((3, 3), np.uint8)) > 0  # edges mix object and background
    drawn = (face_id >= 0).cpu().numpy()
    valid = drawn & small_mask
    if valid.sum() < 0.2 * max(1, small_mask.sum()):
        return None
    valid_t = torch.as_tensor(valid, device=dev)
    fid = face_id[valid_t]
    uv_t = torch.as_tensor(uv, dtype=torch.float32, device=dev)
    texel = (uv_t[f[fid]] * bary[valid_t][..., None]).sum(1)  # (N, 2) in [0, 1]
    tex = torch.as_tensor(np.ascontiguousarray(texture), device=dev).permute(2, 0, 1)[None]
    rendered = grid_sample_colour(tex, texel * 2 - 1)
    photo = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA)
    observed = torch.as_tensor(photo, dtype=torch.float32, device=dev)[valid_t]
    return float((rendered - observed).abs().mean())
