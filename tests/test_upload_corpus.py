"""The upload half of the bad-input corpus: every bad job submission is one plain JobRefused line,
and nothing reaches the disk. (The raw-HTTP half, oversize PUTs through the page's own session,
is in tests/test_webapp_hardening.py; the CLI and library half in tests/test_input_corpus.py.)

Sizes far over the limits are checked through `jobs.check_upload`, the function `submit` and
`retry` use, so the test needs no gigabytes of memory; small kinds go through `submit` itself.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest

import pipeline
from webapp import jobs, limits

MB = 1024 * 1024
PHOTO = b"\xff\xd8 bytes the job queue does not decode"


@dataclass(frozen=True)
class UploadKind:
    name: str
    call: Callable[[Path], Any]
    words: str  # lower-case words the refusal must contain


def _submit(files, options=pipeline.Options()) -> Callable[[Path], Any]:
    return lambda data: jobs.submit(files, "Oak chair", options, data_dir=data)


def _sizes(sizes) -> Callable[[Path], Any]:
    return lambda data: jobs.check_upload(sizes, data)


def upload_kinds() -> list[UploadKind]:
    cap, count = int(limits.MAX_FILE_MB * MB), limits.MAX_JOB_PHOTOS
    kinds = [
        UploadKind("no files", _submit([]), "at least one photo"),
        UploadKind("no sizes", _sizes([]), "at least one photo"),
        UploadKind("files as one string", _submit("front.jpg"), "list of files"),
        UploadKind("files as bytes", _submit(PHOTO), "list of files"),
        UploadKind("files as None", _submit(None), "list of files"),
        UploadKind("a bare name", _submit(["front.jpg"]), "not a file upload"),
        UploadKind("name without bytes", _submit([("front.jpg",)]), "not a file upload"),
        UploadKind("three-part item", _submit([("front.jpg", PHOTO, "x")]), "not a file upload"),
        UploadKind("text content", _submit([("front.jpg", "not bytes")]), "not a file upload"),
        UploadKind("None content", _submit([("front.jpg", None)]), "not a file upload"),
        UploadKind("number as name", _submit([(7, PHOTO)]), "not a file upload"),
        UploadKind("second item broken", _submit([("a.jpg", PHOTO), ("b.jpg", 3)]), "photo 2"),
        UploadKind("empty file", _submit([("front.jpg", b"")]), "empty"),
        UploadKind("empty among good", _submit([("a.jpg", PHOTO), ("side.jpg", b"")]), "side.jpg"),
        UploadKind("options missing", _submit([("a.jpg", PHOTO)], None), "settings"),
        UploadKind("options as dict", _submit([("a.jpg", PHOTO)], {"quality": "fast"}), "settings"),
        UploadKind("unknown quality", _submit([("a.jpg", PHOTO)], pipeline.Options(quality="ultra")), "quality"),
        UploadKind("unknown kind", _submit([("a.jpg", PHOTO)], pipeline.Options(kind="sphere")), "kind"),
        UploadKind("unknown placement", _submit([("a.jpg", PHOTO)], pipeline.Options(placement="ceiling")),
                   "placement"),
        UploadKind("texture 3000", _submit([("a.jpg", PHOTO)], pipeline.Options(texture_size=3000)), "texture"),
        UploadKind("triangles 10", _submit([("a.jpg", PHOTO)], pipeline.Options(max_triangles=10)), "triangle"),
        UploadKind("max MB nan", _submit([("a.jpg", PHOTO)], pipeline.Options(max_megabytes=float("nan"))), "mb"),
        UploadKind("max MB 0", _submit([("a.jpg", PHOTO)], pipeline.Options(max_megabytes=0)), "mb"),
        UploadKind("size as text", _submit([("a.jpg", PHOTO)], pipeline.Options(size="85cm")), "size"),
        UploadKind("size as number", _submit([("a.jpg", PHOTO)], pipeline.Options(size=0.85)), "size"),
        UploadKind("name as options", _submit([("a.jpg", PHOTO)], pipeline.Options(name=5)), "name"),
        UploadKind(f"{count + 1} photos", _submit([(f"{i}.jpg", PHOTO) for i in range(count + 1)]),
                   f"more than the {count}"),
        UploadKind("1000 photos", _sizes([1000] * 1000), "1000 photos"),
        UploadKind("one byte over the file cap", _sizes([cap + 1]), "at most"),
        UploadKind("a 190 MB file", _sizes([190 * MB]), "190 mb"),
        UploadKind("a 4 GB file", _sizes([4096 * MB]), "at most"),
        UploadKind("big file among small", _sizes([MB, MB, cap * 3]), "at most"),
        UploadKind("job total over the cap", _sizes([cap] * (int(limits.MAX_JOB_MB * MB // cap) + 1)), "add up to"),
    ]
    return kinds


def _problem(kind: UploadKind, data: Path) -> str | None:
    try:
        kind.call(data)
    except jobs.JobRefused as refused:
        line = refused.message
        if not line or "\n" in line or kind.words not in line.lower():
            return f"{kind.name}: unexpected message {line!r}"
        return None
    except Exception:
        return f"{kind.name}: traceback\n{traceback.format_exc()}"
    return f"{kind.name}: accepted"


def test_bad_uploads_get_one_plain_line_and_write_nothing(tmp_path, capsys):
    kinds = upload_kinds()
    problems = [p for p in (_problem(k, tmp_path) for k in kinds) if p]
    assert not problems, "\n".join(problems)
    assert not any((tmp_path / "jobs").glob("*/*"))  # no photo folder, not even a half-written one
    assert len(kinds) >= 30
    with capsys.disabled():
        print(f"\nupload corpus: {len(kinds)} kinds, 0 tracebacks, nothing written")


def test_a_nearly_full_disk_refuses_uploads_and_writes_nothing(tmp_path, monkeypatch):
    import shutil

    free_mb = shutil.disk_usage(tmp_path).free / MB
    monkeypatch.setattr(limits, "MIN_FREE_MB", free_mb + 10)  # as if only 10 MB short of the reserve
    with pytest.raises(jobs.JobRefused, match="disk is almost full"):
        jobs.submit([("front.jpg", PHOTO)], "Oak chair", pipeline.Options(), data_dir=tmp_path)
    assert not any((tmp_path / "jobs").glob("*/*"))


def test_a_good_submission_still_goes_through(tmp_path):
    job_id = jobs.submit([("../../etc/passwd.jpg", PHOTO), ("side\x00.png", PHOTO)], "Oak chair",
                         pipeline.Options(size=pipeline.KnownSize("height", 0.85)), data_dir=tmp_path)
    job = jobs.get_job(job_id, tmp_path)
    # The merchant's file names, made safe (no folders, no NUL), each in its own numbered folder.
    assert [p.name for p in job.photos] == ["passwd.jpg", "side_.png"]
    assert [p.parent for p in job.photos] == [tmp_path / "jobs" / job_id / "photos" / f"{i:03d}" for i in range(2)]
