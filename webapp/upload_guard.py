"""ASGI middleware: the upload limits (webapp.limits), enforced where the bytes arrive.

Split from routes.py, which puts it in the app's middleware stack (routes.middleware)."""

from __future__ import annotations

import shutil

from . import limits, settings

MB = 1024 * 1024  # Streamlit's upload sizes are MiB (the widget's max_upload_size=50 is 50 * 2**20 bytes)
#: Multipart framing around one file (boundary, part headers with the file name); generous.
_FRAMING = 64 * 1024


class _Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class UploadGuard:
    """ASGI middleware: the upload limits (webapp.limits), enforced where the bytes arrive.

    Streamlit receives each file as `PUT /_stcore/upload_file/<session>/<file id>` (a multipart
    body) and keeps it in memory until a DELETE of that file id or the end of the session; its own
    cap is `server.maxUploadSize` for any one file. Here, before Streamlit reads a byte: one file
    <= MAX_FILE_MB (Content-Length, then counted while streaming, so a chunked or lying body is
    cut off), a session holds <= MAX_JOB_PHOTOS files and <= MAX_JOB_MB, and the data folder's
    disk and the free memory keep MIN_FREE_MB. Refusals are one plain line (413, 507 for the disk,
    503 for memory) and never buffer the refused body.
    """

    PREFIX = "/_stcore/upload_file/"

    def __init__(self, app):
        self.app = app
        #: session id -> file id -> bytes held (or received so far, while a PUT is in flight)
        self.held: dict[str, dict[str, int]] = {}

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "") if scope["type"] == "http" else ""
        ids = path[len(self.PREFIX):].split("/") if path.startswith(self.PREFIX) else []
        if len(ids) != 2 or not all(ids) or scope["method"] not in ("PUT", "DELETE"):
            await self.app(scope, receive, send)
            return
        session, file_id = ids
        if scope["method"] == "DELETE":
            status = await self._forward(scope, receive, send)
            if 200 <= status < 300:
                self.held.get(session, {}).pop(file_id, None)
            return
        await self._put(scope, receive, send, session, file_id)

    async def _put(self, scope, receive, send, session: str, file_id: str) -> None:
        self._forget_ended_sessions()
        file_cap = int(limits.MAX_FILE_MB * MB) + _FRAMING
        declared = _content_length(scope)
        files = self.held.setdefault(session, {})
        before = files.pop(file_id, None)  # a file id sent again replaces its file
        try:
            self._check(files, declared or 0, file_cap)
        except _Refused as refused:
            _restore(files, file_id, before)
            # Close the connection only when the body is large: a browser still sending it would see
            # a reset instead of our answer; a small body is read and dropped by the server.
            await _plain(send, refused, close=(declared or 0) > file_cap)
            return

        received = 0

        async def counted_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                files[file_id] = received
                if received > file_cap:
                    raise _Refused(413, _too_big())
                if sum(files.values()) > limits.MAX_JOB_MB * MB:
                    raise _Refused(413, _too_much())
            return message

        started = False

        async def tracked_send(message):
            nonlocal started, status
            if message["type"] == "http.response.start":
                started, status = True, message["status"]
            await send(message)

        status = 500
        try:
            await self.app(scope, counted_receive, tracked_send)
        except _Refused as refused:
            status = refused.status
            if started:
                raise
            await _plain(send, refused, close=True)
        finally:
            if 200 <= status < 300:
                files[file_id] = received
            else:
                files.pop(file_id, None)
                _restore(files, file_id, before)

    def _check(self, files: dict[str, int], declared: int, file_cap: int) -> None:
        if declared > file_cap:
            raise _Refused(413, _too_big())
        if len(files) >= limits.MAX_JOB_PHOTOS:
            raise _Refused(413, f"One model can use at most {limits.MAX_JOB_PHOTOS} photos. "
                                "Remove some photos before adding others.")
        if sum(files.values()) + declared > limits.MAX_JOB_MB * MB:
            raise _Refused(413, _too_much())
        floor = limits.MIN_FREE_MB * MB + declared
        try:
            free_disk = shutil.disk_usage(settings.data_dir()).free
        except OSError:
            free_disk = None
        if free_disk is not None and free_disk < floor:
            raise _Refused(507, "The server's disk is almost full. Free some space on it, then add the photos again.")
        free_memory = _available_memory()
        if free_memory is not None and free_memory < floor:
            raise _Refused(503, "The server is short of memory right now. Try again in a few minutes.")

    def _forget_ended_sessions(self) -> None:
        """Streamlit drops a session's files when the session ends; so does the ledger."""
        try:
            from streamlit import runtime

            if not runtime.exists():
                return
            live = runtime.get_instance()
            for session in [s for s in self.held if not live.is_active_session(s)]:
                del self.held[session]
        except Exception:  # never let the bookkeeping break an upload
            return

    async def _forward(self, scope, receive, send) -> int:
        status = 500

        async def tracked_send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, tracked_send)
        return status


def _too_big() -> str:
    return f"This photo is larger than {limits.MAX_FILE_MB:g} MB. Use a smaller photo."


def _too_much() -> str:
    return f"These photos add up to more than {limits.MAX_JOB_MB:g} MB. Remove some photos or use smaller ones."


def _restore(files: dict[str, int], file_id: str, before: int | None) -> None:
    if before is not None:
        files[file_id] = before


def _content_length(scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            try:
                return max(0, int(value))
            except ValueError:
                return None
    return None


def _available_memory() -> int | None:
    """MemAvailable in bytes (Linux); None where the system does not say."""
    try:
        with open("/proc/meminfo", encoding="ascii") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


async def _plain(send, refused: _Refused, close: bool) -> None:
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"cache-control", b"no-store")]
    if close:
        headers.append((b"connection", b"close"))
    body = refused.message.encode()
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": refused.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
