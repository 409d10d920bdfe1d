"""The quality gate's verdict in the web app: a failed model is kept privately (not on the share
routes), can be published only on purpose, keeps its job's photos for Try again, and survives a
database rebuild; models made before the gate keep working. The model comes from the real
pipeline (the chair photo) with the verdict these tests need (tests/verdicts.py)."""

from __future__ import annotations

import json
import time

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

import pipeline
from pipeline import Verdict
from tests.signing import signed_in_apptest  # noqa: E402
from tests.verdicts import FAILED_CHECK, RESHOOT, WARNED_CHECK, judged
from webapp import job_photos, job_runs, jobs, library, model_folders, routes, store, verdicts
from webapp.jobs import JobStatus


@pytest.fixture
def data(app_data):
    return app_data


def _add(chair_model, verdict: Verdict, data, tmp_path, job_id: str | None = None) -> library.Model:
    result = judged(chair_model, verdict, tmp_path / f"files-{verdict.value}")
    return model_folders.add_model(result, "Oak chair", [], data_dir=data, job_id=job_id)


def test_a_failed_model_is_kept_privately_and_published_only_on_purpose(chair_model, data, tmp_path):
    failed = _add(chair_model, Verdict.FAILED, data, tmp_path)
    assert failed.judgement.failed and not failed.shared
    assert failed.judgement.problems == (FAILED_CHECK.message,)
    assert failed.judgement.cautions == (WARNED_CHECK.message,) and failed.judgement.reshoot == RESHOOT
    with pytest.raises(library.LibraryError, match="not published"):  # the publish API refuses it outright
        model_folders.publish(judged(chair_model, Verdict.FAILED, tmp_path / "again"), "Oak", [], data_dir=data)
    assert len(library.list_models(data)) == 1

    assert library.publish_anyway(failed.share_id, True, data)
    assert library.get_model(failed.share_id, data).shared
    # the choice is in the manifest: a rebuilt database keeps it, and takes it back the same way
    store.db_path(data).unlink()
    store.open_library(data, force=True)
    assert library.get_model(failed.share_id, data).published_anyway
    assert library.publish_anyway(failed.share_id, False, data)
    store.db_path(data).unlink()
    store.open_library(data, force=True)
    assert not library.get_model(failed.share_id, data).shared

    for verdict in (Verdict.WARNINGS, Verdict.GOOD):
        assert _add(chair_model, verdict, data, tmp_path).shared, verdict


def test_models_made_before_the_gate_keep_working(chair_model, data, tmp_path):
    model = _add(chair_model, Verdict.GOOD, data, tmp_path)
    # what an older Plinth wrote: no "verdict" in report.json, no published_anyway in the manifest
    report = json.loads((model.folder / "report.json").read_text())
    for key in ("verdict", "evidence", "reshoot"):
        report.pop(key)
    (model.folder / "report.json").write_text(json.dumps(report))
    manifest = json.loads((model.folder / "manifest.json").read_text())
    manifest.pop("published_anyway")
    (model.folder / "manifest.json").write_text(json.dumps(manifest))
    # ... and its database, without the new columns
    with store.connect(data) as con:
        con.execute("ALTER TABLE models DROP COLUMN published_anyway")
        con.execute("ALTER TABLE jobs DROP COLUMN verdict")
        con.execute("UPDATE models SET report = ?", (json.dumps(report),))
    old = library.get_model(model.share_id, data)  # read-only: the schema is not upgraded by a read
    assert old.judgement.verdict is None and not old.judgement.checked_good and old.shared
    assert verdicts.label(old.judgement) == ""  # no badge: nobody checked it

    store.open_library(data, force=True)  # the next start brings the schema up to date
    with store.connect(data, readonly=True) as con:
        assert "published_anyway" in {r[1] for r in con.execute("PRAGMA table_info(models)")}
        assert "verdict" in {r[1] for r in con.execute("PRAGMA table_info(jobs)")}
    assert library.get_model(model.share_id, data).shared
    store.db_path(data).unlink()  # rebuilt from the old manifest
    store.open_library(data, force=True)
    assert library.get_model(model.share_id, data).shared


def test_a_good_verdict_without_checks_is_not_called_checked():
    assert not verdicts.read({"verdict": "good", "evidence": []}).checked_good
    assert verdicts.read({"verdict": "good", "evidence": [{"outcome": "good"}]}).checked_good
    assert verdicts.read({"verdict": "nonsense"}).verdict is None
    odd = verdicts.read({"verdict": "failed", "evidence": [{"outcome": "failed", "photos": ["a.jpg"]}], "reshoot": []})
    assert odd.failed and odd.reshoot == ("a.jpg",)  # no reshoot list: the failed checks' photos


def _client() -> TestClient:
    return TestClient(Starlette(routes=routes.routes()))


def test_share_routes_do_not_serve_a_failed_model_until_it_is_published(chair_model, data, tmp_path):
    failed = _add(chair_model, Verdict.FAILED, data, tmp_path)
    client = _client()
    sid = failed.share_id
    for path in (f"/ar/{sid}", f"/ar/{sid}?embed=1", f"/models/{sid}/model.glb", f"/models/{sid}/model.usdz",
                 f"/models/{sid}/poster.png"):
        assert client.get(path).status_code == 404, path
    # the merchant's own preview (signed in): the model, without AR, never cached, framed only by our pages
    from tests.merchants import cookie
    from tests.signing import owner_account

    client.cookies.update(cookie(data, owner_account(data)))
    page = client.get(f"/preview/{sid}?embed=1")
    assert page.status_code == 200 and f'src="/preview/{sid}/model.glb"' in page.text
    assert "ar-modes" not in page.text and "View in your room" not in page.text
    assert page.headers["cache-control"] == "no-store" and "frame-ancestors 'self'" in page.headers[
        "content-security-policy"]
    glb = client.get(f"/preview/{sid}/model.glb")
    assert glb.status_code == 200 and glb.content[:4] == b"glTF" and glb.headers["cache-control"] == "no-store"
    assert client.get(f"/preview/{sid}/manifest.json").status_code == 404  # still only the public files

    library.publish_anyway(sid, True, data)
    assert client.get(f"/ar/{sid}").status_code == 200 and client.get(f"/models/{sid}/model.glb").status_code == 200
    library.publish_anyway(sid, False, data)
    assert client.get(f"/ar/{sid}").status_code == 404  # taken back: at once

    warned = _add(chair_model, Verdict.WARNINGS, data, tmp_path)
    page = client.get(f"/ar/{warned.share_id}")
    assert page.status_code == 200 and "View in your room" in page.text


def test_a_done_job_with_a_failed_model_keeps_its_photos_for_try_again(chair_model, chair_photo, data, tmp_path):
    job_id = jobs.submit([("IMG_0007.JPG", chair_photo.read_bytes())], "Oak chair", pipeline.Options(),
                         data_dir=data)
    job_runs.claim(data, None)
    model = _add(chair_model, Verdict.FAILED, data, tmp_path, job_id=job_id)
    assert job_runs.finish(data, job_id, JobStatus.DONE, share_id=model.share_id, verdict=Verdict.FAILED.value)
    job = jobs.get_job(job_id, data)
    assert job.status is JobStatus.DONE and job.verdict is Verdict.FAILED and job.keeps_photos
    job_photos.purge(data)
    assert jobs.get_job(job_id, data).photos  # kept (a done job's photos would go now)
    new_id = jobs.retry(job_id, data)
    assert new_id and jobs.get_job(new_id, data).photos
    old = time.time() - 8 * 86400  # past the 7-day retention, as for failed jobs
    jobs.update(data, job_id, finished=old)
    job_photos.purge(data)
    assert not jobs.get_job(job_id, data).photos
    with pytest.raises(jobs.JobRefused, match="deleted after 7 days"):
        jobs.retry(job_id, data)


def test_the_job_verdict_reads_as_none_for_jobs_done_before_the_gate(chair_photo, data):
    job_id = jobs.submit([("a.jpg", chair_photo.read_bytes())], "Oak", pipeline.Options(), data_dir=data)
    with store.connect(data) as con:
        con.execute("UPDATE jobs SET status = ?, verdict = '' WHERE id = ?", (JobStatus.DONE.value, job_id))
    job = jobs.get_job(job_id, data)
    assert job.verdict is None and not job.keeps_photos


# ---------------------------------------------------------------- the pages (Streamlit AppTest)


def _page(data, page: str, **query):
    import streamlit as st

    from tests.test_webapp_apptest import APP

    st.cache_resource.clear()
    at = signed_in_apptest(APP, default_timeout=60).run()  # first a run, so the pages are registered
    at.switch_page(page)
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def _texts(at) -> str:
    parts = [e.value for e in (*at.title, *at.markdown, *at.caption, *at.info, *at.warning, *at.error, *at.success)]
    return "\n".join(str(p) for p in parts).replace("\\", "").replace("\u2060", "")


def test_the_failed_model_page_says_why_names_the_photos_and_publishes_only_on_purpose(
        chair_model, chair_photo, data, tmp_path):
    job_id = jobs.submit([("IMG_0007.JPG", chair_photo.read_bytes())], "Oak chair", pipeline.Options(),
                         data_dir=data)
    failed = _add(chair_model, Verdict.FAILED, data, tmp_path, job_id=job_id)
    job_runs.claim(data, None)
    job_runs.finish(data, job_id, JobStatus.DONE, share_id=failed.share_id, verdict=Verdict.FAILED.value)
    at = _page(data, "views/model.py", id=library.get_model(failed.share_id, data).model_id)
    assert not at.exception
    text = _texts(at)
    assert "failed Plinth's checks, so it is not published" in text
    assert FAILED_CHECK.message in text and all(name in text for name in RESHOOT)
    assert "A full 3D scan" not in text and "A box-shaped model" not in text  # not presented as a scan
    assert not at.code and not at.image  # no share link, no QR code
    assert not [b for b in at.get("link_button")]  # no "Open the AR page"
    assert [i.proto.src for i in at.get("iframe")] == [f"/preview/{failed.share_id}?embed=1"]
    assert {x.label for x in at.expander} >= {"Look at it anyway", "Publish it anyway"}
    assert len(at.get("download_button")) == 4  # downloads, on purpose, inside "Look at it anyway"
    assert [b for b in at.button if b.label == "Try again with the same photos"]

    publish = next(b for b in at.button if b.label == "Publish anyway")
    assert publish.disabled  # an explicit confirmation first
    next(c for c in at.checkbox if "want to publish it" in c.label).check().run()
    next(b for b in at.button if b.label == "Publish anyway").click().run()
    assert not at.exception
    assert library.get_model(failed.share_id, data).shared
    text = _texts(at)
    assert "you chose to publish it anyway" in text and FAILED_CHECK.message in text  # the warning stays
    assert any(f"/ar/{failed.share_id}" in c.value for c in at.code)
    next(b for b in at.button if b.label == "Stop sharing it").click().run()
    assert not library.get_model(failed.share_id, data).shared and not at.code


def test_try_again_from_a_failed_model_queues_its_photos(chair_model, chair_photo, data, tmp_path):
    job_id = jobs.submit([("IMG_0007.JPG", chair_photo.read_bytes())], "Oak chair", pipeline.Options(),
                         data_dir=data)
    failed = _add(chair_model, Verdict.FAILED, data, tmp_path, job_id=job_id)
    job_runs.claim(data, None)
    job_runs.finish(data, job_id, JobStatus.DONE, share_id=failed.share_id, verdict=Verdict.FAILED.value)
    at = _page(data, "views/model.py", id=library.get_model(failed.share_id, data).model_id)
    next(b for b in at.button if b.label == "Try again with the same photos").click().run()
    assert not at.exception
    with store.connect(data) as con:  # (a worker may have started it already)
        new = [r[0] for r in con.execute("SELECT id FROM jobs WHERE id != ?", (job_id,))]
    assert len(new) == 1 and jobs.get_job(new[0], data).photos
    assert jobs.get_job(job_id, data).photos  # the failed model's own job keeps its photos too


def test_a_model_with_warnings_is_published_with_the_warnings_above_it(chair_model, data, tmp_path):
    warned = _add(chair_model, Verdict.WARNINGS, data, tmp_path)
    at = _page(data, "views/model.py", id=warned.model_id)
    assert not at.exception
    assert at.warning[0].value.startswith("**Usable, with warnings.**")  # the first box on the page
    assert WARNED_CHECK.message in _texts(at)
    assert any(f"/ar/{warned.share_id}" in c.value for c in at.code) and at.image  # share link and QR code


def test_a_model_made_before_the_checks_shows_as_before_without_a_checked_badge(chair_model, data, tmp_path):
    model = _add(chair_model, Verdict.GOOD, data, tmp_path)
    report = {k: v for k, v in model.report.items() if k not in ("verdict", "evidence", "reshoot")}
    with store.connect(data) as con:
        con.execute("UPDATE models SET report = ?", (json.dumps(report),))
    at = _page(data, "views/model.py", id=model.model_id)
    assert not at.exception and not at.success and not at.error
    text = _texts(at)
    assert report["summary"].split(",")[0] in text and "Checked" not in text
    assert "none ran on this model" in text
    assert any(f"/ar/{model.share_id}" in c.value for c in at.code)


def test_the_library_shows_each_verdict(chair_model, data, tmp_path):
    models = {verdict: _add(chair_model, verdict, data, tmp_path) for verdict in Verdict}
    at = _page(data, "views/library_page.py")
    assert not at.exception
    text = _texts(at)
    for badge in ("Failed the checks: not published", "Usable, with warnings", "Checked: looks right"):
        assert text.count(badge) == 1, badge
    library.publish_anyway(models[Verdict.FAILED].share_id, True, data)
    text = _texts(at.run())
    assert "Failed the checks: published anyway" in text and "not published" not in text
