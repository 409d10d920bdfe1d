"""Data safety (issue 12): the library survives the loss or damage of its database, clean-up never
deletes a model, reads keep working on a full disk, one server per data folder, doctor, backup and
restore, and deleting a model deletes the merchant's uploads. Real SQLite files, real `plinth serve`
processes (running_server), a real full disk (a small tmpfs; where mounting is refused, a file-size
limit of 0 bytes, RLIMIT_FSIZE, which the kernel enforces on every write just as a full disk does).

One single-photo reconstruction is published 5 times (module fixture) and each test damages its own
copy of that data folder.
"""

from __future__ import annotations

import io
import json
import os
import random
import resource
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import pipeline
from tests.test_webapp_http import ROOT, free_port, running_server
from webapp import doctor, jobs, library, lock, model_folders, sanitize, store

HOUR = 3600.0


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def five(chair_model, chair_photo, tmp_path_factory) -> tuple[Path, list[str]]:
    """A data folder with 5 published models (checkpointed: no -wal left) and their share ids."""
    data = tmp_path_factory.mktemp("five")
    ids = [model_folders.add_model(chair_model, f"Chair {i}", [chair_photo], data_dir=data).share_id for i in range(5)]
    return data, ids


def _copy(five, tmp_path: Path) -> tuple[Path, list[str]]:
    src, ids = five
    data = tmp_path / "data"
    shutil.copytree(src, data)
    assert not (data / f"{store.DB_NAME}-wal").exists()
    return data, ids


def _serves_all(base: str, ids: list[str], data: Path) -> None:
    for sid in ids:
        page = httpx.get(f"{base}/ar/{sid}", timeout=10)
        assert page.status_code == 200, (sid, page.status_code, (data / "server.log").read_text()[-2000:])
        glb = httpx.get(f"{base}/models/{sid}/model.glb", timeout=10)
        assert glb.status_code == 200 and glb.content[:4] == b"glTF"


def _age(path: Path, seconds: float = 2 * HOUR) -> None:
    t = time.time() - seconds
    os.utime(path, (t, t))


# ---------------------------------------------------------------- the database comes back


def _models_root_page(db: Path) -> tuple[int, int]:
    with sqlite3.connect(db) as con:
        root = con.execute("SELECT rootpage FROM sqlite_master WHERE name='models'").fetchone()[0]
        page = con.execute("PRAGMA page_size").fetchone()[0]
    con.close()
    return root, page


def _damage(db: Path, how: str) -> None:
    rng = random.Random(how)
    size = db.stat().st_size
    if how == "no rows":
        with sqlite3.connect(db) as con:
            con.execute("DELETE FROM models")
        con.close()
    elif how == "deleted":
        db.unlink()
    elif how == "zero bytes":
        db.write_bytes(b"")
    elif how == "garbage":
        db.write_bytes(bytes(rng.getrandbits(8) for _ in range(size)))
    elif how == "bad header":
        with open(db, "r+b") as fh:
            fh.write(b"Xqlite format 3\x00")
    elif how == "truncated":
        root, page = _models_root_page(db)
        with open(db, "r+b") as fh:
            fh.truncate(max(page, (size // page // 2) * page))
    elif how == "text file":
        db.write_text("this is a shopping list, not a database\n")
    elif how == "garbage in one page":
        root, page = _models_root_page(db)
        with open(db, "r+b") as fh:
            fh.seek((root - 1) * page)
            fh.write(bytes(rng.getrandbits(8) for _ in range(page)))
    else:
        raise ValueError(how)


DAMAGE = ["no rows", "deleted", "zero bytes", "garbage", "bad header", "truncated", "text file",
          "garbage in one page"]


@pytest.mark.parametrize("how", DAMAGE)
def test_a_lost_or_damaged_database_comes_back_with_every_share_link(five, tmp_path, how):
    data, ids = _copy(five, tmp_path)
    db = store.db_path(data)
    _age(data / "models")
    for folder in store.model_folders(data):
        _age(folder)  # older than the clean-up's hour: before, the start-up clean-up deleted them
    _damage(db, how)
    before = db.read_bytes() if db.exists() else None
    with running_server(data) as base:
        _serves_all(base, ids, data)
        assert sorted(m.share_id for m in library.list_models(data)) == sorted(ids)
    log = (data / "server.log").read_text()
    assert "5 model folders" in log, log
    aside = sorted(data.glob(f"{store.DB_NAME}.damaged-*"))
    if how in ("garbage", "bad header", "truncated", "text file", "garbage in one page"):
        assert "was damaged" in log and len([a for a in aside if not a.name.endswith(("-wal", "-shm"))]) == 1
        assert aside[0].read_bytes() == before  # moved aside as it was, never deleted
    else:
        assert not aside
    assert all(len(list(f.iterdir())) >= 6 for f in store.model_folders(data))  # files and photos kept


def test_cleanup_deletes_only_old_temporary_folders(five, tmp_path):
    data, ids = _copy(five, tmp_path)
    models = data / "models"
    with sqlite3.connect(store.db_path(data)) as con:  # two rows lost, their folders still there
        con.execute("DELETE FROM models WHERE share_id IN (?, ?)", ids[:2])
    con.close()
    old_in, old_del, young_in, unknown = (models / n for n in (".incoming-a", ".deleted-b", ".incoming-c", "mystery"))
    for path in (old_in, old_del, young_in, unknown):
        path.mkdir()
        (path / "x.bin").write_bytes(b"x")
    for path in (old_in, old_del, unknown, *store.model_folders(data)):
        _age(path)
    assert model_folders.remove_orphans(data) == 2
    assert not old_in.exists() and not old_del.exists() and young_in.exists() and unknown.exists()
    assert sorted(m.share_id for m in library.list_models(data)) == sorted(ids)
    assert len(store.model_folders(data)) == 6  # five models and the unknown folder, all kept


def test_reads_never_write_and_work_from_the_manifests(five, tmp_path):
    data, ids = _copy(five, tmp_path)
    db = store.db_path(data)
    snapshot = {p.name: p.stat().st_mtime_ns for p in data.iterdir()}
    assert library.get_model(ids[0], data).name == "Chair 0"
    assert len(library.list_models(data)) == 5
    after = {p.name: p.stat().st_mtime_ns for p in data.iterdir() if not p.name.endswith(("-wal", "-shm"))}
    assert after == snapshot  # nothing written or touched (SQLite may map its -shm read index)
    _damage(db, "garbage")
    garbage = db.read_bytes()
    assert library.get_model(ids[3], data).share_id == ids[3]  # from the manifests
    assert len(library.list_models(data)) == 5 and db.read_bytes() == garbage


# ---------------------------------------------------------------- the full disk


def _fill(folder: Path) -> None:
    """Write zeros into folder/fill until the disk says it is full."""
    with open(folder / "fill", "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * (256 << 10))
                fh.flush()
        except OSError as error:
            assert error.errno in (28, 27), error  # ENOSPC (tmpfs) or EFBIG (file-size limit)


def _no_file_growth(pid: int | None = None) -> None:
    resource.prlimit(pid or 0, resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))


@pytest.mark.parametrize("mechanism", ["tmpfs", "file-size limit"])
def test_share_links_work_on_a_full_disk_and_publish_says_so(five, chair_photo, tmp_path, mechanism, device):
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = mechanism == "tmpfs" and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(disk)], capture_output=True).returncode == 0
    try:
        data, ids = _copy(five, disk)
        with running_server(data) as base:
            _serves_all(base, ids, data)  # warm: its -shm exists, as on a live server
            server_pid = json.loads((data / "server.json").read_text())["pid"]
            if mounted:
                _fill(disk)
                assert os.statvfs(disk).f_bavail == 0
            else:
                _no_file_growth(server_pid)
            for _ in range(2):
                _serves_all(base, ids, data)
            probe = subprocess.run(
                [sys.executable, "-c", _READ_AND_PUBLISH, str(data), ids[2], str(chair_photo), device,
                 "" if mounted else "limit"], cwd=ROOT, capture_output=True, text=True, timeout=120)
            assert probe.returncode == 0, probe.stderr
            found, listed, error, left = probe.stdout.strip().splitlines()
            assert found == "Chair 2" and listed == "5"
            assert error.startswith("The server's disk is full") and "\n" not in error
            assert left == "[]"  # no partial folder, no new row
            if mounted:  # the command line, as a merchant runs it: one plain line
                out = tmp_path / "out" / "item.glb"
                out.parent.mkdir()
                env = {**os.environ, "PLINTH_DATA_DIR": str(data)}
                run = subprocess.run([sys.executable, "-m", "webapp", "make", str(chair_photo), "--out", str(out),
                                      "--height", "0.5m", "--publish", "--quality", "fast", "--texture-size", "512",
                                      "-q", "--device", device], cwd=ROOT, env=env, capture_output=True, text=True,
                                     timeout=300)
                assert run.returncode == 2 and run.stderr.startswith("plinth: The server's disk is full")
                assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
            folders = sorted(f.name for f in store.model_folders(data))
            assert sorted(p.name for p in (data / "models").iterdir()) == folders
            assert len(store.model_folders(data)) == 5
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(disk)], check=True)


_READ_AND_PUBLISH = """
import resource, sys, pipeline
from pathlib import Path
from webapp import library, model_folders, store
data, sid, photo, device, limit = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), sys.argv[4], sys.argv[5]
result = None
if limit:  # make the model before the kernel refuses every write
    out = Path(__import__("tempfile").mkdtemp()) / "m.glb"
    result = pipeline.reconstruct([photo], out, pipeline.Options(quality="fast", texture_size=256), device=device)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))
print(library.get_model(sid, data).name)
print(len(library.list_models(data)))
before = sorted(p.name for p in (data / "models").iterdir())
try:
    if result is None:
        out = Path(__import__("tempfile").mkdtemp()) / "m.glb"
        result = pipeline.reconstruct([photo], out, pipeline.Options(quality="fast", texture_size=256), device=device)
    model_folders.publish(result, "New", [photo], data_dir=data)
    print("published")
except library.LibraryError as error:
    print(error)
after = sorted(p.name for p in (data / "models").iterdir())
print([n for n in after if n not in before] + ([] if len(library.list_models(data)) == 5 else ["row"]))
"""


# ---------------------------------------------------------------- one server per data folder


def test_a_second_server_on_the_same_data_folder_is_refused(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    with running_server(data) as base:
        marker = (data / "server.json").read_text()
        port = free_port()
        env = {**os.environ, "PLINTH_DATA_DIR": str(data)}
        second = subprocess.run([sys.executable, "-m", "webapp", "serve", "--host", "127.0.0.1", "--port", str(port)],
                                cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert second.returncode == 1
        pid = json.loads(marker)["pid"]
        assert second.stderr.startswith(f"plinth: Another Plinth server (pid {pid}, {base}) is already using "
                                        f"the data folder {data}.") and second.stderr.count("\n") == 1
        assert "PLINTH_DATA_DIR" in second.stderr and "Traceback" not in second.stderr
        assert (data / "server.json").read_text() == marker  # never overwritten, never deleted
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
    # once the first one stops, the folder is free again
    with running_server(data) as base:
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200


# ---------------------------------------------------------------- doctor


def _doctor(data: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PLINTH_DATA_DIR": str(data)}
    return subprocess.run([sys.executable, "-m", "webapp", "doctor", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_doctor_reports_then_repairs_each_problem(five, tmp_path):
    data, ids = _copy(five, tmp_path)
    assert _doctor(data).returncode == 0 and "Everything is in order" in _doctor(data).stdout
    folders = {library.get_model(sid, data).folder: sid for sid in ids}
    lost_row, lost_glb = ids[0], ids[1]
    with sqlite3.connect(store.db_path(data)) as con:
        con.execute("DELETE FROM models WHERE share_id = ?", (lost_row,))
        con.execute("INSERT INTO jobs (id, status, created, name, options, photo_dir) VALUES ('keepjob1', 'done', 0, "
                    "'x', '{}', '')")
    con.close()
    glb_less = library.get_model(lost_glb, data).folder
    (glb_less / "model.glb").unlink()
    stale = [data / "models" / ".incoming-x", data / "staging" / "job1", data / "jobs" / "gonejob1",
             data / "jobs" / "keepjob1"]
    for path in stale:
        (path / "photos").mkdir(parents=True)
        (path / "photos" / "000.jpg").write_bytes(b"gps")
    tmp_file = data / "models" / next(iter(folders)).name / ".report.json.abc.tmp"
    tmp_file.write_text("{")
    for path in (*stale, tmp_file):
        _age(path)
    unknown = data / "models" / "not-a-model"
    unknown.mkdir()

    report = _doctor(data)
    assert report.returncode == 1, report.stdout
    out = report.stdout
    for line in ("Model folders without a database row: 1", "Models whose folder or model.glb is missing: 1",
                 "Stale temporary folders (.incoming-, .deleted-, staging/): 2",
                 "Job folders whose job record is gone (original uploads): 1", "Leftover *.tmp files: 1",
                 "not a complete model and have no database row: 1 (not-a-model)"):
        assert line in out, out
    assert lost_glb in out and "Traceback" not in report.stderr
    assert all(p.exists() for p in (*stale, tmp_file, unknown))  # a report changes nothing
    assert library.get_model(lost_row, data) is None

    held = lock.acquire(data)  # as a running server holds it: repairs are refused
    try:
        busy = _doctor(data, "--repair")
        assert busy.returncode == 1 and busy.stdout.startswith("Another Plinth server"), busy.stdout
        assert library.get_model(lost_row, data) is None and all(p.exists() for p in stale)
    finally:
        held.release()

    fixed = _doctor(data, "--repair")
    assert fixed.returncode == 1  # the unknown folder is kept and still reported
    assert "registered again" in fixed.stdout and "removed from the library" in fixed.stdout
    assert library.get_model(lost_row, data) is not None and library.get_model(lost_glb, data) is None
    assert not any(p.exists() for p in stale[:3]) and stale[3].exists() and not tmp_file.exists()
    assert unknown.exists()
    unknown.rmdir()
    final = _doctor(data)
    assert final.returncode == 0 and "Everything is in order" in final.stdout, final.stdout
    assert "Kept in lost+found/: 1 folder" in final.stdout
    assert [p.name for p in (data / "lost+found").iterdir()] == [glb_less.name]  # its photos kept, not served
    assert (data / "lost+found" / glb_less.name / "photos" / "000.jpg").is_file()

    # a damaged database: reported (untouched) without --repair, rebuilt with it
    db = store.db_path(data)
    _damage(db, "garbage in one page")
    damaged = db.read_bytes()
    assert _doctor(data).returncode == 1 and db.read_bytes() == damaged
    repaired = _doctor(data, "--repair")
    assert repaired.returncode == 0 and "rebuilt from 4 model folders" in repaired.stdout, repaired.stdout
    assert sorted(m.share_id for m in library.list_models(data)) == sorted(ids[:1] + ids[2:])


# ---------------------------------------------------------------- backup and restore


def _plinth(data: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PLINTH_DATA_DIR": str(data)}
    return subprocess.run([sys.executable, "-m", "webapp", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)


def test_backup_while_serving_and_restore_round_trip(chair_model, chair_photo, tmp_path):
    data = tmp_path / "data"
    ids = [model_folders.add_model(chair_model, f"Lamp {i}", [chair_photo], data_dir=data).share_id for i in range(2)]
    archive = tmp_path / "library.tar"
    with running_server(data) as base:
        made_at = _plinth(data, "backup", str(archive))
        assert made_at.returncode == 0 and made_at.stdout.strip() == f"Backed up 2 models to {archive}"
        _serves_all(base, ids, data)
    restored = tmp_path / "restored"
    run = _plinth(restored, "restore", str(archive))
    assert run.returncode == 0 and run.stdout.strip() == f"Restored 2 models into {restored}", run.stderr
    for sid in ids:
        a, b = library.get_model(sid, data), library.get_model(sid, restored)
        assert b is not None and (b.name, b.dimensions_m, b.folder.name) == (a.name, a.dimensions_m, a.folder.name)
        for path in sorted(a.folder.rglob("*")):
            if path.is_file():
                assert (b.folder / path.relative_to(a.folder)).read_bytes() == path.read_bytes(), path
    with running_server(restored) as base:
        _serves_all(base, ids, restored)
    # a non-empty folder is refused; --force moves it aside, deleting nothing
    again = _plinth(restored, "restore", str(archive))
    assert again.returncode == 2 and again.stderr.startswith("plinth: The data folder") and "--force" in again.stderr
    assert again.stderr.count("\n") == 1
    forced = _plinth(restored, "restore", str(archive), "--force")
    assert forced.returncode == 0, forced.stderr
    aside = list(tmp_path.glob("restored.before-restore-*"))
    assert len(aside) == 1 and (aside[0] / store.DB_NAME).is_file() and len(list((aside[0] / "models").iterdir())) == 2
    not_tar = tmp_path / "photo.tar"
    not_tar.write_bytes(chair_photo.read_bytes())
    bad = _plinth(tmp_path / "empty", "restore", str(not_tar))
    assert bad.returncode == 2 and "is not a Plinth backup" in bad.stderr and bad.stderr.count("\n") == 1


# ---------------------------------------------------------------- privacy


def _jpeg_with_gps(chair_photo: Path) -> bytes:
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation
    exif[0x010F], exif[0x0110], exif[0x013B] = "PhoneMaker", "P1", "Owner Name"
    sub = exif.get_ifd(0x8769)
    sub[0x920A], sub[0xA405], sub[0x927C] = (43, 10), 26, b"maker-note-serial-123"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", (51.0, 30.0, 12.5), "W", (0.0, 7.0, 39.0)
    buf = io.BytesIO()
    Image.open(chair_photo).save(buf, format="JPEG", quality=90, exif=exif, comment=b"at home")
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "progressive JPEG", "WEBP", "HEIF", "PNG"])
def test_strip_location_keeps_pixels_orientation_and_focal_length(chair_photo, fmt):
    import numpy as np
    import pillow_heif
    from PIL import Image

    pillow_heif.register_heif_opener()
    base = Image.open(io.BytesIO(_jpeg_with_gps(chair_photo)))
    exif = base.getexif()
    buf = io.BytesIO()
    kind = fmt.split()[-1]
    extra = {"progressive": True} if fmt.startswith("progressive") else {"lossless": True} if kind == "WEBP" else {}
    base.convert("RGB").save(buf, format=kind, exif=exif.tobytes(), **extra)
    raw = buf.getvalue() + (b"\xff\xd8\xff\xe1trailing preview with GPS" if kind == "JPEG" else b"")
    assert Image.open(io.BytesIO(raw)).getexif().get_ifd(0x8825)  # the input does carry GPS
    clean = sanitize.strip_location(raw)
    a, b = Image.open(io.BytesIO(raw)), Image.open(io.BytesIO(clean))
    assert np.array_equal(np.asarray(a.convert("RGB")), np.asarray(b.convert("RGB")))  # same pixels
    got = b.getexif()
    assert not got.get_ifd(0x8825)  # no GPS
    assert b"51" not in json.dumps({str(k): str(v) for k, v in got.get_ifd(0x8825).items()}).encode()
    if kind in ("JPEG", "WEBP"):
        assert got.get(0x0112) == 6 and got.get(0x010F) == "PhoneMaker" and got.get(0x0110) == "P1"
        assert got.get_ifd(0x8769).get(0xA405) == 26 and tuple(got.get_ifd(0x8769).get(0x920A)) == (43, 10)
        assert 0x013B not in got and b"maker-note" not in clean and b"at home" not in clean
        assert b"trailing preview" not in clean
    if kind == "HEIF":  # blanked in place: same length, GPS gone, the rest as it was
        assert len(clean) == len(raw) and got.get(0x010F) == "PhoneMaker"
    if kind == "PNG":
        assert b"eXIf" not in clean


def test_deleting_a_model_deletes_its_job_record_and_uploads(chair_model, chair_photo, tmp_path):
    data = tmp_path / "data"
    gps_photo = _jpeg_with_gps(chair_photo)
    job_id = jobs.submit([("front.jpg", gps_photo)], "Chair", pipeline.Options(), data_dir=data)
    job_dir = data / "jobs" / job_id
    uploads = jobs.get_job(job_id, data).photos
    model = model_folders.add_model(chair_model, "Chair", uploads, data_dir=data, job_id=job_id)
    keep = model_folders.add_model(chair_model, "Other", [chair_photo], data_dir=data)
    from PIL import Image

    kept_photo = next((model.folder / "photos").iterdir())
    assert not Image.open(kept_photo).getexif().get_ifd(0x8825)  # the model's copy has no GPS either
    assert Image.open(kept_photo).getexif().get(0x0112) == 6
    assert model_folders.delete_model(model.share_id, data)
    assert jobs.get_job(job_id, data) is None and not job_dir.exists() and not model.folder.exists()
    assert not list((data / "models").glob(".deleted-*"))
    # nothing of it can come back: no manifest is left for a rebuild to find
    (store.db_path(data)).unlink()
    assert store.open_library(data, force=True) == [
        "The library database was missing; a new one was made from 1 model folder (every share link is kept)."]
    assert [m.share_id for m in library.list_models(data)] == [keep.share_id]
    assert doctor.check(data)[1] == 0
    # a worker withdrawing a model whose job failed keeps that job's record and photos for Try again
    other_job = jobs.submit([("front.jpg", gps_photo)], "Again", pipeline.Options(), data_dir=data)
    withdrawn = model_folders.add_model(chair_model, "Again", [chair_photo], data_dir=data, job_id=other_job)
    assert model_folders.delete_model(withdrawn.share_id, data, with_job=False)
    assert jobs.get_job(other_job, data).photos and library.get_model(withdrawn.share_id, data) is None
