"""Poster image: a CPU software render of the textured model from a 3/4 front view.

The view is a long-lens perspective from azimuth 25 deg, elevation 20 deg (the merchant may pick
another angle when adjusting a model), framed so the object
fills about 80% of the square, with Lambert shading and a soft ground shadow. Faces are drawn with
OpenCV's polygon fill in back-to-front order (painter's algorithm, back faces culled): its cost
follows the covered pixels, whereas the shared edge-function rasteriser pays for each triangle's
bounding box, which the long sliver triangles of extruded shapes make huge (14 s vs 0.3 s).
"""

from __future__ import annotations

import numpy as np

from ..geom import project_torch


def render_poster(
    points: np.ndarray, faces: np.ndarray, normals: np.ndarray, uv: np.ndarray, texture: np.ndarray,
    size: int = 800, azimuth_deg: float = 25.0, elevation_deg: float = 20.0, fill: float = 0.8,
    supersample: float = 1.5, background: tuple[int, int, int] = (255, 255, 255),
) -> np.ndarray:
    """Render (size, size, 3) uint8 on `background` (sRGB). points/normals (V, 3) product frame
    (+Y up, +Z front); azimuth about +Y from the front, elevation above the horizon, in degrees."""
    import cv2
    import torch
    import torch.nn.functional as F

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
    t = -R @ eye
    unit_k = torch.eye(3)  # normalised image coordinates: the framing below picks the scale

    ground = p.clone()
    ground[:, 1] = lo[1]
    xy, z = project_torch(unit_k, R, t, p)
    gxy, _ = project_torch(unit_k, R, t, ground)
    both = torch.cat([xy, gxy[:: max(1, len(gxy) // 2000)]])
    span = (both.max(0).values - both.min(0).values).max().clamp_min(1e-9)
    scale = fill * (n - 1) / float(span)
    mid = (xy.max(0).values + xy.min(0).values) / 2
    pix = (xy - mid) * scale + (n - 1) / 2
    gpix = (gxy - mid) * scale + (n - 1) / 2

    fid, bary = _paint_faces(pix.numpy(), np.asarray(faces), z.numpy(), n)
    fid, bary = torch.from_numpy(fid), torch.from_numpy(bary)
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

    image = np.empty((n, n, 3), np.float32)
    image[:] = np.asarray(background, np.float32)
    # Soft contact shadow: the footprint of the object dropped onto its ground plane, blurred.
    # It is blurred anyway, so a quarter-size raster is plenty.
    q = max(8, n // 4)
    footprint = np.zeros((q, q), np.uint8)
    tri = np.round(((gpix[f] + 0.5) * (q / n) - 0.5).numpy() * 16).astype(np.int32)
    cv2.fillPoly(footprint, list(tri), 1, lineType=cv2.LINE_8, shift=4)
    shadow = cv2.GaussianBlur(footprint.astype(np.float32), (0, 0), 0.02 * q)
    shadow = cv2.resize(shadow, (n, n), interpolation=cv2.INTER_LINEAR)
    image *= (1.0 - 0.3 * shadow)[..., None]
    image[hit.numpy()] = colour.numpy()
    if n != size:
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _paint_faces(pix: np.ndarray, faces: np.ndarray, depth: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Face index (n, n) int64 (-1 empty) and barycentrics (n, n, 3) float32 of the nearest faces.

    pix (V, 2) pixel positions, faces (F, 3), depth (V,) camera depth (> 0 in front).
    """
    import cv2

    tri = pix[faces].astype(np.float64)  # (F, 3, 2)
    zf = depth[faces]
    # Outward faces keep their counter-clockwise turn in this camera (x right, y down, looking
    # along +z), which makes this cross product negative; positive ones face away and are culled.
    cross = ((tri[:, 1, 0] - tri[:, 0, 0]) * (tri[:, 2, 1] - tri[:, 0, 1])
             - (tri[:, 2, 0] - tri[:, 0, 0]) * (tri[:, 1, 1] - tri[:, 0, 1]))
    keep = np.nonzero((cross < 0) & (zf > 0).all(axis=1))[0]
    order = keep[np.argsort(-zf[keep].mean(axis=1))]  # far first, near faces paint over them
    ids = np.zeros((n, n, 3), np.uint8)
    pts = np.round(tri * 16).astype(np.int32)  # 4 fractional bits
    for i in order.tolist():
        k = i + 1
        cv2.fillConvexPoly(ids, pts[i], (k & 255, (k >> 8) & 255, (k >> 16) & 255), cv2.LINE_8, 4)
    fid = (ids[..., 0].astype(np.int64) | ids[..., 1].astype(np.int64) << 8 | ids[..., 2].astype(np.int64) << 16) - 1
    bary = np.zeros((n, n, 3), np.float32)
    ys, xs = np.nonzero(fid >= 0)
    t = tri[fid[ys, xs]]
    a, b, c = t[:, 0], t[:, 1], t[:, 2]
    den = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1])
    den = np.where(np.abs(den) < 1e-12, 1e-12, den)
    w1 = ((xs - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (ys - a[:, 1])) / den
    w2 = ((b[:, 0] - a[:, 0]) * (ys - a[:, 1]) - (xs - a[:, 0]) * (b[:, 1] - a[:, 1])) / den
    w = np.clip(np.stack([1 - w1 - w2, w1, w2], axis=1), 0, 1)  # edge pixels: clamp into the face
    bary[ys, xs] = w / w.sum(axis=1, keepdims=True).clip(1e-9)
    return fid, bary
