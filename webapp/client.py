"""A small client of a Plinth server's HTTP API (docs/api.md), for `plinth make --server URL --token T`.

    client = Client("https://3d.myshop.example", "plinth_...")
    job = client.submit([Path("vase.jpg")], name="Blue vase", size="30cm", axis="height")
    done = client.wait(job["job_id"], on_progress=print)
    client.download(done["model"], Path("out/vase.glb"))     # + .usdz, .poster.png, .obj.zip beside it

Every failure is a pipeline.PlinthError with one plain line (the server's own words where it gave
some), so the command line prints it without a traceback. No Streamlit import.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from pipeline import CaptureError, InputError, PlinthError

#: The GLB's neighbours, named as a local `plinth make` names them.
FILES = (("glb", ".glb"), ("usdz", ".usdz"), ("obj_zip", ".obj.zip"), ("poster", ".poster.png"))
POLL_S = 1.0


class ServerError(PlinthError):
    """The server could not be reached, or answered with an error."""

    def __init__(self, message: str, status: int = 0, code: str = ""):
        super().__init__("server", message)
        self.status, self.code = status, code


class FailedChecks(PlinthError):
    """The model was made but failed Plinth's checks (the CLI's exit code 4)."""

    def __init__(self, message: str, job: dict[str, Any]):
        super().__init__("report", message)
        self.job = job


class Client:
    def __init__(self, server: str, token: str, timeout_s: float = 60.0):
        self.server = server.rstrip("/")
        if not self.server.startswith(("http://", "https://")):
            raise InputError("options", f"--server should be the server's address, like http://localhost:8501, "
                                        f"not '{server}'.")
        if not token:
            raise InputError("options", "Give the API token with --token (or $PLINTH_TOKEN); make one on the "
                                        "server's Settings page under API access.")
        self._http = httpx.Client(base_url=self.server, timeout=timeout_s,
                                  headers={"Authorization": f"Bearer {token}", "User-Agent": "plinth-cli"})

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, url: str, **kwargs) -> httpx.Response:
        try:
            answer = self._http.request(method, url, **kwargs)
        except httpx.TimeoutException:
            raise ServerError(f"The Plinth server at {self.server} did not answer in time. Try again later.") from None
        except httpx.HTTPError as error:
            raise ServerError(f"Could not reach the Plinth server at {self.server} ({type(error).__name__}). "
                              "Check the address and that the server is running.") from None
        if answer.status_code >= 400:
            raise _error(answer, self.server)
        return answer

    def submit(self, photos: Sequence[Path], name: str = "", size: str | None = None, axis: str = "height",
               kind: str = "auto", placement: str = "floor", quality: str = "balanced",
               webhook_url: str = "") -> dict[str, Any]:
        fields = {"name": name, "axis": axis, "kind": kind, "placement": placement, "quality": quality}
        if size:
            fields["size"] = size
        if webhook_url:
            fields["webhook_url"] = webhook_url
        files = []
        for photo in photos:
            try:
                files.append(("photos", (Path(photo).name, Path(photo).read_bytes())))
            except OSError as error:
                raise InputError("ingest", f"Could not read the photo '{photo}': {error.strerror or error}.") from None
        return self._call("POST", "/api/v1/models", data=fields, files=files).json()

    def job(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/api/v1/jobs/{job_id}").json()

    def wait(self, job_id: str, on_progress: Callable[[dict[str, Any]], None] | None = None,
             poll_s: float = POLL_S) -> dict[str, Any]:
        """Poll until the job ends; the done job, or FailedChecks / CaptureError in plain words."""
        while True:
            job = self.job(job_id)
            if on_progress is not None:
                on_progress(job)
            if job["finished"]:
                break
            time.sleep(poll_s)
        error = job.get("error") or {}
        if job["status"] == "done" and error.get("code") == "failed_checks":
            raise FailedChecks(error["message"], job)
        if job["status"] != "done" or job.get("model") is None:
            raise CaptureError("server", error.get("message") or "The model could not be made.")
        return job

    def download(self, model: dict[str, Any], out_glb: Path) -> list[Path]:
        """The model's files beside `out_glb` (out/vase.glb, out/vase.usdz, ...); returns them."""
        stem = out_glb.with_suffix("")
        stem.parent.mkdir(parents=True, exist_ok=True)
        written = []
        for key, suffix in FILES:
            url = model.get("files", {}).get(key)
            if url:
                target = stem.with_name(stem.name + suffix)
                target.write_bytes(self._call("GET", url).content)
                written.append(target)
        return written


def _error(answer: httpx.Response, server: str) -> ServerError:
    try:
        body = answer.json()["error"]
        message, code = str(body["message"]), str(body["code"])
    except (ValueError, KeyError, TypeError):
        message, code = "", ""
    if not message:
        message = f"The server at {server} answered {answer.status_code} without saying why (is it a Plinth server?)."
    if answer.status_code == 401:
        message = f"The server refused the API token. {message}"
    return ServerError(message, answer.status_code, code)
