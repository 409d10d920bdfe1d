"""Streamlit AppTest: Create -> Result with the real pipeline (through the real job queue)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import pipeline
from tests.signing import signed_in_apptest  # noqa: E402
from webapp import job_photos, jobs, library, store, ui, workers
from webapp.jobs import JobStatus

APP = str(Path(__file__).resolve().parent.parent / "webapp" / "app.py")


def _texts(at: AppTest) -> str:
    parts = [e.value for e in (*at.title, *at.markdown, *at.caption, *at.info, *at.warning, *at.error)]
    return "\n".join(str(p) for p in parts)


def test_create_page_asks_for_photos_first(app_data):
    at = signed_in_apptest(APP, default_timeout=30).run()
    assert not at.exception
    assert at.title[0].value == "Create a 3D model"
    create = next(b for b in at.button if b.label == "Create 3D model")
    create.click().run()
    assert any("Add at least one photo" in e.value for e in at.error)
    with store.connect(app_data) as con:
        assert con.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 0  # nothing was queued


def test_create_page_offers_the_pipelines_choices(app_data):
    at = signed_in_apptest(APP, default_timeout=30).run()
    assert not at.exception
    shape = next(s for s in at.selectbox if s.label == "Shape")
    assert shape.options == [ui.KIND_LABELS[k] for k in ("auto", *pipeline.SINGLE_VIEW_KINDS)]
    detail = next(r for r in at.radio if r.label == "Detail")
    assert detail.options == [ui.QUALITY_LABELS[q] for q in pipeline.QUALITIES]
    assert detail.value == pipeline.Options().quality
    assert not [r for r in at.radio if "texture" in r.label.lower()]
    assert not [s for s in at.selectbox if "texture" in s.label.lower()]


@pytest.mark.slow
def test_create_to_result_with_the_real_pipeline(app_data, bench):
    photo = bench / "single" / "chair" / "image.jpg"
    at = signed_in_apptest(APP, default_timeout=60).run()
    at.file_uploader[0].set_value([("chair.jpg", photo.read_bytes(), "image/jpeg")]).run()
    assert not at.exception
    assert at.image, "thumbnail of the uploaded photo"
    at.text_input[0].input("Oak <b>chair</b>")
    at.number_input[0].set_value(85.0)
    next(r for r in at.radio if r.label == "Detail").set_value("fast")
    next(b for b in at.button if b.label == "Create 3D model").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    job_id = at.query_params["job"]
    job_id = job_id[0] if isinstance(job_id, list) else job_id
    queued = jobs.get_job(job_id, app_data)
    from tests.signing import owner_account

    assert queued.owner == owner_account(app_data).id  # the signed-in merchant's
    assert queued.options.quality == "fast" and queued.options.texture_size is None  # the preset decides
    assert (queued.options.size.axis, queued.options.size.metres) == ("height", pytest.approx(0.85))

    seen_progress = False
    end = time.monotonic() + 300
    while time.monotonic() < end:
        job = jobs.get_job(job_id, app_data)
        if job.status.finished:
            break
        at.run()
        assert not at.exception
        stages_shown = any(pipeline.STAGE_WORDS["geometry"] in m.value for m in at.markdown)
        seen_progress |= (bool(at.get("progress")) and stages_shown) or any("next in line" in i.value for i in at.info)
        time.sleep(1.0)
    assert job.status is JobStatus.DONE, job.error
    assert seen_progress
    at.run()  # the Create page hands over to the Result page
    assert not at.exception
    model = library.get_model(job.share_id, app_data)
    assert model is not None and model.name == "Oak <b>chair</b>"
    assert model.owner == queued.owner and at.query_params["id"] in (model.model_id, [model.model_id])
    assert model.dimensions_m[1] == pytest.approx(0.85, rel=0.02)
    assert model.report["texture_size"] == pipeline.TEXTURE_SIZES["fast"]
    text = _texts(at)
    assert "Oak" in text and pipeline.format_dimensions(model.dimensions_m) in text
    labels = [b.label for b in at.get("download_button")]
    assert len(labels) == 4 and any("GLB" in lab for lab in labels) and any("USDZ" in lab for lab in labels)
    assert any(f"/ar/{job.share_id}" in c.value for c in at.code)


def _failed_job(data: Path) -> str:
    job_id = jobs.submit([("front.jpg", b"\xff\xd8 not really a photo")], "Oak chair", pipeline.Options(),
                         data_dir=data)
    jobs.update(data, job_id, status=JobStatus.FAILED, finished=time.time(), error="No object found in front.jpg.")
    return job_id


def test_a_failed_job_offers_try_again_while_its_photos_are_kept(app_data):
    job_id = _failed_job(app_data)
    at = signed_in_apptest(APP, default_timeout=30)
    at.query_params["job"] = job_id
    at.run()
    assert not at.exception
    assert any("No object found in front" in e.value for e in at.error)
    retry = next(b for b in at.button if b.label == "Try again with the same photos")
    retry.click().run()
    new_id = at.query_params["job"][0] if isinstance(at.query_params["job"], list) else at.query_params["job"]
    assert new_id != job_id and jobs.get_job(new_id, app_data).photos  # a new job with the same photos


def test_a_failed_job_whose_photos_were_purged_says_so_instead_of_try_again(app_data):
    job_id = _failed_job(app_data)
    old = time.time() - 8 * 86400  # past the 7-day retention
    jobs.update(app_data, job_id, created=old, finished=old)
    assert job_photos.purge(app_data) >= 1
    at = signed_in_apptest(APP, default_timeout=30)
    at.query_params["job"] = job_id
    at.run()
    assert not at.exception
    assert not [b for b in at.button if b.label.startswith("Try again")]
    assert "were deleted after 7 days" in _texts(at)
    assert [b for b in at.button if b.label == "Start over"]


def _running_job(data: Path, photos: int, stage: str, fraction: float, ran_s: float) -> str:
    content = (Path(__file__).resolve().parent.parent / "static" / "app.css").read_bytes()  # never decoded here
    job_id = jobs.submit([(f"IMG_{1001 + i}.jpg", content) for i in range(photos)], "Oak chair",
                         pipeline.Options(), data_dir=data)
    jobs.update(data, job_id, status=JobStatus.RUNNING, started=time.time() - ran_s, stage=stage,
                fraction=fraction, message="Checking the shape against photo 3 of 12")
    return job_id


def test_a_running_job_shows_how_long_it_has_left(app_data):
    from webapp import eta

    at = signed_in_apptest(APP, default_timeout=30).run()  # starts the workers (and their recovery) once
    workers.stop_workers()  # the record is set by hand: no worker may claim or run it
    job_id = _running_job(app_data, 12, "geometry", 0.1, ran_s=120.0)
    at.query_params["job"] = job_id
    at.run()
    assert not at.exception
    expected = eta.time_left("geometry", 0.1, 12, 120.0)
    assert expected.startswith("About ") and expected.endswith(" minutes left"), expected
    assert any(expected in m.value for m in at.markdown), _texts(at)
    assert "Checking the shape against photo 3 of 12" in _texts(at) or at.get("progress")


def test_time_left_follows_the_stage_shares_and_says_nothing_too_early():
    from webapp import eta

    assert eta.time_left("ingest", 0.0, 12, 1.0) == ""  # nothing done yet: no guess
    assert eta.done_share("report", 1.0, 12) == pytest.approx(1.0)
    assert eta.done_share("geometry", 0.0, 12) == pytest.approx(sum(
        v for k, v in pipeline.stage_shares(12).items() if k in ("ingest", "segment", "poses")))
    assert eta.time_left("report", 0.9, 12, 60.0) == "Less than a minute left"
    # Half of the job in 2 minutes: about 2 more.
    half = next(f for f in (i / 1000 for i in range(1000)) if eta.done_share("geometry", f, 12) >= 0.5)
    assert eta.time_left("geometry", half, 12, 120.0) == "About 2 minutes left"
    assert set(pipeline.stage_shares(1)) == set(pipeline.stages_for(1))
    assert sum(pipeline.stage_shares(1).values()) == pytest.approx(1.0)
