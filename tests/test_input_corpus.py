"""The bad-input corpus: every kind of bad input to the library and to `plinth make` ends in one
plain line (an InputError / CaptureError, or exit code 2 / 3 with one "plinth: ..." line on
stderr), never a traceback, and the line is about the right thing.

The kinds are generated below (sizes x axes, option fields x bad values, photo lists, output
paths, devices, bad files from tests/badinputs.py), run through the API (`pipeline.reconstruct`,
`Options`, `KnownSize`) and the CLI in process (`pipeline.cli.main`), and a sample through a real
`python -m pipeline make` subprocess. Nearly all of them fail before any photo is decoded, so
the corpus is fast; the API kinds check that with the progress callback.
"""

from __future__ import annotations

import math
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
from PIL import Image

import pipeline
from pipeline import CaptureError, InputError, KnownSize, Options, PlinthError, reconstruct
from pipeline.cli import main
from tests.badinputs import EXPECTED, _bomb_png, make_corpus
from tests.scenes import synthetic_object

ROOT = Path(__file__).resolve().parent.parent
NAN, INF = float("nan"), float("inf")


@dataclass(frozen=True)
class Kind:
    label: str
    run: Callable[[Callable], object]  # given a progress callback, makes the bad call
    error: type = InputError  # the PlinthError subclass expected (API)
    word: str = ""  # lower-case word the message must contain
    before_work: bool = True  # fails before the first stage reports progress (API)


@dataclass(frozen=True)
class CliKind:
    label: str
    argv: list[str]
    word: str
    code: int = 2  # 2 bad input, 3 capture


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A good photo, the bad files of tests/badinputs.py, and paths for the output kinds."""
    folder = tmp_path_factory.mktemp("corpus")
    found = make_corpus(folder / "bad")
    rgb, _ = synthetic_object(seed=0)
    found["photo"] = folder / "item.jpg"
    Image.fromarray(rgb).save(found["photo"], quality=92)
    found["a_file"] = folder / "a_file"
    found["a_file"].write_text("not a folder")
    found["a_folder"] = folder / "folder.glb"
    found["a_folder"].mkdir()
    # Headers claiming 9000 x 9000 pixels each (81 MP, under the per-photo cap), no real data:
    # 70 of them are 5.7 gigapixels, over the per-job cap, and cost a few kilobytes.
    found["huge_dir"] = folder / "huge"
    found["huge_dir"].mkdir()
    for i in range(70):
        (found["huge_dir"] / f"huge_{i:02d}.png").write_bytes(_bomb_png(9000, 9000))
    found["out"] = folder / "out" / "model.glb"
    return found


def api_kinds(f: dict[str, Path]) -> list[Kind]:
    photo, out = f["photo"], f["out"]
    kinds: list[Kind] = []

    def opts(label: str, word: str, **bad) -> None:
        kinds.append(Kind(f"Options({label})", lambda p: reconstruct([photo], out, Options(**bad), progress=p),
                          word=word))

    # KnownSize: bad metres on each axis, bad axes; checked when the size is made.
    bad_metres = {"nan": NAN, "inf": INF, "-inf": -INF, "zero": 0.0, "minus zero": -0.0, "negative": -0.05,
                  "1e-9": 1e-9, "1 mm": 0.001, "1 km": 1000.0, "1e308": 1e308, "text abc": "abc",
                  "text 0.3": "0.3", "True": True, "None": None, "list": [0.3], "complex": 1j}
    for axis in ("height", "width", "depth"):
        for label, metres in bad_metres.items():
            kinds.append(Kind(f"KnownSize({axis}, {label})", lambda p, a=axis, m=metres: KnownSize(a, m), word=axis))
    for axis in ("length", "", "HEIGHT", 3, None):
        kinds.append(Kind(f"KnownSize(axis={axis!r})", lambda p, a=axis: KnownSize(a, 0.3), word="axis"))
    # The issue's own probe: a NaN size handed straight to reconstruct.
    kinds.append(Kind("reconstruct(size=nan)", lambda p: reconstruct(
        [photo], out, Options(size=KnownSize("height", NAN)), progress=p), word="height"))

    for value in (3, None, "blob", ""):
        opts(f"kind={value!r}", "kind", kind=value)
    for value in ("ceiling", 1):
        opts(f"placement={value!r}", "placement", placement=value)
    for value in ("ultra", None, "FAST"):
        opts(f"quality={value!r}", "quality", quality=value)
    for value in (300, 0, -512, True, "2048", 2048.0, 64):
        opts(f"texture_size={value!r}", "texture", texture_size=value)
    for value in (0, 999, -5, 10**7, True, 5000.0, "100000", None):
        opts(f"max_triangles={value!r}", "triangle", max_triangles=value)
    for value in (NAN, INF, -INF, 0, 0.0, -1, 0.001, 0.029, "5", True, None):
        opts(f"max_megabytes={value!r}", "mb" if isinstance(value, (int, float)) and math.isfinite(value) and
             not isinstance(value, bool) else "megabytes", max_megabytes=value)
    opts("name=5", "name", name=5)
    for value in (0.3, "30cm", {"axis": "height", "metres": 0.3}, ("height", 0.3)):
        opts(f"size={value!r}", "size", size=value)
    kinds.append(Kind("options=dict", lambda p: reconstruct([photo], out, {"quality": "fast"}, progress=p),
                      word="options"))

    stored = {"list": [1, 2], "text": "fast", "size=5": {"size": 5}, "size without metres": {"size": {"axis": "height"}},
              "metres abc": {"size": {"axis": "height", "metres": "abc"}},
              "metres nan": {"size": {"axis": "width", "metres": NAN}},
              "axis length": {"size": {"axis": "length", "metres": 0.3}},
              "max_megabytes nan": {"max_megabytes": NAN}, "max_megabytes text": {"max_megabytes": "lots"},
              "kind None": {"kind": None}, "texture_size 3": {"texture_size": 3}}
    words = {"list": "options", "text": "options", "size=5": "size", "size without metres": "size",
             "metres abc": "height", "metres nan": "width", "axis length": "axis", "max_megabytes nan": "megabytes",
             "max_megabytes text": "megabytes", "kind None": "kind", "texture_size 3": "texture"}
    for label, data in stored.items():
        kinds.append(Kind(f"Options.from_dict({label})", lambda p, d=data: Options.from_dict(d), word=words[label]))

    # Photos: not a list, empty, not paths, twice, too many, too many pixels.
    def photos(label: str, value, word: str) -> None:
        kinds.append(Kind(f"photos={label}", lambda p: reconstruct(value, out, progress=p), word=word))

    photos("int", 5, "list")
    photos("None", None, "list")
    photos("bytes", str(photo).encode(), "list")
    photos("dict", {str(photo): 1}, "list")
    photos("[]", [], "no photos")
    photos("[None]", [None], "photo 1")
    photos("[photo, 3]", [photo, 3], "photo 2")
    photos("['']", [""], "photo 1")
    photos("[photo, photo]", [photo, photo], "twice")
    photos("[photo, same by another path]", [photo, f"{photo.parent}/../{photo.parent.name}/{photo.name}"], "twice")
    kinds.append(Kind("photo with a 300-character name", lambda p: reconstruct(
        [photo.with_name("p" * 300 + ".jpg")], out, progress=p), word="could not be opened", before_work=False))
    photos(f"{pipeline.MAX_PHOTOS + 1} paths", [f"/nowhere/p{i}.jpg" for i in range(pipeline.MAX_PHOTOS + 1)],
           f"at most {pipeline.MAX_PHOTOS}")
    photos("300 paths", [f"/nowhere/p{i}.jpg" for i in range(300)], "20-80")
    photos("70 x 81 MP", sorted(f["huge_dir"].iterdir()), "gigapixels")
    # Bad files (tests/badinputs.py): refused while reading, with the file's name.
    for label in ("empty", "text_as_jpg", "truncated", "tiny", "bomb", "missing"):
        kinds.append(Kind(f"file {label}", lambda p, q=f[label]: reconstruct(q, out, progress=p),
                          word=EXPECTED[label].words, before_work=False))
    kinds.append(Kind("file blank (no object)", lambda p: reconstruct([f["blank"]], out, Options(quality="fast"),
                                                                      progress=p, device="cpu"),
                      error=CaptureError, word=EXPECTED["blank"].words, before_work=False))

    # Output paths: a folder, under a file, where no file can be made, wrong names.
    def output(label: str, value, word: str) -> None:
        kinds.append(Kind(f"out={label}", lambda p: reconstruct([photo], value, progress=p), word=word))

    output("existing folder", f["a_folder"], "folder")
    output("under a file", f["a_file"] / "model.glb", "is a file")
    output("deep under a file", f["a_file"] / "a" / "b" / "model.glb", "is a file")
    output("/proc", Path("/proc/plinth-no/model.glb"), "does not accept")
    output(".obj", f["out"].with_suffix(".obj"), ".glb")
    output("no suffix", f["out"].with_suffix(""), ".glb")
    output("None", None, ".glb")
    output("int", 5, ".glb")
    output("NUL", str(f["out"]).replace("model", "mo\0del"), "nul")
    output("300-character name", f["out"].with_name("m" * 300 + ".glb"), "too long")

    # Devices: unknown, not text, a GPU this machine does not have.
    import torch

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    bad_devices = {"bogus": "bogus", "''": "device", "0": "device", "['cpu']": "device", "meta": "meta",
                   f"cuda:{gpus + 6}": "no gpu", "cuda:-1": "device"}
    if gpus == 0:  # on a GPU machine these are good devices; there one past the count stands in
        bad_devices.update({"cuda": "no gpu", "cuda:0": "no gpu"})
    values = {"''": "", "0": 0, "['cpu']": ["cpu"]}
    for label, word in bad_devices.items():
        dev = values.get(label, label)
        kinds.append(Kind(f"device={label}", lambda p, d=dev: reconstruct([photo], out, progress=p, device=d),
                          word=word))

    # A cap above the floor that this model still cannot meet: refused before any file is written.
    kinds.append(Kind("max_megabytes=0.03 for a 100,000-triangle budget", lambda p: reconstruct(
        [photo], out, Options(quality="fast", texture_size=256, max_megabytes=0.03), progress=p, device="cpu"),
        error=CaptureError, word="mb", before_work=False))
    return kinds


def cli_kinds(f: dict[str, Path]) -> list[CliKind]:
    photo, out = str(f["photo"]), str(f["out"])
    base = ["make", photo, "--out", out, "-q"]
    kinds: list[CliKind] = []
    sizes = {"-5cm": "more than zero", "-0cm": "more than zero", "0cm": "more than zero", "-5": "more than zero",
             "nan cm": "nan cm", "inf m": "inf m", "1e400m": "1e400m", "": "empty", "5 parsecs": "parsecs",
             "abc": "abc", "2mm": "2mm", "30m": "30m", "-inf": "-inf", "1.5.2m": "1.5.2m"}
    for axis in ("--height", "--width", "--depth"):
        for text, word in sizes.items():
            kinds.append(CliKind(f"{axis} {text!r}", [*base, axis, text], word))
    kinds.append(CliKind("--height=-5cm", [*base, "--height=-5cm"], "more than zero"))
    kinds.append(CliKind("--height then --width", [*base, "--height", "5cm", "--width", "5cm"], "not allowed"))
    kinds.append(CliKind("--height at the end", [*base, "--height"], "expected one argument"))
    kinds.append(CliKind("--height -q", ["make", photo, "--out", out, "--height", "-q"], "expected one argument"))
    for text, word in {"nan": "megabytes", "inf": "megabytes", "-inf": "megabytes", "1e400": "megabytes",
                       "abc": "megabytes", "": "megabytes", "0": "0.03", "-1": "0.03", "0.001": "0.03"}.items():
        kinds.append(CliKind(f"--max-mb {text!r}", [*base, "--max-mb", text], word))
    for text, word in {"0": "triangle", "-5": "triangle", "999": "triangle", "10000000": "triangle",
                       "1e9": "whole number", "abc": "whole number", "": "whole number", "1.5": "whole number"}.items():
        kinds.append(CliKind(f"--max-triangles {text!r}", [*base, "--max-triangles", text], word))
    for text, word in {"300": "invalid choice", "abc": "whole number", "-512": "invalid choice"}.items():
        kinds.append(CliKind(f"--texture-size {text!r}", [*base, "--texture-size", text], word))
    for dev, word in {"bogus": "bogus", "cuda:99": "no gpu", "meta": "meta", "": "device"}.items():
        kinds.append(CliKind(f"--device {dev!r}", [*base, "--device", dev], word))
    import torch

    if not torch.cuda.is_available():  # the probe; on a GPU machine cuda:99 above stands in
        kinds.append(CliKind("--device cuda", [*base, "--device", "cuda"], "no gpu"))
    kinds += [
        CliKind("--kind blob", [*base, "--kind", "blob"], "kind"),
        CliKind("--placement ceiling", [*base, "--placement", "ceiling"], "placement"),
        CliKind("--quality ultra", [*base, "--quality", "ultra"], "quality"),
        CliKind("unknown option", [*base, "--colour", "red"], "unrecognized"),
        CliKind("no --out", ["make", photo], "--out"),
        CliKind("no photo", ["make", "--out", out], "photo"),
        CliKind("no command", [], "command"),
        CliKind("--out .obj", ["make", photo, "--out", str(f["out"].with_suffix(".obj"))], ".glb"),
        CliKind("--out folder", ["make", photo, "--out", str(f["a_folder"])], "folder"),
        CliKind("--out under a file", ["make", photo, "--out", str(f["a_file"] / "m.glb")], "is a file"),
        CliKind("--out in /proc", ["make", photo, "--out", "/proc/plinth-no/m.glb"], "does not accept"),
        CliKind("photo twice", ["make", photo, photo, "--out", out], "twice"),
        CliKind("photo is a folder", ["make", str(f["a_folder"]), "--out", out, "-q"], "folder"),
        CliKind(f"{pipeline.MAX_PHOTOS + 1} photos",
                ["make", *[f"/nowhere/p{i}.jpg" for i in range(pipeline.MAX_PHOTOS + 1)], "--out", out], "20-80"),
        CliKind("70 x 81 MP photos", ["make", *map(str, sorted(f["huge_dir"].iterdir())), "--out", out],
                "gigapixels"),
    ]
    for label in ("empty", "text_as_jpg", "truncated", "tiny", "bomb", "missing"):
        # -q: without it the progress lines come first on stderr, as they should
        kinds.append(CliKind(f"file {label}", ["make", str(f[label]), "--out", out, "-q"], EXPECTED[label].words))
    return kinds


def _api_problem(kind: Kind) -> str | None:
    """None when the kind behaved; else what went wrong."""
    calls: list[str] = []
    try:
        kind.run(lambda stage, fraction, message: calls.append(stage))
    except PlinthError as error:
        text = str(error)
        if not isinstance(error, kind.error):
            return f"{type(error).__name__}, not {kind.error.__name__}: {text}"
        if not text.strip() or "\n" in text or "Traceback" in text:
            return f"not one plain line: {text!r}"
        if kind.word not in text.lower():
            return f"{kind.word!r} not in {text!r}"
        if kind.before_work and calls:
            return f"refused only after work started ({calls[0]}): {text}"
        return None
    except Exception as error:  # the very thing the corpus hunts: a raw exception escaping
        return f"raw {type(error).__name__}: {error}"
    return "no error at all"


def _cli_problem(kind: CliKind, capsys) -> str | None:
    capsys.readouterr()
    try:
        code = main(kind.argv)
    except SystemExit as stop:  # argparse's own refusals
        code = stop.code
    except Exception as error:
        return f"raw {type(error).__name__}: {error}"
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    if "Traceback" in captured.err + captured.out:
        return f"traceback: {captured.err[-300:]}"
    if code != kind.code:
        return f"exit {code}, not {kind.code}: {captured.err.strip()!r}"
    if len(lines) != 1 or not lines[0].startswith("plinth: "):
        return f"not one 'plinth:' line: {captured.err!r}"
    if kind.word not in lines[0].lower():
        return f"{kind.word!r} not in {lines[0]!r}"
    return None


def test_bad_input_corpus_gets_one_clear_line_each(files, capsys):
    t0 = time.perf_counter()
    api, cli = api_kinds(files), cli_kinds(files)
    assert len({k.label for k in api}) == len(api) and len({k.label for k in cli}) == len(cli)  # no repeats
    problems = [f"API {k.label}: {p}" for k in api if (p := _api_problem(k))]
    problems += [f"CLI {k.label}: {p}" for k in cli if (p := _cli_problem(k, capsys))]
    assert problems == [], "\n".join(problems)
    assert not files["out"].parent.exists()  # no kind wrote a model, or even its folder
    n = len(api) + len(cli)
    assert n >= 60
    with capsys.disabled():
        print(f"\nbad-input corpus: {n} kinds ({len(api)} API, {len(cli)} CLI), 0 tracebacks, "
              f"{time.perf_counter() - t0:.1f} s")


#: A sample through a real process: the console entry point, argparse and the exit code as a shell sees them.
SUBPROCESS_SAMPLE = [
    (["--device", "bogus"], 2, "bogus"),
    (["--max-mb", "nan"], 2, "megabytes"),
    (["--max-mb", "0"], 2, "0.03"),
    (["--height", "-5cm"], 2, "more than zero"),
    (["--max-triangles", "0"], 2, "triangle"),
    (["--width", "5 parsecs"], 2, "parsecs"),
]


def test_console_sample_gets_one_line_and_exit_2(files):
    for extra, code, word in SUBPROCESS_SAMPLE:
        proc = subprocess.run([sys.executable, "-m", "pipeline", "make", str(files["photo"]), "--out",
                               str(files["out"]), *extra], capture_output=True, text=True, timeout=120, cwd=ROOT)
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert "Traceback" not in proc.stderr, (extra, proc.stderr)
        assert proc.returncode == code, (extra, proc.returncode, proc.stderr)
        assert len(lines) == 1 and lines[0].startswith("plinth: ") and word in lines[0].lower(), (extra, lines)
    assert not files["out"].parent.exists()


def test_one_path_is_one_photo_not_its_characters(files, tmp_path):
    """A str (or Path) given instead of a list is the one photo it names: the model is made."""
    stages: list[str] = []
    result = reconstruct(str(files["photo"]), tmp_path / "one.glb", Options(quality="fast", texture_size=256),
                         progress=lambda s, f, m: stages.append(s), device="cpu")
    assert Path(result.exports.glb).is_file() and result.report.photos_total == 1
    assert "segment" in stages  # it got past reading: one photo, not len(path) missing files
