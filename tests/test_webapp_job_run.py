"""One real multi-photo job through the real job path (jobs.submit, job_runs.claim, then
workers.run_job, the child's entry, in this process) with the merchant's own file names, while a
watcher reads the job record every 0.1 s as the progress page does."""

from __future__ import annotations

import io
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

import pipeline
from tests.test_report import assert_plain
from webapp import eta, job_runs, jobs, library, workers
from webapp.jobs import JobStatus

pytestmark = pytest.mark.slow

PHOTOS = 12  # every third bench view of the water bottle, and a blank pocket shot after them
NAMES = [f"IMG_{1001 + i}.jpg" for i in range(PHOTOS + 1)]
FILE_NAME = re.compile(r"[\w()-]+\.(?:jpe?g|png|webp|heic|img)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Seen:
    at: float  # seconds since the job started
    stage: str
    fraction: float
    message: str


@dataclass(frozen=True)
class Run:
    data: Path
    job: jobs.Job
    report: dict
    seen: tuple[Seen, ...]
    total_s: float


@pytest.fixture(scope="module")
def real_job(bench, tmp_path_factory, device) -> Run:
    data = tmp_path_factory.mktemp("job-run")
    images = sorted((bench / "multiview" / "waterbottle" / "images").glob("*.jpg"))[::3][:PHOTOS]
    blank = io.BytesIO()
    Image.new("RGB", (1024, 768), (128, 128, 128)).save(blank, "JPEG")
    files = [(name, path.read_bytes()) for name, path in zip(NAMES, images)] + [(NAMES[-1], blank.getvalue())]
    job_id = jobs.submit(files, "Water bottle", pipeline.Options(quality="fast"), data_dir=data)
    assert job_runs.claim(data, device) == job_id

    seen: list[Seen] = []
    stop = threading.Event()
    t0 = time.monotonic()

    def watch() -> None:
        last = None
        while not stop.is_set():
            job = jobs.get_job(job_id, data)
            now = (job.stage, job.fraction, job.message)
            if now != last:
                seen.append(Seen(time.monotonic() - t0, *now))
                last = now
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        workers.run_job(str(data), job_id, device)
    finally:
        stop.set()
        watcher.join()
    total = time.monotonic() - t0
    job = jobs.get_job(job_id, data)
    assert job.status is JobStatus.DONE, job.error
    model = library.get_model(job.share_id, data)
    return Run(data, job, model.report, tuple(seen), total)


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    return []


def test_every_file_name_in_the_report_is_one_the_merchant_uploaded(real_job):
    texts = _strings(real_job.report) + [s.message for s in real_job.seen]
    named = {m for text in texts for m in FILE_NAME.findall(text)}
    assert NAMES[-1] in named, named  # the blank photo is named, by the merchant's name
    assert named <= set(NAMES), named - set(NAMES)
    for number, name in re.findall(r"Photo (\d+) \(([^)]+)\)", "\n".join(texts)):
        assert NAMES.index(name) == int(number) - 1, (number, name)  # never a count of the usable photos
    placed = next(e for e in real_job.report["evidence"] if e["check"] == "placed")
    assert placed["photos"] == [NAMES[-1]]


def test_the_progress_text_keeps_moving_and_an_estimate_is_there_to_show(real_job):
    seen, total = real_job.seen, real_job.total_s
    assert total > 10 and len(seen) > 20, (total, len(seen))
    gaps = sorted(((b.at - a.at), a.message) for a, b in zip(seen, seen[1:]))
    longest, quiet = gaps[-1]
    # No stretch without news: the longest gap between two changes is a small part of the run.
    assert longest < 0.15 * total, f"'{quiet}' stood {longest:.1f} s of {total:.0f} s"
    for message in {s.message for s in seen}:
        assert_plain(message)
    for stage in {s.stage for s in seen} - {"", "done"}:
        assert stage in pipeline.STAGE_WORDS
    # The estimate the page shows, at every change in the middle of the run, against what was left.
    ratios = []
    for s in seen:
        if max(0.2 * total, eta.MIN_ELAPSED_S) < s.at < 0.8 * total:  # before MIN_ELAPSED_S none is shown, by design
            left = eta.seconds_left(s.stage, s.fraction, PHOTOS + 1, s.at)
            assert left is not None and eta.time_left(s.stage, s.fraction, PHOTOS + 1, s.at), s
            ratios.append(left / (total - s.at))
    ratios.sort()
    assert ratios and 1 / 3 < ratios[len(ratios) // 2] < 3, ratios


def test_the_real_reports_sentences_are_plain_words(real_job):
    report = real_job.report
    lines = [report["summary"], *report["advice"], *report["warnings"],
             *(e["message"] for e in report["evidence"] if e["message"])]
    assert len(lines) >= 4, lines
    for line in lines:
        assert_plain(line)
