"""Probes over HTTP: oversize uploads by raw PUT, a 20-client load, malformed requests."""

from __future__ import annotations

import os
import select
import socket
import statistics
import threading
import time
import uuid

import httpx

from bench.faults_lib import (
    Context,
    Probe,
    Server,
    copy_library,
    job_row,
    library_template,
)

CHROMIUM = os.environ.get("PLINTH_CHROMIUM", "/usr/bin/chromium")
BROWSER_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"]
MB = 1 << 20


# ---------------------------------------------------------------- raw HTTP


def raw_request(port: int, head: bytes, body=(), chunked: bool = False, timeout: float = 60.0) -> tuple[int | None, str]:
    """Send `head` (request line and headers, up to the blank line) and then `body` (an iterable of
    bytes) on a fresh socket, byte for byte. Stops sending as soon as the server answers.
    Returns (status or None, a note on how it went)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    answer, note, sent = b"", "", 0
    try:
        sock.sendall(head)
        for chunk in body:
            sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" if chunked else chunk)
            sent += len(chunk)
            if select.select([sock], [], [], 0)[0]:
                note = f"answered after {sent / MB:.0f} MB"
                break
        else:
            if chunked:
                sock.sendall(b"0\r\n\r\n")
    except OSError as error:  # the server closed the connection while we were sending
        note = f"closed after {sent / MB:.0f} MB ({type(error).__name__})"
    sock.settimeout(timeout)
    try:
        while b"\r\n" not in answer:
            part = sock.recv(65536)
            if not part:
                break
            answer += part
    except OSError:
        pass
    finally:
        sock.close()
    try:
        return int(answer.split(b" ", 2)[1]), note
    except (IndexError, ValueError):
        return None, note or "no answer"


class RssSampler(threading.Thread):
    """The peak RSS (MB) of one process, sampled every 0.2 s while running."""

    def __init__(self, server: Server):
        super().__init__(daemon=True)
        self.server, self.peak, self.done = server, 0.0, threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, self.server.rss_mb() or 0.0)
            time.sleep(0.2)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.join(2)


# ---------------------------------------------------------------- oversize uploads


def _browser_session(page, base: str, timeout: float = 45.0) -> str | None:
    """Open the merchant page like a browser and read the Streamlit session id from the
    websocket's first NewSession message."""
    from google.protobuf.message import DecodeError
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    found: list[str] = []

    def on_frame(payload) -> None:
        if isinstance(payload, (bytes, bytearray)) and not found:
            try:
                msg = ForwardMsg.FromString(bytes(payload))
            except DecodeError:  # not every frame is a whole ForwardMsg; the one we need is
                return
            if msg.HasField("new_session") and msg.new_session.initialize.session_id:
                found.append(msg.new_session.initialize.session_id)

    page.on("websocket", lambda ws: ws.on("framereceived", on_frame))
    page.goto(base + "/", timeout=timeout * 1000)
    end = time.monotonic() + timeout
    while not found and time.monotonic() < end:
        page.wait_for_timeout(250)
    return found[0] if found else None


def _put(server: Server, session: str, xsrf: str, size: int, chunked: bool = False) -> tuple[int | None, str]:
    boundary = uuid.uuid4().hex
    prefix = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.jpg\"\r\n"
              f"Content-Type: image/jpeg\r\n\r\n").encode() + b"\xff\xd8\xff\xe0"
    suffix = f"\r\n--{boundary}--\r\n".encode()
    block = b"\0" * MB

    def body():
        yield prefix
        left = size - 4
        while left > 0:
            yield block[:min(left, MB)]
            left -= MB
        yield suffix

    length = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(prefix) + size - 4 + len(suffix)}"
    head = (f"PUT /_stcore/upload_file/{session}/{uuid.uuid4()} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Cookie: _streamlit_xsrf={xsrf}\r\nX-Xsrftoken: {xsrf}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n{length}\r\nConnection: close\r\n\r\n")
    return raw_request(server.port, head.encode(), body(), chunked=chunked, timeout=120)


UPLOADS = ((60, False), (150, False), (190, False), (190, False), (190, False), (190, True))
QUICK_UPLOADS = ((60, False), (190, False), (190, True))


def oversize_upload(ctx: Context) -> Probe:
    uploads = QUICK_UPLOADS if ctx.quick else UPLOADS
    words = ", ".join(f"{mb} MB" + (" chunked" if ch else "") for mb, ch in uploads)
    probe = Probe("oversize upload", f"raw PUT with the page's cookie and XSRF token: {words}",
                  "each refused (4xx); server RSS within +150 MB of idle")
    if not os.path.exists(CHROMIUM):
        probe.fail(f"no Chromium at {CHROMIUM} (set PLINTH_CHROMIUM)")
        return probe
    from playwright.sync_api import sync_playwright

    work = ctx.workdir("upload")
    data = work / "data"
    data.mkdir()
    with Server(data, work / "logs") as server, sync_playwright() as pw:
        why = server.start()
        if why:
            probe.fail(why)
            return probe
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            context = browser.new_context()
            session = _browser_session(context.new_page(), server.base)
            xsrf = next((c["value"] for c in context.cookies() if c["name"] == "_streamlit_xsrf"), None)
            if not session or not xsrf:
                probe.fail(f"could not read the page's session ({session}) or XSRF cookie ({bool(xsrf)})")
                return probe
            status, _ = _put(server, session, xsrf, 1000)  # the control: our credentials are the page's own
            if not probe.check(status == 204, f"a 1 KB control upload answered {status}"):
                return probe
            time.sleep(2.0)
            idle = server.rss_mb()
            rows = []
            with RssSampler(server) as sampler:
                for mb, chunked in uploads:
                    t0 = time.monotonic()
                    status, note = _put(server, session, xsrf, mb * MB, chunked)
                    label = f"{mb} MB" + (" chunked" if chunked else "")
                    rows.append(f"{label}: {status} in {time.monotonic() - t0:.1f} s{' (' + note + ')' if note else ''}")
                    probe.check(status is not None and 400 <= status < 500, f"{label} answered {status}")
                time.sleep(3.0)
            after = server.rss_mb()
            probe.notes.extend(rows)
            probe.figures["rss_mb"] = {"idle": idle, "peak": sampler.peak, "after": after}
            probe.notes.append(f"RSS idle {idle:.0f} MB, peak {sampler.peak:.0f} MB, 3 s after {after:.0f} MB")
            probe.check(sampler.peak - idle <= 150, f"RSS idle {idle:.0f} MB, peak {sampler.peak:.0f} MB "
                        f"(+{sampler.peak - idle:.0f}), after {after:.0f} MB")
            probe.check(server.get("/healthz") == 200, "server healthy afterwards")
        finally:
            browser.close()
        probe.tracebacks += server.tracebacks()
    return probe


# ---------------------------------------------------------------- load


def _percentiles(values: list[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    ordered = sorted(values)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def _hammer(base: str, targets: dict[str, list[str]], clients: int, seconds: float) -> dict[str, dict]:
    """`clients` threads, each with its own keep-alive connection, cycling through every target
    for `seconds`. Returns per kind: requests, rps, p50/p99 ms, errors."""
    times: dict[str, list[float]] = {k: [] for k in targets}
    errors: dict[str, int] = {k: 0 for k in targets}
    lock, end = threading.Lock(), time.monotonic() + seconds

    def client(n: int) -> None:
        with httpx.Client(base_url=base, timeout=10) as http:
            i = n
            while time.monotonic() < end:
                for kind, paths in targets.items():
                    t0 = time.perf_counter()
                    try:
                        ok = http.get(paths[i % len(paths)]).status_code == 200
                    except httpx.HTTPError:
                        ok = False
                    with lock:
                        times[kind].append(time.perf_counter() - t0) if ok else None
                        errors[kind] += 0 if ok else 1
                i += 1

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 30)
    out = {}
    for kind in targets:
        p50, p99 = _percentiles(times[kind])
        out[kind] = {"requests": len(times[kind]) + errors[kind], "rps": len(times[kind]) / seconds,
                     "p50_ms": p50 * 1000, "p99_ms": p99 * 1000, "errors": errors[kind]}
    return out


def _ui_latency(base: str, n: int = 20) -> dict[str, dict]:
    """Sequential GET / (the Streamlit page) and /healthz, 0.2 s apart: p50/p99 ms and errors."""
    out = {}
    for path in ("/", "/healthz"):
        times, errors = [], 0
        for _ in range(n):
            t0 = time.perf_counter()
            try:
                ok = httpx.get(base + path, timeout=10).status_code == 200
            except httpx.HTTPError:
                ok = False
            times.append(time.perf_counter() - t0) if ok else None
            errors += 0 if ok else 1
            time.sleep(0.2)
        p50, p99 = _percentiles(times)
        out[path] = {"requests": n, "p50_ms": p50 * 1000, "p99_ms": p99 * 1000, "errors": errors}
    return out


def load(ctx: Context) -> Probe:
    from bench.faults_jobs import submit_job, wait_running

    clients, seconds = 20, (8.0 if ctx.quick else 20.0)
    probe = Probe("load", f"{clients} clients on /ar/<id> and the GLB for {seconds:.0f} s; UI latency idle and "
                  "with a job running", "no errors; figures in the load table")
    template = library_template(ctx, 5)
    work = ctx.workdir("load")
    data = work / "data"
    ids = copy_library(template, data)
    with Server(data, work / "logs") as server:
        why = server.start()
        if why:
            probe.fail(why)
            return probe
        targets = {"/ar/<id>": [f"/ar/{sid}" for sid in ids], "GLB": [f"/models/{sid}/model.glb" for sid in ids]}
        rss0 = server.rss_mb()
        with RssSampler(server) as sampler:
            figures = _hammer(server.base, targets, clients, seconds)
        for kind, f in figures.items():
            probe.check(f["errors"] == 0 and f["requests"] > 0, f"{kind}: {f['errors']} errors of {f['requests']}")
        probe.notes.append(f"server RSS {rss0:.0f} MB idle, {sampler.peak:.0f} MB peak under load")
        ui_idle = _ui_latency(server.base)
        job_id = submit_job(ctx, data)
        row = wait_running(data, job_id)
        if row is None:
            probe.fail("the job for the UI measurement never started")
            ui_job = {}
        else:
            time.sleep(3.0)  # into the reconstruction, past the child's start-up
            ui_job = _ui_latency(server.base)
            status = job_row(data, job_id)["status"]
            probe.check(status == "running", f"job {status} while the UI was timed")
        for path, f in {**{f"{k} idle": v for k, v in ui_idle.items()},
                        **{f"{k} job": v for k, v in ui_job.items()}}.items():
            probe.check(f["errors"] == 0, f"UI {path}: {f['errors']} errors")
        probe.figures.update(load=figures, ui_idle=ui_idle, ui_job=ui_job, clients=clients, seconds=seconds,
                             rss_mb={"idle": rss0, "peak": sampler.peak})
        probe.tracebacks += server.tracebacks()
        probe.check(server.tracebacks() == 0, f"{server.tracebacks()} tracebacks in the log")
    return probe


# ---------------------------------------------------------------- malformed requests


def _bad_requests(sid: str, port: int) -> list[tuple[str, bytes, object]]:
    host = f"Host: 127.0.0.1:{port}\r\n"

    def get(path: str, extra: str = "", method: str = "GET") -> bytes:
        return f"{method} {path} HTTP/1.1\r\n{host}{extra}Connection: close\r\n\r\n".encode()

    return [
        ("/ar/ with a 10 KB id", get("/ar/" + "A" * 10240), "4xx"),
        ("GLB of a 10 KB id", get("/models/" + "A" * 10240 + "/model.glb"), "4xx"),
        ("100 KB path", get("/ar/" + "B" * 102400), "4xx"),
        ("/models/<id>/..%2f..%2fplinth.sqlite3", get(f"/models/{sid}/..%2f..%2fplinth.sqlite3"), "4xx"),
        ("/models/<id>/%2e%2e/server.json", get(f"/models/{sid}/%2e%2e/%2e%2e/server.json"), "4xx"),
        ("/ar/%00", get("/ar/%00"), "4xx"),
        ("/ar/ with invalid UTF-8", get("/ar/%ff%fe%fd"), "4xx"),
        ("DELETE /ar/<id>", get(f"/ar/{sid}", method="DELETE"), "4xx"),
        ("PUT a GLB", get(f"/models/{sid}/model.glb", "Content-Length: 0\r\n", method="PUT"), "4xx"),
        ("TRACE /ar/<id>", get(f"/ar/{sid}", method="TRACE"), "4xx"),
        ("BREW /ar/<id>", get(f"/ar/{sid}", method="BREW"), "4xx"),
        ("POST /healthz", get("/healthz", "Content-Length: 0\r\n", method="POST"), "4xx"),
        ("100 KB header", get(f"/ar/{sid}", f"X-Pad: {'a' * 102400}\r\n"), "4xx"),
        ("garbage request line", b"GET /ar/x HTTP/1.1 extra words\r\n\r\n", "4xx"),
        ("Range past the end of a GLB", get(f"/models/{sid}/model.glb", "Range: bytes=999999999-\r\n"), "4xx"),
        ("/ar/<id> with Host: evil.example", f"GET /ar/{sid} HTTP/1.1\r\nHost: evil.example\r\n"
         f"Connection: close\r\n\r\n".encode(), "host"),
    ]


def _host_echo(port: int, sid: str) -> tuple[int | None, bool]:
    """(status, whether the page names the forged host)."""
    try:
        r = httpx.get(f"http://127.0.0.1:{port}/ar/{sid}", headers={"Host": "evil.example"}, timeout=10)
    except httpx.HTTPError:
        return None, False
    return r.status_code, "evil.example" in r.text


def bad_inputs(ctx: Context) -> Probe:
    template = library_template(ctx, 5)
    work = ctx.workdir("bad-inputs")
    data = work / "data"
    ids = copy_library(template, data)
    with Server(data, work / "logs") as server:
        cases = _bad_requests(ids[0], server.port)
        probe = Probe("bad HTTP inputs", f"{len(cases)} malformed requests (long ids, traversal, odd methods, "
                      "a 100 KB header, a forged Host)", "each 4xx (forged Host: 200, not echoed); no traceback")
        why = server.start()
        if why:
            probe.fail(why)
            return probe
        for label, head, expect in cases:
            before = server.tracebacks()
            if expect == "host":
                status, echoed = _host_echo(server.port, ids[0])
                probe.check(status == 200 and not echoed,
                            f"{label}: {status}{', page names evil.example' if echoed else ''}")
            else:
                status, note = raw_request(server.port, head, timeout=15)
                probe.check(status is not None and 400 <= status < 500,
                            f"{label}: {status}" + (f" ({note})" if status is None else ""))
            time.sleep(0.1)
            new = server.tracebacks() - before
            if new:
                probe.fail(f"{label}: {new} tracebacks in the log")
        probe.check(server.get("/healthz") == 200, "server healthy afterwards")
        probe.tracebacks += server.tracebacks()
        probe.check(server.tracebacks() == 0, f"{server.tracebacks()} tracebacks in the log")
    return probe

