"""The `plinth` console script: the library's `make`, plus `make --publish` and `serve`.

    plinth make vase.jpg --out out/vase.glb --height 30cm --publish --name "Blue vase"
    plinth serve --port 8501

Everything about `make` comes from pipeline/cli.py; only publishing into the library and the
server live here, because they need the web app (the library must work without it).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline import cli as pipeline_cli

from . import settings


def _add_publish(make: argparse.ArgumentParser) -> None:
    make.add_argument("--publish", action="store_true",
                      help="add the model to the library (PLINTH_DATA_DIR) and print its share link")


def build_parser() -> argparse.ArgumentParser:
    parser, sub = pipeline_cli.new_parser()
    pipeline_cli.add_make_command(sub, more=_add_publish)
    serve = sub.add_parser("serve", help="start the web app and the AR share pages")
    serve.add_argument("--host", default="localhost")
    serve.add_argument("--port", type=int, default=settings.DEFAULT_PORT)
    return parser


def cmd_make(args: argparse.Namespace) -> int:
    result = pipeline_cli.make(args)
    if args.publish:
        from .library import publish  # no Streamlit import: the library is plain SQLite + files

        url = publish(result, name=args.name or Path(args.out).stem, photos=[Path(p) for p in args.photos],
                      placement=args.placement)
        print(f"Share link: {url}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .server import serve

    serve(host=args.host, port=args.port)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return pipeline_cli.run(cmd_make if args.command == "make" else cmd_serve, args)


if __name__ == "__main__":
    raise SystemExit(main())
