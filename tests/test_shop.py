"""Shop settings and a share link's shop settings, against a real SQLite library in a temp folder:
round trips, the mirror file a rebuilt database reads, the logo re-encoded without EXIF, bad web
addresses and bad logos refused with a plain message and nothing lost, link expiry; the pages
the share routes render for links that show no model."""

from __future__ import annotations

import io
import json
import re
import sqlite3
import time

import pytest
from PIL import Image

from webapp import ar_page, library, model_folders, sanitize, shop, store
from webapp.ar_page import LinkState


def _jpeg_with_gps(size=(900, 300)) -> bytes:
    im = Image.new("RGB", size, (31, 111, 92))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {1: "N", 2: (52.0, 22.0, 1.0), 3: "E", 4: (4.0, 53.0, 30.0)}  # GPS IFD
    buf = io.BytesIO()
    im.save(buf, format="JPEG", exif=exif)
    data = buf.getvalue()
    assert sanitize.has_metadata(data) and b"PhoneMaker" in data  # the test's input really carries EXIF
    return data


def test_shop_settings_round_trip_in_sqlite_and_the_mirror_file(tmp_path):
    assert shop.get(tmp_path) == shop.Shop()  # never saved: empty, not an error
    saved = shop.save(tmp_path, name="  Oak &   Co\u0007 ", website="oak.example/shop")
    assert (saved.name, saved.website) == ("Oak & Co", "https://oak.example/shop")
    with sqlite3.connect(store.db_path(tmp_path)) as con:
        row = con.execute("SELECT name, website FROM shops WHERE shop_id = ?", (shop.DEFAULT,)).fetchone()
    assert row == ("Oak & Co", "https://oak.example/shop")
    mirror = json.loads((tmp_path / "shop" / shop.DEFAULT / "shop.json").read_text())
    assert mirror["name"] == "Oak & Co"
    # A database rebuilt from the model folders has no shops row: the mirror answers.
    with sqlite3.connect(store.db_path(tmp_path)) as con:
        con.execute("DELETE FROM shops")
    again = shop.get(tmp_path)
    assert (again.name, again.website) == ("Oak & Co", "https://oak.example/shop")
    assert shop.get(tmp_path, "another-shop").name == ""  # keyed: one shop's settings are not another's


def test_logo_is_re_encoded_without_exif_and_scaled(tmp_path):
    stored = shop.set_logo(tmp_path, _jpeg_with_gps())
    assert stored.logo is not None and stored.logo.name == shop.LOGO_FILE
    data = stored.logo.read_bytes()
    assert data.startswith(b"\x89PNG") and b"PhoneMaker" not in data and not sanitize.has_metadata(data)
    with Image.open(stored.logo) as im:
        assert max(im.size) == shop.LOGO_BOX and "exif" not in im.info
        assert im.size == (400, 133)  # the aspect kept
    shop.save(tmp_path, name="Oak & Co", website="")
    assert shop.get(tmp_path).logo == stored.logo  # saving the name keeps the logo
    assert shop.remove_logo(tmp_path).logo is None and not stored.logo.exists()


@pytest.mark.parametrize("content, words", [
    (b"not an image at all", "not an image"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "not an image"),  # a PNG signature, then nothing
    (b"x" * (shop.MAX_LOGO_BYTES + 1), "under 2 MB"),
])
def test_bad_logo_is_refused_with_a_message_and_the_old_one_kept(tmp_path, content, words):
    first = shop.set_logo(tmp_path, _jpeg_with_gps())
    before = first.logo.read_bytes()
    with pytest.raises(shop.ShopError) as refused:
        shop.set_logo(tmp_path, content)
    assert words in refused.value.message and "Traceback" not in refused.value.message
    assert shop.get(tmp_path).logo.read_bytes() == before


@pytest.mark.parametrize("url", ["javascript:alert(1)", "JavaScript:alert(1)", "data:text/html,<b>x</b>",
                                 "ftp://oak.example/x", "http://", "just words", "https://oak.example/a b",
                                 'https://oak.example/"onmouseover="x', "https://oak.example:99999/"])
def test_bad_web_addresses_are_refused_and_nothing_changes(tmp_path, url):
    shop.save(tmp_path, name="Oak & Co", website="https://oak.example")
    with pytest.raises(shop.ShopError) as refused:
        shop.save(tmp_path, name="Other name", website=url)
    assert "https://" in refused.value.message
    kept = shop.get(tmp_path)
    assert (kept.name, kept.website) == ("Oak & Co", "https://oak.example")


def test_good_web_addresses(tmp_path):
    assert shop.clean_url("") == ""
    assert shop.clean_url(" https://oak.example/p/1?a=1&b=2 ") == "https://oak.example/p/1?a=1&b=2"
    assert shop.clean_url("oak.example/p") == "https://oak.example/p"
    assert shop.clean_url("http://localhost:8000/p") == "http://localhost:8000/p"


def test_link_settings_round_trip_through_the_manifest(chair_model, tmp_path):
    model = model_folders.add_model(chair_model, "Oak chair", [], data_dir=tmp_path)
    assert (model.product_url, model.expires, model.expired()) == ("", None, False)
    until = time.time() + 3600
    assert library.set_link(model.share_id, "https://oak.example/p/1", until, tmp_path)
    got = library.get_model(model.share_id, tmp_path)
    assert (got.product_url, got.expires) == ("https://oak.example/p/1", pytest.approx(until))
    assert not got.expired() and got.expired(now=until + 1)
    row = store.read_manifest(got.folder)  # what a rebuilt database would get
    assert (row["product_url"], row["expires"]) == ("https://oak.example/p/1", pytest.approx(until))
    # An older manifest without these keys reads as no product page and no expiry.
    body = json.loads((got.folder / store.MANIFEST).read_text())
    del body["product_url"], body["expires"]
    (got.folder / store.MANIFEST).write_text(json.dumps(body))
    old = store.read_manifest(got.folder)
    assert (old["product_url"], old["expires"]) == ("", None)


@pytest.mark.parametrize("state, words, status", [
    (LinkState.UNKNOWN, "This link doesn&#x27;t lead to a model", 404),
    (LinkState.TRASHED, "This model is no longer available", 410),
    (LinkState.EXPIRED, "This link has expired", 410),
])
def test_gone_pages_say_what_happened_in_the_shops_name(tmp_path, state, words, status):
    assert state.status == status
    plain = ar_page.render_gone(state)
    assert words in plain and "Plinth" in plain and 'name="viewport"' in plain
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", plain)
    owner = shop.save(tmp_path, name='<b>Oak</b> & "Co"', website="https://oak.example/?a=1&b=2")
    branded = ar_page.render_gone(state, owner)
    assert words in branded and "&lt;b&gt;Oak&lt;/b&gt; &amp; &quot;Co&quot;" in branded and "<b>Oak" not in branded
    assert 'href="https://oak.example/?a=1&amp;b=2"' in branded  # a way on to the shop
    assert f'data-state="{state.name.lower()}"' in branded


# ---------------------------------------------------------------- the pages (Streamlit AppTest)


def _page(page: str, **query):
    from tests.test_webapp_verdicts import _page as open_page

    return open_page(None, page, **query)


def test_model_page_offers_the_snippets_and_saves_the_link_settings(chair_model, app_data):
    model = model_folders.add_model(chair_model, "Oak chair", [], data_dir=app_data)
    at = _page("views/model.py", id=model.model_id)
    assert not at.exception
    codes = [c.value for c in at.code]
    assert any(f"/ar/{model.share_id}?embed=1" in c and c.startswith("<iframe") for c in codes), codes
    assert any("<model-viewer" in c and "/assets/model-viewer.min.js" in c and c.startswith("<script") for c in codes)
    assert any("Paste this into your product page's HTML" in m.value for m in at.markdown)

    field = next(t for t in at.text_input if t.label == "Your product page")
    field.input("javascript:alert(1)")
    next(b for b in at.button if b.label == "Save link settings").click()
    at.run()
    assert any("should be a web page address" in e.value for e in at.error)
    assert library.get_model(model.share_id, app_data).product_url == ""  # nothing stored
    assert next(t for t in at.text_input if t.label == "Your product page").value == "javascript:alert(1)"  # kept

    next(t for t in at.text_input if t.label == "Your product page").input("oak.example/p/1")
    next(c for c in at.checkbox if c.label.startswith("Stop the link working")).check()
    at.run()
    import datetime as dt

    last = dt.date.today() + dt.timedelta(days=3)
    next(d for d in at.date_input if d.label == "Last day it works").set_value(last)
    next(b for b in at.button if b.label == "Save link settings").click()
    at.run()
    assert not at.error and any("Saved" in s.value for s in at.success)
    got = library.get_model(model.share_id, app_data)
    assert got.product_url == "https://oak.example/p/1"
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time()).timestamp()
    assert got.expires == pytest.approx(end) and not got.expired() and got.expired(now=end)


def test_shop_page_saves_and_refuses_a_bad_address_without_losing_the_typing(app_data):
    at = _page("views/shop_page.py")
    assert not at.exception and at.title[0].value == "Your shop"
    by = {t.label: t for t in at.text_input}
    by["Shop name"].input("Oak & Co")
    by["Your website"].input("javascript:alert(1)")
    next(b for b in at.button if b.label == "Save").click()
    at.run()
    assert any("should be a web page address" in e.value for e in at.error)
    from tests.signing import owner_account

    mine = owner_account(app_data).id  # the signed-in merchant's shop
    assert shop.get(app_data, mine) == shop.Shop(shop_id=mine)  # nothing stored
    by = {t.label: t for t in at.text_input}
    assert (by["Shop name"].value, by["Your website"].value) == ("Oak & Co", "javascript:alert(1)")
    by["Your website"].input("https://oak.example")
    next(b for b in at.button if b.label == "Save").click()
    at.run()
    assert not at.error and any("Saved" in s.value for s in at.success)
    assert (shop.get(app_data, mine).name, shop.get(app_data, mine).website) == ("Oak & Co", "https://oak.example")
    assert shop.get(app_data) == shop.Shop()  # not the shop of a server without accounts
