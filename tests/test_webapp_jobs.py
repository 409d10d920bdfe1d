"""Job records in a real SQLite database: status values, the stored options (current and older
formats), progress and cancel as the child process sees them. No pipeline run here."""

from __future__ import annotations

import json
import time

import pytest

import pipeline
from webapp import job_photos, job_runs, jobs, store
from webapp.jobs import JobStatus

PHOTOS = [("front.jpg", b"\xff\xd8 not decoded here"), ("side.png", b"\x89PNG also not decoded")]


def _stored(data, job_id: str, column: str):
    with store.connect(data) as con:
        return con.execute(f"SELECT {column} FROM jobs WHERE id = ?", (job_id,)).fetchone()[0]


def test_every_status_round_trips_through_the_database(tmp_path):
    job_id = jobs.submit(PHOTOS, "Lamp", pipeline.Options(), data_dir=tmp_path)
    assert _stored(tmp_path, job_id, "status") == "queued"  # the plain value, not "JobStatus.QUEUED"
    for status in JobStatus:
        jobs.update(tmp_path, job_id, status=status)
        assert _stored(tmp_path, job_id, "status") == status.value
        job = jobs.get_job(job_id, tmp_path)
        assert job.status is status and isinstance(job.status, JobStatus)
    assert {s for s in JobStatus if s.finished} == {JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED}
    assert not set(jobs.ACTIVE) & {s for s in JobStatus if s.finished}


def test_options_are_stored_as_the_pipelines_own_dict(tmp_path):
    options = pipeline.Options(kind="box", placement="wall", size=pipeline.KnownSize("depth", 0.3),
                               quality="high", max_triangles=50_000, max_megabytes=2.5)
    job_id = jobs.submit(PHOTOS, "Cabinet", options, data_dir=tmp_path)
    assert json.loads(_stored(tmp_path, job_id, "options")) == options.to_dict()
    job = jobs.get_job(job_id, tmp_path)
    assert job.options == options and job.options.texture_size is None
    assert [p.suffix for p in job.photos] == [".jpg", ".png"]
    assert [p.read_bytes() for p in job.photos] == [content for _, content in PHOTOS]


@pytest.mark.parametrize("size_m, size", [(0.42, pipeline.KnownSize("width", 0.42)), (None, None)])
def test_job_rows_written_before_options_were_pipeline_options_are_read(tmp_path, size_m, size):
    old = {"kind": "revolve", "placement": "floor", "size_axis": "width", "size_m": size_m,
           "quality": "fast", "texture_size": 1024}
    photo_dir = tmp_path / "jobs" / "oldjob00001" / "photos"
    photo_dir.mkdir(parents=True)
    with store.connect(tmp_path) as con:
        con.execute("INSERT INTO jobs (id, status, created, name, options, photo_dir) VALUES (?,?,?,?,?,?)",
                    ("oldjob00001", "failed", time.time(), "Old vase", json.dumps(old), str(photo_dir)))
    job = jobs.get_job("oldjob00001", tmp_path)
    assert job.status is JobStatus.FAILED
    assert job.options == pipeline.Options(kind="revolve", placement="floor", size=size, quality="fast",
                                           texture_size=1024)
    job.options.check()  # and the pipeline accepts them as they are


def test_progress_and_cancel_as_the_child_sees_them(tmp_path):
    first = jobs.submit(PHOTOS, "First", pipeline.Options(), data_dir=tmp_path)
    second = jobs.submit(PHOTOS, "Second", pipeline.Options(), data_dir=tmp_path)
    assert job_runs.claim(tmp_path, "cpu") == first  # oldest first
    assert jobs.get_job(first, tmp_path).status is JobStatus.RUNNING
    assert jobs.get_job(second, tmp_path).position == 1
    assert job_runs.record_progress(tmp_path, first, "segment", 0.5, "Photo 1 of 2") is JobStatus.RUNNING
    job = jobs.get_job(first, tmp_path)
    assert (job.stage, job.fraction, job.message) == ("segment", 0.5, "Photo 1 of 2")
    jobs.cancel(first, tmp_path)
    assert job_runs.record_progress(tmp_path, first, "segment", 0.6, "") is JobStatus.CANCELLING
    jobs.cancel(second, tmp_path)
    assert jobs.get_job(second, tmp_path).status is JobStatus.CANCELLED  # queued: stops at once
    assert job_runs.claim(tmp_path, "cpu") is None


@pytest.mark.parametrize("stored", ['{"size": {"axis": "height", "metres": "nan"}}', '{"max_megabytes": -1}',
                                    "not json", '{"size": {"axis": "sideways", "metres": 1}}'])
def test_a_damaged_options_record_fails_that_job_plainly_and_spares_the_others(tmp_path, stored):
    from webapp import workers

    bad = jobs.submit(PHOTOS, "Broken", pipeline.Options(), data_dir=tmp_path)
    good = jobs.submit(PHOTOS, "Fine", pipeline.Options(quality="fast"), data_dir=tmp_path)
    jobs.update(tmp_path, bad, options=stored)
    assert jobs.get_job(bad, tmp_path).damaged and not jobs.get_job(good, tmp_path).damaged
    assert jobs.get_job(good, tmp_path).options.quality == "fast"
    assert job_runs.claim(tmp_path, "cpu") == bad
    workers.run_job(str(tmp_path), bad, "cpu")  # the child's entry: it must not run the pipeline
    job = jobs.get_job(bad, tmp_path)
    assert job.status is JobStatus.FAILED and job.error == jobs.DAMAGED_MESSAGE and job.photos
    assert jobs.get_job(good, tmp_path).status is JobStatus.QUEUED


# ---------------------------------------------------------------- Try again with changes, the Library's job lists


def _failed(data, files=PHOTOS, name="Lamp") -> str:
    job_id = jobs.submit(files, name, pipeline.Options(quality="fast"), data_dir=data)
    jobs.update(data, job_id, status=JobStatus.FAILED, finished=time.time(), error="No object found in side.png.")
    return job_id


def _job_folders(data) -> set[str]:
    return {p.name for p in (data / "jobs").iterdir()}


def test_jobs_keep_the_merchants_file_names_in_order(tmp_path):
    job = jobs.get_job(jobs.submit(PHOTOS, "Lamp", pipeline.Options(), data_dir=tmp_path), tmp_path)
    assert [name for _, name in job.named_photos] == ["front.jpg", "side.png"]
    assert [(p.parent.name, p.name) for p, _ in job.named_photos] == [("000", "front.jpg"), ("001", "side.png")]


def test_retry_removes_and_adds_photos_and_keeps_the_old_jobs_photos(tmp_path):
    old_id = _failed(tmp_path)
    new_photo = ("side-again.jpg", b"\xff\xd8 a better side photo")
    new_id = jobs.retry(old_id, tmp_path, remove={1}, add=[new_photo])
    new = jobs.get_job(new_id, tmp_path)
    assert new.status is JobStatus.QUEUED and new.name == "Lamp" and new.options.quality == "fast"
    assert [(n, p.read_bytes()) for p, n in new.named_photos] == [("front.jpg", PHOTOS[0][1]), new_photo]
    old = jobs.get_job(old_id, tmp_path)
    assert len(old.photos) == 2 and old.status is JobStatus.FAILED  # nothing of the old job is lost
    assert old.retried_as == new_id
    assert [j.id for j in jobs.needing_attention(tmp_path)] == []  # the Library stops asking about it


@pytest.mark.parametrize("remove, add, words", [
    ({0, 1}, [], "Keep at least one photo"),
    (set(), [("empty.jpg", b"")], "is empty"),
    (set(), [("a.jpg", b"x")] * 3, "more than the 4"),
])
def test_a_refused_retry_writes_nothing_and_keeps_the_old_job(tmp_path, monkeypatch, remove, add, words):
    from webapp import limits

    monkeypatch.setattr(limits, "MAX_JOB_PHOTOS", 4)
    old_id = _failed(tmp_path)
    before = _job_folders(tmp_path)
    with pytest.raises(jobs.JobRefused, match=words):
        jobs.retry(old_id, tmp_path, remove=remove, add=add)
    assert _job_folders(tmp_path) == before
    old = jobs.get_job(old_id, tmp_path)
    assert old.retried_as is None and len(old.photos) == 2
    assert [j.id for j in jobs.needing_attention(tmp_path)] == [old_id]
    with store.connect(tmp_path) as con:
        assert con.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 1


def test_retry_strips_location_from_added_photos(tmp_path):
    import io

    from PIL import Image

    from tests.test_webapp_library import _jpeg_with_gps

    raw = _jpeg_with_gps()
    assert Image.open(io.BytesIO(raw)).getexif().get_ifd(0x8825)
    new_id = jobs.retry(_failed(tmp_path), tmp_path, add=[("gps.jpg", raw)])
    added = jobs.get_job(new_id, tmp_path).photos[-1].read_bytes()
    assert not Image.open(io.BytesIO(added)).getexif().get_ifd(0x8825) and b"secret" not in added


def test_the_library_lists_running_and_failed_jobs_and_discards_photos_on_request(tmp_path):
    queued = jobs.submit(PHOTOS, "Queued", pipeline.Options(), data_dir=tmp_path)
    running = jobs.submit(PHOTOS, "Running", pipeline.Options(), data_dir=tmp_path)
    jobs.update(tmp_path, running, status=JobStatus.RUNNING)
    failed = _failed(tmp_path, name="Failed")
    stopped = jobs.submit(PHOTOS, "Stopped", pipeline.Options(), data_dir=tmp_path)
    jobs.cancel(stopped, tmp_path)
    gone = _failed(tmp_path, name="Photos gone")
    job_photos.release_photos(tmp_path, gone)
    assert [j.id for j in jobs.list_jobs(jobs.ACTIVE, tmp_path)] == [running, queued]  # newest first
    assert [j.id for j in jobs.needing_attention(tmp_path)] == [stopped, failed]
    assert not job_photos.discard(queued, tmp_path)  # a job still to run is never discarded
    assert job_photos.discard(failed, tmp_path)
    assert jobs.get_job(failed, tmp_path) is None and not (tmp_path / "jobs" / failed).exists()
    assert [j.id for j in jobs.needing_attention(tmp_path)] == [stopped]
