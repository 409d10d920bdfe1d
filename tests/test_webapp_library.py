"""Model library and job queue: storage layout, share ids, metadata stripping, crash safety.

The model comes from the real pipeline (single-photo path, quick preset)."""

from __future__ import annotations

import io
import json
import os
import signal
import struct
import time
import zipfile
from pathlib import Path

import pytest

import pipeline
from tests.signing import signed_in_apptest  # noqa: E402
from tests.polling import wait_for
from webapp import job_runs, jobs, library, listing, model_folders, sanitize, store, trash, workers
from webapp.jobs import JobStatus


def _jpeg_with_gps() -> bytes:
    from PIL import Image

    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif.get_ifd(0x8825)[2] = (51.0, 30.0, 0.0)  # GPSLatitude
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 40, 40)).save(buf, format="JPEG", exif=exif, comment=b"secret")
    return buf.getvalue()


def test_strip_image_removes_exif_and_comments_but_keeps_pixels():
    from PIL import Image

    raw = _jpeg_with_gps()
    assert b"Exif" in raw and b"secret" in raw
    clean = sanitize.strip_image(raw)
    assert b"Exif" not in clean and b"secret" not in clean and b"PhoneMaker" not in clean
    a = Image.open(io.BytesIO(raw)).convert("RGB")
    b = Image.open(io.BytesIO(clean)).convert("RGB")
    assert a.tobytes() == b.tobytes()


def _glb(images: list[bytes], other: bytes) -> bytes:
    views, blob = [], bytearray()
    for data in [other, *images]:
        blob += b"\0" * (-len(blob) % 4)
        views.append({"buffer": 0, "byteOffset": len(blob), "byteLength": len(data)})
        blob += data
    blob += b"\0" * (-len(blob) % 4)
    doc = {"asset": {"version": "2.0"}, "buffers": [{"byteLength": len(blob)}], "bufferViews": views,
           "images": [{"bufferView": i + 1, "mimeType": "image/jpeg"} for i in range(len(images))]}
    text = json.dumps(doc).encode()
    text += b" " * (-len(text) % 4)
    body = struct.pack("<II", len(text), 0x4E4F534A) + text + struct.pack("<II", len(blob), 0x004E4942) + blob
    return struct.pack("<III", 0x46546C67, 2, 12 + len(body)) + body


def test_clean_glb_repacks_buffer_views(tmp_path):
    other = bytes(range(200)) * 3
    src, dst = tmp_path / "in.glb", tmp_path / "out.glb"
    src.write_bytes(_glb([_jpeg_with_gps()], other))
    sanitize.clean_glb(src, dst)
    raw = dst.read_bytes()
    assert b"Exif" not in raw and b"PhoneMaker" not in raw
    json_len = struct.unpack("<I", raw[12:16])[0]
    doc = json.loads(raw[20:20 + json_len])
    blob = raw[20 + json_len + 8:]
    v0, v1 = doc["bufferViews"]
    assert blob[v0["byteOffset"]:v0["byteOffset"] + v0["byteLength"]] == other
    assert v1["byteOffset"] % 4 == 0
    from PIL import Image

    Image.open(io.BytesIO(blob[v1["byteOffset"]:v1["byteOffset"] + v1["byteLength"]])).load()
    assert struct.unpack("<I", raw[8:12])[0] == len(raw)


def test_clean_usdz_keeps_64_byte_alignment(tmp_path):
    src, dst = tmp_path / "in.usdz", tmp_path / "out.usdz"
    with zipfile.ZipFile(src, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("model.usda", "#usda 1.0\n")
        zf.writestr("textures/base.jpg", _jpeg_with_gps())
    sanitize.clean_usdz(src, dst)
    with zipfile.ZipFile(dst) as zf:
        assert b"Exif" not in zf.read("textures/base.jpg")
        raw = dst.read_bytes()
        for info in zf.infolist():
            name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26:info.header_offset + 30])
            assert (info.header_offset + 30 + name_len + extra_len) % 64 == 0


def test_publish_layout_share_ids_and_privacy(chair_model, chair_photo, tmp_path):
    url1 = model_folders.publish(chair_model, "Oak chair", [chair_photo], "floor", data_dir=tmp_path)
    url2 = model_folders.publish(chair_model, "Oak chair", [chair_photo], "wall", data_dir=tmp_path)
    sid1, sid2 = url1.rsplit("/", 1)[1], url2.rsplit("/", 1)[1]
    assert url1.startswith("http") and "/ar/" in url1 and sid1 != sid2
    assert len(sid1) >= 32  # 24 random bytes = 192 bits, URL-safe base64
    m1 = library.get_model(sid1, tmp_path)
    assert m1 is not None and m1.name == "Oak chair" and m1.placement == "floor"
    assert sid1 not in str(m1.folder) and m1.folder.parent == tmp_path / "models"
    assert m1.dimensions_m[1] == pytest.approx(chair_model.report.dimensions_m[1])
    # the original is kept for the merchant, without location metadata (pixels unchanged)
    assert (m1.folder / "photos" / "000.jpg").read_bytes() == sanitize.strip_location(chair_photo.read_bytes())
    assert m1.file("photos/000.jpg") is None and m1.file("report.json") is None and m1.file("../x") is None
    for name in library.PUBLIC_FILES:
        assert m1.file(name) is not None, name
    # no metadata in anything we serve
    assert b"Exif" not in m1.file("model.glb").read_bytes()
    poster = m1.file("poster.png").read_bytes()
    assert not any(tag in poster for tag in (b"eXIf", b"tEXt", b"iTXt", b"zTXt"))
    import trimesh

    scene = trimesh.load(m1.file("model.glb"))
    assert sum(len(g.faces) for g in scene.geometry.values()) == chair_model.report.triangles
    assert [m.share_id for m in library.list_models(tmp_path)] == [sid2, sid1]


def test_rename_delete_and_orphans(chair_model, chair_photo, tmp_path):
    keep = model_folders.add_model(chair_model, "Keep", [chair_photo], data_dir=tmp_path)
    gone = model_folders.add_model(chair_model, "Gone", [chair_photo], data_dir=tmp_path)
    assert library.rename_model(keep.share_id, "  New\nname <b>  ", tmp_path)
    assert library.get_model(keep.share_id, tmp_path).name == "New name <b>"
    assert model_folders.delete_model(gone.share_id, tmp_path)
    assert library.get_model(gone.share_id, tmp_path) is None and not gone.folder.exists()
    assert not model_folders.delete_model(gone.share_id, tmp_path)
    # an id one character off a real one, and a path, find nothing
    near = keep.share_id[:-1] + ("A" if keep.share_id[-1] != "A" else "B")
    assert library.get_model(near, tmp_path) is None and library.get_model("../../etc", tmp_path) is None
    stray = tmp_path / "models" / ".incoming-crashed"
    stray.mkdir()
    assert model_folders.remove_orphans(tmp_path, min_age_s=0) == 1 and not stray.exists()
    assert keep.file("model.glb") is not None


def test_queue_positions_cancel_and_restart_recovery(chair_photo, tmp_path):
    files = [("front.jpg", chair_photo.read_bytes())]
    ids = [jobs.submit(files, f"Item {i}", pipeline.Options(), data_dir=tmp_path) for i in range(3)]
    assert [jobs.get_job(i, tmp_path).position for i in ids] == [1, 2, 3]
    jobs.cancel(ids[0], tmp_path)
    assert jobs.get_job(ids[0], tmp_path).status is JobStatus.CANCELLED
    assert [jobs.get_job(i, tmp_path).position for i in ids[1:]] == [1, 2]
    # a server died while ids[1] was running: on restart it is failed, with its photos kept
    with store.connect(tmp_path) as con:
        con.execute("UPDATE jobs SET status=? WHERE id=?", (JobStatus.RUNNING.value, ids[1]))
    assert job_runs.recover(tmp_path) == 1
    failed = jobs.get_job(ids[1], tmp_path)
    assert failed.status is JobStatus.FAILED and "photos are kept" in failed.error
    assert [p.read_bytes() for p in failed.photos] == [sanitize.strip_location(chair_photo.read_bytes())]
    again = jobs.get_job(jobs.retry(ids[1], tmp_path), tmp_path)
    assert again.status is JobStatus.QUEUED and again.name == "Item 1" and len(again.photos) == 1
    assert again.id != ids[1] and again.options == failed.options
    assert jobs.get_job(ids[1], tmp_path).status is JobStatus.FAILED  # the old record stays as it was


@pytest.mark.slow
def test_worker_runs_jobs_and_a_crashed_job_leaves_models_intact(chair_photo, tmp_path, device, monkeypatch):
    monkeypatch.setenv("PLINTH_DEVICES", device)
    opts = pipeline.Options(size=pipeline.KnownSize("height", 0.85), quality="fast", texture_size=512)
    first = jobs.submit([("front.jpg", chair_photo.read_bytes())], "First chair", opts, data_dir=tmp_path)
    workers.start_workers(tmp_path)
    try:
        done = wait_for(lambda: (j := jobs.get_job(first, tmp_path)).status.finished and j, 240, "first job")
        assert done.status is JobStatus.DONE, done.error
        model = library.get_model(done.share_id, tmp_path)
        assert model.name == "First chair" and model.report["texture_size"] == 512  # the job's own options
        assert model.dimensions_m[1] == pytest.approx(0.85, rel=0.01)
        glb = model.file("model.glb").read_bytes()

        second = jobs.submit([("front.jpg", chair_photo.read_bytes())], "Second", opts, data_dir=tmp_path)
        with store.connect(tmp_path) as con:
            pid = wait_for(lambda: con.execute("SELECT pid FROM jobs WHERE id=? AND status=? AND pid IS NOT NULL",
                                            (second, JobStatus.RUNNING.value)).fetchone(), 60, "second job to start")[0]
        os.kill(pid, signal.SIGKILL)  # what the kernel's OOM killer does
        crashed = wait_for(lambda: (j := jobs.get_job(second, tmp_path)).status is not JobStatus.RUNNING and j, 60,
                        "crash noticed")
        assert crashed.status is JobStatus.FAILED and "out of memory" in crashed.error and crashed.photos
        assert library.get_model(done.share_id, tmp_path).file("model.glb").read_bytes() == glb
        assert [m.share_id for m in library.list_models(tmp_path)] == [done.share_id]

        third = jobs.submit([("front.jpg", chair_photo.read_bytes())], "Third", opts, data_dir=tmp_path)
        wait_for(lambda: jobs.get_job(third, tmp_path).stage not in ("", "ingest"), 60, "third job to get going")
        jobs.cancel(third, tmp_path)
        stopped = wait_for(lambda: (j := jobs.get_job(third, tmp_path)).status.finished and j, 60, "cancel")
        assert stopped.status is JobStatus.CANCELLED
        assert len(library.list_models(tmp_path)) == 1
    finally:
        workers.stop_workers()


def test_cli_side_modules_do_not_import_streamlit():
    import subprocess
    import sys

    code = ("import sys, webapp.library, webapp.jobs, webapp.workers, webapp.server, webapp.cli; "
            "assert 'streamlit' not in sys.modules, 'streamlit imported'")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent.parent)
    assert run.returncode == 0, run.stderr


# ---------------------------------------------------------------- the Library page (Streamlit AppTest)


def _library(**query):
    """The Library page after one run of the app (so the workers have started and recovered: a job
    set running afterwards stays running, since no worker claims a job that is not queued)."""

    from tests.test_webapp_apptest import APP

    at = signed_in_apptest(APP, default_timeout=60).run()
    at.switch_page("views/library_page.py")
    for key, value in query.items():
        at.query_params[key] = value
    return at


def _texts(at) -> str:
    parts = [e.value for e in (*at.title, *at.subheader, *at.markdown, *at.caption, *at.info, *at.warning,
                               *at.error, *at.success)]
    return "\n".join(str(p) for p in parts).replace("\\", "").replace("\u2060", "")


def _mine(data) -> str:
    """The signed-in owner account's id: what the pages pass as owner= (tests.signing)."""
    from tests.signing import owner_account

    return owner_account(data).id


def _failed_job(data, photos, name="Blue vase", status=JobStatus.FAILED) -> str:
    job_id = jobs.submit(photos, name, pipeline.Options(quality="fast"), data_dir=data, owner=_mine(data))
    jobs.update(data, job_id, status=status, finished=time.time(),
                error="No object found in back.jpg. Take it again against a plain wall." if status is
                JobStatus.FAILED else "")
    return job_id


def test_the_library_shows_jobs_in_progress_and_needing_attention_with_their_photos(
        app_data, chair_model, chair_photo):
    at = _library()
    photo = chair_photo.read_bytes()
    model = model_folders.add_model(chair_model, "Oak chair", [], data_dir=app_data, owner=_mine(app_data))
    running = jobs.submit([("a.jpg", photo)], "Walnut stool", pipeline.Options(), data_dir=app_data,
                          owner=_mine(app_data))
    jobs.update(app_data, running, status=JobStatus.RUNNING, stage="texture", fraction=0.4,
                message="Painting photo 2 of 3")
    failed = _failed_job(app_data, [("front.jpg", photo), ("back.jpg", photo)])
    stopped = _failed_job(app_data, [("lamp.jpg", photo)], name="Desk lamp", status=JobStatus.CANCELLED)
    at.run()
    assert not at.exception
    text = _texts(at)
    assert [s.value for s in at.subheader][:3] == ["In progress", "Needs attention", "Made"]
    assert "Walnut stool" in text and pipeline.STAGE_WORDS["texture"] in text
    assert "Blue vase" in text and "No object found in back.jpg" in text and "Desk lamp" in text
    assert "You stopped it" in text
    assert {c.value.replace("\\", "") for c in at.caption} >= {"front.jpg", "back.jpg", "lamp.jpg"}
    assert len(at.image) >= 4  # thumbnails of the kept photos (and the model's poster)
    assert [b.label for b in at.button if b.label == "Try again with changes"] == ["Try again with changes"] * 2
    assert "Oak chair" in text and model.share_id
    follow = next(b for b in at.button if b.key == f"follow-{running}")
    follow.click().run()
    assert not at.exception
    assert at.query_params["job"] in (running, [running])  # its progress page
    assert jobs.get_job(failed, app_data).photos and jobs.get_job(stopped, app_data).photos


def test_try_again_with_changes_leaves_out_photos_and_a_refused_try_loses_nothing(app_data, chair_photo):
    photo = chair_photo.read_bytes()
    at = _library()
    failed = _failed_job(app_data, [("front.jpg", photo), ("back.jpg", photo + b"\0")])
    at.run()
    next(b for b in at.button if b.label == "Try again with changes").click().run()
    assert not at.exception
    assert at.title[0].value.replace("\\", "") == "Try again: Blue vase"
    assert [c.value.replace("\\", "") for c in at.caption][:2] == ["front.jpg", "back.jpg"]
    leave = [c for c in at.checkbox if c.label == "Leave out"]
    for box in leave:
        box.check()
    at.run()
    next(b for b in at.button if b.label == "Make the model again").click().run()
    assert not at.exception
    assert any("Keep at least one photo" in e.value for e in at.error)  # refused, plainly
    with store.connect(app_data) as con:
        assert con.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 1  # nothing was queued
    assert len(jobs.get_job(failed, app_data).photos) == 2
    next(c for c in at.checkbox if c.label == "Leave out").uncheck().run()
    next(b for b in at.button if b.label == "Make the model again").click().run()
    assert not at.exception
    new_id = jobs.get_job(failed, app_data).retried_as
    assert new_id and at.query_params["job"] in (new_id, [new_id])  # on to its progress page
    assert [name for _, name in jobs.get_job(new_id, app_data).named_photos] == ["front.jpg"]
    assert len(jobs.get_job(failed, app_data).photos) == 2  # the old photos are still there


def test_search_and_sort_the_library(app_data, chair_model):
    at = _library()
    sizes = {"Oak chair": 0.9, "Tall oak shelf": 1.8, "Blue vase": 0.3}
    for name, height in sizes.items():
        model = model_folders.add_model(chair_model, name, [], data_dir=app_data, owner=_mine(app_data))
        with store.connect(app_data) as con:
            con.execute("UPDATE models SET height_m = ? WHERE share_id = ?", (height, model.share_id))
    at.run()

    def names():
        return [m.value.strip("*").replace("\\", "") for m in at.markdown
                if m.value.startswith("**") and m.value.strip("*").replace("\\", "") in sizes]

    assert names() == ["Blue vase", "Tall oak shelf", "Oak chair"]  # newest first
    assert "3 models" in _texts(at)
    sort = next(s for s in at.selectbox if s.label == "Sort")
    assert "Biggest first (longest side)" in sort.options
    sort.set_value(listing.Order.NAME).run()
    assert names() == ["Blue vase", "Oak chair", "Tall oak shelf"]
    sort.set_value(listing.Order.SIZE).run()
    assert names() == ["Tall oak shelf", "Oak chair", "Blue vase"]
    sort.set_value(listing.Order.OLDEST).run()
    assert names() == ["Oak chair", "Tall oak shelf", "Blue vase"]
    next(t for t in at.text_input if t.label == "Search by name").input("OAK").run()
    assert names() == ["Oak chair", "Tall oak shelf"] and "2 models of 3" in _texts(at)
    next(t for t in at.text_input if t.label == "Search by name").input("sofa").run()
    assert names() == [] and "No model's name has “sofa” in it" in _texts(at)


def test_delete_warns_moves_to_the_trash_and_undo_restores(app_data, chair_model):
    at = _library()
    model = model_folders.add_model(chair_model, "Oak chair", [], data_dir=app_data, owner=_mine(app_data))
    at.run()
    assert "Shoppers who have the link or QR code will see 'no longer available'" in _texts(at)
    delete = next(b for b in at.button if b.key == f"del-{model.share_id}-delete")
    assert delete.disabled  # only after the confirmation tick
    next(c for c in at.checkbox if c.key == f"del-{model.share_id}-sure").check().run()
    next(b for b in at.button if b.key == f"del-{model.share_id}-delete").click().run()
    assert not at.exception
    assert library.share_status(model.share_id, app_data) is library.ShareStatus.TRASHED
    text = _texts(at)
    assert "is in the Trash" in text and "No models yet" in text
    assert any(e.label == "Trash (1)" for e in at.expander)
    next(b for b in at.button if b.label == "Undo").click().run()
    assert not at.exception
    assert library.share_status(model.share_id, app_data) is library.ShareStatus.LIVE
    assert "is in the Trash" not in _texts(at) and any(e.label == "Trash (0)" for e in at.expander)
    assert any("Restored" in t.value for t in at.toast)


def test_the_trash_restores_and_deletes_for_good(app_data, chair_model):
    at = _library()
    back, gone = (model_folders.add_model(chair_model, n, [], data_dir=app_data, owner=_mine(app_data))
                  for n in ("Lamp", "Rug"))
    trash.move(back.share_id, app_data)
    trash.move(gone.share_id, app_data)
    at.run()
    assert "deleted for good in 30 days" in _texts(at)
    next(b for b in at.button if b.key == f"restore-{back.share_id}").click().run()
    assert library.get_model(back.share_id, app_data) is not None
    next(c for c in at.checkbox if c.key == f"forget-sure-{gone.share_id}").check().run()
    next(b for b in at.button if b.key == f"forget-{gone.share_id}").click().run()
    assert not at.exception
    assert library.share_status(gone.share_id, app_data) is library.ShareStatus.UNKNOWN and not gone.folder.exists()


def test_rename_confirms_and_refuses_an_empty_name(app_data, chair_model):
    at = _library()
    model = model_folders.add_model(chair_model, "Oak chair", [], data_dir=app_data, owner=_mine(app_data))
    at.run()
    field = next(t for t in at.text_input if t.key == f"name-{model.share_id}")
    field.input("   ").run()
    next(b for b in at.button if b.key == f"name-{model.share_id}-button").click().run()
    assert any("cannot be empty" in e.value for e in at.error)
    assert library.get_model(model.share_id, app_data).name == "Oak chair"  # unchanged
    next(t for t in at.text_input if t.key == f"name-{model.share_id}").input("Walnut chair").run()
    next(b for b in at.button if b.key == f"name-{model.share_id}-button").click().run()
    assert not at.exception and not any("cannot be empty" in e.value for e in at.error)
    assert library.get_model(model.share_id, app_data).name == "Walnut chair"
    assert any("Renamed to" in t.value and "Walnut chair" in t.value for t in at.toast)


def test_the_model_page_delete_goes_to_the_library_with_undo(app_data, chair_model):
    at = _library()
    model = model_folders.add_model(chair_model, "Oak chair", [], data_dir=app_data, owner=_mine(app_data))
    at.switch_page("views/model.py")
    at.query_params["id"] = model.model_id
    at.run()
    assert "Shoppers who have the link or QR code will see 'no longer available'" in _texts(at)
    next(c for c in at.checkbox if c.key == "model-sure").check().run()
    next(b for b in at.button if b.key == "model-delete").click().run()
    assert not at.exception
    assert library.share_status(model.share_id, app_data) is library.ShareStatus.TRASHED
    assert at.title[0].value == "Your 3D models" and "is in the Trash" in _texts(at)


def test_a_trashed_models_page_says_it_is_in_the_trash_and_restores_it(app_data, chair_model):
    at = _library()
    model = model_folders.add_model(chair_model, "Oak chair", [], data_dir=app_data, owner=_mine(app_data))
    assert trash.move(model.share_id, app_data)
    at.switch_page("views/model.py")
    at.query_params["id"] = model.model_id
    at.run()
    assert not at.exception
    assert "in the Trash" in _texts(at) and "Model not found" not in _texts(at)
    next(b for b in at.button if b.label == "Restore it").click().run()
    assert library.share_status(model.share_id, app_data) is library.ShareStatus.LIVE
    assert at.title[0].value == "Oak chair"
    at.query_params["id"] = "no-such-model-id-at-all"
    at.run()
    assert at.title[0].value == "Model not found"


def test_a_model_that_failed_its_checks_is_made_again_without_the_photos_they_named(
        app_data, chair_model, chair_photo, tmp_path):
    from tests.verdicts import RESHOOT, judged

    photo = chair_photo.read_bytes()
    at = _library()
    job_id = jobs.submit([(RESHOOT[0], photo), ("IMG_0009.JPG", photo)], "Oak chair", pipeline.Options(),
                         data_dir=app_data, owner=_mine(app_data))
    job_runs.claim(app_data, None)
    failed = model_folders.add_model(judged(chair_model, pipeline.Verdict.FAILED, tmp_path / "failed"), "Oak chair", [],
                               data_dir=app_data, job_id=job_id, owner=_mine(app_data))
    job_runs.finish(app_data, job_id, JobStatus.DONE, share_id=failed.share_id, verdict="failed")
    at.switch_page("views/model.py")
    at.query_params["id"] = failed.model_id
    at.run()
    next(b for b in at.button if b.label == "Make it again with new photos").click().run()
    assert not at.exception
    assert at.title[0].value.replace("\\", "") == "Try again: Oak chair"  # its photos, not an empty Create page
    assert "failed Plinth's checks" in _texts(at) and "Take this one again" in _texts(at)
    assert [c.value for c in at.checkbox if c.label == "Leave out"] == [True, False]  # the named one is marked
    at.switch_page("views/library_page.py")  # AppTest stays on the page it was told (the browser moved on)
    next(b for b in at.run().button if b.label == "Make the model again").click().run()
    assert not at.exception
    new_id = jobs.get_job(job_id, app_data).retried_as
    assert [name for _, name in jobs.get_job(new_id, app_data).named_photos] == ["IMG_0009.JPG"]


def test_the_progress_page_of_a_failed_job_leads_to_try_again_with_changes(app_data, chair_photo):
    at = _library()
    failed = _failed_job(app_data, [("front.jpg", chair_photo.read_bytes())])
    at.switch_page("views/create.py")
    at.query_params["job"] = failed
    at.run()
    next(b for b in at.button if b.label == "Change the photos and try again").click().run()
    assert not at.exception
    assert at.title[0].value.replace("\\", "") == "Try again: Blue vase"
    assert [c.value.replace("\\", "") for c in at.caption][:1] == ["front.jpg"]


def test_delete_these_photos_asks_first_then_removes_them(app_data, chair_photo):
    at = _library()
    failed = _failed_job(app_data, [("front.jpg", chair_photo.read_bytes())])
    at.run()
    assert "Delete the 1 photo of this model? This cannot be undone." in _texts(at)
    assert next(b for b in at.button if b.key == f"discard-{failed}").disabled
    next(c for c in at.checkbox if c.key == f"sure-job-{failed}").check().run()
    next(b for b in at.button if b.key == f"discard-{failed}").click().run()
    assert not at.exception
    assert jobs.get_job(failed, app_data) is None and "Needs attention" not in _texts(at)
    assert "No models yet" in _texts(at)
