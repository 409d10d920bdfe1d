"""Probes of the library's data safety: a damaged database, a full disk, a killed `--publish`."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import time
from pathlib import Path

from bench.faults_lib import (
    MODEL_FILES,
    ROOT,
    Context,
    Probe,
    Server,
    copy_library,
    count_tracebacks,
    db_rows,
    env_for,
    library_template,
    make_cmd,
    model_folders,
    one_line,
    serving,
)

DB = "plinth.sqlite3"
PAGE = 4096


def _damage(data: Path, kind: str) -> None:
    """Hurt the stopped server's database one way (names as in the table)."""
    db = data / DB
    size = db.stat().st_size if db.exists() else 0
    if kind == "emptied":
        db.write_bytes(b"")
    elif kind == "deleted":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    elif kind == "garbage":
        db.write_bytes(os.urandom(size))
    elif kind == "bad header":
        with open(db, "r+b") as fh:
            fh.write(os.urandom(100))  # the 100-byte header: magic, page size, counters
    elif kind == "half":
        os.truncate(db, size // 2)
    elif kind == "text file":
        db.write_text("This is not a database, it is a note a merchant saved over it.\n" * 50)
    elif kind == "garbage page":
        pages = max(size // PAGE, 1)
        with open(db, "r+b") as fh:
            fh.seek((pages // 2) * PAGE)
            fh.write(os.urandom(PAGE))
    else:
        raise ValueError(kind)


DAMAGE_KINDS = ("emptied", "deleted", "garbage", "bad header", "half", "text file", "garbage page")
QUICK_DAMAGE = ("emptied", "deleted", "garbage")  # the three the "done when" names


def database_wipe(ctx: Context) -> Probe:
    kinds = QUICK_DAMAGE if ctx.quick else DAMAGE_KINDS
    probe = Probe("database wipe", f"5 models; stop; plinth.sqlite3 {', '.join(kinds)}; restart",
                  "all 5 links and GLBs 200, no traceback, no folder deleted")
    template = library_template(ctx, 5)
    for kind in kinds:
        work = ctx.workdir(f"wipe-{kind.replace(' ', '-')}")
        data = work / "data"
        ids = copy_library(template, data)
        server = Server(data, work / "logs")
        with server:
            why = server.start()
            if why:
                probe.fail(f"{kind}: could not start on the intact library: {why}")
                continue
            ok, _ = serving(server, ids)
            if ok != len(ids):
                probe.fail(f"{kind}: only {ok} of {len(ids)} served before the damage")
                continue
            server.stop()
            before = model_folders(data)
            _damage(data, kind)
            why = server.start()
            if why:
                probe.fail(f"{kind}: {why}")
                gone = len(before - model_folders(data))
                probe.lost += max(len(ids), gone)
                probe.tracebacks += server.tracebacks()
                continue
            time.sleep(2.0)  # let any start-up clean-up finish before counting folders
            ok, bad = serving(server, ids)
            gone = len(before - model_folders(data))
            tb = count_tracebacks(server.log_text(2))
            probe.tracebacks += tb
            probe.lost += max(len(ids) - ok, gone)
            probe.check(ok == len(ids), f"{kind}: {ok}/{len(ids)} served" + (f" ({bad[0]})" if bad else ""))
            probe.check(gone == 0, f"{kind}: {gone} model folders deleted")
            probe.check(tb == 0, f"{kind}: {tb} tracebacks in the log")
    return probe


# ---------------------------------------------------------------- full disk

DISK_MB = 48


def _fill(path: Path) -> int:
    """Write `path` until the disk is full; returns the bytes left free (0 when it worked)."""
    with open(path, "wb", buffering=0) as fh:
        for chunk in (1 << 20, 1 << 12, 1):
            block = b"\0" * chunk
            while True:
                try:
                    fh.write(block)
                except OSError as error:
                    if error.errno != errno.ENOSPC:
                        raise
                    break
    st = os.statvfs(path.parent)
    return st.f_bavail * st.f_frsize


def full_disk(ctx: Context) -> Probe:
    probe = Probe("full disk", f"5 models on a {DISK_MB} MB tmpfs, filled to 0 free; 20 GETs each; make --publish",
                  "links and GLBs 200, no traceback, publish fails in one plain line, no partial folder")
    template = library_template(ctx, 5)
    work = ctx.workdir("full-disk")
    disk = work / "disk"
    disk.mkdir()
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs", str(disk)],
                           capture_output=True, text=True, timeout=30, check=False)
    if mount.returncode != 0:
        probe.fail(f"mount not allowed: {one_line(mount.stderr)}")
        return probe
    try:
        _full_disk_checks(ctx, probe, template, work, disk)
    finally:
        for proc_pid in _users_of(disk):  # nothing may hold the mount when it goes
            os.kill(proc_pid, signal.SIGKILL)
        if subprocess.run(["umount", str(disk)], capture_output=True, timeout=30, check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(disk)], capture_output=True, timeout=30, check=False)
    return probe


def _users_of(mount: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if str(mount) in os.readlink(entry / "cwd") or any(
                        str(mount) in os.readlink(fd) for fd in (entry / "fd").iterdir()):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _full_disk_checks(ctx: Context, probe: Probe, template: Path, work: Path, disk: Path) -> None:
    data = disk / "data"
    ids = copy_library(template, data)
    with Server(data, work / "logs") as server:
        why = server.start()
        if why:
            probe.fail(f"could not start on the tmpfs: {why}")
            return
        ok, _ = serving(server, ids)
        if not probe.check(ok == len(ids), f"{ok}/{len(ids)} served before filling the disk"):
            return
        free = _fill(disk / "filler.bin")
        probe.check(free == 0, f"{free} bytes still free after filling")
        tb_full = count_tracebacks(server.log_text())
        statuses: dict[str, list] = {"ar": [], "glb": []}
        for i in range(20):
            sid = ids[i % len(ids)]
            statuses["ar"].append(server.get(f"/ar/{sid}"))
            statuses["glb"].append(server.get(f"/models/{sid}/model.glb"))
        for what, codes in statuses.items():
            good = sum(c == 200 for c in codes)
            probe.check(good == 20, f"{what}: {good}/20 answered 200" + ("" if good == 20 else f" (saw {sorted(set(map(str, codes)))})"))
        time.sleep(5.0)  # the workers keep polling the queue: count what they log meanwhile
        tb_quiet = count_tracebacks(server.log_text()) - tb_full

        staging_before = set(os.listdir(data / "staging")) if (data / "staging").is_dir() else set()
        folders_before = model_folders(data)
        out = work / "out" / "item.glb"
        out.parent.mkdir()
        run = subprocess.run(make_cmd(ctx.single_photo, out, "--name", "Full disk"), cwd=ROOT, env=env_for(data),
                             capture_output=True, text=True, timeout=300, check=False)
        lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
        plain = run.returncode != 0 and len(lines) == 1 and count_tracebacks(run.stderr) == 0
        probe.check(plain and any(w in lines[0].lower() for w in ("disk", "space")),
                    f"publish on a full disk: exit {run.returncode}, {len(lines)} stderr lines: "
                    f"{one_line(lines[-1] if lines else run.stdout, 120)!r}")
        new_models = model_folders(data) - folders_before
        staging_after = set(os.listdir(data / "staging")) if (data / "staging").is_dir() else set()
        probe.check(not new_models, f"{len(new_models)} new entries under models/ {sorted(new_models)[:2]}")
        probe.check(staging_after <= staging_before, f"{len(staging_after - staging_before)} new entries under staging/")
        tb_total = count_tracebacks(server.log_text()) - tb_full
        probe.check(tb_total == 0, f"{tb_total} tracebacks logged while full ({tb_quiet / 5.0:.1f}/s while idle)")
        probe.tracebacks += count_tracebacks(server.log_text())

        (disk / "filler.bin").unlink()
        ok, _ = serving(server, ids)
        probe.check(ok == len(ids), f"after freeing the disk {ok}/{len(ids)} served")
        probe.lost += len(ids) - ok


# ---------------------------------------------------------------- kill -9 of make --publish

KILL_AT = (0.5, 2.0, 4.0, "copy")
QUICK_KILL_AT = (2.0, "copy")


def _integrity(data: Path) -> tuple[list[str], list[str]]:
    """(problems, notes): rows without their files, visible folders that are partial."""
    rows = db_rows(data, "SELECT share_id, folder FROM models")
    if rows is None:
        return ["the database cannot be read"], []
    problems, notes = [], []
    known = {row["folder"] for row in rows}
    for row in rows:
        missing = [f for f in MODEL_FILES if not (data / "models" / row["folder"] / f).is_file()]
        if missing:
            problems.append(f"row {row['share_id'][:6]} lacks {','.join(missing)}")
    for name in model_folders(data) - known:
        folder = data / "models" / name
        if name.startswith("."):
            notes.append(f"hidden leftover {name[:14]}")
        elif all((folder / f).is_file() for f in MODEL_FILES):
            notes.append("complete unregistered folder")
        else:
            problems.append(f"partial visible folder {name[:8]}")
    return problems, notes


def _kill_make_at(ctx: Context, data: Path, out: Path, moment) -> str:
    """Run `make --publish` and SIGKILL it at `moment` (seconds, or "copy": as soon as anything
    new appears under models/). Returns what was hit."""
    before = model_folders(data)
    with open(out.with_suffix(".log"), "wb") as log:
        proc = subprocess.Popen(make_cmd(ctx.single_photo, out, "--name", f"killed at {moment}"), cwd=ROOT,
                                env=env_for(data), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    t0 = time.monotonic()
    try:
        if moment == "copy":
            while proc.poll() is None and time.monotonic() - t0 < 120:
                if model_folders(data) != before:
                    break
                time.sleep(0.001)
        else:
            try:
                proc.wait(moment)
            except subprocess.TimeoutExpired:
                pass
        if proc.poll() is not None:
            return f"{moment}: finished (exit {proc.returncode}) before the kill"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        new = sorted(model_folders(data) - before)
        return f"{moment}: killed at {time.monotonic() - t0:.2f} s" + (f", new {new[0][:14]}" if new else "")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def kill_publish(ctx: Context) -> Probe:
    moments = QUICK_KILL_AT if ctx.quick else KILL_AT
    probe = Probe("kill -9 publish", f"kill -9 `make --publish` at {', '.join(map(str, moments))} s",
                  "only complete models; restarted server serves the 5 earlier ones")
    template = library_template(ctx, 5)
    work = ctx.workdir("kill-publish")
    data = work / "data"
    ids = copy_library(template, data)
    for i, moment in enumerate(moments):
        out = work / "out" / f"item{i}.glb"
        out.parent.mkdir(exist_ok=True)
        hit = _kill_make_at(ctx, data, out, moment)
        problems, notes = _integrity(data)
        probe.notes.append(hit + (f" ({'; '.join(notes)})" if notes else ""))
        probe.check(not problems, f"{moment}: " + ("library complete" if not problems else "; ".join(problems)))
    with Server(data, work / "logs") as server:
        why = server.start()
        if why:
            probe.fail(f"restart: {why}")
            probe.lost += len(ids)
        else:
            time.sleep(2.0)
            ok, bad = serving(server, ids)
            probe.lost += len(ids) - ok
            probe.check(ok == len(ids), f"after the kills {ok}/{len(ids)} earlier models served" +
                        (f" ({bad[0]})" if bad else ""))
            problems, _ = _integrity(data)
            probe.check(not problems, "after restart: " + ("library complete" if not problems else "; ".join(problems)))
        probe.tracebacks += server.tracebacks()
        probe.check(server.tracebacks() == 0, f"{server.tracebacks()} tracebacks in the log")
    return probe
