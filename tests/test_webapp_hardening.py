"""Web hardening against a real `plinth serve`: the upload guard (raw PUTs carrying the page's own
session id, cookie and XSRF token, obtained as the browser obtains them), security headers on the
merchant and share pages, a forged Host header, and file names shown as plain text."""

from __future__ import annotations

import http.client
import json
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.sync.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tests.signing import signed_in_apptest  # noqa: E402
from test_webapp_http import ROOT, running_server  # noqa: E402

from tests.browsing import SERVED, sign_in_token  # noqa: E402
from webapp import accounts, limits, settings, ui, workers  # noqa: E402

MB = 1024 * 1024
JOB_MB = 120  # the module server's session total: reachable with three 45 MB files
ENV = {"PLINTH_MAX_JOB_MB": str(JOB_MB), "PLINTH_ALLOWED_HOSTS": "shop.example"}
EVIL = "[click](http://evil.example) :red[x] $x^2$.jpg"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("hardening")
    with running_server(data, env=ENV) as base:
        yield base, data


class Session:
    """A Streamlit browser session, opened the way the page's JavaScript opens one: the health
    check sets the XSRF cookie, the websocket carries the token, the first script run names the
    session id. Uploads then go out as the widget sends them (multipart PUT, X-Xsrftoken)."""

    def __init__(self, base: str):
        self.base = base
        self.http = httpx.Client(base_url=base, timeout=60)
        self.xsrf = self.http.get("/_stcore/health").cookies["_streamlit_xsrf"]
        self._open = ExitStack()
        self.ws = self._open.enter_context(connect(
            base.replace("http://", "ws://") + "/_stcore/stream", origin=base, close_timeout=1,
            additional_headers={"Cookie": f"_streamlit_xsrf={self.xsrf}"}, subprotocols=["streamlit", self.xsrf]))
        self._open.callback(self.http.close)
        rerun = BackMsg()
        rerun.rerun_script.query_string = ""
        self.ws.send(rerun.SerializeToString())
        self.id = ""
        end = time.monotonic() + 30
        while not self.id and time.monotonic() < end:
            msg = ForwardMsg()
            msg.ParseFromString(self.ws.recv(timeout=30))
            if msg.WhichOneof("type") == "new_session":
                self.id = msg.new_session.initialize.session_id
        assert self.id, "no session id from the server"
        self.headers = {"X-Xsrftoken": self.xsrf, "Cookie": f"_streamlit_xsrf={self.xsrf}"}

    def url(self, file_id: str) -> str:
        return f"/_stcore/upload_file/{self.id}/{file_id}"

    def put(self, file_id: str, content: bytes, name: str = "photo.jpg") -> httpx.Response:
        return self.http.put(self.url(file_id), files={name: (name, content, "image/jpeg")},
                             headers={"X-Xsrftoken": self.xsrf})

    def delete(self, file_id: str) -> httpx.Response:
        return self.http.delete(self.url(file_id), headers={"X-Xsrftoken": self.xsrf})

    def close(self) -> None:
        self._open.close()


@pytest.fixture
def session(server):
    s = Session(server[0])
    yield s
    s.close()


def server_rss_mb(data: Path) -> float:
    pid = json.loads((data / "server.json").read_text())["pid"]
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024


def multipart_head(name: str = "photo.jpg") -> tuple[bytes, bytes]:
    boundary = "plinthtestboundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n").encode()
    return head, f"multipart/form-data; boundary={boundary}".encode()


def test_oversize_by_content_length_is_refused_before_the_body(server, session):
    """Three 190 MB PUTs (the probe that took the server from 325 to 896 MB): each answered 413
    from the headers alone, in milliseconds, and the server's memory does not move."""
    base, data = server
    parts = urlsplit(base)
    rss_before = server_rss_mb(data)
    times = []
    for i in range(3):
        con = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        con.putrequest("PUT", session.url(f"big{i}"))
        for k, v in {**session.headers, "Content-Type": multipart_head()[1].decode(),
                     "Content-Length": str(190 * MB)}.items():
            con.putheader(k, v)
        start = time.perf_counter()
        con.endheaders()  # and not one byte of the body
        reply = con.getresponse()
        times.append((time.perf_counter() - start) * 1000)
        text = reply.read().decode()
        assert reply.status == 413, text
        assert reply.getheader("content-type").startswith("text/plain") and "Traceback" not in text
        assert text == f"This photo is larger than {limits.MAX_FILE_MB:g} MB. Use a smaller photo."
        con.close()
    rss_after = server_rss_mb(data)
    print(f"RSS {rss_before:.0f} -> {rss_after:.0f} MB; refused in {', '.join(f'{t:.1f}' for t in times)} ms")
    assert rss_after - rss_before < 20
    assert max(times) < 1000


def _stream_until_answer(base: str, session: Session, headers: dict, chunks, chunked: bool) -> tuple[bytes, int]:
    """Send a body piece by piece on a raw socket until the server answers; (answer, bytes sent)."""
    parts = urlsplit(base)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
    lines = [f"PUT {session.url('streamed')} HTTP/1.1", f"Host: {parts.netloc}"]
    lines += [f"{k}: {v}" for k, v in {**session.headers, **headers}.items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    sent, answer = 0, b""
    try:
        for chunk in chunks:
            if select.select([sock], [], [], 0)[0]:
                break
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
            sent += len(chunk)
        select.select([sock], [], [], 30)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server closed the connection after answering
    try:
        while chunk := sock.recv(65536):
            answer += chunk
            if b"\r\n\r\n" in answer and len(answer.split(b"\r\n\r\n", 1)[1]) >= 40:
                break
    except (ConnectionResetError, socket.timeout):
        pass
    sock.close()
    return answer, sent


def test_chunked_or_lying_bodies_are_cut_off_at_the_file_limit(server, session):
    base, data = server
    head, ctype = multipart_head()
    rss_before = server_rss_mb(data)

    def body(total_mb: int):
        yield head
        for _ in range(total_mb):
            yield b"\xff" * MB

    # No Content-Length at all (chunked): counted while it streams, cut off past the limit
    answer, sent = _stream_until_answer(base, session, {"Content-Type": ctype.decode(),
                                                         "Transfer-Encoding": "chunked"}, body(190), chunked=True)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"This photo is larger than" in answer and b"Traceback" not in answer
    assert sent < 190 * MB  # it did not have to take the whole body
    # A Content-Length that claims a small photo, then keeps sending: never stored as a 190 MB file
    answer, _ = _stream_until_answer(base, session, {"Content-Type": ctype.decode(), "Content-Length": str(MB)},
                                     body(190), chunked=False)
    assert not answer.startswith(b"HTTP/1.1 2"), answer[:200]
    rss_after = server_rss_mb(data)
    print(f"chunked: {sent / MB:.0f} MB sent before the 413; RSS {rss_before:.0f} -> {rss_after:.0f} MB")
    assert rss_after - rss_before < 60


def test_photo_count_per_session_is_capped_and_released_on_delete(server, session):
    tiny = b"\xff\xd8" + b"x" * 100
    for i in range(limits.MAX_JOB_PHOTOS):
        assert session.put(f"f{i}", tiny).status_code == 204, i
    assert session.put("f0", tiny).status_code == 204  # the same file id again replaces, not adds
    refused = session.put("one-more", tiny)
    assert refused.status_code == 413
    assert refused.text == (f"One model can use at most {limits.MAX_JOB_PHOTOS} photos. "
                            "Remove some photos before adding others.")
    assert session.delete("f3").status_code == 204
    assert session.put("one-more", tiny).status_code == 204
    other = Session(session.base)  # the cap is per session: another merchant is not affected
    try:
        assert other.put("f0", tiny).status_code == 204
    finally:
        other.close()


def test_session_total_bytes_are_capped(server, session):
    photo = b"\xff\xd8" + b"\x00" * (45 * MB)
    assert session.put("a", photo).status_code == 204
    assert session.put("b", photo).status_code == 204
    refused = session.put("c", photo)  # 135 MB > 120 MB
    assert refused.status_code == 413 and refused.text.startswith(f"These photos add up to more than {JOB_MB} MB")
    assert session.delete("a").status_code == 204
    assert session.put("c", photo).status_code == 204


def test_low_disk_refuses_uploads_with_507(tmp_path):
    free_mb = shutil.disk_usage(tmp_path).free // MB
    with running_server(tmp_path, env={"PLINTH_MIN_FREE_MB": str(free_mb + 10_000)}) as base:
        s = Session(base)
        try:
            reply = s.put("a", b"\xff\xd8" + b"x" * 1000)
        finally:
            s.close()
    assert reply.status_code == 507
    assert reply.text.startswith("The server's disk is almost full.")


@pytest.fixture(scope="module")
def share_id(server, bench, device, tmp_path_factory):
    """One real single-photo model, published into the running server's library by the CLI."""
    _, data = server
    out = tmp_path_factory.mktemp("cli") / "item.glb"
    env = {**os.environ, "PLINTH_DATA_DIR": str(data)}
    env.pop("PLINTH_PUBLIC_URL", None)
    cmd = [sys.executable, "-m", "webapp", "make", str(bench / "single" / "chair" / "image.jpg"), "--height",
           "0.5m", "--publish", "--name", "Chair", "--out", str(out), "--quality", "fast", "--texture-size", "512",
           "--quiet", "--device", device]
    run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return re.findall(r"/ar/(\S+)", run.stdout)[-1]


def test_merchant_pages_send_csp_and_refuse_framing(server):
    base, _ = server
    for path in ("/", "/model?id=x", "/library", "/_stcore/health"):
        r = httpx.get(base + path, timeout=10)
        assert r.status_code == 200, path
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'self'" in csp and "default-src 'self'" in csp, path
        script_src = re.search(r"script-src ([^;]+)", csp).group(1).split()
        assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
        assert r.headers["x-frame-options"] == "SAMEORIGIN"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "strict-origin-when-cross-origin"


def _refused(base: str, path: str, pad: int) -> bool:
    """A request with `pad` bytes of header is refused: our 431, or the HTTP server's own 400 and
    close (uvicorn's parser gives up on a header that arrives in pieces over 16 KB; the client may
    then see the connection reset while it is still sending)."""
    try:
        r = httpx.get(base + path, headers={"X-Pad": "a" * pad}, timeout=10)
    except (httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError):
        return True
    return r.status_code in (400, 431)


def test_oversized_request_headers_get_a_plain_431(server, share_id):
    base, _ = server
    for path in ("/", f"/ar/{share_id}", f"/models/{share_id}/model.glb"):
        assert httpx.get(base + path, headers={"X-Pad": "a" * 8_000}, timeout=10).status_code == 200, path
        # Over our 32 KiB and under one loopback segment, so the server parses it whole: our answer.
        r = httpx.get(base + path, headers={"X-Pad": "a" * 40_000}, timeout=10)
        assert r.status_code == 431 and r.text == "The request's headers are too large.", path
        assert _refused(base, path, 100_000), path  # once answered 200 (bench/faults.py)
    assert httpx.get(base + "/healthz", timeout=10).status_code == 200


def test_share_pages_and_files_stay_embeddable(server, share_id):
    base, _ = server
    ar = httpx.get(f"{base}/ar/{share_id}", timeout=10)
    assert ar.status_code == 200
    assert "frame-ancestors *" in ar.headers["content-security-policy"]
    assert "x-frame-options" not in ar.headers
    assert ar.headers["x-content-type-options"] == "nosniff" and ar.headers["referrer-policy"]
    for path in (f"/models/{share_id}/model.glb", "/assets/ar.js"):
        r = httpx.get(base + path, timeout=10)
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*", path
        assert "x-frame-options" not in r.headers and "content-security-policy" not in r.headers, path
        assert r.headers["x-content-type-options"] == "nosniff" and r.headers["referrer-policy"], path


def _share_base(base: str, share_id: str, host: str) -> tuple[str, str]:
    html = httpx.get(f"{base}/ar/{share_id}", headers={"Host": host}, timeout=10).text
    src = re.search(r'<model-viewer[^>]*\ssrc="([^"]+)"', html, re.S).group(1)
    og = re.search(r'<meta property="og:url" content="([^"]+)"', html).group(1)
    return src, og


def test_forged_host_header_does_not_steer_share_urls(server, share_id):
    base, _ = server
    src, og = _share_base(base, share_id, "evil.example")
    assert src == f"{base}/models/{share_id}/model.glb" and og == f"{base}/ar/{share_id}"
    src, og = _share_base(base, share_id, "shop.example")  # listed in PLINTH_ALLOWED_HOSTS
    assert src == f"http://shop.example/models/{share_id}/model.glb" and og == f"http://shop.example/ar/{share_id}"
    lan = sorted(h for h in settings.machine_hosts() if re.fullmatch(r"\d+\.\d+\.\d+\.\d+", h) and
                 not h.startswith("127."))
    assert lan, "this machine has no non-loopback IPv4 address to test with"
    port = urlsplit(base).port
    src, _ = _share_base(base, share_id, f"{lan[0]}:{port}")  # a phone on the LAN: this machine's address
    assert src == f"http://{lan[0]}:{port}/models/{share_id}/model.glb"


def test_upload_file_names_are_shown_as_plain_text(tmp_path, monkeypatch):
    import streamlit as st

    monkeypatch.setenv("PLINTH_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("PLINTH_PUBLIC_URL", raising=False)
    st.cache_resource.clear()
    st.cache_data.clear()
    try:
        at = signed_in_apptest(str(ROOT / "webapp" / "app.py"), default_timeout=30).run()
        at.file_uploader[0].set_value([(EVIL, b"not a photo at all", "image/jpeg")]).run()
        assert not at.exception
        shown = [e.value for e in (*at.caption, *at.markdown, *at.error, *at.warning)]
        quoting = [v for v in shown if "evil" in v]
        assert ui.md(EVIL) in quoting  # the caption
        assert len(quoting) >= 2  # and the error that names the unreadable file
        for value in quoting:  # every mention is escaped: no link, colour or LaTeX can form
            assert "](" not in value and ":red[" not in value and not re.search(r"(?<!\\)\$", value), value
    finally:
        workers.stop_workers()
        st.cache_resource.clear()
