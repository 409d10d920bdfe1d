"""Ingest: bad files give one-line InputErrors naming the file; odd formats become RGB photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline import ingest
from pipeline.errors import InputError
from tests.badinputs import EXPECTED, make_corpus
from tests.scenes import synthetic_object

CONVERTIBLE = [k for k, e in EXPECTED.items() if e.valid]
BROKEN = [k for k, e in EXPECTED.items() if not e.valid and e.stage == "ingest"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    return make_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.mark.parametrize("name", BROKEN)
def test_broken_file_gives_one_line_input_error(corpus, name):
    path = corpus[name]
    with pytest.raises(InputError) as err:
        ingest.load_photos([path], ingest.PRESETS["balanced"])
    msg = str(err.value)
    assert err.value.stage == "ingest"
    assert path.name in msg
    assert EXPECTED[name].words in msg.lower()
    assert "\n" not in msg and "Traceback" not in msg


@pytest.mark.parametrize("name", CONVERTIBLE)
def test_convertible_formats_give_rgb_photo(corpus, name):
    photo = ingest.load_photos([corpus[name]], ingest.PRESETS["balanced"]).photos[0]
    assert photo.rgb.dtype == np.uint8 and photo.rgb.shape == (480, 640, 3)
    assert photo.name == corpus[name].name and photo.index == 0
    _, mask = synthetic_object()
    # The pixels survived the conversion: the object is brighter (in luma) than the background.
    grey = photo.rgb.astype(float) @ np.array([0.299, 0.587, 0.114])
    if name in ("rgba_cutout", "grey_alpha"):
        assert photo.alpha is not None
        assert ((photo.alpha > 127) == mask).mean() > 0.99
        assert (photo.rgb[~mask] == 255).all()  # see-through pixels become a white backdrop
        assert 120 < grey[mask].mean() < 180
    else:
        assert grey[mask].mean() > grey[~mask].mean() + 20
        assert photo.alpha is None


def test_sixteen_bit_keeps_full_range(corpus):
    photo = ingest.load_photos([corpus["gray16"]]).photos[0]
    ref = np.asarray(Image.open(corpus["grey"]).convert("L"), float)
    # A clipping conversion would saturate almost everything at 255.
    assert np.abs(photo.rgb[..., 0].astype(float) - ref).mean() < 6


def test_opaque_alpha_is_not_a_cutout(tmp_path):
    rgb, _ = synthetic_object()
    Image.fromarray(rgb).convert("RGBA").save(tmp_path / "opaque.png")
    assert ingest.load_photos([tmp_path / "opaque.png"]).photos[0].alpha is None


def test_exif_orientation_applied(tmp_path):
    rgb = np.zeros((300, 400, 3), np.uint8)
    rgb[:, :200] = (250, 20, 20)  # left half red, right half blue
    rgb[:, 200:] = (20, 20, 250)
    im = Image.fromarray(rgb)
    exif = im.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    im.save(tmp_path / "rot.jpg", exif=exif, quality=95)
    photo = ingest.load_photos([tmp_path / "rot.jpg"]).photos[0]
    assert photo.size == (300, 400)  # (width, height): portrait after rotation
    assert photo.original_size == (300, 400)
    # Rotating clockwise puts the stored left (red) half at the top.
    assert photo.rgb[50, 150, 0] > 200 and photo.rgb[350, 150, 2] > 200


def test_focal_prior_from_exif(tmp_path):
    rgb, _ = synthetic_object(1200, 900)
    im = Image.fromarray(rgb)
    exif = im.getexif()
    exif.get_ifd(0x8769)[41989] = 28  # FocalLengthIn35mmFilm
    exif.get_ifd(0x8769)[37386] = 4.25  # FocalLength (mm): unusable without the sensor size
    im.save(tmp_path / "f.jpg", exif=exif, quality=92)
    im.save(tmp_path / "nofocal.jpg", quality=92)
    cfg = ingest.IngestConfig(max_side=600)
    photos = ingest.load_photos([tmp_path / "f.jpg", tmp_path / "nofocal.jpg"], cfg).photos
    assert photos[0].size == (600, 450)
    assert photos[0].focal_px == pytest.approx(28 / 36 * 600)
    assert photos[1].focal_px is None


def test_downscale_to_working_size(tmp_path):
    rgb, mask = synthetic_object(2400, 1800)
    Image.fromarray(rgb).save(tmp_path / "big.jpg", quality=90)
    photo = ingest.load_photos([tmp_path / "big.jpg"], ingest.PRESETS["fast"]).photos[0]
    assert max(photo.size) == ingest.PRESETS["fast"].max_side
    assert photo.original_size == (2400, 1800)
    assert not any("resolution" in w.lower() for w in photo.warnings)
    small_mask = np.asarray(Image.fromarray(mask).resize(photo.size, Image.NEAREST))
    assert photo.rgb[small_mask][:, 0].mean() > 180  # the orange object is still where it was


def test_multi_file_skips_bad_and_keeps_order(corpus):
    paths = [corpus["truncated"], corpus["good"], corpus["text_as_jpg"], corpus["cmyk"]]
    got = ingest.load_photos(paths)
    assert [p.name for p in got.photos] == ["good.jpg", "cmyk.jpg"]
    assert [p.index for p in got.photos] == [0, 1]
    assert len(got.rejected) == 2
    assert got.rejected[0].startswith("truncated.jpg:") and got.rejected[1].startswith("text_as_jpg.jpg:")


def test_no_usable_photo_raises_first_reason(corpus):
    with pytest.raises(InputError) as err:
        ingest.load_photos([corpus["empty"], corpus["tiny"], corpus["bomb"]])
    msg = str(err.value)
    assert msg.startswith("None of the 3 photos could be read") and "empty.jpg" in msg
    with pytest.raises(InputError):
        ingest.load_photos([])


def test_quality_warnings(corpus, tmp_path, bench):
    import cv2

    assert any("resolution" in w.lower() for w in ingest.check_photo(corpus["good"]))
    hero = bench / "single" / "boombox" / "image.jpg"
    assert not any("blurry" in w for w in ingest.check_photo(hero))
    blurred = cv2.GaussianBlur(np.asarray(Image.open(hero)), (0, 0), 3.0)
    Image.fromarray(blurred).save(tmp_path / "blurred.jpg", quality=92)
    assert any("blurry" in w for w in ingest.check_photo(tmp_path / "blurred.jpg"))
    dark = (np.asarray(Image.open(hero)) * 0.15).astype(np.uint8)
    Image.fromarray(dark).save(tmp_path / "dark.jpg")
    assert any("dark" in w for w in ingest.check_photo(tmp_path / "dark.jpg"))
    with pytest.raises(InputError):
        ingest.check_photo(corpus["truncated"])


def test_bench_photos_not_flagged(bench):
    """No blur / exposure warning on any bench render (they are sharp and well lit)."""
    views = sorted((bench / "multiview").glob("*/images/*.jpg"))[::9]
    singles = sorted((bench / "single").glob("*/image.jpg"))
    assert views and singles
    for path in singles + views:
        assert ingest.check_photo(path) == (), path


@pytest.mark.parametrize("orientation", range(1, 9))
def test_all_orientations_match_pillow(tmp_path, orientation):
    from PIL import ImageOps

    rng = np.random.default_rng(orientation)
    rgb = np.kron(rng.integers(0, 255, (6, 8, 3)), np.ones((64, 64, 1))).astype(np.uint8)  # 384x512 blocks
    im = Image.fromarray(rgb)
    exif = im.getexif()
    exif[0x0112] = orientation
    im.save(tmp_path / "o.png", exif=exif)
    want = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "o.png")).convert("RGB"))
    got = ingest.load_photos([tmp_path / "o.png"]).photos[0].rgb
    assert got.shape == want.shape and (got == want).all()


@pytest.mark.parametrize("short_side", ["width", "height"])
def test_the_smallest_photo_rule_and_its_message_agree(tmp_path, short_side):
    """The rule is on the shorter side; the message says so and names the same number."""
    def photo(short: int) -> Path:
        size = (short, 900) if short_side == "width" else (900, short)
        path = tmp_path / f"{short_side}_{short}.png"
        Image.fromarray(synthetic_object(size[0], size[1])[0]).save(path)
        return path

    ingest.check_photo(photo(ingest.MIN_SIDE))  # exactly the minimum is usable
    with pytest.raises(InputError) as err:
        ingest.check_photo(photo(ingest.MIN_SIDE - 1))
    message = err.value.message
    assert f"at least {ingest.MIN_SIDE} pixels" in message and "shorter side" in message, message
    assert "wide" not in message, message
    assert ingest.IngestConfig().min_side == ingest.MIN_SIDE


def _on_white(bench: Path, name: str, gain: float) -> np.ndarray:
    """A bench photo's product (its true mask) composited onto pure white, brightened by `gain`."""
    rgb = np.asarray(Image.open(bench / "single" / name / "image.jpg").convert("RGB")).astype(np.float32)
    mask = np.asarray(Image.open(bench / "single" / name / "mask.png").convert("L")) > 127
    return np.clip(np.where(mask[..., None], rgb * gain, 255.0), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("name, gain", [("chair", 4.0), ("avocado", 3.0)])
def test_a_white_backdrop_is_not_overexposure_but_a_blown_out_product_is(bench, tmp_path, name, gain):
    studio, blown = tmp_path / "studio.jpg", tmp_path / "blown.jpg"
    Image.fromarray(_on_white(bench, name, 1.0)).save(studio, quality=92)
    Image.fromarray(_on_white(bench, name, gain)).save(blown, quality=92)
    assert not any("overexposed" in w for w in ingest.check_photo(studio)), ingest.check_photo(studio)
    assert any("overexposed" in w for w in ingest.check_photo(blown)), ingest.check_photo(blown)
