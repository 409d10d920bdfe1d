"""Shared fixtures and options: the torch device, the bench data, the artifacts folder.

Torch device (like kornia's test suite):

    pytest --device cuda            # or cuda:1, mps, cpu
    PLINTH_DEVICE=cuda pytest       # the option's default comes from $PLINTH_DEVICE, else "cpu"

Tests that run torch code take the `device` fixture and pass it on (device=device); none
hard-codes "cpu" for torch work. Asking for a device this machine does not have is an error,
not a quiet fall-back to the CPU.

Nothing in this suite skips: a missing dependency, a broken wheel or missing bench data must
turn it red. A test or module that skips anyway (pytest.skip, a skip-if-missing import, a skip mark) is
reported as failed; see pytest_runtest_makereport and pytest_make_collect_report below.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Two test workers share the two cores: each worker's native thread pools (torch's OpenMP,
# OpenCV's) get its share of the cores. Left at one thread per core each, the pools of two
# workers spin against each other: a 17 s dense test took 103 s beside another torch test.
# Set before torch or cv2 is imported; subprocesses (the CLI, the app server) inherit it.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    _SHARE = str(max(1, (os.cpu_count() or 1) // _WORKERS))
    for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENCV_FOR_THREADS_NUM"):
        os.environ.setdefault(_name, _SHARE)

from bench.data import bench_root  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "tests" / "output"  # artifacts (screenshots, sample models); git-ignored


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--device", action="store", default=os.environ.get("PLINTH_DEVICE", "cpu"),
        help="torch device the tests run pipeline code on (cpu, cuda, cuda:1, ...); "
        "default $PLINTH_DEVICE, else cpu",
    )


@pytest.fixture(scope="session")
def device(request: pytest.FixtureRequest) -> str:
    import torch

    name = request.config.getoption("--device")
    dev = torch.device(name)  # a malformed name raises here
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"--device {name}: torch {torch.__version__} sees no CUDA device")
    if dev.type == "cuda" and (dev.index or 0) >= torch.cuda.device_count():
        raise RuntimeError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s)")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError(f"--device {name}: MPS is not available")
    return name


@pytest.fixture(scope="session")
def bench() -> Path:
    root = bench_root()
    if not (root / "single").is_dir():
        # Fail loudly: a test that needs the bench must not turn green without it.
        raise FileNotFoundError(f"benchmark data not found at {root}; set PLINTH_BENCH")
    return root


@pytest.fixture(scope="session")
def chair_photo(bench) -> Path:
    """One real product photo: the bench's single-photo chair."""
    return bench / "single" / "chair" / "image.jpg"


@pytest.fixture(scope="session")
def chair_model(chair_photo, tmp_path_factory, device):
    """That photo made into a model once per test session (fast, 0.85 m tall, 512 px texture), for
    tests about what happens to a model (publishing, jobs, the library), not about how it is made."""
    import pipeline

    out = tmp_path_factory.mktemp("chair_model") / "chair.glb"
    options = pipeline.Options(size=pipeline.KnownSize("height", 0.85), quality="fast", texture_size=512)
    return pipeline.reconstruct([chair_photo], out, options, device=device)


@pytest.fixture
def app_data(tmp_path, monkeypatch, device):
    """A fresh data folder for the web app's pages and workers (PLINTH_DATA_DIR), with Streamlit's
    caches cleared before and after and the job workers the pages start stopped afterwards."""
    import streamlit as st

    from webapp import workers

    folder = tmp_path / "data"
    monkeypatch.setenv("PLINTH_DATA_DIR", str(folder))
    monkeypatch.setenv("PLINTH_DEVICES", device)
    monkeypatch.delenv("PLINTH_PUBLIC_URL", raising=False)
    st.cache_resource.clear()
    st.cache_data.clear()
    yield folder
    workers.stop_workers()
    st.cache_resource.clear()


@pytest.fixture
def two_merchants(app_data):
    """The owner account and two merchants, A and B, on one server (tests/merchants.py)."""
    from tests.merchants import two_merchants

    return two_merchants(app_data)


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (tests/browsing.py), one per test module."""
    from tests.browsing import chromium

    with chromium() as launched:
        yield launched


@pytest.fixture(scope="session")
def artifacts() -> Path:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    return OUTPUT


def _fail_skip(report) -> None:
    """Turn a skipped report into a failed one that says why it was skipped."""
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped, and this suite does not skip (fix the cause instead): {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _fail_skip(outcome.get_result())


@pytest.fixture
def signed_in_user(app_data):
    """The owner account of the app_data folder (AppTests sign in as it: tests/signing.py)."""
    from tests.signing import owner_account

    return owner_account(app_data)
