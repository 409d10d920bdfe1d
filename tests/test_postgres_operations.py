"""Every module's real operations through its public functions, on SQLite and on a real
PostgreSQL (the `db` fixture, tests/postgres_db.py): accounts, sessions and the lockout, invites,
jobs (two claimers never get the same job), the library, API tokens and webhooks, the shop; and a
few of the existing tests run again with PLINTH_DATABASE_URL naming a fresh Postgres database."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import test_accounts as existing_accounts  # noqa: E402
import test_api as existing_api  # noqa: E402
import test_signin as existing_signin  # noqa: E402
import test_webapp_jobs as existing_jobs  # noqa: E402

import pipeline  # noqa: E402
from tests.postgres_db import db, pg, server  # noqa: E402, F401  (fixtures)
from webapp import accounts, jobs, library, shop, signin, store, trash  # noqa: E402
from webapp.api import tokens, webhooks  # noqa: E402
from webapp.jobs import JobStatus  # noqa: E402

PASSWORD = "a long enough passphrase"
PHOTOS = [("front.jpg", b"\xff\xd8 not decoded here"), ("side.png", b"\x89PNG also not decoded")]


# ---------------------------------------------------------------- every module's operations, on both engines


def test_accounts_sessions_and_the_lockout(db):
    owner = accounts.add_user(db, "Ana@Shop.example", PASSWORD, role=accounts.Role.OWNER, name="Ana")
    bo = accounts.add_user(db, "bo@shop.example", PASSWORD)
    with pytest.raises(accounts.AccountError):
        accounts.add_user(db, "ana@shop.example", PASSWORD)
    assert accounts.check_password(db, "ANA@shop.example", PASSWORD) == owner
    assert accounts.check_password(db, "ana@shop.example", "wrong wrong wrong") is None
    assert accounts.owner_account(db) == owner and [u.email for u in accounts.list_users(db)] == [
        "ana@shop.example", "bo@shop.example"]
    first, second = accounts.start_session(db, bo.id), accounts.start_session(db, bo.id)
    assert accounts.session_user(db, first) == bo == accounts.session_user(db, second)
    accounts.set_password(db, bo.id, "another long passphrase", keep_token=second)
    assert accounts.session_user(db, first) is None and accounts.session_user(db, second) == bo
    assert accounts.session_user(db, second, now=time.time() + accounts.SESSION_TTL_S + 1) is None
    accounts.end_session(db, second)
    assert accounts.session_user(db, second) is None
    accounts.remove_user(db, bo.id)
    assert accounts.find_user(db, "bo@shop.example") is None

    t0 = 1_000_000.0
    for i in range(signin.EMAIL_LIMIT):
        assert signin.locked_until(db, "ana@shop.example", "10.0.0.1", now=t0 + i) is None
        signin.record_failure(db, "ana@shop.example", "10.0.0.1", now=t0 + i)
    lock = signin.locked_until(db, "ana@shop.example", "10.0.0.9", now=t0 + 10)
    assert lock is not None and lock.until == t0 + signin.EMAIL_LIMIT - 1 + signin.LOCK_S
    signin.record_success(db, "ana@shop.example")
    assert signin.locked_until(db, "ana@shop.example", "10.0.0.9", now=t0 + 10) is None


def test_invites_are_found_once_and_accepted_into_an_account(db):
    accounts.add_user(db, "ana@shop.example", PASSWORD, role=accounts.Role.OWNER)
    code = signin.invite(db, "Cy@Shop.example", name="Cy")
    again = signin.invite(db, "cy@shop.example", name="Cy")  # replaces the first link
    assert signin.find_invite(db, code) is None and signin.find_invite(db, again).email == "cy@shop.example"
    assert [i.email for i in signin.pending_invites(db)] == ["cy@shop.example"]
    assert signin.pending_invites(db, now=time.time() + signin.INVITE_TTL_S + 1) == []
    cy = signin.accept_invite(db, again, PASSWORD)
    assert cy.name == "Cy" and cy.role is accounts.Role.MERCHANT and signin.find_invite(db, again) is None
    with pytest.raises(accounts.AccountError):
        signin.accept_invite(db, again, PASSWORD)


def test_jobs_submit_claim_progress_finish_cancel_and_list(db):
    ana = accounts.add_user(db, "ana@shop.example", PASSWORD, role=accounts.Role.OWNER)
    first = jobs.submit(PHOTOS, "First", pipeline.Options(quality="fast"), data_dir=db, owner=ana.id)
    second = jobs.submit(PHOTOS, "Second", pipeline.Options(), data_dir=db)
    assert jobs.get_job(second, db).position == 2 and jobs.get_job(first, db).options.quality == "fast"
    assert jobs.claim(db, "cpu") == first and jobs.get_job(second, db).position == 1
    assert jobs.record_progress(db, first, "segment", 0.25, "Photo 1 of 2") is JobStatus.RUNNING
    job = jobs.get_job(first, db)
    assert (job.status, job.stage, job.fraction, job.message, job.owner) == (
        JobStatus.RUNNING, "segment", 0.25, "Photo 1 of 2", ana.id)
    assert jobs.finish(db, first, JobStatus.DONE, share_id="s" * 22) and not jobs.finish(db, first, JobStatus.FAILED)
    assert jobs.get_job(first, db).finished is not None and jobs.get_job(first, db).share_id == "s" * 22
    assert jobs.record_progress(db, first, "late", 0.9, "") is JobStatus.DONE  # a verdict is never overwritten
    jobs.cancel(second, db)
    assert jobs.get_job(second, db).status is JobStatus.CANCELLED and jobs.claim(db, "cpu") is None
    assert [j.id for j in jobs.list_jobs((JobStatus.DONE, JobStatus.CANCELLED), db)] == [second, first]
    assert [j.id for j in jobs.list_jobs((JobStatus.DONE, JobStatus.CANCELLED), db, owner=ana.id)] == [first]
    assert [j.id for j in jobs.needing_attention(db)] == [second]
    assert jobs.get_owned(first, ana, db).id == first and jobs.discard(second, db) and jobs.get_job(second, db) is None


def test_two_claimers_never_get_the_same_job(db):
    ids = [jobs.submit(PHOTOS[:1], f"Job {i}", pipeline.Options(), data_dir=db) for i in range(24)]
    claimed: list[list[str]] = [[] for _ in range(4)]
    start = threading.Barrier(4)

    def claimer(mine: list[str]) -> None:
        start.wait()
        while (job_id := jobs.claim(db, "cpu")) is not None:
            mine.append(job_id)

    threads = [threading.Thread(target=claimer, args=(mine,)) for mine in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [job_id for mine in claimed for job_id in mine]
    assert sorted(every) == sorted(ids) and len(set(every)) == len(ids)  # each once, none left behind
    assert all(jobs.get_job(i, db).status is JobStatus.RUNNING for i in ids)


def test_a_claimer_that_loses_the_race_for_the_oldest_job_takes_the_next(pg):
    """In Postgres the loser of a race waits on the row lock, then finds the oldest job taken: it
    must take the next one rather than say nothing is queued."""
    import psycopg

    first, second = (jobs.submit(PHOTOS[:1], name, pipeline.Options(), data_dir=pg.data) for name in "AB")
    got = []
    with psycopg.connect(pg.url) as other:  # another worker's claim of the oldest, not yet committed
        other.execute("UPDATE jobs SET status = 'running' WHERE id = %s", (first,))
        claimer = threading.Thread(target=lambda: got.append(jobs.claim(pg.data, "cpu")))
        claimer.start()
        with psycopg.connect(pg.url, autocommit=True) as watch:
            for _ in range(200):  # until the claim waits on that row's lock
                if watch.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                 "AND datname = current_database()").fetchone()[0]:
                    break
                time.sleep(0.05)
            else:
                raise AssertionError("the claim never waited for the other worker's lock")
        other.commit()
    claimer.join()
    assert got == [second]


def test_library_add_list_rename_trash_restore_and_owned(db, chair_model, chair_photo):
    ana = accounts.add_user(db, "ana@shop.example", PASSWORD, role=accounts.Role.OWNER)
    bo = accounts.add_user(db, "bo@shop.example", PASSWORD)
    model = library.add_model(chair_model, "Oak chair", [chair_photo], data_dir=db, owner=bo.id)
    assert [m.share_id for m in library.list_models(db)] == [model.share_id]
    assert library.list_models(db, owner=ana.id) == [] and library.get_owned(model.model_id, bo, db) == model
    assert library.get_owned(model.model_id, ana, db) == model  # the owner sees every merchant's models
    assert library.get_model(model.share_id, db).created == model.created  # to the microsecond
    assert library.rename_model(model.share_id, "Walnut chair", db)
    assert library.get_model(model.share_id, db).name == "Walnut chair"
    assert json.loads((model.folder / store.MANIFEST).read_text())["name"] == "Walnut chair"
    assert library.set_link(model.share_id, "https://shop.example/chair", 1900000000.5, db)
    assert library.get_model(model.share_id, db).expires == 1900000000.5
    assert trash.move(model.share_id, db)
    assert library.list_models(db) == [] and library.share_status(model.share_id, db) is library.ShareStatus.TRASHED
    assert library.get_owned(model.model_id, bo, db) is None and library.get_owned(model.model_id, bo, db, trashed=True)
    assert trash.restore(model.share_id, db) and library.get_model(model.share_id, db).name == "Walnut chair"
    assert library.delete_model(model.share_id, db) and library.get_model(model.share_id, db) is None
    assert not model.folder.exists()


def test_api_tokens_and_webhooks(db):
    ana = accounts.add_user(db, "ana@shop.example", PASSWORD, role=accounts.Role.OWNER)
    text, token = tokens.create(db, ana.id, "Shop back-end")
    assert tokens.user_for(db, text) == ana and tokens.list_for(db, ana.id)[0].last_used is not None
    assert tokens.revoke(db, ana.id, token.id) and tokens.user_for(db, text) is None
    assert len(tokens.list_for(db, ana.id, revoked=True)) == 1
    secret = webhooks.secret_for(db, ana.id)
    assert webhooks.secret_for(db, ana.id) == secret and webhooks.rotate(db, ana.id) != secret
    job_id = jobs.submit(PHOTOS, "Card", pipeline.Options(), data_dir=db, owner=ana.id)
    webhooks.register(db, job_id, ana.id, "https://shop.example/a")
    webhooks.register(db, job_id, ana.id, "https://shop.example/b")  # registered again: replaces the first
    assert webhooks.due(db) == []
    jobs.update(db, job_id, status=JobStatus.FAILED, finished=time.time())
    assert webhooks.due(db) == [job_id]
    with store.connect(db) as con:
        assert con.execute("SELECT url FROM api_webhooks WHERE job_id = ?", (job_id,)).fetchone()[0].endswith("/b")


def test_shop_settings_round_trip(db):
    assert not shop.get(db).known
    saved = shop.save(db, "Oak & Co", "https://oak.example")
    assert (saved.name, saved.website) == ("Oak & Co", "https://oak.example") and shop.get(db) == saved
    assert shop.save(db, "Oak and Co", "https://oak.example").name == shop.get(db).name == "Oak and Co"


# ---------------------------------------------------------------- existing tests, again on Postgres


EXISTING = [
    existing_accounts.test_accounts,
    existing_jobs.test_every_status_round_trips_through_the_database,
    existing_jobs.test_options_are_stored_as_the_pipelines_own_dict,
    existing_jobs.test_progress_and_cancel_as_the_child_sees_them,
    existing_jobs.test_the_library_lists_running_and_failed_jobs_and_discards_photos_on_request,
    existing_jobs.test_retry_removes_and_adds_photos_and_keeps_the_old_jobs_photos,
    existing_signin.test_lock_words_and_unlock_follow_the_clock,  # its second process reads Postgres too
    existing_api.test_webhook_signatures_verify_and_urls_are_checked,
]


@pytest.mark.parametrize("existing", EXISTING, ids=[t.__name__ for t in EXISTING])
def test_existing_tests_pass_on_postgres(existing, pg):
    existing(pg.data)
    assert not (pg.data / store.DB_NAME).exists()  # nothing went to SQLite
