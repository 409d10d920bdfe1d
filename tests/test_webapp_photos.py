"""Per-photo checks on the Create page and how share links are built."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from webapp import library, photo_check, settings


def _jpeg(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def _scene(offset_x: int = 0, size: int = 1200) -> np.ndarray:
    img = np.full((size * 3 // 4, size, 3), 235, np.uint8)
    h, w = img.shape[:2]
    y0, y1, x0, x1 = h // 4, 3 * h // 4, w // 3 + offset_x, 2 * w // 3 + offset_x
    rng = np.random.default_rng(0)
    img[y0:y1, max(0, x0):min(w, x1)] = rng.integers(40, 140, (y1 - y0, min(w, x1) - max(0, x0), 3))
    return img


def test_centred_product_gives_thumbnail_and_no_cut_off_warning():
    check = photo_check.check_upload("vase.jpg", _jpeg(_scene()))
    assert check.error == "" and check.thumbnail and check.thumbnail[:2] == b"\xff\xd8"
    assert Image.open(io.BytesIO(check.thumbnail)).size[0] <= 360
    assert not any("edge" in w for w in check.warnings)


def test_product_running_off_the_frame_is_flagged():
    check = photo_check.check_upload("vase.jpg", _jpeg(_scene(offset_x=600)))
    assert any("edge of the photo" in w for w in check.warnings)


def test_busy_background_does_not_raise_false_cut_off_alarms():
    rng = np.random.default_rng(1)
    assert photo_check.cut_off_warning(rng.integers(0, 255, (300, 400, 3)).astype(np.uint8)) == ""


def test_small_and_blurry_photos_are_warned_and_junk_is_refused():
    small = Image.fromarray(_scene(size=600)).resize((600, 450))
    blurry = np.asarray(small.resize((150, 112)).resize((600, 450), Image.BILINEAR))
    check = photo_check.check_upload("small.jpg", _jpeg(blurry))
    assert any("resolution" in w.lower() for w in check.warnings)
    assert any("blurry" in w for w in check.warnings)
    bad = photo_check.check_upload("notes.jpg", b"this is not an image")
    assert bad.error and "notes.jpg" in bad.error and bad.thumbnail is None


def test_share_links_follow_public_url_then_browser_then_running_server(tmp_path, monkeypatch):
    monkeypatch.delenv("PLINTH_PUBLIC_URL", raising=False)
    monkeypatch.delenv("PLINTH_ALLOWED_HOSTS", raising=False)
    lan = sorted(h for h in settings.machine_hosts() if "." in h and not h.startswith("127."))
    assert lan, "this machine has no non-loopback IPv4 address to test with"
    seen = f"http://{lan[0]}:8501/model?id=x"  # where the merchant's browser (or a phone) reached us
    assert library.share_url("abc", data_dir=tmp_path) == "http://localhost:8501/ar/abc"
    settings.record_server_url("http://127.0.0.1:9000", tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["server.json"]  # written in one go, no temporary left
    assert library.share_url("abc", data_dir=tmp_path) == "http://127.0.0.1:9000/ar/abc"
    assert library.share_url("abc", seen_at=seen, data_dir=tmp_path) == f"http://{lan[0]}:8501/ar/abc"
    assert library.share_url("abc", seen_at="about:blank", data_dir=tmp_path) == "http://127.0.0.1:9000/ar/abc"
    # A host this server neither has nor is configured for (a forged Host header): the recorded URL
    for forged in ("http://evil.example/ar/x", "https://192.168.250.250:8501/", "http://[::ffff:1.2.3.4]/",
                   "http://localhost.evil.example/", "http://evil.example:bad/"):
        assert library.share_url("abc", seen_at=forged, data_dir=tmp_path) == "http://127.0.0.1:9000/ar/abc", forged
    monkeypatch.setenv("PLINTH_ALLOWED_HOSTS", " shop.example , Other.Example")
    assert library.share_url("abc", seen_at="https://shop.example/x", data_dir=tmp_path) == "https://shop.example/ar/abc"
    assert library.share_url("abc", seen_at="http://other.example:81/", data_dir=tmp_path) == "http://other.example:81/ar/abc"
    monkeypatch.setenv("PLINTH_PUBLIC_URL", "https://shop.example.com/3d/")
    assert library.share_url("abc", data_dir=tmp_path) == "https://shop.example.com/3d/ar/abc"
    assert library.share_url("abc", seen_at=seen, data_dir=tmp_path) == "https://shop.example.com/3d/ar/abc"


def test_fewer_than_twenty_photos_get_a_notice_at_upload_saying_what_they_give():
    import pipeline

    assert photo_check.count_notice(1) == ""  # one photo: the quick model the page offers
    assert photo_check.count_notice(pipeline.FEW_PHOTOS) == "" and photo_check.count_notice(60) == ""
    two = photo_check.count_notice(2)
    assert two.startswith("For a full 3D scan take 20 or more photos all around the product; with 2 photos")
    assert "only the first one is used" in two
    for n in (3, 12, pipeline.FEW_PHOTOS - 1):
        notice = photo_check.count_notice(n)
        assert notice.startswith(f"For a full 3D scan take 20 or more photos all around the product; with {n} ")
        assert f"Add {pipeline.FEW_PHOTOS - n} more" in notice
