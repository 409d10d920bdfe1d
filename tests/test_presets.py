"""Every quality the orchestrator accepts has a preset in every stage it looks one up in.

`reconstruct` indexes each stage's PRESETS with Options.quality and overrides a few fields with
dataclasses.replace; a quality added to QUALITIES without a preset (or a renamed field) would
only fail in a merchant's job.
"""

from __future__ import annotations

import dataclasses
import importlib

import pytest

from pipeline import QUALITIES, TEXTURE_SIZES, Options

STAGES = ("ingest", "segment", "sfm", "dense", "single_view", "mesh", "texture", "export")
#: The preset fields reconstruct() overrides from the merchant's options.
OVERRIDDEN = {"mesh": {"max_triangles"}, "texture": {"texture_size"}, "export": {"max_bytes"}}


@pytest.mark.parametrize("stage", STAGES)
def test_every_quality_has_a_preset(stage):
    presets = importlib.import_module(f"pipeline.{stage}").PRESETS
    assert set(presets) == set(QUALITIES), stage
    kinds = {type(p) for p in presets.values()}
    assert len(kinds) == 1 and dataclasses.is_dataclass(kinds.pop())
    for preset in presets.values():
        names = {f.name for f in dataclasses.fields(preset)}
        assert OVERRIDDEN.get(stage, set()) <= names, (stage, names)


@pytest.mark.parametrize("quality", QUALITIES)
def test_every_quality_passes_the_option_check(quality):
    checked = Options(quality=quality).check()
    assert checked.texture_size == TEXTURE_SIZES[quality]
