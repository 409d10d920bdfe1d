"""Model library and job queue: storage layout, share ids, metadata stripping, crash safety.

The model comes from the real pipeline (single-photo path, quick preset)."""

from __future__ import annotations

import io
import json
import os
import signal
import struct
import zipfile
from pathlib import Path

import pytest

import pipeline
from tests.polling import wait_for
from webapp import jobs, library, sanitize, store, workers
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
    url1 = library.publish(chair_model, "Oak chair", [chair_photo], "floor", data_dir=tmp_path)
    url2 = library.publish(chair_model, "Oak chair", [chair_photo], "wall", data_dir=tmp_path)
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
    keep = library.add_model(chair_model, "Keep", [chair_photo], data_dir=tmp_path)
    gone = library.add_model(chair_model, "Gone", [chair_photo], data_dir=tmp_path)
    assert library.rename_model(keep.share_id, "  New\nname <b>  ", tmp_path)
    assert library.get_model(keep.share_id, tmp_path).name == "New name <b>"
    assert library.delete_model(gone.share_id, tmp_path)
    assert library.get_model(gone.share_id, tmp_path) is None and not gone.folder.exists()
    assert not library.delete_model(gone.share_id, tmp_path)
    # an id one character off a real one, and a path, find nothing
    near = keep.share_id[:-1] + ("A" if keep.share_id[-1] != "A" else "B")
    assert library.get_model(near, tmp_path) is None and library.get_model("../../etc", tmp_path) is None
    stray = tmp_path / "models" / ".incoming-crashed"
    stray.mkdir()
    assert library.remove_orphans(tmp_path, min_age_s=0) == 1 and not stray.exists()
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
    assert jobs.recover(tmp_path) == 1
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
