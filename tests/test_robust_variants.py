"""The capture variants of bench/robust.py (bench/variants.py) on a real bench object, without
the pipeline: photo counts, order, ring split, the re-encoded files' size and EXIF focal length,
and that the blur and exposure variants really change pixels."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # bench/ is a folder of scripts, not an installed package
    sys.path.insert(0, str(ROOT))

from bench import variants as vr  # noqa: E402


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), np.int16)


def test_subsets_rings_and_order(bench, tmp_path):
    case = bench / "multiview" / "avocado"
    photos = vr.case_photos(case)
    assert len(photos) == 36 and photos[0].name == "000.jpg"
    counts = {v: len(vr.derive(case, v, tmp_path)) for v in vr.VARIANTS
              if v not in ("blur3", "exposure", "jpeg60", "one_spot", "x80")}
    assert counts == {"all": 36, "two_thirds": 24, "every_other": 18, "every_third": 12, "ring_low": 12,
                      "ring_mid": 12, "ring_high": 12, "two_rings": 24, "shuffled": 36, "mixed": 36}

    # the three rings split the capture, and each sits at its own elevation band
    elev = [f["elevation_deg"] for f in json.loads((case / "cameras.json").read_text())["frames"]]
    rings = vr.rings(case)
    assert sorted(i for r in rings for i in r) == list(range(36))
    bands = [(min(elev[i] for i in r), max(elev[i] for i in r)) for r in rings]
    assert bands[0][1] < bands[1][0] and bands[1][1] < bands[2][0]
    assert 0 in rings[0]  # photo 0 is in the low ring
    assert vr.derive(case, "ring_mid", tmp_path) == [photos[i] for i in rings[1]]

    shuffled = vr.derive(case, "shuffled", tmp_path)
    assert shuffled[0] == photos[0] and sorted(shuffled) == sorted(photos) and shuffled != photos
    assert shuffled == vr.derive(case, "shuffled", tmp_path)  # fixed seed
    for v in ("two_thirds", "every_other", "every_third", "two_rings"):
        assert vr.derive(case, v, tmp_path)[0] == photos[0]
    # subsets hand over the bench's own files: nothing written
    assert not any(tmp_path.iterdir())


def test_pixel_variants_write_changed_photos(bench, tmp_path):
    case = bench / "multiview" / "avocado"
    photos = vr.case_photos(case)

    blurred = vr.derive(case, "blur3", tmp_path)
    changed = [i for i, (a, b) in enumerate(zip(photos, blurred)) if a != b]
    assert len(blurred) == 36 and len(changed) == 3 and 0 not in changed
    for i in changed:
        assert blurred[i].parent == tmp_path / "blur3"
        # a horizontal smear: the horizontal detail drops (about 0.63x here; saving at q90 alone keeps it)
        sharp = np.abs(np.diff(_pixels(photos[i]), axis=1)).mean()
        assert np.abs(np.diff(_pixels(blurred[i]), axis=1)).mean() < 0.8 * sharp

    # every exposure photo is a new file; brighter or darker as its offset says
    exposed = vr.derive(case, "exposure", tmp_path)
    stops = vr.exposure_stops(36)
    assert np.abs(stops).max() <= vr.EXPOSURE_STOPS and np.ptp(stops) <= 1.0
    for i in (0, int(np.argmax(stops)), int(np.argmin(stops))):
        diff = _pixels(exposed[i]).mean() - _pixels(photos[i]).mean()
        assert np.sign(diff) == np.sign(stops[i]) and abs(diff) > 3.0

    reenc = vr.derive(case, "jpeg60", tmp_path)
    assert len(reenc) == 36 and reenc[0].name == "000.jpg" and reenc[0].parent == tmp_path / "jpeg60"
    with Image.open(reenc[5]) as im:
        assert max(im.size) == 1600 and im.size == (1600, 1200)
        ifd = im.getexif().get_ifd(0x8769)
    # the bench's fx = 796.4 px over 1024 px is a 28 mm-equivalent lens
    assert ifd[41989] == 28 and 4.0 < float(ifd[37386]) < 6.0
    from pipeline import ingest

    # the pipeline reads it back as the true focal length at the new size
    photo = ingest.load_photos([reenc[5]], ingest.PRESETS["balanced"]).photos[0]
    fx = json.loads((case / "cameras.json").read_text())["frames"][5]["K"][0][0]
    assert abs(photo.focal_px / max(photo.size) - fx / 1024) < 1e-3

    # 80 photos for the memory check: the originals, then their re-encodings, then some exposed ones
    many = vr.derive(case, "x80", tmp_path)
    assert len(many) == 80 and many[:36] == photos and many[36:72] == reenc
    assert many[72:] == exposed[:vr.X80_EXPOSED]


def test_real_sets_get_the_variants_that_need_no_cameras(bench, tmp_path):
    case = bench / "real" / "monstree"
    assert set(vr.available(case)) == set(vr.VARIANTS) - vr.NEEDS_CAMERAS
    assert len(vr.derive(case, "every_other", tmp_path)) == 12  # of 23
    assert len(vr.derive(case, "two_thirds", tmp_path)) == 15


def test_broken_captures_one_spot_and_mixed(bench, tmp_path):
    case = bench / "multiview" / "avocado"
    copies = vr.derive(case, "one_spot", tmp_path)
    assert len(copies) == vr.ONE_SPOT_COPIES and len({p.name for p in copies}) == vr.ONE_SPOT_COPIES
    first = _pixels(vr.case_photos(case)[0])
    for p in copies[:3]:  # the same view, same size, but not the same pixels (crop and re-encoding)
        px = _pixels(p)
        assert px.shape == first.shape and 0 < np.abs(px - first).mean() < 40
    assert vr.derive(case, "one_spot", tmp_path) == copies  # fixed seed: same files again
    mixed = vr.derive(case, "mixed", tmp_path)
    other = vr.next_object(case)
    assert other.name == "banana" and [p.parent.parent for p in mixed[:2]] == [case, other]
    assert {p.parent.parent.name for p in mixed[::2]} == {"avocado"} and {p.parent.parent.name for p in mixed[1::2]} == {"banana"}
    assert "mixed" not in vr.available(bench / "hard" / "waterbottle_plain_table")
