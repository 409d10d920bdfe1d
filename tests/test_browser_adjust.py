"""Correcting a model in the browser (issue 14): real Chromium, a real `plinth serve`, the real
one-photo chair. On the Model page the merchant turns it a quarter, sets a new height, a new
poster angle and a dark background and applies; the share page, reloaded at the same URL, serves
a GLB whose box, a USDZ whose extent and a poster that changed accordingly (read back over HTTP),
and shows the model on the dark backdrop."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_browser import cut_out, model_pixels, wait_viewer_loaded  # noqa: E402
from test_webapp_http import running_server  # noqa: E402
from tests.polling import wait_for  # noqa: E402

from tests.browsing import VIEWPORTS as SIZES  # noqa: E402
from tests.browsing import signed_in_context  # noqa: E402


@pytest.fixture(scope="module")
def served(chair_model, tmp_path_factory, device):
    from webapp import model_folders

    data = tmp_path_factory.mktemp("adjust-browser")
    models = {size: model_folders.add_model(chair_model, f"Oak chair ({size})", [], data_dir=data) for size in SIZES}
    with running_server(data, device) as base:
        yield base, models


def served_files(share_url: str, tmp: Path) -> dict:
    """What a customer's phone gets from the share page: the files it links, read back."""
    import trimesh

    from tests.test_adjust import usdz_bounds

    tag = re.search(r"<model-viewer[^>]*>", httpx.get(share_url, timeout=30).text).group(0)
    src = {name: re.search(rf'\s{attr}="([^"]+)"', tag).group(1).replace("&amp;", "&")
           for name, attr in (("glb", "src"), ("usdz", "ios-src"), ("poster", "poster"))}
    got = {name: httpx.get(url, timeout=30) for name, url in src.items()}
    assert all(r.status_code == 200 for r in got.values()), {n: r.status_code for n, r in got.items()}
    (tmp / "m.usdz").write_bytes(got["usdz"].content)
    (tmp / "m.glb").write_bytes(got["glb"].content)
    lo, hi = trimesh.load(tmp / "m.glb", force="mesh").bounds
    return {"urls": src, "glb": (lo, hi), "usdz": usdz_bounds(tmp / "m.usdz"), "poster": got["poster"].content}


def adjust_shot(page, path: Path) -> None:
    """The Adjust section alone, with the viewport grown so it is all on screen."""
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": 3000})
    section = page.locator(".st-key-adjust_section")
    section.scroll_into_view_if_needed()
    page.wait_for_timeout(600)
    section.screenshot(path=path)
    page.set_viewport_size(size)


@pytest.mark.parametrize("size", list(SIZES))
def test_turn_resize_and_poster_then_the_share_page_serves_them(size, served, browser, artifacts, tmp_path):
    base, models = served
    model = models[size]
    share_url = f"{base}/ar/{model.share_id}"
    before = served_files(share_url, tmp_path)
    (w0, h0, d0) = before["glb"][1] - before["glb"][0]

    ctx = signed_in_context(browser, base, **SIZES[size])
    page = ctx.new_page()
    page.set_default_timeout(60_000)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{base}/model?id={model.model_id}")
    page.get_by_role("heading", name="Adjust the model").wait_for()
    page.get_by_text("Turn it, set its size").click()  # tucked away until asked for
    page.locator(".st-key-adjust_section [data-testid=stImage] img").wait_for()  # the preview
    adjust_shot(page, artifacts / f"adjust_before_{size}.png")

    page.get_by_role("button", name=re.compile("Turn a quarter to the right")).click()
    # "Turn a quarter to the right" brings its left side to the front: the radio follows.
    wait_for(lambda: page.get_by_role("radio", name="Its left side").is_checked(), 30, "front radio")
    height = page.get_by_role("textbox", name="Height")
    height.fill("1 m")
    height.press("Enter")
    page.get_by_text(re.compile(r"New size:.*× 100 ×")).wait_for()  # the other sides follow, shown live
    slider = page.get_by_role("slider", name=re.compile("around the item"))
    slider.focus()
    slider.press("Home")  # the poster from behind (-180 degrees)
    wait_for(lambda: slider.input_value() == "-180", 30, "poster slider")
    page.get_by_role("combobox", name=re.compile("Background")).click()
    page.get_by_role("option", name="Dark").click()
    page.wait_for_timeout(1500)  # the preview re-renders
    adjust_shot(page, artifacts / f"adjust_changed_{size}.png")
    page.get_by_role("button", name=re.compile("Apply changes")).click()
    wait_for(lambda: "?v=" in httpx.get(share_url, timeout=10).text, 120, "the adjusted share page")
    page.get_by_text("Saved. Your share link").wait_for()
    # The Model page's own viewer reloads the new files (a new revision in its address).
    wait_for(lambda: re.search(r"v=[0-9a-f]{12}", page.locator("iframe[src*='/ar/']").first.get_attribute("src")),
             30, "the Model page's viewer on the new revision")
    page.wait_for_timeout(1000)
    adjust_shot(page, artifacts / f"adjust_applied_{size}.png")
    page.close()  # its viewer draws in software while open: about a core, taken from what follows

    after = served_files(share_url, tmp_path)
    lo, hi = after["glb"]
    k = 1.0 / h0
    assert np.allclose(hi - lo, (d0 * k, 1.0, w0 * k), atol=2e-3), (hi - lo, (w0, h0, d0))
    assert abs(lo[1]) < 1e-6 and abs(lo[0] + hi[0]) < 1e-6 and abs(lo[2] + hi[2]) < 1e-6  # bottom centre
    ulo, uhi = after["usdz"]
    assert np.allclose(ulo, lo, atol=1e-5) and np.allclose(uhi, hi, atol=1e-5)
    assert after["poster"] != before["poster"] and after["urls"] != before["urls"]
    import cv2

    old = cv2.imdecode(np.frombuffer(before["poster"], np.uint8), cv2.IMREAD_COLOR).astype(int)
    new = cv2.imdecode(np.frombuffer(after["poster"], np.uint8), cv2.IMREAD_COLOR).astype(int)
    assert np.abs(cv2.resize(old, new.shape[1::-1]) - new).mean() > 3  # another angle, not the same picture

    # The share page at the same URL, as a customer reloads it, shows the new model.
    ar = ctx.new_page()
    ar.on("pageerror", lambda e: errors.append(str(e)))
    ar.goto(share_url)
    wait_viewer_loaded(ar.main_frame, f"adjusted share page ({size})")
    assert "× 100 ×" in ar.locator(".dims").inner_text()
    backdrop = ar.locator("model-viewer").evaluate("v => getComputedStyle(v).backgroundImage")
    assert "rgb(31, 36, 48)" in backdrop, backdrop  # the palette's dark backdrop, applied by the page's CSS
    ar.wait_for_timeout(500)
    box, scroll = ar.locator("model-viewer").bounding_box(), ar.evaluate("[scrollX, scrollY]")
    whole = ar.screenshot(path=artifacts / f"adjust_share_{size}.png", full_page=True)  # one frame, cut up
    assert model_pixels(cut_out(whole, box, scroll)) > 0.03
    assert errors == [], errors
    ctx.close()
