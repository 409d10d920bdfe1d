"""Many merchants on one server: each sees only their own models, jobs and shop, through the
pages (Streamlit AppTest on the real app, real SQLite) and the routes (the real Starlette routes);
another merchant's ids answer like unknown ones ("not found", 404), and a share id never opens
the merchant's page. The owner account may show everyone's models."""

from __future__ import annotations

import time

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

import pipeline
from tests.merchants import cookie
from tests.signing import signed_in_apptest
from tests.test_webapp_apptest import APP
from webapp import accounts, jobs, library, model_folders, routes, shop, trash
from webapp.jobs import JobStatus


@pytest.fixture
def shelves(two_merchants, app_data, chair_model, chair_photo):
    """A's chair and B's stool (published), A's lamp in the Trash and A's vase job that failed."""
    m = two_merchants
    a_chair = model_folders.add_model(chair_model, "Oak chair", [], data_dir=app_data, owner=m.a.id)
    b_stool = model_folders.add_model(chair_model, "Birch stool", [], data_dir=app_data, owner=m.b.id)
    a_lamp = model_folders.add_model(chair_model, "Oak lamp", [], data_dir=app_data, owner=m.a.id)
    assert trash.move(a_lamp.share_id, app_data)
    a_job = jobs.submit([("front.jpg", chair_photo.read_bytes())], "Oak vase", pipeline.Options(quality="fast"),
                        data_dir=app_data, owner=m.a.id)
    jobs.update(app_data, a_job, status=JobStatus.FAILED, finished=time.time(), error="No object found in front.jpg.")
    return m, a_chair, b_stool, a_lamp, a_job


def _page(data, page: str, user, **query):
    """`page` of the real app, signed in as `user` (one run first, so the pages are registered)."""
    import streamlit as st

    st.cache_resource.clear()
    at = signed_in_apptest(APP, data, user, default_timeout=60).run()
    at.switch_page(page)
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def _texts(at) -> str:
    parts = [e.value for e in (*at.title, *at.subheader, *at.markdown, *at.caption, *at.info, *at.warning,
                               *at.error, *at.success)]
    return "\n".join(str(p) for p in parts).replace("\\", "").replace("\u2060", "")


def _card_names(at) -> set[str]:
    return {m.value.strip("*").replace("\\", "") for m in at.markdown if m.value.startswith("**")}


def test_each_merchant_sees_only_their_own_library_jobs_and_trash(shelves, app_data):
    m, a_chair, _, _, a_job = shelves
    at = _page(app_data, "views/library_page.py", user=m.a)
    assert not at.exception
    text = _texts(at)
    assert "Oak chair" in _card_names(at) and "Birch stool" not in text
    assert "Oak vase" in text and "Needs attention" in text  # A's failed job
    assert any(e.label == "Trash (1)" for e in at.expander) and "Oak lamp" in text
    assert not [t for t in at.toggle if t.label == "Show everyone's models"]  # only the owner has it

    at = _page(app_data, "views/library_page.py", user=m.b)
    assert not at.exception
    text = _texts(at)
    assert "Birch stool" in _card_names(at)
    assert "Oak chair" not in text and "Oak vase" not in text and "Oak lamp" not in text
    assert "Needs attention" not in text and any(e.label == "Trash (0)" for e in at.expander)
    assert not [b for b in at.button if b.key in (f"open-{a_chair.share_id}", f"retry-{a_job}")]


def test_the_owner_shows_everyones_models_with_whose_they_are(shelves, app_data):
    m, _, b_stool, *_ = shelves
    at = _page(app_data, "views/library_page.py", user=m.owner)
    assert not at.exception
    assert "No models yet" in _texts(at) and "Oak chair" not in _texts(at)  # off: the owner's own only
    everyone = next(t for t in at.toggle if t.label == "Show everyone's models")
    assert everyone.value is False
    everyone.set_value(True).run()
    assert not at.exception
    assert {"Oak chair", "Birch stool"} <= _card_names(at)
    captions = " ".join(c.value for c in at.caption).replace("\\", "")
    assert "Ana of Oak & Co" in captions and "Ben of Birch" in captions
    assert "Oak vase" in _texts(at) and any(e.label == "Trash (1)" for e in at.expander)
    assert len([c for c in at.caption if c.value.endswith("Ana of Oak \\& Co")]) == 2  # A's chair and A's job
    next(b for b in at.button if b.key == f"open-{b_stool.share_id}").click().run()
    assert not at.exception and at.title[0].value == "Birch stool"  # the owner may open any model


def test_another_merchants_model_page_is_not_found_and_offers_nothing(shelves, app_data):
    m, a_chair, _, a_lamp, _ = shelves
    at = _page(app_data, "views/model.py", user=m.a, id=a_chair.model_id)
    assert not at.exception and at.title[0].value == "Oak chair"  # A's own, by its merchant-side id
    assert [t for t in at.text_input if t.label == "Product name"]

    for user, model_id in ((m.b, a_chair.model_id), (m.b, a_lamp.model_id), (m.a, a_chair.share_id),
                           (m.a, "no-such-model-id-at-all")):
        at = _page(app_data, "views/model.py", user=user, id=model_id)
        assert not at.exception
        assert at.title[0].value == "Model not found", (user.email, model_id)
        assert "in the Trash" not in _texts(at)  # another's trashed model: not even that it exists
        assert not at.text_input and not at.checkbox and not at.code  # no rename, delete, share link
        assert not [b for b in at.button if b.label in ("Delete", "Rename", "Restore it")]
    assert library.get_model(a_chair.share_id, app_data).name == "Oak chair"


def test_another_merchants_job_is_not_found_on_progress_and_try_again(shelves, app_data):
    m, *_, a_job = shelves
    at = _page(app_data, "views/create.py", user=m.a, job=a_job)
    assert not at.exception and "No object found in front.jpg" in _texts(at)  # A's own
    at = _page(app_data, "views/create.py", user=m.b, job=a_job)
    assert not at.exception
    assert "We could not find this job" in _texts(at) and "No object found" not in _texts(at)
    assert not [b for b in at.button if b.label.startswith(("Try again", "Change the photos"))]

    at = _page(app_data, "views/library_page.py", user=m.b, retry=a_job)
    assert not at.exception
    assert "These photos are no longer here" in _texts(at) and "Oak vase" not in _texts(at)
    assert not [b for b in at.button if b.label == "Make the model again"] and not at.image
    assert jobs.get_job(a_job, app_data).retried_as is None  # nothing was queued from A's photos

    at = _page(app_data, "views/library_page.py", user=m.a, retry=a_job)
    next(b for b in at.button if b.label == "Make the model again").click().run()
    new_id = jobs.get_job(a_job, app_data).retried_as
    assert new_id and jobs.get_job(new_id, app_data).owner == m.a.id  # Try again keeps the owner


def test_a_merchant_creates_into_their_own_library(two_merchants, app_data, chair_photo):
    from webapp import workers

    m = two_merchants
    at = _page(app_data, "views/create.py", user=m.b)
    workers.stop_workers()  # the job stays queued: this test is about whose it is, not how it is made
    at.file_uploader[0].set_value([("chair.jpg", chair_photo.read_bytes(), "image/jpeg")]).run()
    at.text_input[0].input("Birch chair")
    next(b for b in at.button if b.label == "Create 3D model").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    job_id = at.query_params["job"]
    job_id = job_id[0] if isinstance(job_id, list) else job_id
    assert jobs.get_job(job_id, app_data).owner == m.b.id
    assert "Birch chair" in _texts(_page(app_data, "views/library_page.py", user=m.b))  # In progress
    workers.stop_workers()
    assert "Birch chair" not in _texts(_page(app_data, "views/library_page.py", user=m.a))
    workers.stop_workers()


def _client() -> TestClient:
    return TestClient(Starlette(routes=routes.routes()))


def test_each_share_page_shows_its_merchants_shop(shelves, app_data):
    m, a_chair, b_stool, a_lamp, _ = shelves
    shop.save(app_data, name="Oak & Co", website="https://oak.example/", shop_id=m.a.id)
    shop.save(app_data, name="Birch Ltd", website="https://birch.example/", shop_id=m.b.id)
    client = _client()
    b_page = client.get(f"/ar/{b_stool.share_id}")
    assert b_page.status_code == 200 and "Birch Ltd" in b_page.text and "Oak &amp; Co" not in b_page.text
    a_page = client.get(f"/ar/{a_chair.share_id}")
    assert a_page.status_code == 200 and "Oak &amp; Co" in a_page.text and "Birch" not in a_page.text
    gone = client.get(f"/ar/{a_lamp.share_id}")  # in the Trash: still A's shop on the "no longer" page
    assert gone.status_code == 410 and "Oak &amp; Co" in gone.text and "Birch" not in gone.text
    unknown = client.get("/ar/" + "Q" * 32)  # no model: no merchant's shop
    assert unknown.status_code == 404 and "Oak" not in unknown.text and "Birch" not in unknown.text


def test_the_shop_page_edits_the_signed_in_merchants_shop(two_merchants, app_data):
    m = two_merchants
    at = _page(app_data, "views/shop_page.py", user=m.a)
    by = {t.label: t for t in at.text_input}
    by["Shop name"].input("Oak & Co")
    by["Your website"].input("https://oak.example")
    next(b for b in at.button if b.label == "Save").click()
    at.run()
    assert not at.exception and any("Saved" in s.value for s in at.success)
    assert shop.get(app_data, m.a.id).name == "Oak & Co" and shop.get(app_data, m.b.id).name == ""
    at = _page(app_data, "views/shop_page.py", user=m.b)
    assert not at.exception
    assert {t.label: t.value for t in at.text_input}["Shop name"] == ""  # B does not see A's settings
    assert "Oak" not in _texts(at)


def test_the_private_preview_is_only_for_its_merchant(shelves, app_data):
    m, a_chair, *_ = shelves
    sid = a_chair.share_id
    paths = (f"/preview/{sid}?embed=1", f"/preview/{sid}/model.glb")
    anonymous = _client()
    assert all(anonymous.get(p).status_code == 404 for p in paths)
    for user, status in ((m.b, 404), (m.a, 200), (m.owner, 200)):
        client = _client()
        client.cookies.update(cookie(app_data, user))
        assert [client.get(p).status_code for p in paths] == [status] * 2, user.email
    ended = _client()
    token = accounts.start_session(app_data, m.a.id)
    ended.cookies.update({accounts.COOKIE: token})
    assert ended.get(paths[0]).status_code == 200
    accounts.end_session(app_data, token)
    assert ended.get(paths[0]).status_code == 404  # signed out: at once
    forged = _client()
    forged.cookies.update({accounts.COOKIE: "x" * 43})
    assert forged.get(paths[0]).status_code == 404


def test_the_shop_of_a_server_from_before_accounts_goes_to_the_first_owner(app_data, chair_model):
    data = app_data
    old = model_folders.add_model(chair_model, "Oak chair", [], data_dir=data)
    shop.save(data, name="Oak & Co", website="https://oak.example/")
    from tests.test_shop import _jpeg_with_gps

    shop.set_logo(data, _jpeg_with_gps())
    owner = accounts.add_user(data, "owner@oak.example", "owner-password", role=accounts.Role.OWNER)
    mine = shop.get(data, owner.id)
    assert (mine.name, mine.website) == ("Oak & Co", "https://oak.example/") and mine.logo is not None
    assert shop.get(data) == shop.Shop()  # moved, not copied
    assert library.get_model(old.share_id, data).owner == owner.id
    page = TestClient(Starlette(routes=routes.routes())).get(f"/ar/{old.share_id}")
    assert "Oak &amp; Co" in page.text and f"/assets/shop/{owner.id}/logo.png" in page.text
    logo = TestClient(Starlette(routes=routes.routes())).get(f"/assets/shop/{owner.id}/logo.png")
    assert logo.status_code == 200 and logo.content == mine.logo.read_bytes()
    merchant = accounts.add_user(data, "m@birch.example", "merchant-password")
    accounts.add_user(data, "second@oak.example", "owner-password", role=accounts.Role.OWNER)
    assert shop.get(data, owner.id).name == "Oak & Co" and shop.get(data, merchant.id).name == ""
