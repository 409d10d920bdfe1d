"""Job records in a real SQLite database: status values, the stored options (current and older
formats), progress and cancel as the child process sees them. No pipeline run here."""

from __future__ import annotations

import json
import time

import pytest

import pipeline
from webapp import jobs, store
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
    assert jobs.claim(tmp_path, "cpu") == first  # oldest first
    assert jobs.get_job(first, tmp_path).status is JobStatus.RUNNING
    assert jobs.get_job(second, tmp_path).position == 1
    assert jobs.record_progress(tmp_path, first, "segment", 0.5, "Photo 1 of 2") is JobStatus.RUNNING
    job = jobs.get_job(first, tmp_path)
    assert (job.stage, job.fraction, job.message) == ("segment", 0.5, "Photo 1 of 2")
    jobs.cancel(first, tmp_path)
    assert jobs.record_progress(tmp_path, first, "segment", 0.6, "") is JobStatus.CANCELLING
    jobs.cancel(second, tmp_path)
    assert jobs.get_job(second, tmp_path).status is JobStatus.CANCELLED  # queued: stops at once
    assert jobs.claim(tmp_path, "cpu") is None


@pytest.mark.parametrize("stored", ['{"size": {"axis": "height", "metres": "nan"}}', '{"max_megabytes": -1}',
                                    "not json", '{"size": {"axis": "sideways", "metres": 1}}'])
def test_a_damaged_options_record_fails_that_job_plainly_and_spares_the_others(tmp_path, stored):
    from webapp import workers

    bad = jobs.submit(PHOTOS, "Broken", pipeline.Options(), data_dir=tmp_path)
    good = jobs.submit(PHOTOS, "Fine", pipeline.Options(quality="fast"), data_dir=tmp_path)
    jobs.update(tmp_path, bad, options=stored)
    assert jobs.get_job(bad, tmp_path).damaged and not jobs.get_job(good, tmp_path).damaged
    assert jobs.get_job(good, tmp_path).options.quality == "fast"
    assert jobs.claim(tmp_path, "cpu") == bad
    workers.run_job(str(tmp_path), bad, "cpu")  # the child's entry: it must not run the pipeline
    job = jobs.get_job(bad, tmp_path)
    assert job.status is JobStatus.FAILED and job.error == jobs.DAMAGED_MESSAGE and job.photos
    assert jobs.get_job(good, tmp_path).status is JobStatus.QUEUED
