"""The /api/v1 routes: thin handlers over library, jobs and the upload checks (docs/api.md).

Every answer is JSON. Every route but the OpenAPI document needs `Authorization: Bearer <token>`;
a model or job of another merchant answers 404 exactly like an unknown id.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .. import accounts, jobs, library, settings, shop, trash
from . import errors, openapi, present, ratelimit, tokens, uploads, webhooks
from .errors import ApiError

log = logging.getLogger("plinth.api")
PREFIX = "/api/v1"
WINDOW = ratelimit.Window()
MAX_PAGE = 100
MAX_JSON = 64 * 1024
_NO_STORE = {"Cache-Control": "no-store"}


def _json(body, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers={**_NO_STORE, **(headers or {})})


def _authorise(request: Request) -> tuple[tokens.Token, accounts.User]:
    header = request.headers.get("authorization", "")
    scheme, _, text = header.partition(" ")
    if not header:
        raise errors.unauthorized(bad_token=False)
    found = tokens.lookup(settings.data_dir(), text.strip()) if scheme.lower() == "bearer" else None
    if found is None:
        raise errors.unauthorized(bad_token=True)
    limit = ratelimit.requests_limit()
    wait = WINDOW.hit(found[0].id, limit)
    if wait:
        raise ApiError(429, "rate_limited", ratelimit.message(limit, wait), {"Retry-After": str(wait)})
    return found


def endpoint(handler):
    """Authorise, then run; any ApiError or our own plain-words error becomes its JSON answer,
    anything else a JSON 500 (logged here, never a traceback for the caller)."""

    @functools.wraps(handler)
    async def run(request: Request) -> Response:
        try:
            token, user = _authorise(request)
            webhooks.start(settings.data_dir())  # resumes calls left waiting by a restart
            return await handler(request, token, user)
        except Exception as error:  # noqa: BLE001 - sorted right below
            try:
                return errors.response(errors.from_exception(error))
            except Exception:
                log.exception("API %s %s failed", request.method, request.url.path)
                return errors.response(ApiError(500, "server_error", "Sorry, the server hit a problem with this "
                                                "request. Nothing was changed; please try again."))

    return run


def _base(request: Request) -> str:
    return settings.public_url(seen_at=str(request.url))


def _owned_model(model_id: str, user: accounts.User) -> library.Model:
    model = library.get_owned(model_id, user, settings.data_dir())
    if model is None:
        raise errors.not_found()
    return model


@endpoint
async def create_model(request: Request, token: tokens.Token, user: accounts.User) -> Response:
    limit = ratelimit.jobs_limit()
    wait = WINDOW.check(token.id, limit)
    if wait:
        raise ApiError(429, "rate_limited", ratelimit.message(limit, wait), {"Retry-After": str(wait)})
    new = await uploads.read(request)
    data = settings.data_dir()
    # In a thread: storing the photos (location stripped, pushed to the shared storage) takes a while,
    # and on the event loop twenty uploads at once held every page of this server for seconds.
    job_id = await run_in_threadpool(jobs.submit, list(new.files), new.name, new.options, data_dir=data,
                                     owner=user.id)
    WINDOW.hit(token.id, limit)
    if new.webhook_url:
        webhooks.register(data, job_id, user.id, new.webhook_url)
        webhooks.start(data)
    url = f"{_base(request)}{PREFIX}/jobs/{job_id}"
    return _json({"job_id": job_id, "status_url": url, "status": jobs.JobStatus.QUEUED.value,
                  "warnings": list(new.warnings)}, 202, {"Location": url})


@endpoint
async def get_job(request: Request, _token, user: accounts.User) -> Response:
    data = settings.data_dir()
    job = jobs.get_owned(request.path_params["job_id"], user, data)
    if job is None:
        raise errors.not_found()
    model = library.get_model(job.share_id, data, trashed=True) if job.share_id else None
    if model is not None and (model.trashed or not user.can_see(model.owner)):
        model = None
    return _json(present.job_json(job, _base(request), model))


@endpoint
async def list_models(request: Request, _token, user: accounts.User) -> Response:
    try:
        limit = int(request.query_params.get("limit", "50"))
    except ValueError:
        raise errors.bad_request("'limit' should be a whole number from 1 to 100.") from None
    if not 1 <= limit <= MAX_PAGE:
        raise errors.bad_request("'limit' should be a whole number from 1 to 100.")
    models = library.list_models(settings.data_dir(), owner=user.id)
    cursor = request.query_params.get("cursor")
    start = 0
    if cursor:
        ids = [m.model_id for m in models]
        if cursor not in ids:
            raise errors.bad_request("This 'cursor' is not one this list gave out (the model may have been "
                                     "deleted): start again without it.", "bad_cursor")
        start = ids.index(cursor) + 1
    page = models[start:start + limit]
    more = start + limit < len(models)
    base = _base(request)
    return _json({"models": [present.model_json(m, base) for m in page],
                  "next_cursor": page[-1].model_id if more and page else None})


@endpoint
async def get_model(request: Request, _token, user: accounts.User) -> Response:
    return _json(present.model_json(_owned_model(request.path_params["model_id"], user), _base(request)))


def _expiry(value) -> float | None:
    """None (never), or the end of the given day ("2027-01-31"), like the Model page."""
    if value is None or value == "":
        return None
    try:
        day = dt.date.fromisoformat(str(value))
    except ValueError:
        raise errors.unprocessable("'expires' should be the last day the link works, like 2027-01-31, "
                                   "or null for never.", "bad_expires") from None
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time()).timestamp()
    if end <= time.time():
        raise errors.unprocessable("That day has already passed: pick today or a later day.", "bad_expires")
    return end


@endpoint
async def patch_model(request: Request, _token, user: accounts.User) -> Response:
    model = _owned_model(request.path_params["model_id"], user)
    raw = await request.body()
    try:
        body = json.loads(raw) if len(raw) <= MAX_JSON else None
    except ValueError:
        body = None
    if not isinstance(body, dict) or not body or set(body) - {"name", "product_url", "expires"}:
        raise errors.bad_request("Send a JSON object with any of 'name', 'product_url' and 'expires'.", "bad_json")
    data = settings.data_dir()
    if "name" in body and not (isinstance(body["name"], str) and body["name"].strip()):
        raise errors.unprocessable("Give the model a name (a few words).", "bad_name")
    product_url = model.product_url
    if "product_url" in body:
        product_url = shop.clean_url(str(body["product_url"] or ""), "The product page address")
    expires = _expiry(body["expires"]) if "expires" in body else model.expires
    if "name" in body:
        library.rename_model(model.share_id, body["name"], data)
    if "product_url" in body or "expires" in body:
        library.set_link(model.share_id, product_url, expires, data)
    return _json(present.model_json(_owned_model(model.model_id, user), _base(request)))


@endpoint
async def delete_model(request: Request, _token, user: accounts.User) -> Response:
    model = _owned_model(request.path_params["model_id"], user)
    trash.move(model.share_id, settings.data_dir())
    return Response(status_code=204, headers=_NO_STORE)


async def openapi_document(request: Request) -> Response:
    return _json(openapi.document(_base(request)))


async def unknown(request: Request) -> Response:
    return errors.response(ApiError(404, "not_found", "There is no such API address. The list of them is at "
                                    f"{PREFIX}/openapi.json."))


def routes() -> list[Route]:
    return [
        Route(f"{PREFIX}/openapi.json", openapi_document, methods=["GET"]),
        Route(f"{PREFIX}/models", create_model, methods=["POST"]),
        Route(f"{PREFIX}/models", list_models, methods=["GET"]),
        Route(f"{PREFIX}/models/{{model_id}}", get_model, methods=["GET"]),
        Route(f"{PREFIX}/models/{{model_id}}", patch_model, methods=["PATCH"]),
        Route(f"{PREFIX}/models/{{model_id}}", delete_model, methods=["DELETE"]),
        Route(f"{PREFIX}/jobs/{{job_id}}", get_job, methods=["GET"]),
        Route(f"{PREFIX}/{{rest:path}}", unknown, methods=["GET", "POST", "PATCH", "DELETE", "PUT"]),
    ]
