"""End to end: `plinth make` on the bench's single photos, and the bad-input corpus through API and CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import trimesh

from pipeline import InputError, KnownSize, Options, PlinthError, reconstruct
from pipeline.cli import main
from tests.gltf_validate import validate_glb

SINGLE_CASES = ("banana", "waterbottle", "avocado", "boombox", "chair")


def _load_meta(case_dir: Path) -> dict:
    return json.loads((case_dir / "meta.json").read_text())


def _check_contract(glb: Path, height: float | None) -> trimesh.Trimesh:
    """The output contract of DEVELOPERS.md, read back from the file."""
    report = validate_glb(glb)
    assert report["issues"]["numErrors"] == 0, report["issues"]["messages"][:5]
    scene = trimesh.load(glb, force="scene")
    mesh = scene.to_geometry() if hasattr(scene, "to_geometry") else scene.dump(concatenate=True)
    lo, hi = mesh.bounds
    if height is not None:
        assert abs((hi[1] - lo[1]) - height) <= 0.01 * height, (hi[1] - lo[1], height)
    assert abs(lo[1]) <= 1e-3
    assert abs((lo[0] + hi[0]) / 2) <= 1e-3 and abs((lo[2] + hi[2]) / 2) <= 1e-3
    assert len(mesh.faces) < 100_000
    assert glb.stat().st_size < 5_000_000
    material = mesh.visual.material
    image = getattr(material, "baseColorTexture", None)
    assert image is not None, "model is not textured"
    w, h = image.size
    assert w & (w - 1) == 0 and h & (h - 1) == 0, image.size
    return mesh


@pytest.mark.slow
@pytest.mark.parametrize("case", SINGLE_CASES)
def test_make_single_photo_meets_contract(case, bench, tmp_path, device):
    case_dir = bench / "single" / case
    height = _load_meta(case_dir)["bbox_size_m"][1]
    out = tmp_path / f"{case}.glb"
    code = main(["make", str(case_dir / "image.jpg"), "--out", str(out), "--height", f"{height}m", "-q",
                 "--device", device])
    assert code == 0
    _check_contract(out, height)

    from pipeline.export.usdz import validate_usdz

    usdz = out.with_suffix(".usdz")
    assert validate_usdz(usdz) == []
    for suffix in (".obj.zip", ".poster.png", ".report.json"):
        assert out.with_suffix(suffix).is_file(), suffix
    report = json.loads(out.with_suffix(".report.json").read_text())
    assert report["triangles"] > 100 and report["kind"] in ("flat", "box", "revolve", "round")
    assert abs(report["dimensions_m"][1] - height) <= 0.01 * height


def test_console_script_reports_bad_size_in_one_line(bench, tmp_path):
    photo = bench / "single" / "avocado" / "image.jpg"
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "make", str(photo), "--out", str(tmp_path / "a.glb"), "--height", "tall"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "tall" in proc.stderr


def test_console_script_writes_all_files(bench, tmp_path, device):
    photo = bench / "single" / "avocado" / "image.jpg"
    out = tmp_path / "nested" / "avocado.glb"
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "make", str(photo), "--out", str(out), "--height", "10cm", "--device", device],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Verdict: ")  # the verdict first
    for suffix in (".glb", ".usdz", ".obj.zip", ".poster.png", ".report.json"):
        assert str(out.with_suffix(suffix)) in proc.stdout
        assert out.with_suffix(suffix).is_file()
    report = json.loads(out.with_suffix(".report.json").read_text())
    assert report["verdict"] in ("good", "warnings") and isinstance(report["evidence"], list)  # exit 0: not failed


def test_wall_placement_puts_back_on_wall_plane(bench, tmp_path, device):
    photo = bench / "single" / "boombox" / "image.jpg"
    out = tmp_path / "art.glb"
    options = Options(kind="flat", placement="wall", size=KnownSize("width", 0.6))
    reconstruct([photo], out, options, device=device)
    mesh = trimesh.load(out, force="mesh")
    lo, hi = mesh.bounds
    assert abs(lo[2]) <= 1e-3 and hi[2] > 0.002  # back on z = 0, real thickness in front of it
    assert abs((hi[0] - lo[0]) - 0.6) <= 0.006
    assert abs(lo[1]) <= 1e-3


def test_unknown_output_suffix_is_a_plain_error(bench, tmp_path):
    with pytest.raises(InputError):
        reconstruct([bench / "single" / "avocado" / "image.jpg"], tmp_path / "x.obj")


def test_bad_input_corpus_gives_model_or_one_line(tmp_path, capsys, device):
    from tests.badinputs import EXPECTED, make_corpus

    corpus = make_corpus(tmp_path / "corpus")
    assert set(corpus) == set(EXPECTED)  # every file has an expected outcome, every outcome a file
    for label, path in corpus.items():
        expect_model = EXPECTED[label].valid
        out = tmp_path / "out" / f"{label}.glb"
        out.parent.mkdir(exist_ok=True)
        # Python API: a model or a PlinthError, nothing else.
        try:
            reconstruct([path], out, Options(quality="fast"), device=device)
            api_ok = True
        except PlinthError as error:
            api_ok = False
            assert "\n" not in str(error) and str(error), label
        assert api_ok == expect_model, (label, api_ok)
        if api_ok:
            _check_contract(out, None)
        # CLI: same outcome, one line on stderr, no traceback.
        capsys.readouterr()
        code = main(["make", str(path), "--out", str(out), "--quality", "fast", "-q", "--device", device])
        err = capsys.readouterr().err
        assert "Traceback" not in err
        if expect_model:
            assert code == 0, (label, err)
        else:
            assert code in (2, 3), (label, code)
            lines = [line for line in err.splitlines() if line.strip()]
            assert len(lines) == 1 and lines[0].startswith("plinth: "), (label, err)
            assert path.name in lines[0], (label, lines[0])
            assert EXPECTED[label].words in lines[0].lower(), (label, lines[0])


def test_missing_photo_is_a_plain_error(tmp_path, capsys):
    code = main(["make", str(tmp_path / "nope.jpg"), "--out", str(tmp_path / "x.glb")])
    err = capsys.readouterr().err
    assert code == 2 and "nope.jpg" in err and "Traceback" not in err


def test_library_cli_makes_a_model_without_the_web_app(bench, tmp_path, device):
    """`python -m pipeline make` with Streamlit and the web app unimportable (not installed)."""
    out = tmp_path / "chair.glb"
    code = (
        "import runpy, sys\n"
        "sys.modules['streamlit'] = None  # any import of it now raises ImportError\n"
        "sys.modules['webapp'] = None\n"
        "import pipeline.cli\n"
        f"sys.argv = ['plinth', 'make', {str(bench / 'single' / 'chair' / 'image.jpg')!r}, '--out', {str(out)!r},"
        f" '--height', '0.5m', '--quality', 'fast', '--texture-size', '512', '-q', '--device', {device!r}]\n"
        "runpy.run_module('pipeline', run_name='__main__')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parent.parent)
    assert proc.returncode == 0, proc.stderr
    assert f"Made {out}" in proc.stdout and "Share link" not in proc.stdout
    assert out.is_file() and out.with_suffix(".report.json").is_file()


def test_library_cli_has_no_publish_or_serve(tmp_path, capsys):
    # Publishing and serving need the web app: only the `plinth` console script (webapp.cli) has them.
    for argv in (["make", "x.jpg", "--out", str(tmp_path / "x.glb"), "--publish"], ["serve"]):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        err = capsys.readouterr().err
        assert stop.value.code == 2, argv
        assert err.splitlines()[-1].startswith("plinth: ") and ("--publish" in err or "'serve'" in err), err


# ---------------------------------------------------------------- the quality gate's verdict


def test_a_failed_model_exits_4_says_why_and_removes_its_files(chair_model, tmp_path, capsys):
    from pipeline import Verdict
    from pipeline.cli import EXIT_FAILED_MODEL, present
    from tests.verdicts import FAILED_CHECK, RESHOOT, WARNED_CHECK, judged

    result = judged(chair_model, Verdict.FAILED, tmp_path / "out")
    code = present(result, keep_failed=False, seconds=1.0)
    lines = capsys.readouterr().out.splitlines()
    assert code == EXIT_FAILED_MODEL and EXIT_FAILED_MODEL not in (0, 2, 3, 130)
    assert lines[0].startswith("Verdict: failed.")  # the verdict comes first
    text = "\n".join(lines)
    assert FAILED_CHECK.message in text and WARNED_CHECK.message in text
    assert f"re-shoot {', '.join(RESHOOT)}" in text  # the merchant's own file names
    for path in (result.exports.glb, result.exports.usdz, result.exports.obj_zip, result.exports.poster):
        assert not Path(path).exists(), path
    assert Path(result.report_path).is_file() and result.report_path in text  # the why stays
    assert "--keep-failed" in text and "Made " not in text


def test_keep_failed_keeps_the_files_and_says_where(chair_model, tmp_path, capsys):
    from pipeline import Verdict
    from pipeline.cli import EXIT_FAILED_MODEL, present
    from tests.verdicts import judged

    result = judged(chair_model, Verdict.FAILED, tmp_path / "out")
    assert present(result, keep_failed=True, seconds=1.0) == EXIT_FAILED_MODEL
    out = capsys.readouterr().out
    assert out.startswith("Verdict: failed.")
    assert f"Kept the failed model {result.exports.glb}" in out
    for path in (result.exports.glb, result.exports.usdz, result.exports.obj_zip, result.exports.poster):
        assert Path(path).is_file() and str(path) in out


def test_warnings_exit_0_and_print_the_warnings(chair_model, tmp_path, capsys):
    from pipeline import Verdict
    from pipeline.cli import present
    from tests.verdicts import FAILED_CHECK, WARNED_CHECK, judged

    result = judged(chair_model, Verdict.WARNINGS, tmp_path / "out")
    assert present(result, keep_failed=False, seconds=1.0) == 0
    out = capsys.readouterr().out
    assert out.startswith("Verdict: usable, with warnings.")
    assert f"warning  {WARNED_CHECK.message}" in out and FAILED_CHECK.message not in out
    assert Path(result.exports.glb).is_file() and f"Made {result.exports.glb}" in out


def test_good_only_says_checked_when_checks_ran(chair_model, tmp_path, capsys):
    from dataclasses import replace

    from pipeline import Verdict
    from pipeline.cli import present
    from tests.verdicts import judged

    checked = judged(chair_model, Verdict.GOOD, tmp_path / "a")
    assert present(checked, keep_failed=False, seconds=1.0) == 0
    assert capsys.readouterr().out.startswith("Verdict: good. All 1 quality checks passed.")
    unchecked = replace(checked, report=replace(checked.report, evidence=()))
    assert present(unchecked, keep_failed=False, seconds=1.0) == 0
    out = capsys.readouterr().out
    assert out.startswith("Verdict: made, but not checked") and "good" not in out.splitlines()[0]


def test_the_exit_codes_are_in_the_help(capsys):
    from pipeline.cli import EXIT_FAILED_MODEL

    with pytest.raises(SystemExit):
        main(["make", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--keep-failed" in out
    assert f"{EXIT_FAILED_MODEL} the model was made but failed Plinth's quality checks" in out
