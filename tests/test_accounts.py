import time
from webapp import accounts as a
from webapp import accounts
def test_accounts(tmp_path):
    o = a.add_user(tmp_path, "Ana@Shop.example", "correct horse battery", role=a.Role.OWNER)
    assert o.email == "ana@shop.example" and o.is_owner
    assert a.check_password(tmp_path, "ana@shop.example", "correct horse battery") == o
    assert a.check_password(tmp_path, "ana@shop.example", "wrong wrong wrong") is None
    assert a.check_password(tmp_path, "bob@shop.example", "correct horse battery") is None
    t = a.start_session(tmp_path, o.id)
    assert a.session_user(tmp_path, t) == o
    assert a.session_user(tmp_path, t, now=time.time() + a.SESSION_TTL_S + 1) is None
    a.end_session(tmp_path, t); assert a.session_user(tmp_path, t) is None
    import pytest
    with pytest.raises(a.AccountError): a.add_user(tmp_path, "ana@shop.example", "0123456789")
    with pytest.raises(a.AccountError): a.add_user(tmp_path, "x", "0123456789")
    with pytest.raises(a.AccountError): a.add_user(tmp_path, "b@c.de", "short")


def test_models_and_jobs_have_owners_and_private_ids(tmp_path, chair_model, chair_photo):
    """The data layer's isolation: lists by owner, get_owned answers None for another merchant's
    model or job (like an unknown id), the owner sees all, and the merchant-side id is not the share id."""
    from webapp import jobs, library, model_folders
    import pipeline

    a = accounts.add_user(tmp_path, "a@shop.example", "password-aaaa", role=accounts.Role.OWNER)
    b = accounts.add_user(tmp_path, "b@shop.example", "password-bbbb")
    c = accounts.add_user(tmp_path, "c@shop.example", "password-cccc")
    result, photo = chair_model, chair_photo
    ma = model_folders.add_model(result, "A's chair", [photo], data_dir=tmp_path, owner=b.id)
    mb = model_folders.add_model(result, "B's chair", [photo], data_dir=tmp_path, owner=c.id)
    assert ma.model_id and ma.model_id != ma.share_id and ma.share_id not in ma.model_id
    assert [m.name for m in library.list_models(tmp_path, owner=b.id)] == ["A's chair"]
    assert [m.name for m in library.list_models(tmp_path, owner=c.id)] == ["B's chair"]
    assert len(library.list_models(tmp_path)) == 2
    assert library.get_owned(ma.model_id, b, tmp_path).share_id == ma.share_id
    assert library.get_owned(ma.model_id, c, tmp_path) is None
    assert library.get_owned(ma.share_id, b, tmp_path) is None  # a share id opens no merchant page
    assert library.get_owned(ma.model_id, a, tmp_path) is not None  # the owner may see all
    job = jobs.submit([("IMG_1.jpg", photo.read_bytes())], "chair", pipeline.Options(), tmp_path, owner=c.id)
    assert jobs.get_owned(job, c, tmp_path).owner == c.id
    assert jobs.get_owned(job, b, tmp_path) is None
    assert [j.id for j in jobs.list_jobs([jobs.JobStatus.QUEUED], tmp_path, owner=b.id)] == []
    assert [j.id for j in jobs.list_jobs([jobs.JobStatus.QUEUED], tmp_path, owner=c.id)] == [job]
    # The rows survive a rebuild from the manifests with their owners and ids.
    from webapp import store
    store.db_path(tmp_path).write_bytes(b"garbage")
    store.open_library(tmp_path, force=True)
    again = library.get_model(ma.share_id, tmp_path)
    assert again.model_id == ma.model_id
    # The accounts were lost with the database: a new first owner takes every model.
    d = accounts.add_user(tmp_path, "d@shop.example", "password-dddd", role=accounts.Role.OWNER)
    assert {m.owner for m in library.list_models(tmp_path)} == {d.id}


def test_models_made_before_accounts_go_to_the_first_owner(tmp_path, chair_model, chair_photo):
    from webapp import library, model_folders

    result, photo = chair_model, chair_photo
    old = model_folders.add_model(result, "old chair", [photo], data_dir=tmp_path)
    assert old.owner == ""
    o = accounts.add_user(tmp_path, "o@shop.example", "password-oooo", role=accounts.Role.OWNER)
    assert library.get_model(old.share_id, tmp_path).owner == o.id
    import json
    assert json.loads((old.folder / "manifest.json").read_text())["owner"] == o.id


def test_a_removed_merchants_models_go_to_the_first_owner(tmp_path, chair_model, chair_photo):
    from webapp import library, model_folders

    owner = accounts.add_user(tmp_path, "o@shop.example", "password-oooo", role=accounts.Role.OWNER)
    leaving = accounts.add_user(tmp_path, "l@shop.example", "password-llll")
    model = model_folders.add_model(chair_model, "chair", [chair_photo], data_dir=tmp_path, owner=leaving.id)
    accounts.remove_user(tmp_path, leaving.id)
    assert accounts.get_user(tmp_path, leaving.id) is None
    kept = library.get_model(model.share_id, tmp_path)
    assert kept is not None and kept.owner == owner.id  # the share link keeps working, now the owner's
    assert [m.share_id for m in library.list_models(tmp_path, owner=owner.id)] == [model.share_id]
