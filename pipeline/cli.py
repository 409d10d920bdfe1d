"""The library's command line: `python -m pipeline make PHOTO... --out MODEL.glb`.

The `plinth` console script (webapp/cli.py) builds on the pieces here and adds what needs the
web app, `make --publish` and `serve`; this module never imports the web app, so the library
works without Streamlit installed.

Every user mistake ends in one plain line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

from pipeline import (
    QUALITIES,
    SINGLE_VIEW_KINDS,
    Cancelled,
    CaptureError,
    MIN_MEGABYTES,
    KnownSize,
    Options,
    PlinthError,
    Result,
    format_size,
    parse_size,
    reconstruct,
)

EXIT_BAD_INPUT = 2
EXIT_CAPTURE = 3
EXIT_INTERRUPTED = 130


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
    make = sub.add_parser("make", help="make a 3D model from one photo or 20-80 photos around the item")
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


def make(args: argparse.Namespace) -> Result:
    """Run `make` with parsed arguments: reconstruct, print where the files are, return the Result."""
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
    report = result.report
    w, h, d = report.dimensions_m
    print(f"Made {result.exports.glb} in {time.perf_counter() - t0:.1f} s")
    print(f"  size     {format_size(w)} W x {format_size(h)} H x {format_size(d)} D")
    print(f"  model    {report.triangles:,} triangles, {report.glb_bytes / 1e6:.2f} MB, "
          f"{report.texture_size} px texture, kind {report.kind}")
    print(f"  USDZ     {result.exports.usdz}")
    print(f"  OBJ zip  {result.exports.obj_zip}")
    print(f"  poster   {result.exports.poster}")
    print(f"  report   {result.report_path}")
    for line in (*report.advice, *report.warnings):
        print(f"  note     {line}")
    return result


def cmd_make(args: argparse.Namespace) -> int:
    make(args)
    return 0


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
