"""pipeline.reconstruct's progress contract: a callback that returns False stops the job with
pipeline.Cancelled at that stage, before any later stage starts and before any file is written;
one that returns None or True lets it run to the end. Real pipeline, small synthetic photos."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline import (
    MIN_MEGABYTES,
    MIN_MULTIVIEW_PHOTOS,
    Cancelled,
    CaptureError,
    InputError,
    Options,
    reconstruct,
    stages_for,
)
from tests.scenes import synthetic_object

#: Quick settings: the stages are the same at every quality.
OPTIONS = Options(quality="fast", texture_size=256)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> list[Path]:
    """Photos of one orange item on a speckled table (seeds 0, 1, 2), as JPEG files."""
    folder = tmp_path_factory.mktemp("photos")
    paths = []
    for seed in range(MIN_MULTIVIEW_PHOTOS):
        rgb, _ = synthetic_object(seed=seed)
        paths.append(folder / f"item_{seed}.jpg")
        Image.fromarray(rgb).save(paths[-1], quality=92)
    return paths


class Stopper:
    """Progress callback that records every call and returns False on the `call`-th call (from 1)
    reported for `stage`; None before it."""

    def __init__(self, stage: str, call: int = 1):
        self.stage, self.call = stage, call
        self.calls: list[tuple[str, float, str]] = []

    def __call__(self, stage: str, fraction: float, message: str):
        self.calls.append((stage, fraction, message))
        if stage == self.stage and sum(s == stage for s, _, _ in self.calls) == self.call:
            return False
        return None

    @property
    def stages(self) -> list[str]:
        """The stages reported, in order, each once."""
        return list(dict.fromkeys(s for s, _, _ in self.calls))


def _cancel(photos: list[Path], out: Path, stop: Stopper, device: str) -> Cancelled:
    with pytest.raises(Cancelled) as info:
        reconstruct(photos, out, OPTIONS, progress=stop, device=device)
    return info.value


# (stage, which of its progress calls says stop): every stage before files are written, at its
# start, plus two calls from inside a stage (the segmenter's per-photo tick, the texture
# stage's own sub-progress).
SINGLE_STOPS = [("ingest", 1), ("segment", 1), ("segment", 2), ("geometry", 1), ("mesh", 1), ("texture", 1),
                ("texture", 3), ("export", 1)]


@pytest.mark.parametrize("stage, call", SINGLE_STOPS, ids=[f"{s}-{c}" for s, c in SINGLE_STOPS])
def test_false_from_progress_cancels_at_that_stage(photos, tmp_path, device, stage, call):
    out = tmp_path / "model.glb"
    stop = Stopper(stage, call)
    error = _cancel(photos[:1], out, stop, device)
    assert error.args == (stage,) and stage in str(error)
    order = list(stages_for(1))
    assert stop.stages == order[: order.index(stage) + 1]  # nothing after the stage that said stop
    assert stop.calls[-1][0] == stage and sum(s == stage for s, _, _ in stop.calls) == call
    assert list(tmp_path.iterdir()) == []  # no GLB, USDZ, poster or report: not even a temp file


def test_false_from_progress_cancels_a_multi_photo_job_before_placing_photos(photos, tmp_path, device):
    out = tmp_path / "model.glb"
    stop = Stopper("poses")
    error = _cancel(photos, out, stop, device)
    assert error.args == ("poses",)
    assert stop.stages == ["ingest", "segment", "poses"] == list(stages_for(len(photos))[:3])
    assert [m for s, _, m in stop.calls if s == "segment"][-1].endswith(f"photo {len(photos)} of {len(photos)}")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_none_or_true_from_progress_does_not_cancel(photos, tmp_path, device):
    out = tmp_path / "model.glb"
    calls = []

    def progress(stage: str, fraction: float, message: str):
        calls.append((stage, fraction))
        return None if len(calls) % 2 else True  # both mean "go on"

    result = reconstruct(photos[:1], out, OPTIONS, progress=progress, device=device)
    assert out.is_file() and Path(result.exports.glb) == out and Path(result.report_path).is_file()
    assert list(dict.fromkeys(s for s, _ in calls)) == list(stages_for(1))  # every stage, in order
    assert len(calls) > len(stages_for(1))  # the long stages report from inside too, and went on
    for stage in stages_for(1):
        fractions = [f for s, f in calls if s == stage]
        assert fractions[0] == 0.0 and np.all(np.diff(fractions) >= 0) and max(fractions) <= 1.0, stage
    assert set(result.report.seconds_per_stage) == set(stages_for(1))


def test_the_smallest_cap_is_one_a_model_can_meet(bench, tmp_path, device):
    """MIN_MEGABYTES is a floor real models reach (a 1,000-triangle budget, export shrinking the
    texture), and the report says the texture was shrunk; a hair under it is refused up front."""
    photo = bench / "single" / "avocado" / "image.jpg"
    options = Options(quality="fast", texture_size=256, max_triangles=1_000, max_megabytes=MIN_MEGABYTES)
    result = reconstruct([photo], tmp_path / "small.glb", options, device=device)
    assert result.exports.glb_bytes <= MIN_MEGABYTES * 1e6
    assert (tmp_path / "small.glb").stat().st_size == result.exports.glb_bytes
    assert result.exports.texture_size < 256
    assert any("shrunk" in w and f"{result.exports.texture_size} px" in w for w in result.report.warnings)
    with pytest.raises(InputError, match=f"at least {MIN_MEGABYTES} MB"):
        reconstruct([photo], tmp_path / "smaller.glb", replace(options, max_megabytes=MIN_MEGABYTES * 0.9))
    assert not (tmp_path / "smaller.glb").exists()


def test_a_cap_the_model_cannot_meet_fails_before_any_file(bench, tmp_path, device):
    """Above the floor but under what this model's geometry needs: one line with the size it
    needs, and nothing written (not a GLB over the cap, not a 64 px texture)."""
    photo = bench / "single" / "avocado" / "image.jpg"
    out = tmp_path / "model.glb"
    with pytest.raises(CaptureError) as info:
        reconstruct([photo], out, Options(quality="fast", texture_size=256, max_megabytes=MIN_MEGABYTES),
                    device=device)
    need = float(str(info.value).split("at least ")[1].split(" MB")[0])
    assert need > MIN_MEGABYTES and "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []
    result = reconstruct([photo], out, Options(quality="fast", texture_size=256, max_megabytes=need), device=device)
    assert result.exports.glb_bytes <= need * 1e6  # the size the message asked for is enough
