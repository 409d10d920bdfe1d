"""The shared synthetic scenes (tests/scenes.py) are what the tests built on them assume:
cameras look at their target, level, with OpenCV axes; rings and orbits sit where they say."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import geom
from tests.scenes import floor_grid, look_at, look_at_camera, orbit_eye, ring_rotations


def test_ring_helper_looks_at_the_origin():
    Rs, Cs = ring_rotations()
    for R, c in zip(Rs, Cs):
        assert np.allclose(R @ R.T, np.eye(3), atol=1e-9) and np.linalg.det(R) == pytest.approx(1.0)
        x = R @ (np.zeros(3) - c)
        assert x[2] > 0 and np.hypot(x[0], x[1]) < 1e-9  # origin straight ahead
    assert np.allclose(np.linalg.norm(Cs[:, [0, 2]], axis=1), 1.0) and np.allclose(Cs[:, 1], 0.5)


def test_jittered_ring_looks_off_the_origin_by_about_the_jitter():
    Rs, Cs = ring_rotations(n=24, jitter_deg=4.0, seed=2)
    off = [np.degrees(np.arccos(R[2] @ (-c / np.linalg.norm(c)))) for R, c in zip(Rs, Cs)]
    assert 1.0 < np.median(off) < 12.0


@pytest.mark.parametrize("eye, target", [((1.0, 2.0, 3.0), (0.0, 0.3, 0.0)), ((0.0, 0.05, 0.6), (0.0, 0.0, 0.0)),
                                         ((-2.0, 0.5, -0.1), (0.4, 0.0, 1.0))])
def test_look_at_puts_the_target_at_the_image_centre_with_up_up(eye, target):
    cam = look_at_camera(eye, target, width=320, height=240, focal=300.0)
    uv, z = geom.project(cam, np.array([target, np.asarray(target) + [0.0, 0.1, 0.0]]))
    assert z[0] == pytest.approx(np.linalg.norm(np.subtract(target, eye)))
    assert uv[0] == pytest.approx([159.5, 119.5])  # pixel centres at integers
    assert uv[1][1] < uv[0][1] and uv[1][0] == pytest.approx(uv[0][0])  # +Y is up in the image, no roll
    assert cam.center == pytest.approx(eye)
    R, t = look_at(eye, target)
    assert np.allclose(R, cam.R) and np.allclose(t, cam.t)


def test_look_straight_down_still_gives_a_rotation():
    R, _ = look_at((0.0, 2.0, 0.0), (0.0, 0.0, 0.0))
    assert np.allclose(R @ R.T, np.eye(3)) and R[2] == pytest.approx([0.0, -1.0, 0.0])


def test_orbit_eye_sits_at_its_distance_azimuth_and_elevation():
    target = np.array([0.1, 0.3, -0.2])
    eye = orbit_eye(np.radians(90.0), np.radians(30.0), 2.0, target)
    assert np.linalg.norm(eye - target) == pytest.approx(2.0)
    assert eye - target == pytest.approx([2.0 * np.cos(np.radians(30.0)), 1.0, 0.0], abs=1e-12)  # +X side, 30 up
    assert orbit_eye(0.0, 0.0, 1.5) == pytest.approx([0.0, 0.0, 1.5])  # azimuth 0: the +Z (front) side


def test_floor_grid_is_on_the_table_plane():
    g = floor_grid(0.5, 21)
    assert g.shape == (441, 3) and (g[:, 1] == 0).all()
    assert g[:, 0].min() == -0.5 and g[:, 2].max() == 0.5 and len(np.unique(g[:, 0])) == 21
