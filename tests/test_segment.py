"""Segment: synthetic object masks, cut-outs, blank photos, objects cut off by the frame, bench IoU."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from pipeline import ingest, segment
from pipeline.errors import CaptureError
from pipeline.types import Photo
from tests.badinputs import make_corpus
from tests.scenes import photo as make_photo
from tests.scenes import synthetic_object

CFG = segment.PRESETS["balanced"]

#: Measured with bench/masks.py (balanced): hero IoU avocado 0.985, banana 0.911, boombox 0.930,
#: chair 0.850 (0.787 before the background retest re-opened the gap under the back rail and part of
#: the floor between the legs), waterbottle 0.986.
#: The floors leave a few points of margin for platform differences in OpenCV's GrabCut.
HERO_MIN_IOU = {"avocado": 0.95, "banana": 0.87, "boombox": 0.88, "chair": 0.80, "waterbottle": 0.95}
HERO_MEAN_MIN = 0.90


def _photo(rgb: np.ndarray, alpha: np.ndarray | None = None, name: str = "test.jpg") -> Photo:
    return make_photo(rgb, name=name, alpha=alpha)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_synthetic_object_iou(seed):
    rgb, gt = synthetic_object(640, 480, seed=seed)
    m = segment.segment_photo(_photo(rgb), CFG)
    assert m.mask.shape == gt.shape and m.mask.dtype == bool
    assert _iou(m.mask, gt) > 0.9
    assert m.method == "grabcut" and not m.touches_border
    assert m.confidence > 0.6 and m.warnings == ()


def test_greyscale_object_still_found():
    rgb, gt = synthetic_object(640, 480)
    grey = np.repeat((rgb.astype(float) @ [0.299, 0.587, 0.114]).astype(np.uint8)[..., None], 3, axis=2)
    assert _iou(segment.segment_photo(_photo(grey), CFG).mask, gt) > 0.85


def test_alpha_cutout_used_directly():
    rgb, gt = synthetic_object(640, 480)
    alpha = np.where(gt, 255, 0).astype(np.uint8)
    m = segment.segment_photo(_photo(rgb, alpha), CFG)
    assert m.method == "alpha" and m.confidence > 0.9
    assert (m.mask == gt).all()


@pytest.mark.parametrize("name", ["blank", "gradient"])
def test_no_object_raises_capture_error(tmp_path, name):
    path = make_corpus(tmp_path)[name]
    photo = ingest.load_photos([path]).photos[0]
    with pytest.raises(CaptureError) as err:
        segment.segment_photo(photo, CFG)
    assert err.value.stage == "segment"
    assert "No distinct object found in " + path.name in str(err.value)


def test_noise_raises_capture_error():
    rng = np.random.default_rng(3)
    noise = (rng.random((480, 640, 3)) * 255).astype(np.uint8)
    with pytest.raises(CaptureError):
        segment.segment_photo(_photo(noise, name="noise.png"), CFG)


def test_object_cut_off_by_frame_is_flagged():
    rgb, gt = synthetic_object(640, 480)
    # Shift the scene up so the object's top runs out of the frame.
    shift = 190
    rgb2, gt2 = rgb[shift:], gt[shift:]
    assert gt2[0].any()
    m = segment.segment_photo(_photo(np.ascontiguousarray(rgb2)), CFG)
    assert m.touches_border
    assert any("edge of the photo" in w for w in m.warnings)
    assert _iou(m.mask, gt2) > 0.85  # the part inside the frame is still found, up to the edge

    whole = segment.segment_photo(_photo(rgb), CFG)
    assert not whole.touches_border


def test_cutout_touching_edge_is_flagged():
    rgb, gt = synthetic_object(640, 480)
    alpha = np.where(gt, 255, 0).astype(np.uint8)[200:]
    m = segment.segment_photo(_photo(np.ascontiguousarray(rgb[200:]), alpha), CFG)
    assert m.touches_border and m.warnings


@pytest.mark.parametrize("obj", sorted(HERO_MIN_IOU))
def test_bench_hero_masks(bench, obj):
    photo = ingest.load_photos([bench / "single" / obj / "image.jpg"], ingest.PRESETS["balanced"]).photos[0]
    gt = np.asarray(Image.open(bench / "single" / obj / "mask.png").convert("L")) > 127
    m = segment.segment_photo(photo, CFG)
    iou = _iou(m.mask, gt)
    assert iou > HERO_MIN_IOU[obj], f"{obj}: IoU {iou:.3f}"
    assert not m.touches_border
    assert m.confidence > 0.5



def test_bench_hero_mean(bench):
    ious = []
    for d in sorted((bench / "single").iterdir()):
        photo = ingest.load_photos([d / "image.jpg"]).photos[0]
        gt = np.asarray(Image.open(d / "mask.png").convert("L")) > 127
        ious.append(_iou(segment.segment_photo(photo, CFG).mask, gt))
    assert ious, f"no single-photo cases under {bench / 'single'}"
    assert np.mean(ious) > HERO_MEAN_MIN, ious



#: Measured with U²-Net-p refining GrabCut (the single-photo path): hero IoU avocado 0.986, banana
#: 0.960, boombox 0.923, chair 0.930, waterbottle 0.989 (mean 0.958; GrabCut alone 0.932).
SALIENT = dataclasses.replace(CFG, saliency=True)
SALIENT_MIN_IOU = {"avocado": 0.96, "banana": 0.93, "boombox": 0.88, "chair": 0.90, "waterbottle": 0.96}


@pytest.mark.parametrize("obj", sorted(SALIENT_MIN_IOU))
def test_bench_hero_masks_with_u2netp(bench, obj):
    photo = ingest.load_photos([bench / "single" / obj / "image.jpg"], ingest.PRESETS["balanced"]).photos[0]
    gt = np.asarray(Image.open(bench / "single" / obj / "mask.png").convert("L")) > 127
    m = segment.segment_photo(photo, SALIENT)
    assert m.method == "u2netp" and not m.touches_border and m.confidence > 0.5
    assert _iou(m.mask, gt) > SALIENT_MIN_IOU[obj], f"{obj}: IoU {_iou(m.mask, gt):.3f}"


def test_without_the_weights_the_single_photo_path_is_grabcut(bench, monkeypatch):
    from pipeline import weights

    monkeypatch.setattr(weights, "U2NETP", dataclasses.replace(weights.U2NETP, package="no_such_weights_package"))
    photo = ingest.load_photos([bench / "single" / "chair" / "image.jpg"]).photos[0]
    m = segment.segment_photo(photo, SALIENT)
    assert m.method == "grabcut"
    assert np.array_equal(m.mask, segment.segment_photo(photo, CFG).mask)


@pytest.mark.parametrize("name", ["blank", "gradient"])
def test_saliency_never_invents_an_object(tmp_path, name):
    files = make_corpus(tmp_path)
    photo = ingest.load_photos([files[name]]).photos[0]
    with pytest.raises(CaptureError, match="No distinct object"):
        segment.segment_photo(photo, SALIENT)


#: The multi-photo path: U²-Net-p alone at 256 px (bench/saliency.py: mean IoU 0.935 over 45
#: multi-view photos, GrabCut 0.883; chair views 0.882 against 0.807).
MULTI = segment.preset("balanced", multiview=True)


@pytest.mark.parametrize("obj", ["chair", "banana"])
def test_multiview_masks_come_from_u2netp(bench, obj):
    view = bench / "multiview" / obj
    ours, grabcut = [], []
    for name in ("000", "009", "018", "027"):
        photo = ingest.load_photos([view / "images" / f"{name}.jpg"], ingest.PRESETS["balanced"]).photos[0]
        gt = np.asarray(Image.open(view / "masks" / f"{name}.png").convert("L").resize(photo.size, Image.NEAREST)) > 127
        m = segment.segment_photo(photo, MULTI)
        assert m.method == "u2netp", name
        ours.append(_iou(m.mask, gt))
        grabcut.append(_iou(segment.segment_photo(photo, CFG).mask, gt))
    assert np.mean(ours) > max(0.8, np.mean(grabcut)), (obj, ours, grabcut)


@pytest.mark.parametrize("name", ["blank", "gradient"])
def test_multiview_saliency_never_invents_an_object(tmp_path, name):
    files = make_corpus(tmp_path)
    photo = ingest.load_photos([files[name]]).photos[0]
    with pytest.raises(CaptureError, match="No distinct object"):
        segment.segment_photo(photo, MULTI)
