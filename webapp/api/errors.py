"""Every API error is JSON: {"error": {"code": "...", "message": "<plain words>"}}.

The message is the same line the pages show for the same problem (it comes from the same
exception); the code is a stable word a program can branch on. Exceptions are mapped by their
type, never by their text.
"""

from __future__ import annotations

from starlette.responses import JSONResponse

import pipeline

from .. import intake, library


class ApiError(Exception):
    """An answer other than success: HTTP status, a stable code, one plain line."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = dict(headers or {})


#: (exception type, status, code), most specific first.
_BY_TYPE: tuple[tuple[type[BaseException], int, str], ...] = (
    (intake.JobRefused, 422, "refused"),
    (library.LibraryError, 507, "server_full"),
    (pipeline.CaptureError, 422, "cannot_make_model"),
    (pipeline.InputError, 422, "bad_input"),
    (pipeline.PlinthError, 422, "bad_input"),  # shop.ShopError, accounts.AccountError, ...
)

UNAUTHORIZED = ("This request needs an API token: send the header 'Authorization: Bearer plinth_...'. "
                "Make a token on the Settings page under API access.")
BAD_TOKEN = ("This API token is not valid: it may have been revoked or mistyped. "
             "Make a new one on the Settings page under API access.")
NOT_FOUND = "There is nothing here with that id. It may have been deleted, or the id is incomplete."


def from_exception(error: BaseException) -> ApiError:
    """The ApiError for an exception our own modules raise with plain words; re-raises others."""
    if isinstance(error, ApiError):
        return error
    for kind, status, code in _BY_TYPE:
        if isinstance(error, kind):
            message = error.message if isinstance(error, (intake.JobRefused, pipeline.PlinthError)) else str(error)
            if isinstance(error, pipeline.PlinthError) and error.advice:
                message = f"{error.message} {error.advice}"
            return ApiError(status, code, message)
    raise error


def response(error: ApiError) -> JSONResponse:
    headers = {"Cache-Control": "no-store", **error.headers}
    return JSONResponse({"error": {"code": error.code, "message": error.message}}, status_code=error.status,
                        headers=headers)


def unauthorized(bad_token: bool) -> ApiError:
    # RFC 6750: a missing token gets a bare challenge, a wrong one says invalid_token.
    challenge = 'Bearer realm="plinth", error="invalid_token"' if bad_token else 'Bearer realm="plinth"'
    return ApiError(401, "invalid_token" if bad_token else "unauthorized", BAD_TOKEN if bad_token else UNAUTHORIZED,
                    {"WWW-Authenticate": challenge})


def not_found() -> ApiError:
    return ApiError(404, "not_found", NOT_FOUND)


def bad_request(message: str, code: str = "bad_request") -> ApiError:
    return ApiError(400, code, message)


def too_large(message: str) -> ApiError:
    return ApiError(413, "too_large", message)


def unprocessable(message: str, code: str = "bad_input") -> ApiError:
    return ApiError(422, code, message)
