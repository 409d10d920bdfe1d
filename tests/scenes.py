"""Synthetic scenes shared by the tests (and bench/speed.py): cameras, photos, masks, renders.

Every helper here makes exactly what the test modules that used to define their own copy made
(same seeds, same floating-point operations in the same order), so importing it from here
changes no test's numbers.

Cameras follow pipeline.types.Camera: OpenCV axes (x right, y down, z forward), world -> camera
x_cam = R @ x + t, world +Y up, pixel centres at integer coordinates.

Renders made here are the tests' ground truth and run on the CPU whatever `pytest --device` says,
so a scene is the same on every device; the code under test gets the `device` fixture.
"""

from __future__ import annotations

import numpy as np

from pipeline.types import Camera, Mask, Mesh, Photo, Poses, ScaleSource

UP = (0.0, 1.0, 0.0)


# --------------------------------------------------------------------------------------------
# cameras


def rows_looking_along(z: np.ndarray) -> np.ndarray:
    """World -> camera rotation whose rows are the camera axes for a unit viewing direction `z`:
    x = z cross up (right), y = z cross x (down in the image), z. Straight down or up, x is +X."""
    x = np.cross(z, UP)
    if np.linalg.norm(x) < 1e-6:
        x = np.array([1.0, 0.0, 0.0])
    x /= np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z])


def look_at(eye, target) -> tuple[np.ndarray, np.ndarray]:
    """(R, t) of a camera at `eye` looking at `target`, level (no roll)."""
    eye, target = np.asarray(eye, float), np.asarray(target, float)
    z = target - eye
    z /= np.linalg.norm(z)
    R = rows_looking_along(z)
    return R, -R @ eye


def intrinsics(focal: float, width: int, height: int) -> np.ndarray:
    """(3, 3) K with square pixels and the principal point at the image centre ((W-1)/2, (H-1)/2)."""
    return np.array([[float(focal), 0, (width - 1) / 2], [0, float(focal), (height - 1) / 2], [0, 0, 1.0]])


def orbit_eye(azimuth: float, elevation: float, distance: float, target=None) -> np.ndarray:
    """(3,) camera position `distance` from `target` (default the origin), angles in radians:
    azimuth 0 on the +Z side, turning towards +X; elevation above the XZ plane."""
    eye = distance * np.array([np.sin(azimuth) * np.cos(elevation), np.sin(elevation),
                               np.cos(azimuth) * np.cos(elevation)])
    return eye if target is None else eye + np.asarray(target, float)


def look_at_camera(eye, target=(0.0, 0.0, 0.0), width=320, height=240, focal=300.0, ortho=False) -> Camera:
    """A pipeline Camera at `eye` looking at `target` (see look_at and intrinsics)."""
    R, t = look_at(eye, target)
    return Camera(K=intrinsics(focal, width, height), R=R, t=t, width=width, height=height, orthographic=ortho)


def ring_rotations(n: int = 12, radius: float = 1.0, height: float = 0.5, jitter_deg: float = 0.0, seed: int = 0):
    """World->camera rotations and centres of n cameras on a ring, all looking at the origin.

    Camera k sits at azimuth 2 pi k / n: (radius sin a, height, radius cos a). `jitter_deg` tilts
    each viewing direction by about that much at random. Returns (R (n, 3, 3), centres (n, 3)).
    """
    rng = np.random.default_rng(seed)
    Rs, Cs = [], []
    for k in range(n):
        a = 2 * np.pi * k / n
        c = np.array([radius * np.sin(a), height, radius * np.cos(a)])
        look = -c / np.linalg.norm(c)
        if jitter_deg:
            look = look + np.radians(jitter_deg) * rng.normal(size=3)
            look /= np.linalg.norm(look)
        Rs.append(rows_looking_along(look))
        Cs.append(c)
    return np.array(Rs), np.array(Cs)


# --------------------------------------------------------------------------------------------
# photos, masks, poses


def photo(rgb: np.ndarray, index: int = 0, name: str | None = None, alpha: np.ndarray | None = None,
          focal_px: float | None = None) -> Photo:
    """A decoded photo at working size (as ingest gives it); name defaults to "<index>.jpg"."""
    return Photo(name=f"{index}.jpg" if name is None else name, index=index, rgb=rgb, alpha=alpha,
                 focal_px=focal_px, original_size=(rgb.shape[1], rgb.shape[0]))


def mask(m: np.ndarray, confidence: float = 1.0, method: str = "test", touches_border: bool = False) -> Mask:
    """An object mask (H, W) bool as a segmenter gives it."""
    return Mask(mask=m, confidence=confidence, touches_border=touches_border, method=method)


def sparse_poses(cams, points: np.ndarray, reprojection_error_px: float) -> Poses:
    """Poses for known cameras with sparse points (N, 3) no photo is recorded to have seen."""
    return Poses(tuple(cams), points, np.zeros((len(points), 3), np.uint8),
                 tuple(np.zeros(0, np.int32) for _ in points), reprojection_error_px)


def floor_grid(half_width: float, steps: int) -> np.ndarray:
    """(steps * steps, 3) points on the table plane y = 0, a square grid of side 2 * half_width."""
    side = np.linspace(-half_width, half_width, steps)
    return np.stack(np.meshgrid(side, [0.0], side), -1).reshape(-1, 3)


# --------------------------------------------------------------------------------------------
# a sphere painted with a colour gradient, and its renders (texture tests, bench/speed.py)

BACKGROUND = np.array([0.0, 255.0, 0.0])  # far from every colour of the field below
RADIUS = 0.1


def colour_field(p: np.ndarray) -> np.ndarray:
    """(N, 3) 0..255 colour of surface points (N, 3): a smooth RGB gradient over the shape."""
    return np.clip(128.0 + 100.0 * p / RADIUS * np.array([1.0, 1.0, 1.0]) * [1, -1, 1], 0, 255)


def sphere():
    """(vertices, faces) of an icosphere of radius RADIUS (642 vertices) centred at the origin."""
    import trimesh

    m = trimesh.creation.icosphere(subdivisions=3, radius=RADIUS)
    return np.asarray(m.vertices), np.asarray(m.faces)


def ring_cameras(n=8, dist=0.45):
    """2n cameras looking at the origin: n below (-35 deg) and n above (25 deg, turned 15 deg)."""
    cams = []
    for k in range(n):
        for elev in (-35.0, 25.0):
            a, e = np.radians(360.0 * k / n + (15 if elev > 0 else 0)), np.radians(elev)
            cams.append(look_at_camera(orbit_eye(a, e, dist)))
    return cams


def render(vertices, faces, cam: Camera, colour=colour_field):
    """Ground-truth photo (H, W, 3) uint8 and mask of a mesh coloured by `colour` (CPU)."""
    import torch

    from pipeline.raster import rasterize

    v = torch.as_tensor(vertices, dtype=torch.float32)
    cam_pts = v @ torch.as_tensor(cam.R, dtype=torch.float32).T + torch.as_tensor(cam.t, dtype=torch.float32)
    z = cam_pts[:, 2]
    xy = cam_pts[:, :2] if cam.orthographic else cam_pts[:, :2] / z[:, None]
    K = torch.as_tensor(cam.K, dtype=torch.float32)
    pix = xy @ K[:2, :2].T + K[:2, 2]
    f = torch.as_tensor(faces)
    zz = z + (1.0 - float(z.min())) if cam.orthographic else z
    fid, bary, _ = rasterize(pix[f], cam.width, cam.height, zz[f])
    mask = (fid >= 0).numpy()
    pts = (v[f[fid[fid >= 0]]] * bary[fid >= 0][..., None]).sum(1).numpy()
    rgb = np.tile(BACKGROUND, (cam.height, cam.width, 1))
    rgb[mask] = colour(pts)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8), mask


def make_inputs(vertices, faces, cams, kind="scan"):
    """The texture stage's inputs for a mesh seen by `cams`: (Mesh, photos, masks), exact masks."""
    photos, masks = [], []
    for i, cam in enumerate(cams):
        rgb, m = render(vertices, faces, cam)
        photos.append(photo(rgb, i))
        masks.append(mask(m))
    mesh = Mesh(vertices=np.asarray(vertices, float), faces=np.asarray(faces, np.int64), views=tuple(cams),
                placement=np.eye(4), dimensions_m=(0.2, 0.2, 0.2), scale_source="test",
                scale_from=ScaleSource.MERCHANT, kind=kind)
    return mesh, photos, masks


# ---------------------------------------------------------------- one product photo


def synthetic_object(width: int = 640, height: int = 480, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A shaded orange blob on a speckled grey-blue table: ((H, W, 3) uint8, (H, W) bool mask).

    The object is brighter than the background too, so greyscale copies still separate.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    # Background: low-contrast texture with a few coloured speckles, lighter towards the top.
    bg = np.empty((height, width, 3), np.float32)
    base = np.array([95, 105, 120], np.float32) + 25 * (1 - yy / height)[..., None]
    tex = _smooth_noise(rng, height, width, 6) * 18
    bg[:] = base + tex[..., None]
    speck = rng.random((height, width)) < 0.01
    bg[speck] = rng.integers(40, 200, (int(speck.sum()), 3))
    # Object: an ellipse with a bump, shaded from the top left.
    cx, cy, rx, ry = width * 0.5, height * 0.52, width * 0.18, height * 0.28
    r = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2
    bump = ((xx - cx - rx * 0.6) / (rx * 0.5)) ** 2 + ((yy - cy + ry * 0.7) / (ry * 0.4)) ** 2
    mask = (r <= 1.0) | (bump <= 1.0)
    shade = np.clip(1.15 - 0.35 * ((xx - cx + rx * 0.4) ** 2 + (yy - cy + ry * 0.4) ** 2) / (rx * ry * 2), 0.6, 1.2)
    obj = np.array([235, 130, 40], np.float32) * shade[..., None]
    img = np.where(mask[..., None], obj, bg)
    img += rng.normal(0, 2.0, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8), mask


def _smooth_noise(rng, h: int, w: int, cell: int) -> np.ndarray:
    from PIL import Image

    small = rng.random((h // cell + 2, w // cell + 2)).astype(np.float32)
    big = np.asarray(Image.fromarray(small).resize((w + 2 * cell, h + 2 * cell), Image.BICUBIC))
    return big[cell : cell + h, cell : cell + w] - 0.5
