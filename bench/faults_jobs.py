"""Probes of the job queue and the server process: kill -9 mid-job, two servers, the job time limit."""

from __future__ import annotations

import time
from pathlib import Path

from bench.faults_lib import (
    Context,
    Probe,
    Server,
    copy_library,
    job_row,
    library_template,
    one_line,
    pid_alive,
    serving,
    wait_for,
)

FINISHED = ("done", "failed", "cancelled")


def submit_job(ctx: Context, data: Path, n_photos: int = 10) -> str:
    """Queue a multi-photo job into a server's data folder the way the Create page does; the
    server's own worker claims it (the WAKE event is per process, so within about 1 s)."""
    import pipeline
    from webapp import jobs

    files = [(p.name, p.read_bytes()) for p in ctx.multiview_photos(n_photos)]
    return jobs.submit(files, "Fault probe", pipeline.Options(quality="fast"), data_dir=data)


def wait_running(data: Path, job_id: str, timeout: float = 60.0):
    """The job row once it is running with its child's pid recorded (None on timeout)."""
    def ready():
        row = job_row(data, job_id)
        return row if row is not None and row["status"] == "running" and row["pid"] else None
    return wait_for(ready, timeout)


def _restart_message() -> str | None:
    from webapp import jobs

    return getattr(jobs, "RESTART_MESSAGE", None)


def kill_server_mid_job(ctx: Context) -> Probe:
    watch_s = 60.0
    probe = Probe("kill -9 server mid-job", f"10-photo job running; kill -9 the server; restart; watch {watch_s:.0f} s",
                  "child gone in 5 s; job failed with the restart message, still so after 60 s")
    work = ctx.workdir("kill-server")
    data = work / "data"
    data.mkdir()
    server = Server(data, work / "logs")
    with server:
        why = server.start()
        if why:
            probe.fail(why)
            return probe
        job_id = submit_job(ctx, data)
        row = wait_running(data, job_id)
        if row is None:
            probe.fail(f"job never ran with a child pid (status {(job_row(data, job_id) or {'status': '?'})['status']})")
            return probe
        child = int(row["pid"])
        time.sleep(3.0)  # well inside the reconstruction (photos load, structure from motion starts)
        row = job_row(data, job_id)
        if not probe.check(row["status"] == "running" and pid_alive(child),
                           f"job still running 3 s after its start (status {row['status']})"):
            return probe
        server.kill9()
        t0 = time.monotonic()
        gone = wait_for(lambda: not pid_alive(child), 5.0, every=0.1)
        took = time.monotonic() - t0
        probe.check(gone, f"child gone after {took:.1f} s" if gone else "child still running 5 s after the kill")
        why = server.start()
        if why:
            probe.fail(f"restart: {why}")
            return probe
        expected = _restart_message()
        seen: list[tuple[float, str, str]] = []
        t_restart = time.monotonic()
        while time.monotonic() - t_restart < watch_s:
            row = job_row(data, job_id)
            state = (row["status"], row["error"] or row["message"]) if row else ("?", "row gone")
            if not seen or seen[-1][1:] != state:
                seen.append((time.monotonic() - t_restart, *state))
            time.sleep(1.0)
        first, last = seen[0], seen[-1]
        probe.check(first[1] == "failed" and (expected is None or first[2] == expected),
                    f"after restart: {first[1]}, {one_line(first[2], 60)!r}")
        changes = [f"{t:.0f} s: {s}" for t, s, _ in seen[1:]]
        probe.check(len(seen) == 1, f"status unchanged for {watch_s:.0f} s" if len(seen) == 1
                    else f"status changed: {', '.join(changes)}")
        probe.notes.append(f"final status {last[1]}: {one_line(last[2], 80)}")
        probe.tracebacks += server.tracebacks()
    return probe


def two_servers(ctx: Context) -> Probe:
    probe = Probe("two servers", "second `serve` on the first one's data folder, another port",
                  "second exits non-zero in 10 s with one plain line; first keeps serving, server.json intact")
    template = library_template(ctx, 5)
    work = ctx.workdir("two-servers")
    data = work / "data"
    ids = copy_library(template, data)
    first = Server(data, work / "logs", name="first")
    second = Server(data, work / "logs", name="second")
    with first, second:
        why = first.start()
        if why:
            probe.fail(why)
            return probe
        marker = (data / "server.json").read_bytes()
        second.spawn()
        exited = wait_for(lambda: second.proc.poll() is not None, 10.0, every=0.1)
        lines = [ln for ln in second.log_text().splitlines() if ln.strip()]
        if exited:
            probe.check(second.proc.returncode != 0, f"second exited with code {second.proc.returncode}")
            probe.check(len(lines) == 1 and second.tracebacks() == 0,
                        f"second said {len(lines)} lines: {one_line(lines[-1] if lines else '', 100)!r}")
        else:
            healthy = second.get("/healthz") == 200
            probe.fail(f"second still running after 10 s ({'serving' if healthy else 'not serving'} on its port)")
        now = (data / "server.json").read_bytes() if (data / "server.json").is_file() else None
        probe.check(now == marker, "server.json " + ("intact" if now == marker else "deleted" if now is None else "changed"))
        second.stop()  # a still running second one: its shutdown is the other half of the old bug
        time.sleep(1.0)
        intact = (data / "server.json").is_file() and (data / "server.json").read_bytes() == marker
        probe.check(intact, f"server.json after the second stopped: {'intact' if intact else 'changed or deleted'}")
        ok, _ = serving(first, ids)
        probe.check(first.running() and ok == len(ids), f"first serves {ok}/{len(ids)} models")
        probe.lost += len(ids) - ok
        probe.tracebacks += first.tracebacks() + second.tracebacks()
    return probe


def job_time_limit(ctx: Context) -> Probe:
    limit_s = 5
    probe = Probe("job time limit", f"PLINTH_JOB_TIME_LIMIT_S={limit_s}; a 10-photo job",
                  "failed with a plain message within ~15 s of its start; child gone")
    work = ctx.workdir("time-limit")
    data = work / "data"
    data.mkdir()
    with Server(data, work / "logs", env={"PLINTH_JOB_TIME_LIMIT_S": str(limit_s)}) as server:
        why = server.start()
        if why:
            probe.fail(why)
            return probe
        job_id = submit_job(ctx, data)
        row = wait_running(data, job_id)
        if row is None:
            probe.fail("job never ran with a child pid")
            return probe
        child, t0 = int(row["pid"]), time.monotonic()
        row = wait_for(lambda: (r := job_row(data, job_id)) is not None and r["status"] in FINISHED and r, 45.0, 0.5)
        took = time.monotonic() - t0
        if not row:
            probe.fail(f"still {job_row(data, job_id)['status']} {took:.0f} s after it started")
        else:
            words = row["error"] or row["message"] or ""
            plain = words and "\n" not in words.strip() and "Traceback" not in words and len(words) < 300
            probe.check(row["status"] == "failed" and took <= 15.0,
                        f"{row['status']} after {took:.1f} s")
            probe.check(bool(plain), f"message {one_line(words, 90)!r}")
        gone = wait_for(lambda: not pid_alive(child), 5.0, every=0.1)
        probe.check(gone, "child gone" if gone else "child still running")
        probe.tracebacks += server.tracebacks()
    return probe
