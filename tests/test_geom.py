"""Shared math: the torch projection is the numpy one's twin, for stacked and single views."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.geom import project, project_torch
from pipeline.types import Camera
from tests.scenes import look_at_camera, orbit_eye


def _cameras(orthographic: bool) -> list[Camera]:
    """Six cameras round the origin at different distances and focal lengths."""
    return [look_at_camera(orbit_eye(az, 0.4, 2.0 + 0.3 * k), (0.0, 0.3, 0.0), 640, 480,
                           (300.0 if orthographic else 500.0 + 40 * k), orthographic)
            for k, az in enumerate(np.linspace(0, 5.2, 6))]


@pytest.mark.parametrize("orthographic", [False, True])
def test_project_torch_matches_numpy_for_stacked_and_single_views(device, orthographic):
    cams = _cameras(orthographic)
    pts = np.random.default_rng(0).normal(scale=0.4, size=(5000, 3))
    f32 = dict(dtype=torch.float32, device=device)
    K = torch.as_tensor(np.stack([c.K for c in cams]), **f32)
    R = torch.as_tensor(np.stack([c.R for c in cams]), **f32)
    t = torch.as_tensor(np.stack([c.t for c in cams]), **f32)
    x = torch.as_tensor(pts, **f32)
    uv, z = project_torch(K, R, t, x, orthographic)
    assert uv.shape == (len(cams), len(pts), 2) and z.shape == (len(cams), len(pts))
    for v, cam in enumerate(cams):
        want_uv, want_z = project(cam, pts)
        assert np.abs(uv[v].cpu().numpy() - want_uv).max() < 1e-2  # px, float32 against float64
        assert np.abs(z[v].cpu().numpy() - want_z).max() < 1e-5
        one_uv, one_z = project_torch(K[v], R[v], t[v], x, orthographic)
        assert one_uv.shape == (len(pts), 2)
        assert torch.allclose(one_uv, uv[v], atol=1e-3) and torch.allclose(one_z, z[v], atol=1e-6)
