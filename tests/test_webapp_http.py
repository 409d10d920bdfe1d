"""HTTP tests of the one-process server: `plinth make --publish` against a running `plinth serve`
(both through the web app's CLI, `python -m webapp`, as the `plinth` console script runs them),
the AR share page, the model files, 404s, path traversal and an XSS product name."""

from __future__ import annotations

import http.client
import os
import re
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from html import escape
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

import pipeline
from webapp import library

ROOT = Path(__file__).resolve().parent.parent
XSS = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(data: Path, device: str | None = None, env: dict[str, str] | None = None):
    """A real `plinth serve` on a free loopback port with its own data folder; yields its base URL.

    `device`: the torch device its job workers use (PLINTH_DEVICES). `env`: extra environment
    (e.g. PLINTH_MAX_JOB_MB, PLINTH_ALLOWED_HOSTS)."""
    port = free_port()
    extra = env or {}
    env = {**os.environ, "PLINTH_DATA_DIR": str(data)}
    if device:
        env["PLINTH_DEVICES"] = device
    for name in ("PLINTH_PUBLIC_URL", "PLINTH_ALLOWED_HOSTS"):
        env.pop(name, None)
    env.update(extra)
    # The log goes to a file: an unread pipe would fill up and stall the server and its jobs.
    with open(data / "server.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "webapp", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_healthy(proc, port, data / "server.log")
            from tests.browsing import SERVED

            SERVED[f"http://127.0.0.1:{port}"] = data  # for signed_in_context and signed_in_client
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


def _wait_healthy(proc: subprocess.Popen, port: int, log: Path) -> None:
    end = time.monotonic() + 60
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text(errors='replace')}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError("server did not start in 60 s")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("data")
    with running_server(data) as base:
        yield base, data


@pytest.fixture(scope="module")
def share_url(server, bench, tmp_path_factory, device):
    """`plinth make PHOTO --height 0.5m --publish` while the server runs: prints the share URL."""
    base, data = server
    out = tmp_path_factory.mktemp("cli") / "item.glb"
    photo = bench / "single" / "chair" / "image.jpg"
    env = {**os.environ, "PLINTH_DATA_DIR": str(data)}
    env.pop("PLINTH_PUBLIC_URL", None)
    cmd = [sys.executable, "-m", "webapp", "make", str(photo), "--height", "0.5m", "--publish", "--name", XSS,
           "--out", str(out), "--quality", "fast", "--texture-size", "512", "--quiet", "--device", device]
    run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    urls = re.findall(r"https?://\S+/ar/\S+", run.stdout)
    assert urls, run.stdout
    return urls[-1]


def raw_get(base: str, path: str) -> int:
    """Send `path` byte for byte (no client-side normalisation of `..`)."""
    parts = urlsplit(base)
    con = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    con.request("GET", path)
    status = con.getresponse().status
    con.close()
    return status


def test_share_page_is_standalone_html_with_absolute_model_urls(server, share_url):
    base, data = server
    assert share_url.startswith(base + "/ar/")  # the CLI found the running server's address
    page = httpx.get(share_url, timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "<model-viewer" in html and "_stcore" not in html  # no Streamlit, no websocket
    tag = re.search(r"<model-viewer[^>]*>", html, re.S).group(0)
    sid = share_url.rsplit("/", 1)[1]
    assert f'src="{base}/models/{sid}/model.glb"' in tag
    assert f'ios-src="{base}/models/{sid}/model.usdz"' in tag
    assert f'poster="{base}/models/{sid}/poster.png"' in tag
    # drawn as a layer of the stage's background (blended onto it: ar.css), not by model-viewer
    assert f"--poster-image: url('{base}/models/{sid}/poster.png')" in tag
    for attr in ('ar-modes="webxr scene-viewer quick-look"', 'ar-placement="floor"', 'ar-scale="fixed"',
                 "camera-controls", "shadow-intensity", " ar "):
        assert attr in tag, attr
    assert f'<meta property="og:image" content="{base}/models/{sid}/poster.png">' in html
    assert re.search(r"\d+\.\d cm \(\d+\.\d in\)", html)
    model = library.get_model(sid, data)
    assert f'<p class="dims">{escape(pipeline.format_dimensions(model.dimensions_m))}</p>' in html
    scripts = re.findall(r'<script[^>]*src="([^"]+)"', html)
    mv = [s for s in scripts if "model-viewer" in s]
    assert mv and all(not s.startswith("http") or s.startswith(base) for s in scripts)
    js = httpx.get(base + mv[0], timeout=10)
    assert js.status_code == 200 and "javascript" in js.headers["content-type"] and len(js.content) > 500_000
    assert b"customElements" in js.content


def test_model_files_types_cors_and_cache(server, share_url):
    base, _ = server
    sid = share_url.rsplit("/", 1)[1]
    expect = {"model.glb": ("model/gltf-binary", b"glTF"), "model.usdz": ("model/vnd.usdz+zip", b"PK"),
              "model.obj.zip": ("application/zip", b"PK"), "poster.png": ("image/png", b"\x89PNG")}
    for name, (ctype, magic) in expect.items():
        r = httpx.get(f"{base}/models/{sid}/{name}", timeout=10)
        assert r.status_code == 200, name
        assert r.headers["content-type"] == ctype
        assert r.headers["access-control-allow-origin"] == "*"
        assert "max-age" in r.headers["cache-control"]
        assert r.content.startswith(magic)
    head = httpx.head(f"{base}/models/{sid}/model.glb", timeout=10)
    assert head.status_code == 200 and int(head.headers["content-length"]) > 1000
    pre = httpx.options(f"{base}/models/{sid}/model.glb", headers={"Origin": "https://shop.example",
                        "Access-Control-Request-Method": "GET"}, timeout=10)
    assert pre.status_code == 204 and pre.headers["access-control-allow-origin"] == "*"
    dl = httpx.get(f"{base}/models/{sid}/model.glb?download=1", timeout=10)
    assert dl.headers["content-disposition"].startswith("attachment;")


def test_unknown_ids_private_files_and_traversal_are_404(server, share_url):
    base, data = server
    sid = share_url.rsplit("/", 1)[1]
    paths = [
        "/ar/" + "A" * 32, "/ar/", f"/ar/{sid}/extra", "/models/" + "A" * 32 + "/model.glb",
        f"/models/{sid}/report.json", f"/models/{sid}/photos/000.jpg", f"/models/{sid}/000.jpg",
        f"/models/{sid}/../../plinth.sqlite3", f"/models/{sid}/..%2F..%2Fplinth.sqlite3",
        f"/models/{sid}/%2e%2e/%2e%2e/plinth.sqlite3", f"/models/{sid}/..\\..\\plinth.sqlite3",
        "/models/../plinth.sqlite3", f"/ar/{sid}/../../server.json", "/assets/../webapp/library.py",
        "/assets/..%2Fwebapp%2Flibrary.py", "/assets/nothing.js",
    ]
    for path in paths:
        assert raw_get(base, path) == 404, path
    assert (data / "plinth.sqlite3").is_file()  # the targets exist: the 404s are not by luck


def test_xss_product_name_is_rendered_inert(server, share_url):
    page = httpx.get(share_url, timeout=10)
    html = page.text
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in html
    csp = page.headers["content-security-policy"]
    script_src = re.search(r"script-src ([^;]+)", csp).group(1).split()
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)  # no inline scripts at all


# ---------------------------------------------------------------- links that show no model, the shop


def _branded_gone(r: httpx.Response, status: int, words: str) -> str:
    assert r.status_code == status, r.request.url
    assert r.headers["content-type"].startswith("text/html") and r.headers["cache-control"] == "no-store"
    html = r.text
    assert words in html, html[:400]
    assert '<meta name="viewport" content="width=device-width' in html and 'href="/assets/ar.css"' in html
    assert "Traceback" not in html and "Exception" not in html
    assert "frame-ancestors *" in r.headers["content-security-policy"]  # it shows inside a shop's iframe too
    return html


def test_unknown_share_links_answer_a_branded_page(server):
    base, _ = server
    for path in ("/ar/" + "A" * 32, "/ar/short", "/ar/", "/ar/" + "A" * 32 + "/extra", "/ar/" + "A" * 32 + "?embed=1"):
        _branded_gone(httpx.get(base + path, timeout=10), 404, "This link doesn&#x27;t lead to a model")
    r = httpx.get(f"{base}/models/{'A' * 32}/model.glb", timeout=10)  # files: one short plain line
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/plain") and len(r.text) < 100


def test_an_expired_link_answers_410_on_the_page_and_the_files(server, share_url):
    base, data = server
    sid = share_url.rsplit("/", 1)[1]
    try:
        assert library.set_link(sid, "", time.time() - 5, data)
        _branded_gone(httpx.get(share_url, timeout=10), 410, "This link has expired")
        for name in ("model.glb", "model.usdz", "poster.png"):
            r = httpx.get(f"{base}/models/{sid}/{name}", timeout=10)
            assert (r.status_code, r.text) == (410, "This link has expired."), name
        assert library.set_link(sid, "", time.time() + 3600, data)  # later: it works again until then
        assert httpx.get(share_url, timeout=10).status_code == 200
        assert httpx.get(f"{base}/models/{sid}/model.glb", timeout=10).status_code == 200
    finally:
        library.set_link(sid, "", None, data)


def test_share_page_carries_the_shop_and_the_product_link(server, share_url, tmp_path):
    from PIL import Image

    from webapp import sanitize, shop

    base, data = server
    sid = share_url.rsplit("/", 1)[1]
    im, buf = Image.new("RGB", (300, 100), (200, 40, 40)), __import__("io").BytesIO()
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (52.0, 22.0, 1.0)}
    im.save(buf, format="JPEG", exif=exif)
    try:
        shop.save(data, name='Oak & "Co" <b>', website="https://oak.example/")
        owner = shop.set_logo(data, buf.getvalue())
        library.set_link(sid, "https://oak.example/p/1?a=1&b=2", None, data)
        html = httpx.get(share_url, timeout=10).text
        assert "Oak &amp; &quot;Co&quot; &lt;b&gt;" in html and '<b>' not in html.split("<body", 1)[1].split("<h1")[0]
        assert 'href="https://oak.example/p/1?a=1&amp;b=2"' in html and "Back to the product" in html
        logo_url = re.search(r'<img class="shop-logo" src="([^"]+)"', html).group(1)
        logo = httpx.get(base + logo_url, timeout=10)
        assert logo.status_code == 200 and logo.headers["content-type"] == "image/png"
        assert logo.content == owner.logo.read_bytes() and not sanitize.has_metadata(logo.content)
        assert "Back to the product" not in httpx.get(share_url + "?embed=1", timeout=10).text  # on the shop's own page
        gone = _branded_gone(httpx.get(f"{base}/ar/{'B' * 30}", timeout=10), 404, "lead to a model")
        assert "Oak &amp; &quot;Co&quot;" in gone and 'href="https://oak.example/"' in gone and logo_url in gone
        assert httpx.get(f"{base}/assets/shop/no-such-shop/logo.png", timeout=10).status_code == 404
        assert httpx.get(f"{base}/assets/shop/..%2F..%2Fplinth.sqlite3/logo.png", timeout=10).status_code == 404
    finally:
        shop.save(data, name="", website="")
        shop.remove_logo(data)
        library.set_link(sid, "", None, data)


def test_desktop_share_page_has_a_qr_code_of_itself_and_the_embed_has_none(server, share_url):
    import base64

    import cv2
    import numpy as np

    html = httpx.get(share_url, timeout=10).text
    src = re.search(r'<aside class="phone-qr"[^>]*><img src="data:image/png;base64,([^"]+)"', html).group(1)
    img = cv2.imdecode(np.frombuffer(base64.b64decode(src), np.uint8), cv2.IMREAD_GRAYSCALE)
    assert cv2.QRCodeDetector().detectAndDecode(img)[0] == share_url
    assert "phone-qr" not in httpx.get(share_url + "?embed=1", timeout=10).text
