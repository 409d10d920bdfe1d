"""Evaluation protocol of shared/bench (see its README, "Evaluation protocol").

Compares a reconstruction (GLB/GLTF/OBJ/PLY) with a ground-truth mesh:

* Chamfer-L1: mean of the two mean nearest-neighbour distances (metres, and / GT bbox diagonal).
* F-score at 1, 2, 5 and 10 % of the GT bbox diagonal.
* Volume IoU on a 64^3 grid over the union bounding cube (surface voxels + filled interior).
* Scale ratio: pred bbox diagonal / GT bbox diagonal.

Two modes: `as_is` (both moved so their bbox bottom-centre is the origin, then compared
directly) and `aligned` (shape only: a similarity found by multi-start trimmed symmetric scaled ICP).

Entry point: `evaluate(pred, gt) -> Evaluation`. Distances are Euclidean (the "L1" of
Chamfer-L1 means not squared). Points are sampled uniformly by area once per mesh and reused for
both modes; every transform here is a similarity, so the samples stay uniform.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Union

import numpy as np

from bench._align import Alignment, align_points, start_rotations

THRESHOLDS: tuple[float, ...] = (0.01, 0.02, 0.05, 0.10)  # F-score thresholds, fraction of GT bbox diag
GRID = 64

MeshLike = Union[str, Path, "tuple[np.ndarray, np.ndarray]", object]  # path, (V, F) or trimesh.Trimesh


@dataclass(frozen=True)
class SurfaceMesh:
    """A triangle soup to evaluate: vertices (V, 3) float64 metres, faces (F, 3) int64."""

    vertices: np.ndarray
    faces: np.ndarray

    @property
    def bounds(self) -> np.ndarray:
        """(2, 3) min and max over the vertices the faces use."""
        used = self.vertices[np.unique(self.faces)]
        return np.stack([used.min(axis=0), used.max(axis=0)])

    @property
    def diagonal(self) -> float:
        lo, hi = self.bounds
        return float(np.linalg.norm(hi - lo))

    @property
    def area(self) -> float:
        return float(_triangle_areas(self.vertices, self.faces).sum())


@dataclass(frozen=True)
class Metrics:
    """Scores of one comparison. Distances in GT metres; fractions relative to the GT bbox diagonal."""

    chamfer_m: float
    chamfer_rel: float
    fscore: dict[float, float]  # threshold (fraction of GT diag) -> F in 0..1
    precision: dict[float, float]
    recall: dict[float, float]
    iou: float
    scale_ratio: float  # pred bbox diag (as delivered) / GT bbox diag; same in both modes


@dataclass(frozen=True)
class Evaluation:
    as_is: Metrics
    aligned: Metrics | None
    alignment: Alignment | None
    gt_diag_m: float
    pred_diag_m: float
    pred_size_m: tuple[float, float, float]  # bbox size x, y, z of the prediction as delivered
    gt_size_m: tuple[float, float, float]
    n_points: int
    seconds: float

    def to_dict(self) -> dict:
        """JSON-ready dict (threshold keys become strings like "0.01")."""

        def fix(obj):
            if isinstance(obj, dict):
                return {str(k): fix(v) for k, v in obj.items()}
            if isinstance(obj, (list, tuple)):
                return [fix(v) for v in obj]
            if isinstance(obj, np.ndarray):
                return obj.tolist()
            if isinstance(obj, (np.floating, np.integer)):
                return obj.item()
            return obj

        d = asdict(self)
        if self.alignment is not None:
            d["alignment"]["rotation_deg"] = self.alignment.rotation_deg
        return fix(d)


# --------------------------------------------------------------------------------------------
# loading and sampling


def load_mesh(source: MeshLike) -> SurfaceMesh:
    """Read a mesh file (scene transforms applied, glTF as +Y up), a trimesh object or (V, F).

    Raises ValueError for files without triangles.
    """
    if isinstance(source, SurfaceMesh):
        return source
    if isinstance(source, tuple):
        v, f = source
        return _checked(np.asarray(v, float), np.asarray(f, np.int64), "arrays")
    if isinstance(source, (str, Path)):
        import trimesh

        path = Path(source)
        if not path.is_file():
            raise ValueError(f"no such mesh file: {path}")
        loaded = trimesh.load(str(path), force="mesh", process=False)
        name = path.name
    else:
        loaded, name = source, type(source).__name__
    faces = getattr(loaded, "faces", None)
    if faces is None or len(faces) == 0:
        raise ValueError(f"{name} has no triangles")
    return _checked(np.asarray(loaded.vertices, float), np.asarray(faces, np.int64), name)


def _checked(v: np.ndarray, f: np.ndarray, name: str) -> SurfaceMesh:
    if v.ndim != 2 or v.shape[1] != 3 or f.ndim != 2 or f.shape[1] != 3 or len(f) == 0:
        raise ValueError(f"{name}: expected vertices (V, 3) and faces (F, 3)")
    if not np.isfinite(v).all():
        raise ValueError(f"{name}: vertices contain NaN or infinity")
    if _triangle_areas(v, f).sum() <= 0:
        raise ValueError(f"{name}: the surface has zero area")
    return SurfaceMesh(v, f)


def _triangle_areas(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    return 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)


def sample_surface(mesh: SurfaceMesh, n: int, rng: np.random.Generator, normals: bool = False):
    """(n, 3) points uniform by area on the mesh surface; with `normals`, also their (n, 3) unit face normals."""
    areas = _triangle_areas(mesh.vertices, mesh.faces)
    tri = rng.choice(len(areas), size=n, p=areas / areas.sum())
    r1, r2 = rng.random(n), rng.random(n)
    s = np.sqrt(r1)
    w = np.stack([1 - s, s * (1 - r2), s * r2], axis=1)
    corners = mesh.vertices[mesh.faces[tri]]  # (n, 3, 3)
    points = np.einsum("nk,nkd->nd", w, corners)
    if not normals:
        return points
    nrm = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    return points, nrm / np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-300)


def _dense_count(mesh: SurfaceMesh, grid: int) -> int:
    """Samples needed to hit every surface voxel of a grid over the mesh's own bounding cube.

    The union cube in any comparison is at least as large, so its voxels are no smaller.
    """
    lo, hi = mesh.bounds
    pitch = max(float((hi - lo).max()), 1e-12) / grid
    return int(np.clip(64 * mesh.area / pitch**2, 100_000, 1_500_000))


# --------------------------------------------------------------------------------------------
# metrics


def point_metrics(
    pred: np.ndarray, gt: np.ndarray, gt_diag: float, thresholds: tuple[float, ...] = THRESHOLDS
) -> tuple[float, dict[float, float], dict[float, float], dict[float, float]]:
    """Chamfer-L1 (metres) and per-threshold F-score, precision, recall of point sets (N, 3), (M, 3)."""
    from scipy.spatial import cKDTree

    d_pred = cKDTree(gt).query(pred, workers=-1)[0]  # pred -> GT: precision
    d_gt = cKDTree(pred).query(gt, workers=-1)[0]  # GT -> pred: recall
    chamfer = 0.5 * (d_pred.mean() + d_gt.mean())
    prec, rec, f = {}, {}, {}
    for t in thresholds:
        p = float((d_pred < t * gt_diag).mean())
        r = float((d_gt < t * gt_diag).mean())
        prec[t], rec[t] = p, r
        f[t] = 0.0 if p + r == 0 else 2 * p * r / (p + r)
    return float(chamfer), f, prec, rec


def occupancy(points: np.ndarray, origin: np.ndarray, pitch: float, grid: int = GRID) -> np.ndarray:
    """(grid, grid, grid) bool: voxels hit by dense surface samples plus the filled interior.

    Interior: enclosed in 3D after one closing (seals pinholes of open GT shells and sampling
    gaps), or enclosed within the 2D slices of at least two of the three axes. The second rule
    keeps a shell with one large opening (the avocado GT) solid: only slices through the opening
    leak. For a closed surface it adds nothing.
    """
    from scipy import ndimage

    pad = 2  # room for the closing so it does not touch the array border
    idx = np.floor((points - origin) / pitch).astype(np.int64)
    idx = np.clip(idx, 0, grid - 1) + pad
    occ = np.zeros((grid + 2 * pad,) * 3, bool)
    occ[idx[:, 0], idx[:, 1], idx[:, 2]] = True
    closed = ndimage.binary_closing(occ, structure=np.ones((3, 3, 3), bool)) | occ
    filled = ndimage.binary_fill_holes(closed)
    votes = np.zeros(occ.shape, np.int8)
    for axis in range(3):
        # background may only flood within slices normal to `axis`
        plane = ndimage.generate_binary_structure(3, 1)
        for end in (0, 2):
            centre = [1, 1, 1]
            centre[axis] = end
            plane[tuple(centre)] = False
        votes += ndimage.binary_fill_holes(closed, structure=plane)
    return (filled | (votes >= 2))[pad:-pad, pad:-pad, pad:-pad]


def volume_iou(pred_dense: np.ndarray, gt_dense: np.ndarray, grid: int = GRID) -> float:
    """IoU of the occupancies of two dense surface samplings on a grid over their union bounding cube."""
    both = np.concatenate([pred_dense, gt_dense])
    lo, hi = both.min(axis=0), both.max(axis=0)
    side = float((hi - lo).max()) * (1 + 1e-6) + 1e-12
    origin = 0.5 * (lo + hi) - side / 2
    pitch = side / grid
    a = occupancy(pred_dense, origin, pitch, grid)
    b = occupancy(gt_dense, origin, pitch, grid)
    union = np.count_nonzero(a | b)
    return float(np.count_nonzero(a & b) / union) if union else 0.0


def bottom_centre(bounds: np.ndarray) -> np.ndarray:
    """(3,) the bbox bottom-centre (x centre, y min, z centre) of (2, 3) bounds: the as-is origin."""
    lo, hi = bounds
    return np.array([(lo[0] + hi[0]) / 2, lo[1], (lo[2] + hi[2]) / 2])


def _diag(points: np.ndarray) -> float:
    return float(np.linalg.norm(points.max(axis=0) - points.min(axis=0)))


# --------------------------------------------------------------------------------------------
# evaluation


def evaluate(
    pred: MeshLike,
    gt: MeshLike,
    n_points: int = 100_000,
    aligned: bool = True,
    seed: int = 0,
    grid: int = GRID,
    thresholds: tuple[float, ...] = THRESHOLDS,
    iou: bool = True,
) -> Evaluation:
    """Score `pred` against `gt` in as-is mode and (if `aligned`) aligned mode.

    `pred` / `gt`: a mesh path, a trimesh.Trimesh, a SurfaceMesh or (vertices, faces); metres.
    `n_points` samples per surface for Chamfer / F-score (the protocol uses 100k).
    """
    t0 = time.perf_counter()
    pm, gm = load_mesh(pred), load_mesh(gt)
    rng = np.random.default_rng(seed)
    (p_pts, p_nrm), (g_pts, g_nrm) = sample_surface(pm, n_points, rng, True), sample_surface(gm, n_points, rng, True)
    if iou:
        p_dense = sample_surface(pm, _dense_count(pm, grid), rng)
        g_dense = sample_surface(gm, _dense_count(gm, grid), rng)
    p_bounds, g_bounds = pm.bounds, gm.bounds
    gt_diag, pred_diag = gm.diagonal, pm.diagonal

    # as-is: only the bbox bottom-centre is moved to the origin
    p_off, g_off = bottom_centre(p_bounds), bottom_centre(g_bounds)
    ch, f, pr, rc = point_metrics(p_pts - p_off, g_pts - g_off, gt_diag, thresholds)
    v_iou = volume_iou(p_dense - p_off, g_dense - g_off, grid) if iou else float("nan")
    as_is = Metrics(ch, ch / gt_diag, f, pr, rc, v_iou, pred_diag / gt_diag)

    al_metrics, alignment = None, None
    if aligned:
        alignment = align_points(p_pts, p_nrm, g_pts, g_nrm, p_bounds, g_bounds, seed=seed)
        m = alignment.matrix
        p_al = p_pts @ m[:3, :3].T + m[:3, 3]
        ch, f, pr, rc = point_metrics(p_al, g_pts, gt_diag, thresholds)
        v_iou = volume_iou(p_dense @ m[:3, :3].T + m[:3, 3], g_dense, grid) if iou else float("nan")
        al_metrics = Metrics(ch, ch / gt_diag, f, pr, rc, v_iou, pred_diag / gt_diag)

    return Evaluation(
        as_is=as_is,
        aligned=al_metrics,
        alignment=alignment,
        gt_diag_m=gt_diag,
        pred_diag_m=pred_diag,
        pred_size_m=tuple(float(x) for x in p_bounds[1] - p_bounds[0]),
        gt_size_m=tuple(float(x) for x in g_bounds[1] - g_bounds[0]),
        n_points=n_points,
        seconds=time.perf_counter() - t0,
    )


def summary_line(ev: Evaluation) -> str:
    """One plain line: as-is and aligned Chamfer (% of diag) and F-scores."""

    def part(tag: str, m: Metrics | None) -> str:
        if m is None:
            return ""
        fs = " ".join(f"F@{t * 100:g}%={m.fscore[t]:.3f}" for t in sorted(m.fscore))
        return f"{tag}: CD={m.chamfer_rel * 100:.2f}% {fs} IoU={m.iou:.3f}"

    return " | ".join(p for p in (part("as-is", ev.as_is), part("aligned", ev.aligned)) if p)


__all__ = [
    "THRESHOLDS",
    "SurfaceMesh",
    "Metrics",
    "Alignment",
    "Evaluation",
    "load_mesh",
    "bottom_centre",
    "sample_surface",
    "point_metrics",
    "occupancy",
    "volume_iou",
    "start_rotations",
    "align_points",
    "evaluate",
    "summary_line",
]
