"""The machinery of bench/faults.py: a real server process, probe results, the shared fixtures.

Nothing here is a probe; the probes live in faults_data.py, faults_jobs.py and faults_http.py.

    with Server(data, logs) as server:          # `python -m webapp serve` on a free loopback port
        server.get("/healthz")                  # -> status code (None: no answer)
        server.kill9(); server.start()          # same data folder, fresh log file
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
TRACEBACK_MARKS = ("Traceback (most recent call last)", "Fatal Python error")
MODEL_FILES = ("model.glb", "model.usdz", "model.obj.zip", "poster.png", "report.json")
START_TIMEOUT_S = 90.0  # Streamlit plus the routes start in 3-10 s on 2 busy cores


@dataclass
class Probe:
    """One probe's outcome: one table row. `checks` holds (ok, words) for every assertion made."""

    name: str
    done: str
    expected: str
    checks: list[tuple[bool, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # figures worth printing that are not checks
    lost: int = 0  # published models that no longer answer or whose folder is gone
    tracebacks: int = 0  # in every server log the probe read
    seconds: float = 0.0
    figures: dict = field(default_factory=dict)  # machine-readable numbers (load, RSS) for --json

    def check(self, ok: bool, words: str) -> bool:
        self.checks.append((bool(ok), words))
        return bool(ok)

    def fail(self, words: str) -> None:
        self.check(False, words)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(ok for ok, _ in self.checks)

    @property
    def observed(self) -> str:
        bad = [w for ok, w in self.checks if not ok]
        return "; ".join(bad or [w for _, w in self.checks[:3]] + self.notes[:2]) or "nothing checked"


class ProbeTimeout(Exception):
    """Raised by the per-probe alarm: the probe ran past its wall-clock budget."""


# ---------------------------------------------------------------- small helpers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(fn: Callable[[], object], timeout: float, every: float = 0.25):
    """fn() until it is truthy or `timeout` seconds pass; returns its last value."""
    end = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() >= end:
            return value
        time.sleep(every)


def pid_alive(pid: int | None) -> bool:
    """True while the process exists and is not a zombie (a zombie has already stopped running)."""
    if not pid:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def rss_mb(pid: int | None) -> float | None:
    """Resident memory of a process in MB (VmRSS from /proc), None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, TypeError):
        pass
    return None


def count_tracebacks(text: str) -> int:
    return sum(text.count(mark) for mark in TRACEBACK_MARKS)


def kill_strays(marker: str) -> list[int]:
    """SIGKILL every process whose command line or environment names `marker` (a probe's own
    temporary folder), so job children and `make` runs a probe started never outlive it."""
    killed = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            blob = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker.encode() in blob:
            try:
                os.kill(int(entry.name), signal.SIGKILL)
                killed.append(int(entry.name))
            except OSError:
                pass
    return killed


def db_rows(data: Path, sql: str, args: tuple = ()) -> list[sqlite3.Row] | None:
    """Rows of a read-only query on the data folder's database; None when it cannot be read."""
    path = data / "plinth.sqlite3"
    if not path.is_file():
        return None
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        con.row_factory = sqlite3.Row
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()
    except sqlite3.Error:
        return None


def job_row(data: Path, job_id: str) -> sqlite3.Row | None:
    rows = db_rows(data, "SELECT * FROM jobs WHERE id = ?", (job_id,))
    return rows[0] if rows else None


def model_folders(data: Path) -> set[str]:
    """Names of every entry under data/models (hidden ones included)."""
    folder = data / "models"
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def age_tree(path: Path, seconds: float) -> None:
    """Backdate every file and folder under `path`: a library published a while ago (clean-up
    rules that spare young folders must not be what keeps the models alive)."""
    when = time.time() - seconds
    for p in sorted(path.rglob("*"), reverse=True):
        os.utime(p, (when, when), follow_symlinks=False)
    os.utime(path, (when, when))


def one_line(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def env_for(data: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "PLINTH_DATA_DIR": str(data), **extra}
    env.pop("PLINTH_PUBLIC_URL", None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


# ---------------------------------------------------------------- the server


class Server:
    """A real `python -m webapp serve` on a free loopback port. Each start writes its own log
    (logs/<name>-<n>.log, outside the data folder, so a full or wiped data folder keeps it)."""

    def __init__(self, data: Path, logs: Path, name: str = "server", env: dict[str, str] | None = None):
        self.data, self.logs, self.name = data, logs, name
        self.extra_env = env or {}
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.log_paths: list[Path] = []

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def spawn(self) -> subprocess.Popen:
        """Start the process without waiting for it (see start)."""
        self.starts += 1
        self.logs.mkdir(parents=True, exist_ok=True)
        log_path = self.logs / f"{self.name}-{self.starts}.log"
        self.log_paths.append(log_path)
        with open(log_path, "wb") as log:  # a file, not a pipe: an unread pipe stalls the server
            self.proc = subprocess.Popen(
                [PYTHON, "-m", "webapp", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=ROOT, env=env_for(self.data, **self.extra_env), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
        return self.proc

    def start(self, timeout: float = START_TIMEOUT_S) -> str | None:
        """Start and wait until /healthz answers 200. Returns None, or why it is not serving."""
        self.spawn()
        return self.wait_healthy(timeout)

    def wait_healthy(self, timeout: float = START_TIMEOUT_S) -> str | None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                return f"server exited with code {self.proc.returncode}: {self.last_line()}"
            if self.get("/healthz", timeout=2) == 200:
                return None
            time.sleep(0.3)
        return f"server did not answer /healthz within {timeout:.0f} s"

    def get(self, path: str, timeout: float = 10) -> int | None:
        try:
            return httpx.get(self.base + path, timeout=timeout).status_code
        except httpx.HTTPError:
            return None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        if self.running():
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM (what Ctrl+C or systemd does), then SIGKILL after 15 s."""
        if not self.running():
            return
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.kill9()

    def log_text(self, which: int | None = None) -> str:
        """The log of start `which` (1-based), or of every start so far."""
        paths = self.log_paths if which is None else [self.log_paths[which - 1]]
        return "".join(p.read_text(errors="replace") for p in paths if p.is_file())

    def last_line(self) -> str:
        lines = [ln for ln in self.log_text(self.starts).splitlines() if ln.strip()]
        return one_line(lines[-1]) if lines else "(no output)"

    def tracebacks(self) -> int:
        return count_tracebacks(self.log_text())

    def rss_mb(self) -> float | None:
        return rss_mb(self.pid)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


# ---------------------------------------------------------------- shared fixtures


@dataclass
class Context:
    """What every probe gets: its own folder, the bench data, the one reconstruction, the mode."""

    root: Path  # this run's temporary folder
    bench: Path
    quick: bool
    cache: dict = field(default_factory=dict)

    def workdir(self, probe: str) -> Path:
        path = self.root / probe
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def single_photo(self) -> Path:
        return self.bench / "single" / "chair" / "image.jpg"

    def multiview_photos(self, n: int = 10, case: str = "avocado") -> list[Path]:
        images = sorted((self.bench / "multiview" / case / "images").glob("*.jpg"))
        if len(images) < n:
            raise FileNotFoundError(f"need {n} photos in {self.bench}/multiview/{case}/images, found {len(images)}")
        step = len(images) / n
        return [images[int(i * step)] for i in range(n)]


def make_cmd(photo: Path, out: Path, *more: str) -> list[str]:
    """`python -m webapp make PHOTO --publish`, the way the merchant's `plinth` runs it, kept quick."""
    return [PYTHON, "-m", "webapp", "make", str(photo), "--out", str(out), "--height", "0.5m",
            "--quality", "fast", "--texture-size", "512", "--quiet", "--device", "cpu", "--publish", *more]


def result_from_files(glb: Path):
    """The `pipeline.Result` of an earlier `make`, rebuilt from the files it wrote beside `glb`, so
    the same model can be published again in-process without reconstructing (or importing torch)."""
    from dataclasses import fields

    from pipeline import QualityReport, Result
    from pipeline.types import Exports

    stem = glb.with_suffix("")
    raw = json.loads(Path(f"{stem}.report.json").read_text())
    names = {f.name for f in fields(QualityReport)}
    report = QualityReport(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items() if k in names})
    exports = Exports(glb=str(glb), usdz=f"{stem}.usdz", obj_zip=f"{stem}.obj.zip", poster=f"{stem}.poster.png",
                      triangles=report.triangles, glb_bytes=report.glb_bytes, texture_size=report.texture_size)
    return Result(exports=exports, report=report, report_path=f"{stem}.report.json")


def library_template(ctx: Context, n: int = 5) -> Path:
    """A stopped server's data folder with `n` published models, made once per run and copied by
    each probe: one `make --publish` through the CLI, the same result added n-1 more times in-process.
    Every folder is backdated two days."""
    key = f"library-{n}"
    if key in ctx.cache:
        return ctx.cache[key]
    from webapp import model_folders

    work = ctx.workdir(f"template-{n}")
    data, out = work / "data", work / "out" / "item.glb"
    out.parent.mkdir(parents=True, exist_ok=True)
    run = subprocess.run(make_cmd(ctx.single_photo, out, "--name", "Model 1"), cwd=ROOT, env=env_for(data),
                         capture_output=True, text=True, timeout=300, check=False)
    if run.returncode != 0:
        raise RuntimeError(f"`plinth make --publish` failed: {one_line(run.stderr or run.stdout)}")
    result = result_from_files(out)
    for i in range(2, n + 1):
        model_folders.add_model(result, f"Model {i}", [ctx.single_photo], data_dir=data)
    age_tree(data, 2 * 86400)
    ctx.cache[key] = data
    ctx.cache["result_glb"] = out
    return data


def copy_library(template: Path, dest: Path) -> list[str]:
    """Copy a template data folder (times kept) and return its share ids."""
    shutil.copytree(template, dest, symlinks=True)
    return [row["share_id"] for row in db_rows(dest, "SELECT share_id FROM models ORDER BY created")]


def serving(server: Server, share_ids: list[str]) -> tuple[int, list[str]]:
    """How many of the models answer 200 on both /ar/<id> and their GLB; words for those that do not."""
    ok, bad = 0, []
    for sid in share_ids:
        page, glb = server.get(f"/ar/{sid}"), server.get(f"/models/{sid}/model.glb")
        if page == 200 and glb == 200:
            ok += 1
        else:
            bad.append(f"{sid[:6]}: /ar {page}, glb {glb}")
    return ok, bad
