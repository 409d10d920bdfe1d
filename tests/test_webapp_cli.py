"""The `plinth` console script (webapp/cli.py): `make --publish` into the library, `serve`, and
`make` without --publish leaving the library alone. test_cli.py covers `make` itself."""

from __future__ import annotations

import re
import socket
from importlib.metadata import entry_points

import pytest

from webapp import cli, library, sanitize


def test_console_script_is_the_web_app_cli():
    (script,) = entry_points(group="console_scripts", name="plinth")
    assert script.value == "webapp.cli:main"
    assert script.load() is cli.main


def test_make_publish_adds_the_model_and_prints_its_share_link(bench, tmp_path, monkeypatch, capsys, device):
    data = tmp_path / "data"
    monkeypatch.setenv("PLINTH_DATA_DIR", str(data))
    monkeypatch.delenv("PLINTH_PUBLIC_URL", raising=False)
    photo = bench / "single" / "chair" / "image.jpg"
    out = tmp_path / "oak-chair.glb"
    code = cli.main(["make", str(photo), "--out", str(out), "--height", "0.5m", "--placement", "wall",
                     "--publish", "--quality", "fast", "--texture-size", "512", "-q", "--device", device])
    stdout = capsys.readouterr().out
    assert code == 0
    lines = stdout.splitlines()
    assert lines[0].startswith("Verdict: ")  # the library's lines first: the verdict, then the files
    assert any(line.startswith(f"Made {out} in ") for line in lines)
    match = re.fullmatch(r"Share link: http://localhost:8501/ar/([A-Za-z0-9_-]+)", lines[-1])
    assert match, lines[-1]
    model = library.get_model(match.group(1), data)
    assert model is not None
    assert model.name == "oak-chair"  # no --name: the file name
    assert model.placement == "wall"
    assert model.dimensions_m[1] == pytest.approx(0.5, rel=0.01)
    # the merchant's original, without location metadata
    assert (model.folder / "photos" / "000.jpg").read_bytes() == sanitize.strip_location(photo.read_bytes())


def test_make_without_publish_leaves_the_library_alone(bench, tmp_path, monkeypatch, capsys, device):
    data = tmp_path / "data"
    monkeypatch.setenv("PLINTH_DATA_DIR", str(data))
    out = tmp_path / "item.glb"
    code = cli.main(["make", str(bench / "single" / "chair" / "image.jpg"), "--out", str(out), "--name", "Oak",
                     "--quality", "fast", "--texture-size", "512", "-q", "--device", device])
    assert code == 0 and out.is_file()
    assert "Share link" not in capsys.readouterr().out
    assert not data.exists()


def test_publish_into_an_unusable_data_folder_is_one_plain_line(bench, tmp_path, monkeypatch, capsys, device):
    not_a_folder = tmp_path / "data"
    not_a_folder.write_text("a file where the data folder should be")
    monkeypatch.setenv("PLINTH_DATA_DIR", str(not_a_folder))
    out = tmp_path / "item.glb"
    code = cli.main(["make", str(bench / "single" / "chair" / "image.jpg"), "--out", str(out), "--publish",
                     "--quality", "fast", "--texture-size", "512", "-q", "--device", device])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.startswith("plinth: could not write the files") and captured.err.count("\n") == 1
    assert "Share link" not in captured.out and out.is_file()  # the model itself was made


def test_serve_on_a_busy_port_says_so_and_exits_1(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PLINTH_DATA_DIR", str(tmp_path))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(SystemExit) as stop:
            cli.main(["serve", "--host", "127.0.0.1", "--port", str(port)])
    assert stop.value.code == 1
    err = capsys.readouterr().err
    assert f"port {port} is already in use" in err and f"--port {port + 1}" in err
    assert not (tmp_path / "server.json").exists()  # nothing recorded for a server that never ran


def test_publish_never_publishes_a_failed_model(chair_model, tmp_path, monkeypatch, capsys):
    import argparse

    from pipeline import Verdict
    from pipeline.cli import EXIT_FAILED_MODEL
    from tests.verdicts import judged

    data = tmp_path / "data"
    monkeypatch.setenv("PLINTH_DATA_DIR", str(data))
    args = argparse.Namespace(name="Oak", out=str(tmp_path / "oak.glb"), photos=[], placement="floor")
    failed = judged(chair_model, Verdict.FAILED, tmp_path / "failed")
    for code in (EXIT_FAILED_MODEL, 0):  # 0: the verdict alone decides, whatever code came before
        assert cli.publish_made(failed, code, args) == EXIT_FAILED_MODEL
        captured = capsys.readouterr()
        assert "Share link" not in captured.out
        assert captured.err.startswith("plinth: not published: this model failed") and captured.err.count("\n") == 1
    assert library.list_models(data) == []
    warned = judged(chair_model, Verdict.WARNINGS, tmp_path / "warned")
    assert cli.publish_made(warned, 0, args) == 0  # usable with warnings: published
    assert "Share link: " in capsys.readouterr().out and len(library.list_models(data)) == 1
