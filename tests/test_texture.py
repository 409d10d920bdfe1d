"""Texture stage: bake synthetic renders of analytically coloured shapes back onto the mesh.

The scene (a sphere painted with a colour gradient, its cameras and renders) is in tests/scenes.py;
bench/speed.py times the single-photo bake (the tests here check only what it paints).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from pipeline import texture
from pipeline.errors import InputError
from pipeline.raster import rasterize
from tests.scenes import (
    BACKGROUND,
    RADIUS,
    colour_field,
    look_at_camera,
    make_inputs,
    ring_cameras,
    sphere,
)


def texel_truth(tm, size):
    """Per-texel surface positions of a baked TexturedMesh (for comparing against the field)."""
    uv = torch.as_tensor(tm.uv, dtype=torch.float32) * size - 0.5
    fid, bary, _ = rasterize(uv[torch.as_tensor(tm.faces)], size, size)
    inside = (fid >= 0).numpy()
    corners = torch.as_tensor(tm.vertices, dtype=torch.float32)[torch.as_tensor(tm.faces)[fid[fid >= 0]]]
    pts = (corners * bary[fid >= 0][..., None]).sum(1).numpy()
    return inside, pts


def test_multiview_bake_reproduces_colours_without_background(device):
    v, f = sphere()
    cams = ring_cameras()
    mesh, photos, masks = make_inputs(v, f, cams)
    cfg = replace(texture.PRESETS["balanced"], texture_size=512, bake_size=512)
    progress = []
    tm = texture.bake_texture(mesh, photos, masks, cfg, device=device, progress=lambda f, m: progress.append(f))
    assert tm.texture.shape == (512, 512, 3) and tm.texture.dtype == np.uint8
    assert tm.uv.min() >= 0 and tm.uv.max() <= 1
    assert tm.vertices.shape[0] == tm.uv.shape[0] and tm.faces.max() < tm.vertices.shape[0]
    assert progress and progress[-1] == 1.0
    inside, pts = texel_truth(tm, 512)
    got = tm.texture[inside].astype(float)
    err = np.abs(got - colour_field(pts)).mean(axis=1)
    assert err.mean() < 6.0, err.mean()
    assert np.percentile(err, 99) < 40
    assert tm.coverage > 0.97
    # No background colour anywhere on the object (the field stays > 100 away from it).
    assert np.linalg.norm(got - BACKGROUND, axis=1).min() > 60
    # The gutter is filled too, so mip-maps do not pull in black or the background.
    outside = tm.texture[~inside].astype(float)
    assert np.linalg.norm(outside - BACKGROUND, axis=1).min() > 60
    assert outside.sum(axis=1).min() > 30


def test_heldout_photos_measure_photometric_error(device):
    v, f = sphere()
    cams = ring_cameras()  # 16 views: enough to hold 3 out of the bake
    mesh, photos, masks = make_inputs(v, f, cams)
    cfg = replace(texture.PRESETS["balanced"], texture_size=256, bake_size=256)
    tm = texture.bake_texture(mesh, photos, masks, cfg, device=device)
    assert tm.heldout_error is not None and tm.heldout_error < 8.0, tm.heldout_error
    # A model that disagrees with a held-out photo (inverted colours) gives a large error.
    from pipeline.texture.heldout import heldout_error, pick_heldout

    held = pick_heldout(mesh.views, cfg.heldout_views, cfg.heldout_min_views)
    assert len(held) == 3 and 0 not in held
    i = held[0]
    args = (photos[i].rgb, masks[i].mask, tm.vertices, tm.faces, tm.uv)
    right = heldout_error(cams[i], *args, tm.texture, cfg.depth_size, device)
    wrong = heldout_error(cams[i], *args, 255 - tm.texture, cfg.depth_size, device)
    assert wrong > 4 * right, (right, wrong)
    # Too few photos: nothing is held out, the error stays unknown.
    few = texture.bake_texture(replace(mesh, views=mesh.views[:6]), photos[:6], masks[:6], cfg, device=device)
    assert few.heldout_error is None


def test_photos_of_another_item_are_not_painted_from(device):
    """Structure from motion can place a photo of another item shot on the same table; its colours
    must not end up on this model, and the merchant is told which photo it was."""
    v, f = sphere()
    cams = ring_cameras()
    mesh, photos, masks = make_inputs(v, f, cams)
    other = {2, 7, 11}  # a differently coloured item where this one stands (not the held-out 3, 8, 13)
    mixed = [replace(p, rgb=np.where(m.mask[..., None], 255 - p.rgb, p.rgb)) if i in other else p
             for i, (p, m) in enumerate(zip(photos, masks))]
    cfg = replace(texture.PRESETS["balanced"], texture_size=256, bake_size=256)
    tm = texture.bake_texture(mesh, mixed, masks, cfg, device=device)
    inside, pts = texel_truth(tm, 256)
    err = np.abs(tm.texture[inside].astype(float) - colour_field(pts)).mean(axis=1)
    assert err.mean() < 6.0, err.mean()
    assert len(tm.warnings) == 3 and all(w.startswith(f"{i}.jpg does not look") for i, w in zip(sorted(other), tm.warnings))
    # The same photos, all of this item: none is left out.
    assert texture.bake_texture(mesh, photos, masks, cfg, device=device).warnings == ()


def test_exposure_differences_are_balanced(device):
    v, f = sphere()
    cams = ring_cameras(n=6)
    mesh, photos, masks = make_inputs(v, f, cams)
    # Every other photo is 25% darker: the bake should not show a patchwork of brightness.
    dark = [replace(p, rgb=(p.rgb * 0.75).astype(np.uint8)) if i % 2 else p for i, p in enumerate(photos)]
    dark = [replace(p, rgb=np.where(m.mask[..., None], p.rgb, BACKGROUND.astype(np.uint8)))
            for p, m in zip(dark, masks)]
    cfg = replace(texture.PRESETS["balanced"], texture_size=128, bake_size=128)
    balanced = texture.bake_texture(mesh, dark, masks, cfg, device=device, progress=None)
    plain = texture.bake_texture(mesh, dark, masks, replace(cfg, balance_exposure=False), device=device,
                                 progress=None)
    inside, pts = texel_truth(balanced, 128)
    spread = []
    for tm in (balanced, plain):
        lum = tm.texture[inside].astype(float).mean(1) / colour_field(pts).mean(1)
        spread.append(np.std(lum))
    assert spread[0] < 0.8 * spread[1], spread


@pytest.mark.parametrize("kind", ["revolve", "box"])
def test_single_view_bake_fills_everything(device, kind):
    v, f = sphere()
    cam = look_at_camera((0.0, 0.05, 0.6), focal=600.0, width=400, height=300)
    mesh, photos, masks = make_inputs(v, f, [cam], kind=kind)
    cfg = replace(texture.PRESETS["balanced"], texture_size=1024, bake_size=512)
    tm = texture.bake_texture(mesh, photos, masks, cfg, device=device, progress=None)
    s = tm.texture.shape[0]
    assert s == 1024  # texture_size, not the bake size
    inside, pts = texel_truth(tm, s)
    got = tm.texture[inside].astype(float)
    assert got.sum(axis=1).min() > 60, "black texels"
    assert np.linalg.norm(got - BACKGROUND, axis=1).min() > 60, "background baked in"
    assert 0.3 < tm.coverage < 0.7  # about the front half is seen
    front = pts[:, 2] > 0.5 * RADIUS
    err = np.abs(got[front] - colour_field(pts[front])).mean()
    assert err < 8.0, err
    if kind == "revolve":
        # The back mirrors the front: a back point gets the colour of the front point with the same x, y.
        back = pts[:, 2] < -0.5 * RADIUS
        mirrored = colour_field(pts[back] * [1, 1, -1])
        assert np.abs(got[back] - mirrored).mean() < 15.0


def test_single_orthographic_view(device):
    v, f = sphere()
    cam = look_at_camera((0.0, 0.0, 1.0), focal=1500.0, width=400, height=400, ortho=True)
    mesh, photos, masks = make_inputs(v, f, [cam], kind="round")
    cfg = replace(texture.PRESETS["fast"], texture_size=512)
    tm = texture.bake_texture(mesh, photos, masks, cfg, device=device, progress=None)
    inside, pts = texel_truth(tm, 512)
    got = tm.texture[inside].astype(float)
    front = pts[:, 2] > 0.5 * RADIUS
    assert np.abs(got[front] - colour_field(pts[front])).mean() < 8.0
    assert got.sum(axis=1).min() > 60


def test_masks_are_respected(device):
    """A wrong colour outside the mask (but inside the silhouette) never reaches the texture."""
    v, f = sphere()
    cams = ring_cameras(n=6)
    mesh, photos, masks = make_inputs(v, f, cams)
    # Paint a red band into every photo, and cut that band out of the masks.
    new_photos, new_masks = [], []
    for p, m in zip(photos, masks):
        rgb, mk = p.rgb.copy(), m.mask.copy()
        rgb[100:120] = (255, 0, 0)
        mk[96:124] = False
        new_photos.append(replace(p, rgb=rgb))
        new_masks.append(replace(m, mask=mk))
    cfg = replace(texture.PRESETS["fast"], texture_size=256)
    tm = texture.bake_texture(mesh, new_photos, new_masks, cfg, device=device, progress=None)
    inside, _ = texel_truth(tm, 256)
    got = tm.texture[inside].astype(int)
    red = (got[:, 0] > 200) & (got[:, 1] < 60) & (got[:, 2] < 60)
    assert red.sum() == 0


def test_bad_inputs_raise_plain_errors(device):
    v, f = sphere()
    mesh, photos, masks = make_inputs(v, f, [look_at_camera((0, 0, 0.5))])
    with pytest.raises(InputError):
        texture.bake_texture(mesh, photos, masks, replace(texture.PRESETS["fast"], texture_size=1000),
                             device=device, progress=None)
    with pytest.raises(InputError):
        texture.bake_texture(mesh, photos * 2, masks, texture.PRESETS["fast"], device=device, progress=None)

