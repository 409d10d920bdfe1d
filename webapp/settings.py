"""Where things live: the data folder, the public base URL and the model-viewer bundle.

No Streamlit import here: the CLI and the job child process use these too.
"""

from __future__ import annotations

import functools
import json
import os
import socket
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
    URL a browser used to reach us (a request, the merchant's page), but only when its host is
    one this server really has or is configured for (`allowed_host`): what worked for the
    merchant works for a phone on the same network, while a forged Host header cannot point
    share pages elsewhere. Then the address of the running `plinth serve` (it records itself in
    the data folder), else http://localhost:8501.
    """
    env = os.environ.get("PLINTH_PUBLIC_URL", "").strip()
    if env:
        return env.rstrip("/")
    recorded = _recorded_url(data or data_dir())
    if seen_at:
        parts = urlsplit(seen_at)
        try:
            host = parts.hostname
        except ValueError:  # a malformed port or bracket
            host = None
        if parts.scheme in ("http", "https") and host and allowed_host(host, recorded):
            return f"{parts.scheme}://{parts.netloc}"
    return recorded or f"http://localhost:{DEFAULT_PORT}"


def allowed_host(host: str, recorded_url: str | None = None) -> bool:
    """True when `host` (no port) names this server: loopback, this machine's name or addresses,
    the host of the recorded server URL, or one listed in $PLINTH_ALLOWED_HOSTS (comma list)."""
    host = host.strip("[]").lower().rstrip(".")
    listed = {h.strip().lower() for h in os.environ.get("PLINTH_ALLOWED_HOSTS", "").split(",") if h.strip()}
    if recorded_url:
        listed.add((urlsplit(recorded_url).hostname or "").lower())
    return host in listed or host in machine_hosts()


@functools.lru_cache(maxsize=1)
def machine_hosts() -> frozenset[str]:
    """Names and addresses of this machine, looked up once per process, without network traffic:
    loopback, the hostname, what the hostname resolves to, and the interfaces' IPv4 addresses."""
    names = {"localhost", "127.0.0.1", "::1"}
    try:
        hostname = socket.gethostname()
        names.add(hostname.lower())
        for *_, address in socket.getaddrinfo(hostname, None):
            names.add(str(address[0]).split("%")[0].lower())
    except OSError:
        pass
    names.update(_interface_addresses())
    return frozenset(names)


def _interface_addresses() -> set[str]:
    """Addresses of the network interfaces (Linux: ioctl and /proc; elsewhere the default route's)."""
    found = set()
    try:  # a UDP "connect" sends nothing: it only asks the kernel which address would be used
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))
            found.add(probe.getsockname()[0])
    except OSError:
        pass
    try:
        import fcntl
        import struct

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for _, name in socket.if_nameindex():
                try:
                    packed = fcntl.ioctl(sock.fileno(), 0x8915, struct.pack("256s", name.encode()[:15]))  # SIOCGIFADDR
                    found.add(socket.inet_ntoa(packed[20:24]))
                except OSError:
                    continue
    except (ImportError, OSError, AttributeError):
        pass
    try:  # IPv6: one line per address, 32 hex digits first
        for line in Path("/proc/net/if_inet6").read_text().splitlines():
            digits = line.split()[0]
            found.add(socket.inet_ntop(socket.AF_INET6, bytes.fromhex(digits)))
    except (OSError, ValueError, IndexError):
        pass
    return found


def _recorded_url(data: Path) -> str | None:
    """The URL `plinth serve` recorded in server.json, or None."""
    try:
        url = json.loads((data / "server.json").read_text())["url"]
        if isinstance(url, str) and url.startswith(("http://", "https://")):
            return url.rstrip("/")
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


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


# ---------------------------------------------------------------- past one machine (docs/deploy.md)
# Each is unset by default: the embedded SQLite queue, database and local data folder need no service.


def queue_url() -> str | None:
    """$PLINTH_QUEUE (redis://HOST:6379/0): jobs go to RQ on that Redis; None: the embedded SQLite queue."""
    return os.environ.get("PLINTH_QUEUE", "").strip() or None


def database_url() -> str | None:
    """$PLINTH_DATABASE_URL: postgresql://... (the library and jobs in Postgres) or sqlite:///PATH (one SQLite
    file that processes on one machine share); None: SQLite in the data folder."""
    return os.environ.get("PLINTH_DATABASE_URL", "").strip() or None


def storage_url() -> str | None:
    """$PLINTH_STORAGE: s3://bucket/prefix (S3-compatible object storage) or a folder (file:///srv/plinth or
    /srv/plinth) that every machine mounts; None: photos and models live in the data folder."""
    return os.environ.get("PLINTH_STORAGE", "").strip() or None
