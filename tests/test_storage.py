"""Shared storage (webapp/storage): both backends' functions, then the real flow across machines.

The backends: a folder every machine mounts (FolderStorage, in tmp) and S3 (S3Storage against
moto's S3 server running as its own process: tests/services.s3_server). The flow: photos taken in
data folder A, the job's child process run with data folder B, and a real `plinth serve` on an
empty data folder C serving the share page, AR page and every file, through the storage only
(the three folders share the storage and one SQLite database, PLINTH_DATABASE_URL=sqlite:///...).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from PIL import Image

import pipeline
from tests.services import free_port, s3_server, wait_port
from tests.test_webapp_http import ROOT, running_server
from webapp import adjust, doctor, job_photos, job_runs, jobs, library, model_folders, shop, storage, store, trash
from webapp.jobs import JobStatus

FAST = pipeline.Options(size=pipeline.KnownSize("height", 0.85), quality="fast", texture_size=512)
_ENV = ("PLINTH_STORAGE", "PLINTH_S3_ENDPOINT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    with s3_server(tmp_path_factory.mktemp("s3")) as server:
        yield server


@pytest.fixture(params=["folder", "s3"])
def shared(request, tmp_path, monkeypatch, s3) -> dict[str, str]:
    """This process configured for one backend (a fresh prefix or folder); returns its environment."""
    for name in (*_ENV, "PLINTH_QUEUE", "PLINTH_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    if request.param == "s3":
        env = s3.env(prefix=f"t/{tmp_path.name}")
    else:
        (tmp_path / "mounted").mkdir()
        env = {"PLINTH_STORAGE": f"file://{tmp_path / 'mounted'}"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def _tree(root: Path, files: dict[str, bytes]) -> None:
    for rel, content in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(content)


# ---------------------------------------------------------------- the functions, both backends


def test_a_pushed_folder_is_pulled_whole_into_another_data_folder(shared, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _tree(a, {"models/f1/model.glb": b"glb" * 1000, "models/f1/photos/000.jpg": b"jpg",
              "models/f1/manifest.json": b"{}", "models/f1/.adjust.lock": b"", "models/f1/.x.tmp": b"half"})
    storage.push(a, "models/f1")
    assert storage.exists(b, "models/f1") and storage.exists(b, "models/f1/model.glb")
    assert storage.pull(b, "models/f1") is True
    got = sorted(p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file())
    # hidden files (locks, temporary files) never leave the machine
    assert got == ["models/f1/manifest.json", "models/f1/model.glb", "models/f1/photos/000.jpg"]
    assert (b / "models/f1/model.glb").read_bytes() == b"glb" * 1000
    stream = storage.open_stream(b, "models/f1/model.glb")
    assert stream.size == 3000 and b"".join(stream.chunks) == b"glb" * 1000
    assert storage.children(b, "models") == ["f1"]
    # into a folder that is there already: merged, each file replaced, nothing of the download left over
    (a / "models/f1/model.glb").write_bytes(b"changed")
    storage.push(a, "models/f1/model.glb")
    (b / "models/f1/local-only.txt").write_bytes(b"mine")
    assert storage.pull(b, "models/f1") and (b / "models/f1/model.glb").read_bytes() == b"changed"
    assert (b / "models/f1/local-only.txt").is_file() and sorted(p.name for p in (b / "models").iterdir()) == ["f1"]


def test_a_folders_manifest_is_stored_last(shared, tmp_path, monkeypatch):
    """A reader that finds the manifest finds every other file of the folder too."""
    a = tmp_path / "a"
    _tree(a, {"models/f2/manifest.json": b"{}", "models/f2/model.glb": b"g", "models/f2/zz.png": b"p"})
    real = storage.backend()
    order: list[str] = []
    put = real.put
    monkeypatch.setattr(type(real), "put", lambda self, key, local: (order.append(key), put(key, local))[1])
    storage.push(a, "models/f2")
    assert order[-1] == "models/f2/manifest.json" and len(order) == 3


def test_a_file_is_replaced_and_removed(shared, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _tree(a, {"shop/s1/logo.png": b"old"})
    storage.push(a, "shop/s1/logo.png")
    (a / "shop/s1/logo.png").write_bytes(b"newer")
    storage.push(a, "shop/s1/logo.png")
    assert storage.pull(b, "shop/s1/logo.png") and (b / "shop/s1/logo.png").read_bytes() == b"newer"
    storage.remove(a, "shop/s1/logo.png")
    assert not storage.exists(a, "shop/s1/logo.png")
    assert storage.pull(tmp_path / "c", "shop/s1/logo.png") is False


def test_a_big_file_arrives_whole(shared, tmp_path):
    """Above 8 MiB boto3 uploads in parts (S3's multipart upload); the object appears only when complete."""
    a, b = tmp_path / "a", tmp_path / "b"
    content = os.urandom(9 * 1024 * 1024 + 123)
    _tree(a, {"models/big/model.glb": content})
    storage.push(a, "models/big")
    assert storage.open_stream(b, "models/big/model.glb").size == len(content)
    assert storage.pull(b, "models/big/model.glb") and (b / "models/big/model.glb").read_bytes() == content


def test_missing_keys_and_removed_folders_read_as_absent(shared, tmp_path):
    a = tmp_path / "a"
    _tree(a, {"jobs/j1/photos/000/a.jpg": b"a", "jobs/j1/photos/001/b.jpg": b"b", "jobs/j10/photos/000/c.jpg": b"c"})
    storage.push(a, "jobs/j1/photos")
    storage.push(a, "jobs/j10/photos")
    storage.remove(a, "jobs/j1")  # a folder, not the keys that merely start with its name
    assert not storage.exists(a, "jobs/j1") and storage.exists(a, "jobs/j10")
    assert storage.children(a, "jobs") == ["j10"]
    empty = tmp_path / "empty"
    assert storage.pull(empty, "jobs/j1/photos") is False and not (empty / "jobs/j1").exists()
    assert storage.open_stream(empty, "jobs/j1/photos/000/a.jpg") is None
    assert storage.open_stream(empty, "no/such/file.glb") is None
    storage.remove(a, "no/such/folder")  # nothing there: nothing happens
    with pytest.raises(FileNotFoundError):
        storage.push(a, "not/written/here")
    with pytest.raises(ValueError):
        storage.push(a, "../escape")


def test_without_a_storage_everything_is_the_data_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("PLINTH_STORAGE", raising=False)
    _tree(tmp_path, {"models/f/model.glb": b"g"})
    storage.check()
    storage.push(tmp_path, "models/f")  # nothing to do
    storage.remove(tmp_path, "models/f")  # the caller deletes local files; this touches nothing
    assert (tmp_path / "models/f/model.glb").is_file()
    assert storage.pull(tmp_path, "models/f") is True and storage.pull(tmp_path, "models/g") is False
    assert storage.exists(tmp_path, "models/f/model.glb") and storage.children(tmp_path, "models") == ["f"]
    assert b"".join(storage.open_stream(tmp_path, "models/f/model.glb").chunks) == b"g"
    code = "import sys, webapp.storage, webapp.library, webapp.jobs, webapp.routes; print('boto3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={k: v for k, v in os.environ.items() if k != "PLINTH_STORAGE"})
    assert out.stdout.strip() == "False"  # the embedded default never imports boto3


def _problem(monkeypatch, **env) -> str:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(storage.StorageError) as caught:
        storage.check()
    return str(caught.value)


def test_a_missing_bucket_or_unreachable_endpoint_is_one_plain_line(s3, monkeypatch, tmp_path):
    for name, value in s3.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t-value")
    missing = _problem(monkeypatch, PLINTH_STORAGE="s3://no-such-bucket/p")
    assert "bucket 'no-such-bucket' does not exist" in missing and s3.endpoint in missing
    down = _problem(monkeypatch, PLINTH_STORAGE=f"s3://{s3.bucket}/p", PLINTH_S3_ENDPOINT="http://user:pw@127.0.0.1:9")
    assert "cannot be reached" in down and "127.0.0.1:9" in down and "pw" not in down
    for text in (missing, down):
        assert "\n" not in text and "s3cr3t" not in text and "Traceback" not in text
    # per call too, not only at start-up
    with pytest.raises(storage.StorageError, match="cannot be reached"):
        storage.pull(tmp_path, "models/x/model.glb")


def test_refused_credentials_are_one_plain_line(tmp_path, monkeypatch):
    """An S3 server that checks credentials (moto with authentication on) refuses unknown keys."""
    port = free_port()
    log = tmp_path / "s3-auth.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"}, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        wait_port(port, proc, "moto's S3 server", log)
        denied = _problem(monkeypatch, PLINTH_STORAGE="s3://shop-bucket/p", PLINTH_S3_ENDPOINT=f"http://127.0.0.1:{port}",
                          AWS_ACCESS_KEY_ID="AKIDNOBODY", AWS_SECRET_ACCESS_KEY="not-the-secret",
                          AWS_DEFAULT_REGION="us-east-1")
    finally:
        proc.terminate()
        proc.wait(10)
    assert "denied access" in denied and "AWS_ACCESS_KEY_ID" in denied and "not-the-secret" not in denied


def test_a_missing_storage_folder_or_bad_address_is_one_plain_line(tmp_path, monkeypatch):
    monkeypatch.delenv("PLINTH_S3_ENDPOINT", raising=False)
    assert "does not exist" in _problem(monkeypatch, PLINTH_STORAGE=f"file://{tmp_path / 'not-mounted'}")
    assert not (tmp_path / "not-mounted").exists()  # never made here: an unmounted share must not fill this disk
    assert "names another machine" in _problem(monkeypatch, PLINTH_STORAGE="file://nas/share")
    assert "not a storage address" in _problem(monkeypatch, PLINTH_STORAGE="ftp://nas/share")


def test_plinth_serve_refuses_a_missing_bucket_with_one_line(s3, tmp_path):
    env = {**os.environ, **s3.env(), "PLINTH_STORAGE": "s3://absent-bucket/x", "PLINTH_DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "webapp", "serve", "--port", "1"], check=False, cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("plinth: "), done.stderr
    assert "absent-bucket" in lines[0]


# ---------------------------------------------------------------- across machines


def _logo() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 20), (10, 120, 200)).save(buf, format="PNG")
    return buf.getvalue()


def _stored(data: Path, rel: str) -> bytes:
    stream = storage.open_stream(data, rel)
    assert stream is not None, f"{rel} is not in the storage"
    return b"".join(stream.chunks)


def test_a_model_made_on_one_machine_is_served_by_another_through_the_storage(shared, tmp_path, monkeypatch, bench):
    a, b, c = (tmp_path / n for n in "abc")
    for folder in (a, b, c):
        folder.mkdir()
    monkeypatch.setenv("PLINTH_DATABASE_URL", f"sqlite://{tmp_path / 'shared.sqlite3'}")
    env = {**shared, "PLINTH_DATABASE_URL": f"sqlite://{tmp_path / 'shared.sqlite3'}"}
    photo = (bench / "single" / "chair" / "image.jpg").read_bytes()

    # A: the web server that took the upload. The storage has the photos before the row exists.
    job_id = jobs.submit([("front.jpg", photo)], "Oak chair", FAST, data_dir=a)
    with store.connect(a) as con:
        assert con.execute("SELECT photo_dir FROM jobs WHERE id = ?", (job_id,)).fetchone()[0] == f"jobs/{job_id}/photos"
    assert storage.exists(a, f"jobs/{job_id}/photos") and jobs.get_job(job_id, b).photo_dir == b / "jobs" / job_id / "photos"
    shop.save(a, name="Oak & Co", website="https://oak.example")
    shop.set_logo(a, _logo())

    # B: a worker machine with nothing of the job: its child pulls the photos, pushes the model.
    assert job_runs.claim(a, "cpu") == job_id
    child_env = {k: v for k, v in os.environ.items() if k != "PLINTH_JOB_PARENT_PID"}
    run = subprocess.run([sys.executable, "-m", "webapp.workers", str(b), job_id, "cpu"], check=False,
                         cwd=ROOT, env=child_env, capture_output=True, text=True, timeout=300)
    job = jobs.get_job(job_id, c)
    assert run.returncode == 0 and job.status is JobStatus.DONE, (job.error, run.stderr[-2000:])
    assert job.verdict is not pipeline.Verdict.FAILED, job.verdict
    model = library.get_model(job.share_id, c)
    folder = model.rel
    assert json.loads(_stored(c, f"{folder}/manifest.json"))["share_id"] == job.share_id
    assert not storage.exists(c, f"jobs/{job_id}")  # published: the model keeps its own copy of the photos
    assert not (b / folder).exists()  # the worker keeps no copy: servers pull from the storage
    assert not (c / "models").exists()
    lines, _ = doctor.check(c)  # a model only the storage holds is not "missing" (--repair would drop its row)
    assert not [line for line in lines if "missing" in line], lines

    # C: a fresh web server with an empty data folder serves everything from the storage.
    with running_server(c, env=env) as url:
        page = httpx.get(f"{url}/ar/{job.share_id}", timeout=30)
        assert page.status_code == 200 and "Oak chair" in page.text and "Oak &amp; Co" in page.text
        for name in library.PUBLIC_FILES:
            got = httpx.get(f"{url}/models/{job.share_id}/{name}", timeout=30)
            assert got.status_code == 200 and got.content == _stored(c, f"{folder}/{name}"), name
        logo = httpx.get(f"{url}/assets/shop/{shop.DEFAULT}/logo.png", timeout=30)
        assert logo.status_code == 200 and logo.content == _stored(c, "shop/default/logo.png")
        old_glb = (c / folder / "model.glb").read_bytes()

        # Changed on A (which has no copy of the model): C serves the new files, not its cached ones.
        adjust.adjust(job.share_id, pipeline.Adjustment(quarter_turns=1), a)
        new_glb = _stored(c, f"{folder}/model.glb")
        assert new_glb != old_glb
        assert httpx.get(f"{url}/models/{job.share_id}/model.glb", timeout=30).content == new_glb
        library.rename_model(job.share_id, "Oak armchair", data_dir=c)
        assert json.loads(_stored(a, f"{folder}/manifest.json"))["name"] == "Oak armchair"

        # Deleted for good on A: gone from the storage, and C's share link says so.
        assert trash.move(job.share_id, a) and trash.delete_forever(job.share_id, a)
        assert not storage.exists(a, folder)
        assert httpx.get(f"{url}/ar/{job.share_id}", timeout=30).status_code == 404
    # C's cached copy (manifest included) never brings it back: a cache folder without a row is not a lost row.
    assert (c / folder / "manifest.json").is_file() and (c / folder / "model.glb").is_file()
    model_folders.remove_orphans(c)
    store.open_library(c, force=True)
    assert library.get_model(job.share_id, c, trashed=True) is None
    lines, left = doctor.check(c, stale_s=0)
    assert any("Cached copies of models deleted on another machine: 1" in line for line in lines) and left
    doctor.check(c, repair=True, stale_s=0)
    assert not (c / folder).exists()


def _jpeg(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(buf, format="JPEG")
    return buf.getvalue()


def test_kept_photos_are_tried_again_discarded_and_purged_from_another_machine(shared, tmp_path, monkeypatch):
    a, c = tmp_path / "a", tmp_path / "c"
    monkeypatch.setenv("PLINTH_DATABASE_URL", f"sqlite://{tmp_path / 'shared.sqlite3'}")
    first, second = _jpeg((200, 30, 30)), _jpeg((30, 200, 30))
    job_id = jobs.submit([("IMG_1.jpg", first), ("IMG_2.jpg", second)], "Vase", FAST, data_dir=a)
    assert job_runs.claim(a, None) == job_id and job_runs.finish(a, job_id, JobStatus.FAILED, error="Too blurry.")
    stored = _stored(a, f"jobs/{job_id}/photos/001/IMG_2.jpg")

    # C never had the photos: Try again pulls them from the storage, and stores the new job's.
    assert not (c / "jobs").exists()
    new_id = jobs.retry(job_id, data_dir=c, remove=[0])
    new = jobs.get_job(new_id, c)
    assert [name for _, name in new.named_photos] == ["IMG_2.jpg"] and new.photos[0].read_bytes() == stored
    assert _stored(a, f"jobs/{new_id}/photos/000/IMG_2.jpg") == stored

    # "Delete these photos" on C: gone from the storage too, not only from C's copy.
    assert job_photos.discard(job_id, c) and not storage.exists(a, f"jobs/{job_id}")

    # Past its retention, the new job's photos go, purged by A, which never had a copy of them.
    jobs.update(c, new_id, status=JobStatus.CANCELLED, finished=1.0)
    assert not (a / "jobs" / new_id).exists()
    assert job_photos.purge(a) == 1 and not storage.exists(a, f"jobs/{new_id}")
    assert job_photos.purge(c) == 1 and jobs.get_job(new_id, c).photos_deleted  # C's own copy goes by the same rule


def test_photos_that_cannot_be_stored_are_refused_and_leave_nothing(tmp_path, monkeypatch):
    (tmp_path / "mounted").mkdir()
    monkeypatch.setenv("PLINTH_STORAGE", f"file://{tmp_path / 'mounted'}")
    data = tmp_path / "data"
    jobs.submit([("IMG_1.jpg", _jpeg((1, 2, 3)))], "Vase", FAST, data_dir=data)  # works while mounted
    (tmp_path / "mounted").rename(tmp_path / "unmounted")
    with pytest.raises(jobs.JobRefused, match="could not be stored .*does not exist"):
        jobs.submit([("IMG_1.jpg", _jpeg((1, 2, 3)))], "Vase", FAST, data_dir=data)
    assert len(list((data / "jobs").iterdir())) == 1  # the refused job's folder went; no row either
    with store.connect(data) as con:
        assert con.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 1


def test_a_failed_jobs_kept_photos_show_on_a_web_server_that_never_had_them(shared, tmp_path, monkeypatch):
    a, c = tmp_path / "a", tmp_path / "c"
    monkeypatch.setenv("PLINTH_DATABASE_URL", f"sqlite://{tmp_path / 'shared.sqlite3'}")
    job_id = jobs.submit([("IMG_7.jpg", _jpeg((9, 9, 200)))], "Lamp", FAST, data_dir=a)
    assert job_runs.claim(a, None) == job_id and job_runs.finish(a, job_id, JobStatus.FAILED, error="Too dark.")
    assert [job.id for job in jobs.needing_attention(c)] == [job_id]
    job = jobs.get_job(job_id, c)
    assert not job.photos_deleted and [name for _, name in job.named_photos] == ["IMG_7.jpg"]
