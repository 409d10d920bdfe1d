"""Per-view sampling for the texture bake: depth buffers, masks, projected colours and weights."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..geom import project_torch
from ..raster import push_pull, rasterize
from ..types import Camera


@dataclass
class View:
    """One usable photo prepared for sampling (tensors on the bake device)."""

    index: int
    camera: Camera
    image: torch.Tensor  # (1, 3, H, W) uint8 (kept small: many views stay loaded at once)
    feather: torch.Tensor  # (1, 1, H, W) uint8: 0 outside the eroded mask, ramps to 255 inside
    zbuf: torch.Tensor  # (h, w) float32 camera depth at reduced size (inf = empty)
    zscale: float  # depth-buffer pixels per photo pixel
    zshift: float  # added to depths before the z-test (orthographic views may have z <= 0)
    R: torch.Tensor  # (3, 3) float32
    t: torch.Tensor  # (3,)
    K: torch.Tensor  # (3, 3) float32
    fill: torch.Tensor | None = None  # (1, 3, H', W') photo with background filled from the object
    blur: torch.Tensor | None = None  # (1, 3, H', W') strongly blurred `fill`


def prepare_view(
    index: int, camera: Camera, rgb: np.ndarray, mask: np.ndarray, vertices: torch.Tensor,
    faces: torch.Tensor, depth_size: int, erode_px: int, feather_px: float, device: str,
) -> View:
    """Load a photo and its mask for sampling; rasterise the mesh into a small depth buffer."""
    import cv2

    h, w = rgb.shape[:2]
    m = np.asarray(mask, bool)
    if m.shape != (h, w):
        m = cv2.resize(m.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
    m8 = m.astype(np.uint8)
    if erode_px > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * erode_px + 1, 2 * erode_px + 1))
        m8 = cv2.erode(m8, kernel)
    dist = cv2.distanceTransform(m8, cv2.DIST_L2, 3)
    feather = np.clip(dist * (255.0 / max(feather_px, 1e-6)), 0.0, 255.0).astype(np.uint8)
    image = torch.from_numpy(np.array(rgb, dtype=np.uint8, copy=True)).to(device).permute(2, 0, 1)[None]

    R = torch.as_tensor(camera.R, dtype=torch.float32, device=device)
    t = torch.as_tensor(camera.t, dtype=torch.float32, device=device)
    K = torch.as_tensor(camera.K, dtype=torch.float32, device=device)
    zscale = min(1.0, depth_size / max(w, h))
    zw, zh = max(1, round(w * zscale)), max(1, round(h * zscale))
    pix, z = project_torch(K, R, t, vertices, camera.orthographic)
    zpix = (pix + 0.5) * zscale - 0.5
    zshift = float(1.0 - z.min()) if camera.orthographic else 0.0
    zbuf = rasterize(zpix[faces], zw, zh, (z + zshift)[faces])[2]
    return View(index, camera, image, torch.from_numpy(feather).to(device)[None, None], zbuf,
                zscale, zshift, R, t, K)


def add_fill(view: View, blur_frac: float) -> None:
    """Give the view a background-free copy (holes filled from the object) and a blurred one."""
    import cv2

    img = view.image[0].permute(1, 2, 0).cpu().numpy().astype(np.float32)
    valid = view.feather[0, 0].cpu().numpy() > 0
    h, w = valid.shape
    if not valid.any():
        valid = np.ones_like(valid)
    # Half size is plenty for colours that only fill unseen surfaces.
    small = cv2.resize(img, (max(1, w // 2), max(1, h // 2)), interpolation=cv2.INTER_AREA)
    svalid = cv2.resize(valid.astype(np.uint8), (small.shape[1], small.shape[0]), interpolation=cv2.INTER_NEAREST) > 0
    if not svalid.any():
        svalid = np.ones_like(svalid)
    filled = push_pull(small, svalid)
    ys, xs = np.nonzero(svalid)
    extent = max(int(np.ptp(ys)), int(np.ptp(xs)), 1)
    sigma = max(1.0, blur_frac * extent)
    # Blur only the object's colours, then re-fill, so background never leaks into the blur.
    num = cv2.GaussianBlur(filled * svalid[..., None], (0, 0), sigma)
    den = cv2.GaussianBlur(svalid.astype(np.float32), (0, 0), sigma)
    blurred = push_pull(num / np.maximum(den, 1e-6)[..., None], den > 0.05)
    to_t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(view.image.device).permute(2, 0, 1)[None]
    view.fill, view.blur = to_t(filled), to_t(blurred)


def to_grid(pix: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Photo pixels (N, 2) -> grid_sample coordinates in [-1, 1] (pixel centres at the ends)."""
    scale = pix.new_tensor([2.0 / max(width - 1, 1), 2.0 / max(height - 1, 1)])
    return pix * scale - 1.0


def view_terms(view: View, pos: torch.Tensor, nrm: torch.Tensor, diag: float):
    """Per-texel terms for one view.

    pos, nrm: (T, 3) texel positions and unit normals. Returns grid coordinates (T, 2),
    cosine to the camera (T,), a log-weight (T,) (-inf where unusable) and the visibility (T,).
    """
    cam = view.camera
    pix, z = project_torch(view.K, view.R, view.t, pos, cam.orthographic)
    grid = to_grid(pix, cam.width, cam.height)
    if cam.orthographic:
        to_cam = -view.R[2].expand_as(pos)
        res = torch.full_like(z, float(cam.K[0, 0]))
    else:
        centre = -view.R.T @ view.t
        to_cam = centre - pos
        to_cam = to_cam / to_cam.norm(dim=1, keepdim=True).clamp_min(1e-12)
        res = float(cam.K[0, 0]) / z.clamp_min(1e-9)
    cos = (nrm * to_cam).sum(1)
    inside = (grid.abs() <= 1).all(1) & (z > 0 if not cam.orthographic else torch.ones_like(cos, dtype=torch.bool))
    # Depth test against the reduced-size depth buffer (nearest pixel).
    zh, zw = view.zbuf.shape
    zp = ((pix + 0.5) * view.zscale - 0.5).round().long()
    zx, zy = zp[:, 0].clamp(0, zw - 1), zp[:, 1].clamp(0, zh - 1)
    zb = view.zbuf[zy, zx]
    footprint = 1.0 / (res * view.zscale)  # world size of one depth-buffer pixel
    slope = (1 - cos.clamp(0.05, 1) ** 2).sqrt() / cos.clamp(0.05, 1)
    tol = 0.004 * diag + footprint * slope.clamp(max=5.0) + footprint
    visible = inside & (z + view.zshift <= zb + tol)
    feather = F.grid_sample(view.feather.float(), grid[None, None], mode="bilinear", align_corners=True)[0, 0, 0]
    feather = feather / 255.0
    weight = cos.clamp_min(0) * feather * res**2
    usable = visible & (cos > 0.05) & (feather > 0.02)
    logw = torch.where(usable, torch.log(weight.clamp_min(1e-30)), torch.full_like(weight, -torch.inf))
    return grid, cos, logw, visible, res


def grid_sample_colour(image: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Bilinear colours (T, 3) of image (1, 3, H, W) (any dtype) at grid coordinates (T, 2)."""
    return F.grid_sample(image.float(), grid[None, None], mode="bilinear", padding_mode="border",
                         align_corners=True)[0, :, 0].T
