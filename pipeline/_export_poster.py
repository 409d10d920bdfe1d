"""Poster image: a CPU software render of the textured model from a 3/4 front view.

The rasteriser is the texture stage's small torch rasteriser (see the report note: it belongs in a
shared module). The view is a long-lens perspective from azimuth 25 deg, elevation 20 deg, framed so
the object fills about 80% of the square, with Lambert shading and a soft ground shadow.
"""

from __future__ import annotations

import numpy as np


def render_poster(
    points: np.ndarray, faces: np.ndarray, normals: np.ndarray, uv: np.ndarray, texture: np.ndarray,
    size: int = 800, azimuth_deg: float = 25.0, elevation_deg: float = 20.0, fill: float = 0.8,
    supersample: float = 1.5,
) -> np.ndarray:
    """Render (size, size, 3) uint8 on white. points/normals (V, 3) product frame (+Y up, +Z front)."""
    import cv2
    import torch
    import torch.nn.functional as F

    from .raster import rasterize

    n = int(round(size * supersample))
    p = torch.as_tensor(points, dtype=torch.float32)
    f = torch.as_tensor(np.asarray(faces), dtype=torch.long)
    lo, hi = p.min(0).values, p.max(0).values
    centre = (lo + hi) / 2
    diag = float((hi - lo).norm()) or 1.0
    az, el = np.radians(azimuth_deg), np.radians(elevation_deg)
    back = torch.tensor([np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el)], dtype=torch.float32)
    eye = centre + back * 4.0 * diag  # long lens: little perspective distortion
    z_axis = -back
    x_axis = torch.linalg.cross(z_axis, torch.tensor([0.0, 1.0, 0.0]))
    x_axis = x_axis / x_axis.norm()
    y_axis = torch.linalg.cross(z_axis, x_axis)  # camera y points down
    R = torch.stack([x_axis, y_axis, z_axis])

    def to_pixels(q: torch.Tensor):
        cam = (q - eye) @ R.T
        return cam[:, :2] / cam[:, 2:3], cam[:, 2]

    ground = p.clone()
    ground[:, 1] = lo[1]
    xy, z = to_pixels(p)
    gxy, gz = to_pixels(ground)
    both = torch.cat([xy, gxy[:: max(1, len(gxy) // 2000)]])
    span = (both.max(0).values - both.min(0).values).max().clamp_min(1e-9)
    scale = fill * (n - 1) / float(span)
    mid = (xy.max(0).values + xy.min(0).values) / 2
    pix = (xy - mid) * scale + (n - 1) / 2
    gpix = (gxy - mid) * scale + (n - 1) / 2

    fid, bary, _ = rasterize(pix[f], n, n, z[f])
    hit = fid >= 0
    fh, bh = fid[hit], bary[hit][..., None]
    corners = f[fh]
    uvs = (torch.as_tensor(uv, dtype=torch.float32)[corners] * bh).sum(1)
    nrm = (torch.as_tensor(normals, dtype=torch.float32)[corners] * bh).sum(1)
    nrm = nrm / nrm.norm(dim=1, keepdim=True).clamp_min(1e-9)
    tex = torch.as_tensor(texture).permute(2, 0, 1)[None].float()
    grid = (uvs * 2 - 1)[None, None]
    colour = F.grid_sample(tex, grid, mode="bilinear", padding_mode="border", align_corners=False)[0, :, 0].T
    # Key light from the upper left of the camera plus a soft fill; faces seen from behind stay lit.
    light = -z_axis * 0.6 - y_axis * 0.7 - x_axis * 0.4
    light = light / light.norm()
    facing = torch.where(((nrm @ z_axis) > 0)[:, None], -nrm, nrm)
    shade = 0.5 + 0.6 * (facing @ light).clamp_min(0) + 0.1 * (-(facing @ z_axis)).clamp_min(0)
    colour = (colour * shade[:, None]).clamp(0, 255)

    image = np.full((n, n, 3), 255.0, np.float32)
    # Soft contact shadow: the footprint of the object dropped onto its ground plane, blurred.
    # It is blurred anyway, so a quarter-size raster is plenty.
    q = max(8, n // 4)
    gid, _, _ = rasterize((gpix[f] + 0.5) * (q / n) - 0.5, q, q, gz[f])
    shadow = cv2.GaussianBlur((gid >= 0).numpy().astype(np.float32), (0, 0), 0.02 * q)
    shadow = cv2.resize(shadow, (n, n), interpolation=cv2.INTER_LINEAR)
    image *= (1.0 - 0.3 * shadow)[..., None]
    image[hit.numpy()] = colour.numpy()
    if n != size:
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)
