"""Job safety with real processes and a real SQLite database (issue 12, items 2-5).

A job's child dies with a `kill -9`-ed server; a restarted server's verdict on old jobs is final;
Stop during pose finding is quick and leaves no native stack trace in the log; the per-job time
limit; submission limits; a full disk (a real small tmpfs); photo retention and the purge."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

import pipeline
from tests.polling import wait_for
from tests.test_webapp_http import running_server
from webapp import job_photos, job_runs, jobs, library, limits, model_folders, store, workers
from webapp.jobs import JobRefused, JobStatus

ROOT = Path(__file__).resolve().parent.parent
FAST = pipeline.Options(size=pipeline.KnownSize("height", 0.85), quality="fast", texture_size=512)
#: What a native crash handler or a Python traceback leaves in a log.
NATIVE_TRACE = re.compile(r"^\*\*\* |SIGTERM|Traceback|@ +0x", re.M)


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper that may never come counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _ppid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _pid_of(data: Path, job_id: str) -> int:
    with store.connect(data) as con:
        return con.execute("SELECT pid FROM jobs WHERE id=?", (job_id,)).fetchone()[0]


def _finished(data: Path, job_id: str, timeout: float) -> jobs.Job:
    return wait_for(lambda: (j := jobs.get_job(job_id, data)).status.finished and j, timeout, f"job {job_id} to finish")


@pytest.fixture(scope="module")
def photo(bench) -> bytes:
    return (bench / "single" / "chair" / "image.jpg").read_bytes()


@pytest.fixture
def worker_pool(monkeypatch, device):
    """In-process job workers (real child processes) on `device`; stopped afterwards."""
    monkeypatch.setenv("PLINTH_DEVICES", device)
    yield workers.start_workers
    workers.stop_workers()


def _start_child(data: Path, job_id: str, device: str, log: Path) -> subprocess.Popen:
    """The child exactly as a worker starts it, but owned by this test (no parent-pid check)."""
    env = {k: v for k, v in os.environ.items() if k != "PLINTH_JOB_PARENT_PID"}
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "webapp.workers", str(data), job_id, device],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


# ---------------------------------------------------------------- the child and its server


@pytest.mark.slow
def test_a_jobs_child_dies_with_a_killed_server(tmp_path, photo, device):
    with running_server(tmp_path, device):
        job_id = jobs.submit([("front.jpg", photo)], "Chair", FAST, data_dir=tmp_path)
        pid = wait_for(lambda: _pid_of(tmp_path, job_id), 30, "the job's child to start")
        server_pid = _ppid(pid)
        assert _alive(pid) and server_pid != os.getpid()
        os.kill(server_pid, signal.SIGKILL)
        wait_for(lambda: not _alive(pid), 5, f"child {pid} to die with its server {server_pid}")
    # the next start gives its verdict, and nothing changes it afterwards
    assert job_runs.recover(tmp_path) == 1
    time.sleep(1.0)
    job = jobs.get_job(job_id, tmp_path)
    assert job.status is JobStatus.FAILED and job.error == jobs.RESTART_MESSAGE and job.photos


def test_a_restarted_servers_verdict_is_final(tmp_path, photo, device):
    """A child the restart could not stop (no pid on record) finds its job failed: it stops and
    writes nothing; before, it wrote "cancelled" over "failed, server restarted"."""
    job_id = jobs.submit([("front.jpg", photo)], "Chair", FAST, data_dir=tmp_path)
    assert job_runs.claim(tmp_path, device) == job_id
    child = _start_child(tmp_path, job_id, device, tmp_path / "child.log")
    try:
        wait_for(lambda: jobs.get_job(job_id, tmp_path).stage, 60, "the child's first progress")
        assert job_runs.recover(tmp_path) == 1
        assert child.wait(60) == 0
    finally:
        child.kill()
    job = jobs.get_job(job_id, tmp_path)
    assert (job.status, job.error) == (JobStatus.FAILED, jobs.RESTART_MESSAGE)
    assert job.photos and library.list_models(tmp_path) == []
    assert not (tmp_path / "staging" / job_id).exists()
    assert not NATIVE_TRACE.search((tmp_path / "child.log").read_text(errors="replace"))


def test_recover_stops_the_old_servers_child(tmp_path, photo, device):
    job_id = jobs.submit([("front.jpg", photo)], "Chair", FAST, data_dir=tmp_path)
    assert job_runs.claim(tmp_path, device) == job_id
    child = _start_child(tmp_path, job_id, device, tmp_path / "child.log")
    try:
        jobs.update(tmp_path, job_id, pid=child.pid)
        wait_for(lambda: jobs.get_job(job_id, tmp_path).stage, 60, "the child's first progress")
        assert job_runs.recover(tmp_path) == 1
        assert child.wait(5) == -signal.SIGKILL
    finally:
        child.kill()
    assert jobs.get_job(job_id, tmp_path).status is JobStatus.FAILED


def test_finish_keeps_the_first_verdict(tmp_path):
    job_id = jobs.submit([("a.jpg", b"\xff\xd8 x")], "Lamp", pipeline.Options(), data_dir=tmp_path)
    assert not job_runs.finish(tmp_path, job_id, JobStatus.FAILED, error="x")  # queued: not running yet
    job_runs.claim(tmp_path, None)
    assert job_runs.finish(tmp_path, job_id, JobStatus.FAILED, error=jobs.RESTART_MESSAGE)
    assert not job_runs.finish(tmp_path, job_id, JobStatus.CANCELLED, message="Stopped")
    assert job_runs.record_progress(tmp_path, job_id, "mesh", 0.5, "late") is JobStatus.FAILED
    job = jobs.get_job(job_id, tmp_path)
    assert (job.status, job.error, job.stage) == (JobStatus.FAILED, jobs.RESTART_MESSAGE, "")
    assert job_runs.record_progress(tmp_path, "no-such-job-id", "mesh", 0.5, "") is None


# ---------------------------------------------------------------- stop and the time limit


@pytest.mark.slow
def test_stop_during_pose_finding_is_quick_and_leaves_no_native_trace(tmp_path, bench, device):
    """Pose finding runs native code (pycolmap) for seconds without a progress report: the
    worker kills the child after CANCEL_GRACE_S with SIGKILL (SIGTERM made glog print a stack)."""
    images = sorted((bench / "multiview" / "chair" / "images").glob("*.jpg"))[::3][:12]  # ~11 s in native code
    files = [(p.name, p.read_bytes()) for p in images]
    with running_server(tmp_path, device):
        job_id = jobs.submit(files, "Chair", pipeline.Options(quality="fast"), data_dir=tmp_path)
        wait_for(lambda: jobs.get_job(job_id, tmp_path).stage == "poses", 90, "pose finding")
        pid = _pid_of(tmp_path, job_id)
        pressed = time.monotonic()
        jobs.cancel(job_id, tmp_path)
        job = _finished(tmp_path, job_id, 30)
        took = time.monotonic() - pressed
        wait_for(lambda: not _alive(pid), 5, "the child to be gone")
    assert job.status is JobStatus.CANCELLED, job.error
    assert took < workers.CANCEL_GRACE_S + 2.0, f"Stop took {took:.1f} s"
    assert len(job.photos) == 12 and not (tmp_path / "staging" / job_id).exists()
    log = (tmp_path / "server.log").read_text(errors="replace")
    assert not NATIVE_TRACE.search(log), NATIVE_TRACE.search(log).group(0)


def test_time_limit_by_photos_and_quality(monkeypatch):
    monkeypatch.delenv("PLINTH_JOB_TIME_LIMIT_S", raising=False)
    assert limits.job_time_limit_s(1, "fast") == limits.MIN_JOB_TIME_LIMIT_S  # at least 10 minutes
    # 36 balanced photos took 160-230 s on a 2-core CPU: the limit is about five times that
    assert 900 <= limits.job_time_limit_s(36, "balanced") <= 1800
    assert limits.job_time_limit_s(100, "high") > limits.job_time_limit_s(100, "balanced") \
        > limits.job_time_limit_s(100, "fast") > limits.job_time_limit_s(40, "fast")
    monkeypatch.setenv("PLINTH_JOB_TIME_LIMIT_S", "2.5")
    assert limits.job_time_limit_s(100, "high") == 2.5


@pytest.mark.slow
def test_a_job_over_its_time_limit_fails_plainly(tmp_path, photo, chair_model, worker_pool, monkeypatch):
    earlier = model_folders.add_model(chair_model, "Earlier", [], data_dir=tmp_path)
    before = {p.name: p.read_bytes() for p in earlier.folder.iterdir() if p.is_file()}
    monkeypatch.setenv("PLINTH_JOB_TIME_LIMIT_S", "2")
    job_id = jobs.submit([("front.jpg", photo)], "Slow chair", FAST, data_dir=tmp_path)
    worker_pool(tmp_path)
    pid = wait_for(lambda: _pid_of(tmp_path, job_id), 30, "the child to start")
    job = _finished(tmp_path, job_id, 30)
    assert job.status is JobStatus.FAILED
    assert job.error == workers.TIME_LIMIT_MESSAGE.format(limit="2-second", photos="1 photo")
    assert "2-second limit for 1 photo" in job.error and job.photos  # the limit actually used; photos kept
    wait_for(lambda: not _alive(pid), 5, "the child to be gone")
    assert not (tmp_path / "staging" / job_id).exists()
    assert [m.share_id for m in library.list_models(tmp_path)] == [earlier.share_id]
    assert {p.name: p.read_bytes() for p in earlier.folder.iterdir() if p.is_file()} == before
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == [earlier.folder.name]


# ---------------------------------------------------------------- submission limits


def _nothing_written(data: Path) -> None:
    with store.connect(data) as con:
        assert con.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 0
    assert not (data / "jobs").exists() or not any((data / "jobs").iterdir())


@pytest.mark.parametrize("limit, value, files, words", [
    (None, None, [], "at least one photo"),
    ("MAX_JOB_PHOTOS", 3, [("p.jpg", b"x")] * 4, "4 photos is more than the 3"),
    ("MAX_FILE_MB", 1.0, [("a.jpg", b"x"), ("big.jpg", b"x" * (2 * 1024 * 1024))], "One photo is 2 MB"),
    ("MAX_JOB_MB", 2.0, [("a.jpg", b"x" * 1024 * 1024)] * 3, "add up to 3 MB"),
])
def test_submission_limits_refuse_and_write_nothing(tmp_path, monkeypatch, limit, value, files, words):
    if limit:
        monkeypatch.setattr(limits, limit, value)
    with pytest.raises(JobRefused) as refused:
        jobs.submit(files, "Lamp", pipeline.Options(), data_dir=tmp_path)
    assert words in refused.value.message and "\n" not in refused.value.message
    assert str(refused.value) == refused.value.message
    _nothing_written(tmp_path)


def test_submission_needs_free_space_beyond_the_upload(tmp_path, monkeypatch):
    import shutil

    free_mb = shutil.disk_usage(tmp_path).free / 1024 / 1024
    monkeypatch.setattr(limits, "MIN_FREE_MB", free_mb - 0.5)  # the 1 MB upload would cross it
    with pytest.raises(JobRefused, match="disk is almost full"):
        jobs.submit([("a.jpg", b"x" * 1024 * 1024)], "Lamp", pipeline.Options(), data_dir=tmp_path)
    _nothing_written(tmp_path)
    jobs.submit([("a.jpg", b"x" * 1024)], "Lamp", pipeline.Options(), data_dir=tmp_path)  # 1 kB fits


def _jpeg_with_gps() -> bytes:
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: kept, the pipeline needs it
    exif.get_ifd(0x8825)[2] = (51.0, 30.0, 0.0)  # GPSLatitude
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 40, 40)).save(buf, format="JPEG", exif=exif)
    return buf.getvalue()


def test_submitted_photos_lose_their_location(tmp_path):
    from PIL import Image

    raw = _jpeg_with_gps()
    assert Image.open(io.BytesIO(raw)).getexif().get_ifd(0x8825)
    job = jobs.get_job(jobs.submit([("a.jpg", raw)], "Lamp", pipeline.Options(), data_dir=tmp_path), tmp_path)
    stored = Image.open(job.photos[0])
    assert not stored.getexif().get_ifd(0x8825) and stored.getexif()[0x0112] == 6
    assert stored.convert("RGB").tobytes() == Image.open(io.BytesIO(raw)).convert("RGB").tobytes()


# ---------------------------------------------------------------- retention and the purge


def _age(path: Path, seconds: float) -> None:
    old = time.time() - seconds
    os.utime(path, (old, old))


def test_purge_deletes_photos_no_job_needs(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "KEEP_FAILED_DAYS", 7.0)
    files = [("a.jpg", b"\xff\xd8 x")]
    ids = {k: jobs.submit(files, k, pipeline.Options(), data_dir=tmp_path)
           for k in ("done", "old_failed", "new_failed", "old_cancelled", "queued")}
    for key in ("done", "old_failed", "new_failed", "old_cancelled"):
        with store.connect(tmp_path) as con:  # run each in turn, as a worker would
            con.execute("UPDATE jobs SET status='running' WHERE id=?", (ids[key],))
    day = 86400.0
    job_runs.finish(tmp_path, ids["done"], JobStatus.DONE)
    job_runs.finish(tmp_path, ids["old_failed"], JobStatus.FAILED, error="x", finished=time.time() - 8 * day)
    job_runs.finish(tmp_path, ids["new_failed"], JobStatus.FAILED, error="x", finished=time.time() - 6 * day)
    job_runs.finish(tmp_path, ids["old_cancelled"], JobStatus.CANCELLED, finished=time.time() - 30 * day)
    stray_old, stray_new = tmp_path / "jobs" / "rowGoneLongAgo", tmp_path / "jobs" / "beingSubmittedNow"
    for stray in (stray_old, stray_new):
        (stray / "photos").mkdir(parents=True)
    _age(stray_old, 2 * 3600)
    assert job_photos.purge(tmp_path) == 4
    assert not stray_old.exists() and stray_new.exists()
    kept = {k: jobs.get_job(i, tmp_path) for k, i in ids.items()}
    assert {k for k, j in kept.items() if j.photos} == {"new_failed", "queued"}
    assert {k for k, j in kept.items() if j.photos_deleted} == {"done", "old_failed", "old_cancelled"}
    assert kept["old_failed"].error == "x"  # the row stays as it was
    with pytest.raises(JobRefused) as refused:
        jobs.retry(ids["old_failed"], tmp_path)
    assert refused.value.message == jobs.PHOTOS_DELETED_MESSAGE.format(days="7")
    assert jobs.get_job(jobs.retry(ids["new_failed"], tmp_path), tmp_path).photos
    assert jobs.retry("noSuchJobAtAll", tmp_path) is None
    # two days later the newer failure goes too, and so does the folder that never got its row
    assert job_photos.purge(tmp_path, now=time.time() + 2 * day) == 2
    assert jobs.get_job(ids["new_failed"], tmp_path).photos_deleted and not stray_new.exists()


@pytest.mark.slow
def test_a_done_job_keeps_no_photos_and_the_server_purges_at_start(tmp_path, photo, worker_pool):
    stray = tmp_path / "jobs" / "leftByAnOldSession" / "photos"
    stray.mkdir(parents=True)
    (stray / "000.jpg").write_bytes(photo)
    _age(stray.parent, 2 * 3600)
    job_id = jobs.submit([("front.jpg", photo)], "Chair", FAST, data_dir=tmp_path)
    worker_pool(tmp_path)
    assert not stray.parent.exists()  # purged when the workers started
    job = _finished(tmp_path, job_id, 120)
    assert job.status is JobStatus.DONE, job.error
    # The verdict is written first, then the uploads go (a moment later on a busy machine).
    wait_for(lambda: jobs.get_job(job_id, tmp_path).photos_deleted, 10, "the done job's photos to go")
    assert not (tmp_path / "jobs" / job_id).exists()
    model = library.get_model(job.share_id, tmp_path)
    assert model.file("model.glb") is not None and len(list((model.folder / "photos").iterdir())) == 1


# ---------------------------------------------------------------- a full disk


@contextmanager
def small_disk(path: Path, kib: int):
    """A real file system of `kib` KiB at `path` (tmpfs; this suite runs as root where it may mount)."""
    path.mkdir(parents=True, exist_ok=True)
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(path)],
                           capture_output=True, text=True)
    # No quiet way round: a disk that really fills is what these tests are about (CI runs as root).
    assert mount.returncode == 0, f"mounting a {kib} KiB tmpfs was refused: {mount.stderr.strip()}"
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)


def _leftovers(data: Path) -> list[str]:
    staging = sorted(p.name for p in (data / "staging").iterdir()) if (data / "staging").is_dir() else []
    incoming = sorted(p.name for p in (data / "models").glob(".incoming-*")) if (data / "models").is_dir() else []
    return staging + incoming


@pytest.mark.slow
def test_a_full_disk_while_making_fails_plainly_and_keeps_earlier_models(tmp_path, photo, chair_model, worker_pool,
                                                                       monkeypatch):
    """The whole data folder on a disk where the photos fit but the new model does not."""
    monkeypatch.setattr(limits, "MIN_FREE_MB", 0.0)  # let the upload in: the job is what meets the full disk
    with small_disk(tmp_path / "disk", 1536) as data:
        url = model_folders.publish(chair_model, "Earlier", [], data_dir=data)
        earlier = library.get_model(url.rsplit("/", 1)[1], data)
        before = earlier.file("model.glb").read_bytes()
        job_id = jobs.submit([("front.jpg", photo)], "Chair", FAST, data_dir=data)
        worker_pool(data)
        job = _finished(data, job_id, 120)
        assert (job.status, job.error) == (JobStatus.FAILED, workers.DISK_FULL_MESSAGE)
        assert _leftovers(data) == [] and job.photos  # kept for Try again
        assert [m.share_id for m in library.list_models(data)] == [earlier.share_id]
        assert earlier.file("model.glb").read_bytes() == before
        workers.stop_workers()


@pytest.mark.slow
def test_a_full_disk_while_publishing_leaves_no_partial_model(tmp_path, photo, worker_pool):
    """data/models on its own small disk: the model is made, and copying it into the library fails."""
    with small_disk(tmp_path / "models", 256):
        job_id = jobs.submit([("front.jpg", photo)], "Chair", FAST, data_dir=tmp_path)
        worker_pool(tmp_path)
        job = _finished(tmp_path, job_id, 120)
        assert (job.status, job.error) == (JobStatus.FAILED, workers.DISK_FULL_MESSAGE)
        assert job.stage in ("export", "report")  # it got as far as publishing
        assert _leftovers(tmp_path) == [] and list((tmp_path / "models").iterdir()) == []
        assert library.list_models(tmp_path) == [] and job.photos
        workers.stop_workers()
