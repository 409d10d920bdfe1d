"""Capture frame for the dense stage: gravity (ground plane), object centre, front, seen sides.

Everything works in the SfM frame, whose scale, rotation and origin are arbitrary; distances are
therefore measured relative to the camera ring (median camera distance to the object centre).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..types import Camera


@dataclass(frozen=True)
class Ground:
    """Gravity and (when found) the table plane: height(x) = up . x - offset, >= 0 above the table."""

    up: np.ndarray  # (3,) unit, pointing from the table towards the cameras
    offset: float | None  # None: no table plane among the sparse points
    inliers: int
    source: str  # plain words for notes


def look_at_point(cams: list[Camera]) -> np.ndarray:
    """(3,) least-squares point closest to all optical axes (where the photographer aimed)."""
    a = np.zeros((3, 3))
    b = np.zeros(3)
    for c in cams:
        d = c.forward / np.linalg.norm(c.forward)
        p = np.eye(3) - np.outer(d, d)
        a += p
        b += p @ c.center
    if np.linalg.cond(a) > 1e8:  # all axes parallel: fall back to the centroid of the cameras
        return np.mean([c.center for c in cams], axis=0)
    return np.linalg.solve(a, b)


def ring_up(cams: list[Camera], centre: np.ndarray) -> np.ndarray:
    """(3,) unit "up" from the camera ring: normal of the plane through the camera centres,
    signed by the cameras' own up vectors (-R[1]); the mean camera up if the ring is degenerate."""
    centres = np.array([c.center for c in cams])
    cam_up = np.mean([-c.R[1] for c in cams], axis=0)
    cam_up /= max(np.linalg.norm(cam_up), 1e-12)
    if len(cams) >= 4:
        _, s, vt = np.linalg.svd(centres - centres.mean(axis=0))
        normal = vt[2]
        # A ring is well conditioned when it spreads in two directions much more than in the third.
        if s[1] > 2.5 * s[2] and abs(normal @ cam_up) > 0.5:
            normal = normal if normal @ cam_up > 0 else -normal
            return normal / np.linalg.norm(normal)
    return cam_up


def find_ground(
    cams: list[Camera],
    points: np.ndarray,
    centre: np.ndarray,
    scale: float,
    rng: np.random.Generator,
    iters: int = 600,
) -> Ground:
    """RANSAC the table plane among the sparse points (N, 3).

    The plane must be roughly perpendicular to the ring's up (within 30 deg), below the aimed-at
    centre, and have every camera on its upper side. `scale`: median camera distance to `centre`.
    """
    prior = ring_up(cams, centre)
    centres = np.array([c.center for c in cams])
    pts = np.asarray(points, float).reshape(-1, 3)
    if len(pts) < 30:
        return Ground(prior, None, 0, "camera ring (too few sparse points for a table plane)")
    # Only points around the object: the far background (walls, backdrop) cannot be the table.
    near = np.linalg.norm(pts - centre, axis=1) < 1.2 * scale
    pts = pts[near] if near.sum() >= 30 else pts
    thr = 0.004 * scale
    best_n, best_off, best_count = None, 0.0, 0
    idx = rng.integers(0, len(pts), size=(iters, 3))
    p0, p1, p2 = pts[idx[:, 0]], pts[idx[:, 1]], pts[idx[:, 2]]
    normals = np.cross(p1 - p0, p2 - p0)
    lengths = np.linalg.norm(normals, axis=1)
    ok = lengths > 1e-12
    normals[ok] /= lengths[ok, None]
    normals[normals @ prior < 0] *= -1
    ok &= normals @ prior > np.cos(np.radians(30))
    for n, p in zip(normals[ok], p0[ok]):
        off = float(n @ p)
        if n @ centre - off <= 0 or np.any(centres @ n - off <= 0):
            continue
        count = int(np.count_nonzero(np.abs(pts @ n - off) < thr))
        if count > best_count:
            best_n, best_off, best_count = n, off, count
    if best_n is None or best_count < max(20, 0.05 * len(pts)):
        return Ground(prior, None, best_count, "camera ring (no table plane found in the sparse points)")
    # Least-squares refit on the inliers, keeping the orientation towards the cameras.
    inl = pts[np.abs(pts @ best_n - best_off) < thr]
    mean = inl.mean(axis=0)
    _, _, vt = np.linalg.svd(inl - mean)
    n = vt[2] if vt[2] @ best_n > 0 else -vt[2]
    if n @ centre - n @ mean <= 0 or np.any(centres @ n - n @ mean <= 0):
        n = best_n
    return Ground(n / np.linalg.norm(n), float(n @ mean), best_count, "table plane")


def front_direction(
    cams: list[Camera | None], centre: np.ndarray, up: np.ndarray, first_axis: np.ndarray | None = None
) -> np.ndarray:
    """(3,) unit: from the object centre towards photo 0's camera, projected onto the ground plane.

    When photo 0 is not placed: against its viewing direction `first_axis` (it looked at the
    item), else towards the first placed photo.
    """
    first = next(c for c in cams if c is not None)
    cam0 = cams[0] if cams[0] is not None else first
    d = cam0.center - centre
    if cams[0] is None and first_axis is not None:
        d = -np.asarray(first_axis, float)
        if np.linalg.norm(d - (d @ up) * up) < 1e-6:  # looked straight down: fall back
            d = cam0.center - centre
    d = d - (d @ up) * up
    if np.linalg.norm(d) < 1e-9:  # photo 0 straight from above: use its image "down" direction
        d = cam0.R[1] - (cam0.R[1] @ up) * up
    return d / np.linalg.norm(d)


def seen_sides(cams: list[Camera], centre: np.ndarray, up: np.ndarray, front: np.ndarray) -> tuple[str, ...]:
    """Sides of the object with a camera within 60 deg of their outward normal."""
    right = np.cross(up, front)
    dirs = np.array([c.center - centre for c in cams])
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    normals = {"front": front, "back": -front, "right": right, "left": -right, "top": up, "bottom": -up}
    cos60 = 0.5
    return tuple(name for name, n in normals.items() if np.any(dirs @ n > cos60))


@dataclass(frozen=True)
class TablePlane:
    """The table under the item: height(x) = up . x - offset, >= 0 above it (scene units)."""

    up: np.ndarray  # (3,) unit, from the table towards the cameras
    offset: float
    camera_distance: float  # median camera distance to the look-at point: the capture's scale


@dataclass(frozen=True)
class CaptureFrame:
    """The local frame one geometry pass works in, inside the arbitrary SfM frame.

    local = (x - centre) @ axes.T; the local y axis is gravity up.
    """

    centre: np.ndarray  # (3,) where the photographer aimed (look_at_point): the local origin
    scale: float  # median camera distance to `centre`, scene units
    axes: np.ndarray  # (3, 3) rows: right, up, front (towards photo 0) in the SfM frame
    ground_y: float | None  # the table's local height (scene units); None without a table
    table: TablePlane | None
    notes: tuple[str, ...] = ()  # plain words for the report's details

    @property
    def up(self) -> np.ndarray:
        return self.axes[1]


def capture_frame(cams: list[Camera], all_cams: list[Camera | None], points: np.ndarray,
                  first_axis: np.ndarray | None, rng: np.random.Generator) -> CaptureFrame:
    """Gravity, table and front of a capture from its placed cameras and sparse points (N, 3).

    `all_cams` is one slot per photo (None where unplaced; photo 0 decides the front),
    `first_axis` photo 0's viewing direction when it is unplaced (see front_direction)."""
    centre = look_at_point(cams)
    scale = float(np.median([np.linalg.norm(c.center - centre) for c in cams]))
    ground = find_ground(cams, points, centre, scale, rng)
    up = ground.up
    front = front_direction(all_cams, centre, up, first_axis)
    axes = np.stack([np.cross(up, front), up, front])
    if ground.offset is None:
        note = ("No table was found under the item; the bottom was cut where the photos end.",)
        return CaptureFrame(centre, scale, axes, None, None, note)
    table = TablePlane(up, float(ground.offset), scale)
    return CaptureFrame(centre, scale, axes, float(ground.offset - up @ centre), table)
