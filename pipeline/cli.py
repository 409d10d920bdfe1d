"""The library's command line: `python -m pipeline make PHOTO... --out MODEL.glb`.

The `plinth` console script (webapp/cli.py) builds on the pieces here and adds what needs the
web app, `make --publish` and `serve`; this module never imports the web app, so the library
works without Streamlit installed.

Every user mistake ends in one plain line on stderr and a non-zero exit code, never a traceback.
A model the quality gate calls "failed" is a result, not a mistake: its verdict, what went wrong
and the photos to re-shoot go to stdout, its files are removed (unless --keep-failed) and the
exit code is EXIT_FAILED_MODEL.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

from pipeline import (
    MIN_MEGABYTES,
    QUALITIES,
    SINGLE_VIEW_KINDS,
    Cancelled,
    CaptureError,
    KnownSize,
    Options,
    PlinthError,
    QualityReport,
    Result,
    Verdict,
    format_size,
    parse_size,
    reconstruct,
)

EXIT_BAD_INPUT = 2
EXIT_CAPTURE = 3
#: The model was made but failed Plinth's quality checks (its files removed unless --keep-failed).
EXIT_FAILED_MODEL = 4
EXIT_INTERRUPTED = 130

EXIT_CODES_HELP = (
    "exit codes: 0 model made (good, or usable with warnings); 2 bad input or options; "
    "3 the photos cannot make a model (re-shoot advice printed); "
    f"{EXIT_FAILED_MODEL} the model was made but failed Plinth's quality checks (what went wrong and the "
    "photos to re-shoot are printed; its files are removed unless --keep-failed); 130 stopped"
)


#: Options whose value may start with '-' ("--height -5cm"): argparse would take it for an
#: option and say "expected one argument"; joined as "--height=-5cm" it reaches our own check,
#: which says what is wrong with it ("The size must be more than zero").
_VALUE_OPTIONS = ("--height", "--width", "--depth", "--max-mb", "--max-triangles", "--texture-size")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        # One plain line (argparse would print the usage block first): --help has the rest.
        sys.stderr.write(f"plinth: {message} (see '{self.prog} --help')\n")
        raise SystemExit(EXIT_BAD_INPUT)

    def parse_known_args(self, args=None, namespace=None):
        args = sys.argv[1:] if args is None else list(args)
        return super().parse_known_args(_join_dash_values(args, self._option_string_actions), namespace)


def _join_dash_values(args: list[str], options: dict) -> list[str]:
    """'--height', '-5cm' -> '--height=-5cm' for this parser's value options, unless the next
    word is itself one of its options ('--height -q' stays a missing value)."""
    out, i = [], 0
    while i < len(args):
        word = args[i]
        nxt = args[i + 1] if i + 1 < len(args) else None
        if (word in _VALUE_OPTIONS and word in options and isinstance(nxt, str) and nxt.startswith("-")
                and nxt.split("=")[0] not in options):
            out.append(f"{word}={nxt}")
            i += 2
        else:
            out.append(word)
            i += 1
    return out


def _megabytes(text: str) -> float:
    """--max-mb: a plain number of megabytes (Options.check decides whether it is big enough)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of megabytes; write it like 5 or 2.5") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of megabytes; write it like 5 or 2.5")
    return value


def _whole_number(text: str) -> int:
    """--max-triangles and --texture-size: a whole number ('100000' or '100_000')."""
    try:
        return int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None


def new_parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    """The `plinth` parser and its (still empty) set of commands."""
    parser = _Parser(prog="plinth", description="Turn product photos into AR-ready 3D models.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    return parser, sub


def add_make_command(
    sub: argparse._SubParsersAction,
    more: Callable[[argparse.ArgumentParser], None] | None = None,
) -> argparse.ArgumentParser:
    """Add `make` and its options. `more` adds options of its own before --name (the web app's
    --publish), so that usage lines and help read as they always did."""
    make = sub.add_parser("make", help="make a 3D model from one photo or 20-80 photos around the item",
                          epilog=EXIT_CODES_HELP)
    make.add_argument("photos", nargs="+", metavar="PHOTO", help="JPEG, PNG, WebP or HEIC photos")
    make.add_argument("--out", "-o", required=True, metavar="MODEL.glb", help="where to write the GLB")
    size = make.add_mutually_exclusive_group()
    size.add_argument("--height", metavar="SIZE", help="real height, e.g. 80cm, 0.8m or 31.5in")
    size.add_argument("--width", metavar="SIZE", help="real width (left to right)")
    size.add_argument("--depth", metavar="SIZE", help="real depth (front to back)")
    make.add_argument("--kind", default="auto", choices=("auto", *SINGLE_VIEW_KINDS),
                      help="shape for a single photo: flat (art, mirror, rug), box, revolve (vase, lamp), "
                           "round (cushion, bag); default: chosen from the outline")
    make.add_argument("--placement", default="floor", choices=("floor", "wall"),
                      help="where the item goes in AR (wall: art and mirrors)")
    make.add_argument("--quality", default="balanced", choices=QUALITIES)
    make.add_argument("--texture-size", type=_whole_number, default=2048, choices=(512, 1024, 2048, 4096))
    make.add_argument("--max-triangles", type=_whole_number, default=100_000,
                      help="triangle budget, 1,000 to 1,000,000 (default 100,000)")
    make.add_argument("--max-mb", type=_megabytes, default=5.0,
                      help=f"GLB size cap in MB (default 5, at least {MIN_MEGABYTES})")
    make.add_argument("--device", default=None, help="torch device (default: cuda if present, else cpu)")
    make.add_argument("--quiet", "-q", action="store_true", help="print only the result")
    make.add_argument("--keep-failed", action="store_true",
                      help="keep the files of a model that fails the quality checks, to look at it "
                           f"(the exit code is still {EXIT_FAILED_MODEL}, and a failed model is never published)")
    if more is not None:
        more(make)
    make.add_argument("--name", default="", help="product name shown on the share page")
    return make


def build_parser() -> argparse.ArgumentParser:
    parser, sub = new_parser()
    add_make_command(sub)
    return parser


def _known_size(args: argparse.Namespace) -> KnownSize | None:
    for axis in ("height", "width", "depth"):
        value = getattr(args, axis)
        if value is not None:
            return KnownSize(axis, parse_size(value))
    return None


def _progress_printer(quiet: bool):
    last = {"stage": None}

    def progress(stage: str, fraction: float, message: str) -> None:
        if quiet:
            return
        if stage != last["stage"]:
            last["stage"] = stage
            print(f"  {stage:<9} {message}", file=sys.stderr, flush=True)

    return progress


def make(args: argparse.Namespace) -> tuple[Result, int]:
    """Run `make` with parsed arguments: reconstruct, print the verdict and where the files are.

    Returns the Result and the exit code (0, or EXIT_FAILED_MODEL with the files removed unless
    --keep-failed)."""
    options = Options(
        kind=args.kind,
        placement=args.placement,
        size=_known_size(args),
        name=args.name,
        quality=args.quality,
        texture_size=args.texture_size,
        max_triangles=args.max_triangles,
        max_megabytes=args.max_mb,
    )
    out = Path(args.out)
    if out.suffix.lower() != ".glb":
        raise PlinthError("options", f"--out must name a .glb file, not '{out.name}'.")
    # No mkdir here: reconstruct checks the path first (a folder, a file as parent, a read-only
    # disk) and export makes missing folders only once there is a model to write.
    t0 = time.perf_counter()
    result = reconstruct(args.photos, out, options, progress=_progress_printer(args.quiet), device=args.device)
    return result, present(result, keep_failed=args.keep_failed, seconds=time.perf_counter() - t0)


def verdict_words(report: QualityReport) -> str:
    """The verdict as the first line the merchant reads."""
    if report.verdict is Verdict.FAILED:
        return ("Verdict: failed. This model is not a faithful copy of the item, so do not use it as it is: "
                "re-shoot the photos named below.")
    if report.verdict is Verdict.WARNINGS:
        return "Verdict: usable, with warnings. Read them before you use the model."
    if not report.evidence:  # no check ran: "good" would claim more than anyone knows
        return "Verdict: made, but not checked (no quality check ran on this model)."
    return f"Verdict: good. All {len(report.evidence)} quality checks passed."


def reshoot_photos(report: QualityReport) -> tuple[str, ...]:
    """The merchant's photo file names worth re-shooting: the gate's list, else those its failed
    and warned checks name."""
    if report.reshoot:
        return tuple(report.reshoot)
    named = (p for e in report.evidence if e.outcome is not Verdict.GOOD for p in e.photos)
    return tuple(dict.fromkeys(named))


def present(result: Result, *, keep_failed: bool, seconds: float) -> int:
    """Print the verdict first, then its reasons and the files; remove a failed model's files
    unless `keep_failed`. Returns the exit code (0 or EXIT_FAILED_MODEL)."""
    report, exports = result.report, result.exports
    failed = report.verdict is Verdict.FAILED
    print(verdict_words(report))
    for outcome, label in ((Verdict.FAILED, "problem"), (Verdict.WARNINGS, "warning")):
        for evidence in report.evidence:
            if evidence.outcome is outcome and evidence.message:
                print(f"  {label:<8} {evidence.message}")
    photos = reshoot_photos(report)
    if photos:
        print(f"  re-shoot {', '.join(photos)}")
    model_files = (exports.glb, exports.usdz, exports.obj_zip, exports.poster)
    if failed and not keep_failed:
        for path in model_files:
            Path(path).unlink(missing_ok=True)
        print("Removed the model's files: they would show a wrong copy of the item. "
              "Run again with --keep-failed to keep them and look at them.")
    else:
        w, h, d = report.dimensions_m
        print(f"{'Kept the failed model' if failed else 'Made'} {exports.glb} in {seconds:.1f} s")
        print(f"  size     {format_size(w)} W x {format_size(h)} H x {format_size(d)} D")
        print(f"  model    {report.triangles:,} triangles, {report.glb_bytes / 1e6:.2f} MB, "
              f"{report.texture_size} px texture, kind {report.kind}")
        print(f"  USDZ     {exports.usdz}")
        print(f"  OBJ zip  {exports.obj_zip}")
        print(f"  poster   {exports.poster}")
    print(f"  report   {result.report_path}")
    for line in (*report.advice, *report.warnings):
        print(f"  note     {line}")
    return EXIT_FAILED_MODEL if failed else 0


def cmd_make(args: argparse.Namespace) -> int:
    return make(args)[1]


def run(command: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run one command, turning every failure the user can act on into one line and an exit code."""
    try:
        return command(args)
    except PlinthError as error:
        print(f"plinth: {error}", file=sys.stderr)
        return EXIT_CAPTURE if isinstance(error, CaptureError) else EXIT_BAD_INPUT
    except (Cancelled, KeyboardInterrupt):
        print("plinth: stopped.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MemoryError:
        print("plinth: ran out of memory: try --quality fast or fewer photos.", file=sys.stderr)
        return EXIT_CAPTURE
    except OSError as error:  # disk full, unwritable --out folder, ...
        print(f"plinth: could not write the files: {error.strerror or error}", file=sys.stderr)
        return EXIT_BAD_INPUT


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run(cmd_make, args)


if __name__ == "__main__":
    raise SystemExit(main())
