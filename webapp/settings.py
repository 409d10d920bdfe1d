"""Where things live: the data folder, the public base URL and the model-viewer bundle.

No Streamlit import here: the CLI and the job child process use these too.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import urlsplit

from pipeline import atomic_write

ROOT = Path(__file__).resolve().parent.parent
STATIC_DIR = ROOT / "static"
APP_SCRIPT = Path(__file__).resolve().parent / "app.py"
DEFAULT_PORT = 8501

#: model-viewer comes from npm (`npm install` in the project root); never from a CDN at run time.
MODEL_VIEWER_VERSION = "4.4.0"
_MODEL_VIEWER_CANDIDATES = (
    ROOT / "node_modules" / "@google" / "model-viewer" / "dist" / "model-viewer.min.js",
    STATIC_DIR / "vendor" / "model-viewer.min.js",
)


def data_dir(override: str | os.PathLike | None = None) -> Path:
    """The data folder: `override`, else $PLINTH_DATA_DIR, else ./data (created if missing)."""
    path = Path(override or os.environ.get("PLINTH_DATA_DIR") or "data").expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def model_viewer_js() -> Path | None:
    """The self-hosted model-viewer bundle, or None when `npm install` has not been run."""
    env = os.environ.get("PLINTH_MODEL_VIEWER_JS")
    for path in ((Path(env),) if env else ()) + _MODEL_VIEWER_CANDIDATES:
        if path.is_file():
            return path
    return None


def public_url(data: Path | None = None, seen_at: str | None = None) -> str:
    """Base of share links and model file URLs, without a trailing slash. The one place that decides it.

    $PLINTH_PUBLIC_URL wins (set it behind a proxy or tunnel). Then the origin of `seen_at`, the
    URL a browser used to reach us (a request, the merchant's page): what worked for them works
    for a phone on the same network. Then the address of the running `plinth serve` (it records
    itself in the data folder), else http://localhost:8501.
    """
    env = os.environ.get("PLINTH_PUBLIC_URL", "").strip()
    if env:
        return env.rstrip("/")
    if seen_at:
        parts = urlsplit(seen_at)
        if parts.scheme in ("http", "https") and parts.netloc:
            return f"{parts.scheme}://{parts.netloc}"
    marker = (data or data_dir()) / "server.json"
    try:
        url = json.loads(marker.read_text())["url"]
        if isinstance(url, str) and url.startswith(("http://", "https://")):
            return url.rstrip("/")
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return f"http://localhost:{DEFAULT_PORT}"


def record_server_url(url: str, data: Path | None = None) -> None:
    """Remember where `plinth serve` listens, so `plinth make --publish` prints working links."""
    atomic_write((data or data_dir()) / "server.json", json.dumps({"url": url, "pid": os.getpid()}))


def forget_server_url(data: Path | None = None) -> None:
    """On shutdown: drop the marker if it is ours, so links do not point at a stopped server."""
    target = (data or data_dir()) / "server.json"
    try:
        if json.loads(target.read_text()).get("pid") == os.getpid():
            target.unlink()
    except (OSError, ValueError, AttributeError):
        pass
