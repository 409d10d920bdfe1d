"""One process, one command: the Streamlit merchant UI plus the AR routes, via `st.App`.

    from webapp.server import serve
    serve(host="localhost", port=8501)      # what `plinth serve` calls; blocks

The job workers start with the server (and stop with it); with $PLINTH_QUEUE they are `plinth
worker`s instead (webapp/jobqueue.py). Share links use $PLINTH_PUBLIC_URL when set; otherwise
the server records its own address in the data folder for `plinth make --publish`.
One server per data folder (webapp/lock.py): a second one exits before it touches anything; at
start the library database is checked and, if it is missing or damaged, rebuilt (store.open_library).
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
import sys
from contextlib import asynccontextmanager

from . import jobqueue, limits, lock, logs, routes, settings, sso, store

log = logging.getLogger("plinth.server")

#: Streamlit options set in code, so the app behaves the same whatever the working directory.
STREAMLIT_OPTIONS = {
    "server.headless": True,
    "server.enableStaticServing": False,  # our assets are served by our own routes
    "server.maxUploadSize": math.ceil(limits.MAX_FILE_MB),  # Streamlit's own cap agrees with upload_guard.UploadGuard
    "server.fileWatcherType": "none",
    "server.runOnSave": False,
    "browser.gatherUsageStats": False,  # no calls home: the server may run offline
    "client.toolbarMode": "minimal",
    "client.showErrorDetails": "none",  # never a traceback in the merchant's browser
    "theme.base": "light",
    "theme.primaryColor": "#1f6f5c",
    "theme.backgroundColor": "#ffffff",
    "theme.secondaryBackgroundColor": "#f4f6f5",
    "theme.textColor": "#1d2433",
    "theme.font": "sans-serif",
    "theme.baseRadius": "0.6rem",
}


def build_app():
    """The ASGI app: Streamlit's routes plus ours, with the job workers in its lifespan."""
    import streamlit as st

    @asynccontextmanager
    async def lifespan(_app):
        data = settings.data_dir()
        jobqueue.start(data)  # embedded: the worker threads; $PLINTH_QUEUE: only the reaper
        yield None
        jobqueue.stop()
        settings.forget_server_url(data)  # uvicorn re-raises SIGTERM after this, so not in serve()

    def on_script_error(error: Exception) -> bool:
        # Our bug, not the merchant's: log the details, show plain words instead of a traceback.
        log.error("page failed", exc_info=error)
        st.error("Sorry, this page hit a problem. Please reload it; your models and photos are safe.",
                 icon=":material/error:")
        return True

    return st.App(str(settings.APP_SCRIPT), routes=routes.routes(), lifespan=lifespan,
                  middleware=routes.middleware(), on_script_error=on_script_error)


def serve(host: str = "localhost", port: int = settings.DEFAULT_PORT) -> None:
    """Start the web app and the AR share pages on host:port. Blocks until Ctrl+C."""
    if settings.model_viewer_js() is None:
        print("plinth: model-viewer is missing, so 3D previews will not show. "
              "Run `npm install` in the Plinth folder.", file=sys.stderr)
    logs.setup("plinth")  # ours only: Streamlit formats its own loggers
    if jobqueue.engine() is jobqueue.Engine.RQ:
        from . import rq_engine

        try:
            rq_engine.connection()
        except jobqueue.QueueUnavailable as error:
            print(f"plinth: {error}", file=sys.stderr)
            raise SystemExit(2) from None
    data = settings.data_dir()
    shown_host = "localhost" if host in ("0.0.0.0", "::", "") else host
    url = f"http://{shown_host}:{port}"
    # The lock comes before anything is written: a second server must not touch server.json.
    try:
        held = lock.acquire(data, url=url)
    except lock.Busy as busy:
        print(f"plinth: {busy.message()}", file=sys.stderr)
        raise SystemExit(1) from None
    try:
        if not _port_free(host, port):
            print(f"plinth: port {port} is already in use (is Plinth already running?). "
                  f"Try another one: plinth serve --port {port + 1}", file=sys.stderr)
            raise SystemExit(1)
        try:
            for message in store.open_library(data):
                print(f"plinth: {message}")
        except (OSError, sqlite3.Error) as error:  # e.g. a full disk: serve what can be served
            print(f"plinth: could not check the library database ({error}); share links are served "
                  "from the model folders.", file=sys.stderr)
        settings.record_server_url(url, data)
        public = settings.public_url(data)
        print(f"Plinth is running at {url}  (data folder: {data})", flush=True)
        _print_first_start(data, url)
        if public != url:
            print(f"Share links use {public}")
        for path in sso.secrets_files() or ():
            if not os.path.isfile(path):
                print(f"plinth: PLINTH_SECRETS names {path}, which is not a file, so single sign-on is off; "
                      "sign-in uses Plinth's own accounts.", file=sys.stderr)
        app = build_app()
        # App.run treats argv[0] as the launcher script; point it at our entry so Streamlit resolves
        # paths as it would for `streamlit run webapp/app.py`, then restore argv.
        saved = sys.argv
        sys.argv = [str(settings.APP_SCRIPT)]
        try:
            options = {**STREAMLIT_OPTIONS, "server.address": host, "server.port": int(port)}
            if sso.secrets_files():  # $PLINTH_SECRETS: single sign-on settings from this file only
                options["secrets.files"] = sso.secrets_files()
            app.run(config=options)
        finally:
            sys.argv = saved
            settings.forget_server_url(data)
    finally:
        held.release()


def _print_first_start(data, url: str) -> None:
    """While no account exists: the one-time link that creates the owner account."""
    from . import signin

    code = signin.setup_code(data)
    if code:
        print(f"First start: create the owner account at {url}/setup?code={code}\n"
              "  (or in a terminal: plinth user add you@example.com --owner)", flush=True)


def _port_free(host: str, port: int) -> bool:
    import socket

    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM)
    except OSError:
        return True  # let the server report the bad address itself
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError:
            return False
    return True
