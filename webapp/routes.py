"""Starlette routes served beside the Streamlit UI: AR pages, model files and our assets."""

from __future__ import annotations

import functools
import logging
import re
from pathlib import Path

from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
)
from starlette.routing import Route

from . import accounts, ar_page, library, settings, shop, storage
from .ar_page import LinkState
from .upload_guard import UploadGuard

CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS"}
log = logging.getLogger("plinth.routes")
_ASSET_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*(\.[a-z0-9]+)+$")
_ASSET_TYPES = {
    ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml",
    ".png": "image/png", ".ico": "image/x-icon", ".woff2": "font/woff2", ".json": "application/json",
}


def not_found(request: Request | None = None, *_args) -> Response:
    """404: the branded page under /ar/ (a shopper opened a link), one plain line elsewhere."""
    path = request.url.path if request is not None else ""
    return gone(LinkState.UNKNOWN, html=path.startswith("/ar/"))


def gone(state: LinkState, html: bool, embed: bool = False, owner: str = "") -> Response:
    """What a link that shows no model answers: 404 or 410, never cached, never a traceback.
    Share pages get the branded page (the name and logo of the shop of `owner`, the model's
    merchant, when set; an unknown link: DEFAULT, which exists only before accounts); files a short line."""
    headers = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}
    if not html:
        return PlainTextResponse(ar_page.FILE_WORDS[state.name], status_code=state.status, headers=headers)
    try:
        brand = shop.of_owner(settings.data_dir(), owner)
    except (OSError, ValueError):  # an unreadable data folder: plain branding still says what happened
        brand = None
    return HTMLResponse(ar_page.render_gone(state, brand, embed=embed), status_code=state.status, headers={
        **headers, "Content-Security-Policy": ar_page.CSP, "X-Content-Type-Options": "nosniff"})


def storage_guard(route):
    """A route that reads model files: when the shared storage cannot answer, a plain 503 that asks
    to retry (never a traceback, never a 404 that would tell a shopper the model is gone).

    These routes are plain functions, not coroutines, so Starlette runs them in its thread pool: a
    database round trip (Postgres) or a model's first download from the shared storage never holds
    the event loop that every other page and the health check share."""

    @functools.wraps(route)
    def guarded(request: Request) -> Response:
        try:
            return route(request)
        except storage.StorageError as error:
            log.warning("storage unavailable for %s: %s", request.url.path, error)
            return PlainTextResponse("The model's files cannot be read right now. Please try again in a minute.",
                                     status_code=503, headers={"Cache-Control": "no-store", "Retry-After": "30"})

    return guarded


def share_state(share_id: str) -> tuple[library.Model | None, LinkState | None]:
    """The model a share link shows, or why it shows none: in the Trash (restoring it brings the
    same link back), past its expiry date, or unknown (a model that failed its checks is not
    published unless the merchant chose to: it answers like an unknown link)."""
    model = library.get_model(share_id)
    if model is None or not model.shared or model.file("model.glb") is None:
        trashed = library.share_status(share_id) is library.ShareStatus.TRASHED
        return None, LinkState.TRASHED if trashed else LinkState.UNKNOWN
    if model.expired():
        return None, LinkState.EXPIRED
    return model, None


def _base(request: Request) -> str:
    """Absolute base for model URLs: Scene Viewer downloads the GLB itself, so no relative links."""
    return settings.public_url(seen_at=str(request.url))


@storage_guard
def ar(request: Request) -> Response:
    embed = request.query_params.get("embed") == "1"
    share_id = request.path_params["share_id"]
    model, state = share_state(share_id)
    if state is not None:
        # In the Trash or expired: still its merchant's page. Unknown (or not published): no shop's.
        known = library.get_model(share_id, trashed=True) if state is not LinkState.UNKNOWN else None
        return gone(state, html=True, embed=embed, owner=known.owner if known else "")
    html = ar_page.render(model, _base(request), embed=embed, shop=shop.of_owner(settings.data_dir(), model.owner))
    return HTMLResponse(html, headers={
        "Cache-Control": "no-cache", "Content-Security-Policy": ar_page.CSP,
        "X-Content-Type-Options": "nosniff", "Referrer-Policy": "strict-origin-when-cross-origin",
    })


@storage_guard
def model_file(request: Request) -> Response:
    if request.method == "OPTIONS":
        return Response(status_code=204, headers={**CORS, "Access-Control-Max-Age": "86400"})
    model, state = share_state(request.path_params["share_id"])
    if state is not None:
        return gone(state, html=False)
    # A short max-age: an expiry date or a take-down must reach shoppers' caches soon.
    return _file_response(request, model, {**CORS, "Cache-Control": "public, max-age=300"})


def _merchants_model(request: Request) -> library.Model | None:
    """The model of a /preview/ address, only for a signed-in user who may see it (the session
    cookie): anyone else, like an unknown id, gets None, so the answer is the same 404."""
    data = settings.data_dir()
    user = accounts.session_user(data, request.cookies.get(accounts.COOKIE))
    model = library.get_model(request.path_params["share_id"]) if user is not None else None
    return model if model is not None and user.can_see(model.owner) else None


@storage_guard
def preview(request: Request) -> Response:
    """The merchant's own look at any model, shared or not (the Model page's "Look at it anyway"):
    under /preview/, for its merchant only (the sign-in cookie; the owner may see all), never
    cached, not embeddable by other sites, and without AR."""
    model = _merchants_model(request)
    if model is None or model.file("model.glb") is None:
        return not_found()
    return HTMLResponse(ar_page.render(model, "", embed=True, preview=True), headers={
        "Cache-Control": "no-store", "Content-Security-Policy": ar_page.PREVIEW_CSP,
        "X-Content-Type-Options": "nosniff", "X-Robots-Tag": "noindex",
    })


@storage_guard
def preview_file(request: Request) -> Response:
    model = _merchants_model(request)
    if model is None:
        return not_found()
    return _file_response(request, model, {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"})


def _file_response(request: Request, model: library.Model, headers: dict[str, str]) -> Response:
    filename = request.path_params["filename"]
    # Served from the local copy (Model.file pulls it from the shared storage on first use), not
    # streamed with storage.open_stream: FileResponse answers Range requests (Quick Look and Scene
    # Viewer fetch big files in ranges), HEAD, ETag and Last-Modified, and the next view of a popular
    # model costs no storage round trip.
    path = model.file(filename)
    if path is None:
        return not_found()
    headers = {**headers, "X-Content-Type-Options": "nosniff"}
    disposition = "attachment" if request.query_params.get("download") == "1" else "inline"
    headers["Content-Disposition"] = f'{disposition}; filename="{download_name(model.name, filename)}"'
    return FileResponse(path, media_type=library.PUBLIC_FILES[filename][1], headers=headers)


def download_name(name: str, public_name: str) -> str:
    """'Oak chair' + 'model.glb' -> 'oak-chair.glb' (ASCII only, safe inside a header)."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60] or "model"
    return f"{slug}{public_name[public_name.index('.'):]}" if public_name.startswith("model.") else f"{slug}-{public_name}"


def shop_logo(request: Request) -> Response:
    """The shop's logo (re-encoded without metadata when uploaded: shop.set_logo)."""
    try:
        logo = shop.get(settings.data_dir(), request.path_params["shop_id"]).logo
    except ValueError:  # not a shop id
        logo = None
    if logo is None:
        return not_found()
    return FileResponse(logo, media_type="image/png", headers={
        **CORS, "Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"})


async def asset(request: Request) -> Response:
    name = request.path_params["filename"]
    if name == "model-viewer.min.js":
        path = settings.model_viewer_js()
        if path is None:
            return PlainTextResponse("model-viewer is not installed: run `npm install` in the Plinth folder.",
                                     status_code=404)
    elif _ASSET_NAME.match(name) and (settings.STATIC_DIR / name).is_file():
        path = settings.STATIC_DIR / name
    else:
        return not_found()
    media = _ASSET_TYPES.get(Path(name).suffix, "application/octet-stream")
    return FileResponse(path, media_type=media, headers={
        **CORS, "Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"})


class PathGuard:
    """ASGI middleware: under our prefixes, any path with `..`, a backslash or a NUL is a plain 404.

    (Streamlit's own guard would answer 400; a missing-page answer gives nothing away.)
    """

    PREFIXES = ("/ar/", "/models/", "/assets/", "/preview/")

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            path = scope.get("path", "")
            raw = scope.get("raw_path", b"").decode("latin-1").lower()
            if path.startswith(self.PREFIXES) and (
                ".." in path or "\\" in path or "\x00" in path or "%2e%2e" in raw or "%5c" in raw or "%00" in raw
            ):
                await not_found(Request(scope))(scope, receive, send)
                return
        await self.app(scope, receive, send)


class HeaderLimit:
    """ASGI middleware: a request whose headers add up to more than MAX_BYTES gets a plain 431.

    The HTTP server in front of us accepted a 100 KB header and handed it to every route; browsers
    send a few KB (Streamlit's cookies included), so 32 KiB leaves room and refuses abuse early.
    """

    MAX_BYTES = 32 * 1024

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            size = sum(len(k) + len(v) + 4 for k, v in scope.get("headers", ()))
            if size > self.MAX_BYTES:
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1009})
                    return
                # No "Connection: close": the headers are already read, and closing with the client
                # still writing made it see a reset instead of this answer (seen once in CI).
                await PlainTextResponse("The request's headers are too large.", status_code=431,
                                        headers={"Cache-Control": "no-store"})(scope, receive, send)
                return
        await self.app(scope, receive, send)


#: Merchant pages (Streamlit). Why each source is there:
#: script-src 'self' + the hash of index.html's one inline line (`window.prerenderReady = false`):
#:   Streamlit's bundles are same-origin files; no 'unsafe-inline', no 'unsafe-eval'.
#: style-src 'unsafe-inline': Streamlit's CSS-in-JS (emotion) writes <style> tags and style attributes.
#: img-src data: blob:: st.image and the QR code come as /media/ URLs, icons and thumbnails as data:.
#: frame-src 'self': the Model page embeds the share page /ar/<id>?embed=1.
#: connect-src 'self': the websocket (/_stcore/stream) and uploads; 'self' covers same-origin ws(s):.
#: worker-src 'self' blob:: Streamlit starts web workers from blob: URLs.
MERCHANT_CSP = (
    "default-src 'self'; script-src 'self' 'sha256-{inline}' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; media-src 'self' data: blob:; "
    "connect-src 'self'; frame-src 'self'; worker-src 'self' blob:; object-src 'none'; "
    "frame-ancestors 'self'; base-uri 'self'; form-action 'self'"
)
REFERRER = "strict-origin-when-cross-origin"
_SHARED_PREFIXES = ("/ar/", "/models/", "/assets/")  # embeddable by shops: their own headers (routes above)


def _inline_script_hash() -> str:
    """sha256 of the inline <script> in Streamlit's index.html, as CSP wants it (base64)."""
    import base64
    import hashlib

    import streamlit

    html = (Path(streamlit.__file__).parent / "static" / "index.html").read_text(encoding="utf-8")
    found = re.search(r"<script>(.*?)</script>", html, re.S)
    body = found.group(1) if found else ""
    return base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()


class SecurityHeaders:
    """ASGI middleware: CSP, no framing by other sites, nosniff and a referrer policy on the
    merchant pages. Share pages and files (`/ar/`, `/models/`, `/assets/`) stay embeddable and
    keep the headers their routes set; they only get nosniff and a referrer policy if missing."""

    def __init__(self, app):
        self.app = app
        self.merchant = [
            (b"content-security-policy", MERCHANT_CSP.replace("{inline}", _inline_script_hash()).encode()),
            (b"x-frame-options", b"SAMEORIGIN"),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", REFERRER.encode()),
        ]
        self.shared = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", REFERRER.encode())]

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self.shared if scope.get("path", "").startswith(_SHARED_PREFIXES) else self.merchant

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                have = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in extra if name not in have]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def middleware() -> list:
    """The ASGI middleware around the whole app (ours and Streamlit's routes), outermost first."""
    from starlette.middleware import Middleware

    from .gate import Gate

    return [Middleware(HeaderLimit), Middleware(SecurityHeaders), Middleware(PathGuard), Middleware(Gate),
            Middleware(UploadGuard)]


async def health(_request: Request) -> Response:
    """/healthz for load balancers and `docker compose`: 200 with what this server uses (database,
    queue and live workers, storage), 503 with plain words when one of them does not answer
    (webapp/health.py: at most one round trip each, cached 2 s)."""
    from . import health as checks

    state = await checks.current()
    return JSONResponse(state.body(), status_code=200 if state.ok else 503, headers={"Cache-Control": "no-store"})


def routes() -> list[Route]:
    """Specific routes first, then catch-alls so that odd paths (`..`, extra slashes) are 404s."""
    from . import signin_routes

    return [
        *signin_routes.routes(),
        Route("/ar/{share_id}", ar, methods=["GET", "HEAD"]),
        Route("/ar/{rest:path}", not_found, methods=["GET", "HEAD"]),
        Route("/models/{share_id}/{filename}", model_file, methods=["GET", "HEAD", "OPTIONS"]),
        Route("/models/{rest:path}", not_found, methods=["GET", "HEAD", "OPTIONS"]),
        Route("/preview/{share_id}", preview, methods=["GET", "HEAD"]),
        Route("/preview/{share_id}/{filename}", preview_file, methods=["GET", "HEAD"]),
        Route("/preview/{rest:path}", not_found, methods=["GET", "HEAD"]),
        Route("/assets/shop/{shop_id}/logo.png", shop_logo, methods=["GET", "HEAD"]),
        Route("/assets/{filename}", asset, methods=["GET", "HEAD"]),
        Route("/assets/{rest:path}", not_found, methods=["GET", "HEAD"]),
        Route("/healthz", health, methods=["GET"]),
        *api_routes(),
    ]


def api_routes() -> list[Route]:
    from .api.routes import routes as api  # the HTTP API for shop back-ends (webapp/api/)

    return api()
