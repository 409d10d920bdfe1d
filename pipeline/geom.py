"""Small shared math: projection, rigid/similarity transforms. Stages import this, never each other.

`project` is the one pinhole/orthographic projection for numpy arrays, `project_torch` its twin for
torch tensors (duck-typed: this module never imports torch, so `import pipeline` stays light).
"""

from __future__ import annotations

import numpy as np

from .types import Camera


def project(camera: Camera, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project world points (N, 3) to pixels (N, 2); also return camera-frame depth z (N,)."""
    cam = points @ camera.R.T + camera.t
    z = cam[:, 2]
    if camera.orthographic:
        uv = cam[:, :2] @ camera.K[:2, :2].T + camera.K[:2, 2]
    else:
        safe = np.where(np.abs(z) < 1e-12, 1e-12, z)
        uv = (cam[:, :2] / safe[:, None]) @ camera.K[:2, :2].T + camera.K[:2, 2]
    return uv, z


def project_torch(K, R, t, points, orthographic: bool = False):
    """Torch twin of `project`: world points (N, 3) -> pixels (..., N, 2) and depth z (..., N).

    K, R (..., 3, 3) and t (..., 3) are tensors; a leading axis stacks several views (V, ...),
    which gives (V, N, 2) and (V, N). Points behind the camera still project (z <= 0): callers
    test z themselves.
    """
    if orthographic:
        cam = points @ R.transpose(-1, -2) + t[..., None, :]
        return cam[..., :2] @ K[..., :2, :2].transpose(-1, -2) + K[..., None, :2, 2], cam[..., 2]
    # One 3x4 matrix K [R | t] per view and one batched product: on a CPU this is 3-4x faster than
    # rotating, dividing and then applying K, and the depth row is exactly R's third row and t's z.
    M, c = K @ R, K @ t[..., None]  # (..., 3, 3), (..., 3, 1)
    if M.dim() == 3:
        h = c.baddbmm(M, points.T.expand(M.shape[0], 3, -1))  # (V, 3, N)
    else:
        h = M @ points.T + c
    z = h[..., 2, :]
    safe = z.where(z.abs() >= 1e-12, z.new_full((), 1e-12))
    return (h[..., :2, :] / safe[..., None, :]).transpose(-1, -2), z


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(3, 3) rotation taking unit vector a onto unit vector b (shortest arc)."""
    a = np.asarray(a, float) / np.linalg.norm(a)
    b = np.asarray(b, float) / np.linalg.norm(b)
    v = np.cross(a, b)
    c = float(np.dot(a, b))
    if c < -1 + 1e-9:  # opposite: rotate pi about any axis perpendicular to a
        axis = np.cross(a, [1.0, 0.0, 0.0])
        if np.linalg.norm(axis) < 1e-6:
            axis = np.cross(a, [0.0, 1.0, 0.0])
        axis /= np.linalg.norm(axis)
        return 2 * np.outer(axis, axis) - np.eye(3)
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1 + c)


def frame_from_up_front(up: np.ndarray, front: np.ndarray) -> np.ndarray:
    """(3, 3) rotation mapping `up` to +Y and `front` (made perpendicular to up) to +Z."""
    y = np.asarray(up, float) / np.linalg.norm(up)
    z = np.asarray(front, float) - np.dot(front, y) * y
    if np.linalg.norm(z) < 1e-9:
        raise ValueError("geom: front is parallel to up")
    z /= np.linalg.norm(z)
    x = np.cross(y, z)
    return np.stack([x, y, z])  # rows: new axes expressed in the old frame


def similarity(scale: float, rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """(4, 4) matrix of x -> scale * rotation @ x + translation."""
    m = np.eye(4)
    m[:3, :3] = scale * np.asarray(rotation, float)
    m[:3, 3] = translation
    return m


def anchor(lo: np.ndarray, hi: np.ndarray, placement: str) -> np.ndarray:
    """(3,) translation that puts a product-frame bbox (lo, hi in metres) where the contract wants it.

    Floor items: the bottom centre at the origin (x, z centred, min y = 0). Wall items: x centred,
    min y = 0 and the back (min z) on the wall plane z = 0, so the item hangs in front of it (+Z).
    The one rule for both the mesh stage's placement and export's adjustments.
    """
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    centre = (lo + hi) / 2.0
    return np.array([-centre[0], -lo[1], -lo[2] if placement == "wall" else -centre[2]])


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a (4, 4) affine matrix to points (N, 3)."""
    return points @ matrix[:3, :3].T + matrix[:3, 3]


def bbox(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(min (3,), max (3,)) of points (N, 3)."""
    return points.min(axis=0), points.max(axis=0)


def next_pow2(n: int) -> int:
    """Smallest power of two >= n."""
    return 1 << max(0, int(np.ceil(np.log2(max(1, n)))))


def umeyama(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Similarity (s, R, t) minimising |dst - (s R src + t)|^2 for point sets src, dst (N, 3)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    u, d, vt = np.linalg.svd(b.T @ a / len(src))
    e = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:  # a reflection is not a rotation
        e[2, 2] = -1
    rot = u @ e @ vt
    s = float(np.trace(np.diag(d) @ e) / (a**2).sum(1).mean())
    return s, rot, mu_d - s * rot @ mu_s
