"""The `plinth` console script: the library's `make`, plus `make --publish` and `serve`.

    plinth make vase.jpg --out out/vase.glb --height 30cm --publish --name "Blue vase"
                                             # a model that fails the quality checks: exit code 4,
                                             # not published (--keep-failed keeps its files)
    plinth serve --port 8501
    plinth doctor [--repair]                 # check (and fix) the data folder
    plinth backup library.tar                # the whole library, safe while the server runs
    plinth restore library.tar [--force]

Everything about `make` comes from pipeline/cli.py; only publishing into the library and the
server live here, because they need the web app (the library must work without it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline import Result, Verdict
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
    doctor = sub.add_parser("doctor", help="check the data folder (PLINTH_DATA_DIR); --repair fixes what it can")
    doctor.add_argument("--repair", action="store_true",
                        help="rebuild a damaged database, register lost models, remove dead rows and leftovers")
    backup = sub.add_parser("backup", help="write the whole library (database and model files) to one tar file")
    backup.add_argument("out", help="the backup file to write, e.g. library.tar")
    restore = sub.add_parser("restore", help="restore a backup made by plinth backup into the data folder")
    restore.add_argument("archive", help="the backup file")
    restore.add_argument("--force", action="store_true",
                         help="restore into a non-empty data folder (its contents are moved aside, not deleted)")
    return parser


NOT_PUBLISHED = ("plinth: not published: this model failed Plinth's quality checks, so it would show "
                 "customers a wrong copy of the item. Re-shoot the photos named above and make it again.")


def cmd_make(args: argparse.Namespace) -> int:
    result, code = pipeline_cli.make(args)
    return publish_made(result, code, args) if args.publish else code


def publish_made(result: Result, code: int, args: argparse.Namespace) -> int:
    """--publish after `make`: into the library with its share link, unless the model failed its
    quality checks (then say why, publish nothing, and keep `code`)."""
    if code == pipeline_cli.EXIT_FAILED_MODEL or result.report.verdict is Verdict.FAILED:
        print(NOT_PUBLISHED, file=sys.stderr)
        return pipeline_cli.EXIT_FAILED_MODEL
    # No Streamlit import: the library is plain SQLite + files.
    from . import accounts
    from .library import publish

    owner = accounts.owner_account(settings.data_dir())  # None before the first account: it takes the model then
    url = publish(result, name=args.name or Path(args.out).stem, photos=[Path(p) for p in args.photos],
                  placement=args.placement, owner=owner.id if owner else "")
    print(f"Share link: {url}")
    return code


def cmd_serve(args: argparse.Namespace) -> int:
    from .server import serve

    serve(host=args.host, port=args.port)
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from . import doctor

    lines, left = doctor.check(settings.data_dir(), repair=args.repair)
    print("\n".join(lines))
    return 1 if left else 0


def cmd_backup(args: argparse.Namespace) -> int:
    from . import backup

    count = backup.backup(settings.data_dir(), Path(args.out))
    print(f"Backed up {count} model{'s' if count != 1 else ''} to {args.out}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from . import backup

    archive = Path(args.archive)
    if not archive.is_file():
        why = "is a folder" if archive.is_dir() else "does not exist"
        print(f"plinth: {args.archive} {why}: give the file made by plinth backup.", file=sys.stderr)
        return pipeline_cli.EXIT_BAD_INPUT
    data = settings.data_dir()
    count = backup.restore(archive, data, force=args.force)
    print(f"Restored {count} model{'s' if count != 1 else ''} into {data}")
    return 0


COMMANDS = {"make": cmd_make, "serve": cmd_serve, "doctor": cmd_doctor, "backup": cmd_backup,
            "restore": cmd_restore}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return pipeline_cli.run(COMMANDS[args.command], args)


if __name__ == "__main__":
    raise SystemExit(main())
