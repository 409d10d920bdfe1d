"""Mesh builders for the single-photo shape priors (helper of `single_view`).

All geometry here is in the photo's pixel frame: x right = pixel x, y down = pixel y, z = depth
away from the camera (pixel units). Builders return (vertices (V, 3) float64, faces (F, 3) int64)
with outward, counter-clockwise faces; every builder makes closed (watertight) surfaces by
construction.
"""

from __future__ import annotations

import numpy as np

# Marching-squares fill: cell corners in cyclic order c0=(i,j), c1=(i,j+1), c2=(i+1,j+1),
# c3=(i+1,j); point codes 0-3 are corners, 4+k the crossing on edge k (between corner k and k+1).
# Polygons list the inside region of the cell in cyclic (positive-area) order, starting at an
# inside corner so that every fan triangle holds an inside corner (never three outline points).
def _marching_cases() -> dict[int, list[list[int]]]:
    """The constant case table: case code -> polygons (lists of point codes)."""
    cases: dict[int, list[list[int]]] = {}
    for case in range(16):
        inside = [(case >> k) & 1 for k in range(4)]
        if not any(inside):
            continue
        ring: list[int] = []
        for k in range(4):
            if inside[k]:
                ring.append(k)
            if inside[k] != inside[(k + 1) % 4]:
                ring.append(4 + k)
        start = next(i for i, p in enumerate(ring) if p < 4)
        ring = ring[start:] + ring[:start]
        cases[case] = [ring]
    # Saddles (opposite corners inside): "separate" variant used when the cell centre is outside.
    cases[16 + 5] = [[0, 4, 7], [2, 6, 5]]
    cases[16 + 10] = [[1, 5, 4], [3, 7, 6]]
    return cases


_CASES = _marching_cases()  # read-only after import


def fill_contour(field: np.ndarray, iso: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Triangulate the region {field > iso} of a grid (marching-squares fill).

    field: (H, W) samples at grid nodes (x = column, y = row); its border must be below `iso`.
    Returns (points (N, 2) float64 as (x, y) in grid units, triangles (T, 3) int64 with positive
    area in (x, y), on_outline (N,) bool: the point lies on the iso line). The result is an
    edge-manifold triangulation whose outline edges are used once.
    """
    f = np.asarray(field, np.float64).copy()
    f[f == iso] = iso - 1e-6  # no node exactly on the iso line: no zero-length outline edges
    h, w = f.shape
    inside = f > iso
    n_nodes = h * w
    n_hedges = h * (w - 1)
    ii, jj = np.mgrid[0 : h - 1, 0 : w - 1]
    ii, jj = ii.ravel(), jj.ravel()
    corner = np.stack([ii * w + jj, ii * w + jj + 1, (ii + 1) * w + jj + 1, (ii + 1) * w + jj], 1)
    edge = np.stack(
        [
            n_nodes + ii * (w - 1) + jj,  # e0: c0-c1, horizontal in row i
            n_nodes + n_hedges + ii * w + jj + 1,  # e1: c1-c2, vertical in column j+1
            n_nodes + (ii + 1) * (w - 1) + jj,  # e2: c3-c2, horizontal in row i+1
            n_nodes + n_hedges + ii * w + jj,  # e3: c0-c3, vertical in column j
        ],
        1,
    )
    ins = inside.ravel()[corner]
    case = ins[:, 0] + 2 * ins[:, 1] + 4 * ins[:, 2] + 8 * ins[:, 3]
    centre_in = f.ravel()[corner].mean(1) > iso
    case = np.where(((case == 5) | (case == 10)) & ~centre_in, case + 16, case)
    codes = np.concatenate([corner, edge], 1)  # (cells, 8): point code -> global id
    tris = []
    for c, polys in _CASES.items():
        sel = np.nonzero(case == c)[0]
        if sel.size == 0:
            continue
        for poly in polys:
            for k in range(1, len(poly) - 1):
                tris.append(codes[sel][:, [poly[0], poly[k], poly[k + 1]]])
    if not tris:
        return np.zeros((0, 2)), np.zeros((0, 3), np.int64), np.zeros(0, bool)
    tri = np.concatenate(tris, 0)

    # Positions of every candidate point; crossings interpolated linearly along their edge.
    pos = np.zeros((n_nodes + n_hedges + h * w, 2))
    gy, gx = np.mgrid[0:h, 0:w]
    pos[:n_nodes] = np.stack([gx.ravel(), gy.ravel()], 1)
    fa, fb = f[:, :-1].ravel(), f[:, 1:].ravel()
    t = np.clip((iso - fa) / np.where(fb == fa, 1.0, fb - fa), 1e-3, 1 - 1e-3)
    hy, hx = np.mgrid[0:h, 0 : w - 1]
    pos[n_nodes : n_nodes + n_hedges] = np.stack([hx.ravel() + t, hy.ravel()], 1)
    fa, fb = f[:-1, :].ravel(), f[1:, :].ravel()
    t = np.clip((iso - fa) / np.where(fb == fa, 1.0, fb - fa), 1e-3, 1 - 1e-3)
    vy, vx = np.mgrid[0 : h - 1, 0:w]
    pos[n_nodes + n_hedges :][: (h - 1) * w] = np.stack([vx.ravel(), vy.ravel() + t], 1)

    used, tri = np.unique(tri, return_inverse=True)
    tri = tri.reshape(-1, 3).astype(np.int64)
    return pos[used], tri, used >= n_nodes


def outline_edges(tri: np.ndarray) -> np.ndarray:
    """(E, 2) directed edges (a, b) used by exactly one triangle, as oriented in that triangle."""
    e = np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]], 0)
    key = np.sort(e, 1)
    _, inv, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    return e[counts[inv.ravel()] == 1]


def slab(points: np.ndarray, tri: np.ndarray, z_front: np.ndarray, z_back: np.ndarray):
    """Closed solid between a front and a back copy of a 2D triangulation, with side walls.

    points (N, 2) pixel (x, y); z_front/z_back (N,) depths (front nearer the camera: smaller z).
    """
    n = len(points)
    verts = np.concatenate(
        [np.column_stack([points, z_front]), np.column_stack([points, z_back])], 0
    )
    front = tri[:, [0, 2, 1]]  # the 2D order faces +z (away from the camera): flip the front
    back = tri + n
    a, b = outline_edges(tri).T
    walls = np.concatenate(
        [np.stack([a, b, b + n], 1), np.stack([a, b + n, a + n], 1)], 0
    )
    return verts, np.concatenate([front, back, walls], 0).astype(np.int64)


def pillow(points: np.ndarray, tri: np.ndarray, on_outline: np.ndarray, z_mid: float, half: np.ndarray):
    """Closed inflated surface: front z_mid - half, back z_mid + half, joined on the outline.

    `half` (N,) is the half-thickness, zero on the outline points (which front and back share).
    """
    n = len(points)
    interior = np.nonzero(~on_outline)[0]
    back_id = np.arange(n)
    back_id[interior] = n + np.arange(len(interior))
    verts = np.concatenate(
        [
            np.column_stack([points, z_mid - half]),
            np.column_stack([points[interior], z_mid + half[interior]]),
        ],
        0,
    )
    front = tri[:, [0, 2, 1]]
    back = back_id[tri]
    return verts, np.concatenate([front, back], 0).astype(np.int64)


def lathe(x_axis: float, ys: np.ndarray, radii: np.ndarray, z_axis: float, segments: int):
    """Closed surface of revolution about the vertical line x = x_axis, z = z_axis.

    ys (R,) rows top to bottom (increasing pixel y), radii (R,) > 0. Capped at both ends.
    """
    theta = np.linspace(0.0, 2 * np.pi, segments, endpoint=False)
    rows = len(ys)
    ring_x = x_axis + radii[:, None] * np.cos(theta)[None]
    ring_z = z_axis + radii[:, None] * np.sin(theta)[None]
    ring_y = np.repeat(ys[:, None], segments, 1)
    verts = np.stack([ring_x, ring_y, ring_z], -1).reshape(-1, 3)
    top = len(verts)
    verts = np.concatenate([verts, [[x_axis, ys[0], z_axis], [x_axis, ys[-1], z_axis]]], 0)
    s = np.arange(segments)
    s1 = (s + 1) % segments
    faces = []
    for r in range(rows - 1):
        a, b = r * segments + s, r * segments + s1
        c, d = (r + 1) * segments + s, (r + 1) * segments + s1
        faces += [np.stack([a, b, d], 1), np.stack([a, d, c], 1)]
    faces.append(np.stack([np.full(segments, top), s1, s], 1))
    last = (rows - 1) * segments
    faces.append(np.stack([np.full(segments, top + 1), last + s, last + s1], 1))
    faces = np.concatenate(faces, 0).astype(np.int64)
    # Orientation depends on the handedness of (x, y down, z); fix it once by the volume sign.
    if signed_volume(verts, faces) < 0:
        faces = faces[:, [0, 2, 1]]
    return verts, faces


def signed_volume(verts: np.ndarray, faces: np.ndarray) -> float:
    """Volume of a closed mesh (positive when faces are counter-clockwise seen from outside)."""
    a, b, c = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)
