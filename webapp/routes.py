"""Starlette routes served beside the Streamlit UI: AR pages, model files and our assets."""

from __future__ import annotations

import re
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from . import ar_page, library, settings

CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS"}
_ASSET_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*(\.[a-z0-9]+)+$")
_ASSET_TYPES = {
    ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml",
    ".png": "image/png", ".ico": "image/x-icon", ".woff2": "font/woff2", ".json": "application/json",
}


def not_found(_request: Request | None = None, *_args) -> Response:
    return PlainTextResponse("Not found. The link may be wrong, or the model was deleted.", status_code=404,
                             headers={"Cache-Control": "no-store"})


def _base(request: Request) -> str:
    """Absolute base for model URLs: Scene Viewer downloads the GLB itself, so no relative links."""
    return settings.public_url(seen_at=str(request.url))


async def ar(request: Request) -> Response:
    model = library.get_model(request.path_params["share_id"])
    if model is None or model.file("model.glb") is None:
        return not_found()
    embed = request.query_params.get("embed") == "1"
    html = ar_page.render(model, _base(request), embed=embed)
    return HTMLResponse(html, headers={
        "Cache-Control": "no-cache", "Content-Security-Policy": ar_page.CSP,
        "X-Content-Type-Options": "nosniff", "Referrer-Policy": "strict-origin-when-cross-origin",
    })


async def model_file(request: Request) -> Response:
    if request.method == "OPTIONS":
        return Response(status_code=204, headers={**CORS, "Access-Control-Max-Age": "86400"})
    model = library.get_model(request.path_params["share_id"])
    filename = request.path_params["filename"]
    path = model.file(filename) if model else None
    if path is None:
        return not_found()
    headers = {**CORS, "Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}
    disposition = "attachment" if request.query_params.get("download") == "1" else "inline"
    headers["Content-Disposition"] = f'{disposition}; filename="{download_name(model.name, filename)}"'
    return FileResponse(path, media_type=library.PUBLIC_FILES[filename][1], headers=headers)


def download_name(name: str, public_name: str) -> str:
    """'Oak chair' + 'model.glb' -> 'oak-chair.glb' (ASCII only, safe inside a header)."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60] or "model"
    return f"{slug}{public_name[public_name.index('.'):]}" if public_name.startswith("model.") else f"{slug}-{public_name}"


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

    PREFIXES = ("/ar/", "/models/", "/assets/")

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            path = scope.get("path", "")
            raw = scope.get("raw_path", b"").decode("latin-1").lower()
            if path.startswith(self.PREFIXES) and (
                ".." in path or "\\" in path or "\x00" in path or "%2e%2e" in raw or "%5c" in raw or "%00" in raw
            ):
                await not_found()(scope, receive, send)
                return
        await self.app(scope, receive, send)


def middleware() -> list:
    """The ASGI middleware around the whole app (ours and Streamlit's routes), outermost first."""
    from starlette.middleware import Middleware

    return [Middleware(PathGuard)]


async def health(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def routes() -> list[Route]:
    """Specific routes first, then catch-alls so that odd paths (`..`, extra slashes) are 404s."""
    return [
        Route("/ar/{share_id}", ar, methods=["GET", "HEAD"]),
        Route("/ar/{rest:path}", not_found, methods=["GET", "HEAD"]),
        Route("/models/{share_id}/{filename}", model_file, methods=["GET", "HEAD", "OPTIONS"]),
        Route("/models/{rest:path}", not_found, methods=["GET", "HEAD", "OPTIONS"]),
        Route("/assets/{filename}", asset, methods=["GET", "HEAD"]),
        Route("/assets/{rest:path}", not_found, methods=["GET", "HEAD"]),
        Route("/healthz", health, methods=["GET"]),
    ]
