"""Mesh cleanup and simplification (helper of `mesh`). Plain numpy/scipy plus fast-simplification.

Meshes are (V, 3) float64 vertices and (F, 3) int64 faces; sizes are relative to the bbox
diagonal so any reconstruction unit works.
"""

from __future__ import annotations

import numpy as np

MERGE_TOL = 1e-7  # vertices closer than this share of the bbox diagonal are one vertex
NEAR_PIECE = 0.01  # a small piece this close (share of the diagonal) to a big one is part of the item
FLAT_CUT = 0.005  # rms distance of a hole's rim from its plane, as a share of the rim length


def clean(v: np.ndarray, f: np.ndarray, keep_share: float, hole_share: float, hole_edges: int):
    """Merge duplicates, drop degenerate/duplicate faces and floaters, close small holes, orient outward.

    Returns (vertices, faces, plain-words notes).
    """
    notes: list[str] = []
    diag = float(np.linalg.norm(np.ptp(v, 0))) or 1.0
    v, f = merge_vertices(v, f, MERGE_TOL * diag)
    f = drop_bad_faces(f)
    v, f, dropped = keep_big_pieces(v, f, keep_share)
    if dropped:
        notes.append(f"Removed {dropped} small floating piece{'s' if dropped > 1 else ''}.")
    f = orient(v, f)
    v, f, filled = fill_holes(v, f, hole_share * diag, hole_edges)
    if filled:
        notes.append(f"Closed {filled} hole{'s' if filled > 1 else ''} in the surface.")
        f = orient(v, f)
    return v, f, notes


def _unique_rows(a: np.ndarray, **kw):
    """np.unique over rows of an (N, k) int64 array, through a void view (much faster than axis=0)."""
    a = np.ascontiguousarray(a)
    view = a.view(np.dtype((np.void, a.dtype.itemsize * a.shape[1]))).ravel()
    return np.unique(view, **kw)


def merge_vertices(v: np.ndarray, f: np.ndarray, tol: float):
    """Weld vertices that fall in the same `tol` cell; drop unreferenced ones."""
    key = np.floor((v - v.min(0)) / max(tol, 1e-300)).astype(np.int64)
    _, first, inv = _unique_rows(key, return_index=True, return_inverse=True)
    f = inv.ravel()[f]
    v = v[first]
    return compact(v, f)


def compact(v: np.ndarray, f: np.ndarray):
    used, inv = np.unique(f, return_inverse=True)
    return v[used], inv.reshape(f.shape).astype(np.int64)


def drop_bad_faces(f: np.ndarray) -> np.ndarray:
    """Drop faces that repeat a vertex, and duplicated faces.

    Two copies of a face with opposite winding form a zero-volume fin: both go (their neighbours
    then pair up, which keeps a closed mesh closed). Same-winding copies keep one.
    """
    f = f[(f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])]
    if len(f) == 0:
        return f
    order = np.argsort(f, 1)
    key = np.take_along_axis(f, order, 1)
    # winding parity: even permutations of the sorted order have the same orientation
    parity = ((order[:, 0] < order[:, 1]).astype(int) + (order[:, 1] < order[:, 2]) + (order[:, 0] < order[:, 2])) % 2
    _, inv, counts = _unique_rows(key, return_inverse=True, return_counts=True)
    inv = inv.ravel()
    keep = counts[inv] == 1
    for g in np.nonzero(counts > 1)[0]:
        members = np.nonzero(inv == g)[0]
        p = parity[members]
        if (p == 0).sum() != (p == 1).sum():
            keep[members[0]] = True
    return f[keep]


def components(n_vertices: int, f: np.ndarray) -> np.ndarray:
    """Per-face label of its connected piece (pieces share vertices)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    a = np.concatenate([f[:, 0], f[:, 1]])
    b = np.concatenate([f[:, 1], f[:, 2]])
    g = coo_matrix((np.ones(len(a), np.int8), (a, b)), shape=(n_vertices, n_vertices))
    _, labels = connected_components(g, directed=False)
    return labels[f[:, 0]]


def face_areas(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    return 0.5 * np.linalg.norm(np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]), axis=1)


def keep_big_pieces(v: np.ndarray, f: np.ndarray, share: float, near: float = NEAR_PIECE):
    """Drop pieces whose surface area is below `share` of the biggest piece's, unless they come
    within `near` x the mesh diagonal of a big one: a thin part (a wire handle) can reach the mesh
    as a few separate bits beside the body. Returns (v, f, dropped)."""
    labels = components(len(v), f)
    area = np.bincount(labels, weights=face_areas(v, f))
    present = np.unique(labels)
    big = present[area[present] >= share * area.max()]
    small = np.setdiff1d(present, big)
    if len(small) and near > 0:
        from scipy.spatial import cKDTree

        used = np.zeros(len(v), bool)
        used[f.ravel()] = True
        vlabel = np.full(len(v), -1)
        vlabel[f.ravel()] = labels[np.repeat(np.arange(len(f)), 3)]
        tree = cKDTree(v[np.isin(vlabel, big)])
        diag = float(np.linalg.norm(np.ptp(v[used], 0))) or 1.0
        gap, _ = tree.query(v[used & np.isin(vlabel, small)], distance_upper_bound=near * diag)
        close = np.unique(vlabel[used & np.isin(vlabel, small)][np.isfinite(gap)])
        big = np.union1d(big, close)
    dropped = len(present) - len(big)
    if dropped:
        v, f = compact(v, f[np.isin(labels, big)])
    return v, f, dropped


def _edges(f: np.ndarray) -> np.ndarray:
    return np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]], 0)


def is_closed(f: np.ndarray) -> bool:
    """Every edge used by exactly two faces, in opposite directions (closed and consistently wound)."""
    e = _edges(f)
    key = e[:, 0] * (int(f.max()) + 1) + e[:, 1]
    rev = e[:, 1] * (int(f.max()) + 1) + e[:, 0]
    ks = np.sort(key)
    if np.any(ks[1:] == ks[:-1]):
        return False
    return bool(np.array_equal(ks, np.sort(rev)))  # every edge has its reverse partner


def _winding_consistent(f: np.ndarray) -> bool:
    """No directed edge is used twice (neighbouring faces run their shared edge opposite ways)."""
    e = _edges(f)
    key = np.sort(e[:, 0] * (int(f.max()) + 1) + e[:, 1])
    return not bool(np.any(key[1:] == key[:-1]))


def orient(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Make winding consistent (trimesh) and each closed piece's normals point outward."""
    if not _winding_consistent(f):
        import trimesh  # slow to import: only when there is something to fix

        tm = trimesh.Trimesh(v, f, process=False, validate=False)
        trimesh.repair.fix_winding(tm)
        f = np.asarray(tm.faces, np.int64)
    labels = components(len(v), f)
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    centre = v.mean(0)
    vol = np.einsum("ij,ij->i", a - centre, np.cross(b - centre, c - centre))
    piece_vol = np.bincount(labels, weights=vol)
    flip = piece_vol[labels] < 0
    f = f.copy()
    f[flip] = f[flip][:, [0, 2, 1]]
    return f


def _boundary_loops(f: np.ndarray) -> list[list[int]]:
    """Loops of directed boundary edges (a -> b as they appear in their face); skips tangled ones."""
    e = _edges(f)
    n = int(f.max()) + 1
    key = np.minimum(e[:, 0], e[:, 1]) * n + np.maximum(e[:, 0], e[:, 1])
    _, inv, counts = np.unique(key, return_inverse=True, return_counts=True)
    border = e[counts[inv.ravel()] == 1]
    if len(border) == 0:
        return []
    starts, cnt = np.unique(border[:, 0], return_counts=True)
    tangled = set(starts[cnt > 1].tolist())
    nxt = {int(a): int(b) for a, b in border if int(a) not in tangled}
    loops, seen = [], set()
    for s in list(nxt):
        if s in seen:
            continue
        loop, cur = [], s
        while cur in nxt and cur not in seen:
            seen.add(cur)
            loop.append(cur)
            cur = nxt[cur]
        if cur == s and len(loop) >= 3:
            loops.append(loop)
    return loops


def fill_holes(v: np.ndarray, f: np.ndarray, max_perimeter: float, max_edges: int):
    """Close small (or flat) boundary loops with a fan around their centroid. Returns (v, f, holes closed)."""
    new_v, new_f, filled = [], [], 0
    for loop in _boundary_loops(f):
        pts = v[loop]
        perim = float(np.linalg.norm(pts - np.roll(pts, -1, 0), axis=1).sum())
        if (len(loop) > max_edges or perim > max_perimeter) and not _flat_cut(pts, perim):
            continue
        c = len(v) + len(new_v)
        new_v.append(pts.mean(0))
        a = np.array(loop)
        b = np.roll(a, -1)
        # the hole's faces run each rim edge backwards (b -> a) so the windings agree
        new_f.append(np.stack([b, a, np.full(len(a), c)], 1))
        filled += 1
    if filled:
        v = np.concatenate([v, np.array(new_v)], 0)
        f = np.concatenate([f, *new_f], 0)
    return v, f, filled


def _flat_cut(pts: np.ndarray, perimeter: float) -> bool:
    """A big rim that lies in a plane is a clean cut (a scan cut off at the table): close it too."""
    centred = pts - pts.mean(0)
    off_plane = np.linalg.svd(centred, compute_uv=False)[-1] / np.sqrt(len(pts))
    return bool(off_plane < FLAT_CUT * perimeter)


def decimate(v: np.ndarray, f: np.ndarray, budget: int, keep_share: float):
    """Quadric decimation (fast-simplification) to at most `budget` faces, then re-clean."""
    import fast_simplification

    for attempt in range(4):
        target = int(budget * (0.98 - 0.05 * attempt))
        v2, f2 = fast_simplification.simplify(
            np.ascontiguousarray(v), np.ascontiguousarray(f, dtype=np.int32), target_count=max(4, target)
        )
        v2, f2 = np.asarray(v2, np.float64), np.asarray(f2, np.int64)
        diag = float(np.linalg.norm(np.ptp(v2, 0))) or 1.0
        v2, f2 = merge_vertices(v2, f2, MERGE_TOL * diag)
        f2 = drop_bad_faces(f2)
        if len(f2) <= budget:
            break
    v2, f2, _ = keep_big_pieces(v2, f2, keep_share)
    return v2, orient(v2, f2)
