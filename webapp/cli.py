"""The `plinth` console script: the library's `make`, plus `make --publish` and `serve`.

    plinth make vase.jpg --out out/vase.glb --height 30cm --publish --name "Blue vase"
                                             # a model that fails the quality checks: exit code 4,
                                             # not published (--keep-failed keeps its files)
    plinth make vase.jpg --out out/vase.glb --height 30cm --server URL --token T   # on a server, by its API
    plinth serve --port 8501
    plinth doctor [--repair]                 # check (and fix) the data folder
    plinth backup library.tar                # the whole library, safe while the server runs
    plinth restore library.tar [--force]
    plinth user add EMAIL [--owner] [--name N] [--password-stdin]   # also: user list, remove, passwd
    plinth worker [--queue gpu|cpu] [--device cuda:0|cpu] [--burst] [--name N]   # with PLINTH_QUEUE=redis://...
    plinth status [--json]                   # workers, queues, jobs waiting or running

Everything about `make` comes from pipeline/cli.py; only publishing into the library and the
server live here, because they need the web app (the library must work without it).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pipeline import PlinthError, Result, Verdict, format_size
from pipeline import cli as pipeline_cli

from . import settings, user_cli, worker_cli


def _add_publish(make: argparse.ArgumentParser) -> None:
    make.add_argument("--publish", action="store_true",
                      help="add the model to the library (PLINTH_DATA_DIR) and print its share link")
    make.add_argument("--server", metavar="URL", default=os.environ.get("PLINTH_SERVER", ""),
                      help="make it on this Plinth server through its API instead (e.g. https://3d.myshop.example); "
                           "the files are downloaded beside --out and the share link printed")
    make.add_argument("--token", metavar="TOKEN", default=os.environ.get("PLINTH_TOKEN", ""),
                      help="the API token for --server (default $PLINTH_TOKEN; Settings > API access)")


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
    user_cli.add_parser(sub)
    worker_cli.add_parsers(sub)
    return parser


NOT_PUBLISHED = ("plinth: not published: this model failed Plinth's quality checks, so it would show "
                 "customers a wrong copy of the item. Re-shoot the photos named above and make it again.")


def cmd_make(args: argparse.Namespace) -> int:
    if args.server:
        return make_on_server(args)
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


def make_on_server(args: argparse.Namespace) -> int:
    """`make --server URL --token T`: upload, follow the job in plain words, download the files."""
    from . import client

    out = Path(args.out)
    if out.suffix.lower() != ".glb":
        raise PlinthError("options", f"--out must name a .glb file, not '{out.name}'.")
    axis = next((a for a in ("height", "width", "depth") if getattr(args, a)), "height")
    api = client.Client(args.server, args.token)
    seen: set[str] = set()

    def progress(job: dict) -> None:  # each step once, as the job record words it
        if not args.quiet and job["stage_words"] not in seen:
            seen.add(job["stage_words"])
            print(f"  {job['stage_words']}", file=sys.stderr, flush=True)

    try:
        accepted = api.submit([Path(p) for p in args.photos], name=args.name or out.stem, size=getattr(args, axis),
                              axis=axis, kind=args.kind, placement=args.placement, quality=args.quality)
        for warning in accepted.get("warnings", ()):
            print(f"  note     {warning}")
        try:
            job = api.wait(accepted["job_id"], on_progress=progress)
        except client.FailedChecks as failed:
            print(f"Verdict: failed. {failed.message}")
            return pipeline_cli.EXIT_FAILED_MODEL
        model = job["model"]
        print("Verdict: usable, with warnings." if model["verdict"] == "warnings" else
              f"Verdict: {model['verdict'] or 'made'}.")
        for warning in model["warnings"]:
            print(f"  warning  {warning}")
        size = model["dimensions_m"]
        print(f"  size     {format_size(size['width'])} W x {format_size(size['height'])} H x "
              f"{format_size(size['depth'])} D")
        for path in api.download(model, out):
            print(f"  file     {path}")
    finally:
        api.close()
    print(f"Share link: {model['share_url']}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from . import storage
    from .server import serve

    storage.check()  # $PLINTH_STORAGE: a missing bucket or folder is one plain line now, not a failed upload later
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
            "restore": cmd_restore, "user": user_cli.run, "worker": worker_cli.cmd_worker,
            "status": worker_cli.cmd_status}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return pipeline_cli.run(COMMANDS[args.command], args)


if __name__ == "__main__":
    raise SystemExit(main())
