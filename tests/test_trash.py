"""The Trash: a deleted model keeps its files and share id for 30 days, its share link answers
"no longer available" (410) meanwhile, Restore brings the same link back, the purge deletes it
for good after 30 days, and a database rebuilt from the model folders keeps it in the Trash.
Real SQLite, real files, a real model from the pipeline (the chair photo), the real routes."""

from __future__ import annotations

import time

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

import pipeline
from webapp import job_photos, job_runs, jobs, library, model_folders, routes, store, trash
from webapp.jobs import JobStatus
from webapp.library import ShareStatus

DAY = 86400.0


@pytest.fixture
def data(tmp_path, monkeypatch):
    folder = tmp_path / "data"
    monkeypatch.setenv("PLINTH_DATA_DIR", str(folder))
    monkeypatch.delenv("PLINTH_PUBLIC_URL", raising=False)
    return folder


def _add(chair_model, data, name="Oak chair", photo=None, job_id=None) -> library.Model:
    return model_folders.add_model(chair_model, name, [photo] if photo else [], data_dir=data, job_id=job_id)


def _client() -> TestClient:
    return TestClient(Starlette(routes=routes.routes()))


def test_trash_hides_the_model_keeps_its_files_and_restore_brings_the_same_link_back(chair_model, data):
    model, other = _add(chair_model, data), _add(chair_model, data, "Lamp")
    sid = model.share_id
    assert library.share_status(sid, data) is ShareStatus.LIVE
    assert trash.move(sid, data, now=1000.0)
    assert library.get_model(sid, data) is None  # public routes and the Model page see nothing
    kept = library.get_model(sid, data, trashed=True)
    assert kept.trashed and kept.deleted_at == 1000.0 and (kept.folder / "model.glb").is_file()
    assert [m.share_id for m in library.list_models(data)] == [other.share_id]
    assert [m.share_id for m in library.list_models(data, trashed=True)] == [sid]
    assert library.share_status(sid, data) is ShareStatus.TRASHED
    assert not trash.move(sid, data)  # already there
    assert trash.restore(sid, data)
    back = library.get_model(sid, data)
    assert back is not None and not back.trashed and back.folder == model.folder
    assert library.share_status(sid, data) is ShareStatus.LIVE
    assert not trash.restore(sid, data)  # not in the Trash any more
    assert library.share_status("x" * 32, data) is ShareStatus.UNKNOWN


def test_share_page_and_files_answer_no_longer_available_then_work_again_after_restore(chair_model, data):
    sid = _add(chair_model, data).share_id
    client = _client()
    paths = (f"/ar/{sid}", f"/ar/{sid}?embed=1", f"/models/{sid}/model.glb", f"/models/{sid}/poster.png")
    assert all(client.get(p).status_code == 200 for p in paths)
    trash.move(sid, data)
    for path in paths:
        gone = client.get(path)
        assert gone.status_code == 410, path
        assert "no longer available" in gone.text and gone.headers["cache-control"] == "no-store"
        assert "Traceback" not in gone.text and sid not in gone.text
    from tests.merchants import cookie
    from tests.signing import owner_account

    client.cookies.update(cookie(data, owner_account(data)))
    assert client.get(f"/preview/{sid}").status_code == 404  # the merchant's preview too, signed in
    assert client.get("/ar/" + "z" * 32).status_code == 404  # an unknown link stays a plain 404
    trash.restore(sid, data)
    assert all(client.get(p).status_code == 200 for p in paths)  # the same link, the same QR code


def test_purge_deletes_for_good_only_after_30_days(chair_model, chair_photo, data):
    job_id = jobs.submit([("front.jpg", chair_photo.read_bytes())], "Oak chair", pipeline.Options(), data_dir=data)
    job_runs.claim(data, None)
    old = _add(chair_model, data, "Old", photo=chair_photo, job_id=job_id)
    job_runs.finish(data, job_id, JobStatus.DONE, share_id=old.share_id)
    recent, live = _add(chair_model, data, "Recent"), _add(chair_model, data, "Live")
    now = time.time()
    trash.move(old.share_id, data, now=now - 31 * DAY)
    trash.move(recent.share_id, data, now=now - 29 * DAY)
    assert trash.days_left(library.get_model(recent.share_id, data, trashed=True), now) == 1
    assert trash.purge(data, now=now) == 1
    assert library.share_status(old.share_id, data) is ShareStatus.UNKNOWN
    assert not old.folder.exists() and jobs.get_job(job_id, data) is None  # files, photos and job go
    assert library.get_model(recent.share_id, data, trashed=True).trashed
    assert library.get_model(live.share_id, data) is not None
    # the server's own clean-up (job_photos.purge, run at start and by the janitor) empties the Trash too
    job_photos.purge(data, now=now + 2 * DAY)
    assert library.share_status(recent.share_id, data) is ShareStatus.UNKNOWN and not recent.folder.exists()
    assert library.get_model(live.share_id, data) is not None


def test_delete_forever_only_takes_models_from_the_trash(chair_model, data):
    model = _add(chair_model, data)
    assert not trash.delete_forever(model.share_id, data)  # a live model is never deleted this way
    assert library.get_model(model.share_id, data) is not None
    trash.move(model.share_id, data)
    assert trash.delete_forever(model.share_id, data)
    assert library.share_status(model.share_id, data) is ShareStatus.UNKNOWN and not model.folder.exists()


def test_a_rebuilt_database_keeps_trashed_models_in_the_trash(chair_model, data):
    kept, binned = _add(chair_model, data, "Kept"), _add(chair_model, data, "Binned")
    trash.move(binned.share_id, data, now=1234.5)
    store.db_path(data).unlink()  # lost: rebuilt from the manifests on the next connection
    for extra in data.glob(f"{store.DB_NAME}-*"):
        extra.unlink()
    store.open_library(data, force=True)
    assert [m.share_id for m in library.list_models(data)] == [kept.share_id]
    again = library.get_model(binned.share_id, data, trashed=True)
    assert again.trashed and again.deleted_at == 1234.5
    trash.restore(binned.share_id, data)
    manifest = store.read_manifest(binned.folder)
    assert manifest["deleted_at"] is None  # the restore reached the manifest too


def test_manifests_written_before_the_trash_read_as_not_trashed(chair_model, data):
    import json

    model = _add(chair_model, data)
    path = model.folder / store.MANIFEST
    body = json.loads(path.read_text())
    del body["deleted_at"]  # as an older Plinth wrote it
    path.write_text(json.dumps(body))
    assert store.read_manifest(model.folder)["deleted_at"] is None
    with store.connect(data) as con:
        con.execute("DELETE FROM models")
    store.open_library(data, force=True)
    assert library.get_model(model.share_id, data) is not None
