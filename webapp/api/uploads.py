"""POST /api/v1/models: the multipart form read within the upload limits, turned into the same
photos, name and pipeline.Options the Create page hands to jobs.submit."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import Request

import pipeline

from .. import intake, limits, photo_check, settings
from .errors import ApiError, bad_request, too_large, unprocessable

MB = 1024 * 1024
#: Multipart framing around the photos (boundaries, part headers, the text fields); generous.
_FRAMING = 1 * MB
UNITS = ("mm", "cm", "m", "in")
AXES = ("height", "width", "depth")
FIELDS = ("photos", "name", "size", "unit", "axis", "kind", "placement", "quality", "webhook_url")


@dataclass(frozen=True)
class NewModel:
    files: tuple[tuple[str, bytes], ...]
    name: str
    options: pipeline.Options
    webhook_url: str
    warnings: tuple[str, ...]  # per-photo notes (blurry, dark, ...), named by file


def body_cap() -> int:
    return int(limits.MAX_JOB_MB * MB) + _FRAMING


def _too_much_message() -> str:
    return (f"These photos add up to more than {limits.MAX_JOB_MB:g} MB; one model may use at most "
            f"{limits.MAX_JOB_MB:g} MB. Use fewer or smaller photos.")


def capped(request: Request) -> Request:
    """The request, reading at most body_cap() bytes: a bigger declared or streamed body is a 413
    before the photos are stored anywhere."""
    cap = body_cap()
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise too_large(_too_much_message())
    seen = 0

    async def receive():
        nonlocal seen
        message = await request.receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > cap:
                raise too_large(_too_much_message())
        return message

    return Request(request.scope, receive)


async def read(request: Request) -> NewModel:
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise bad_request("Send the photos as multipart/form-data, each one as a 'photos' field.", "not_multipart")
    try:
        form = await capped(request).form(max_files=limits.MAX_JOB_PHOTOS * 2 + 10, max_fields=50)
    except MultiPartException:
        raise bad_request("The upload could not be read: send it as multipart/form-data with the photos "
                          "as 'photos' fields.", "bad_upload") from None
    try:
        photos = [p for p in form.getlist("photos") if isinstance(p, UploadFile)]
        sizes = [p.size if p.size is not None else 0 for p in photos]
        if not photos:
            raise unprocessable("Add at least one photo of the product (a 'photos' file field).", "no_photos")
        _check_limits(sizes)
        files = tuple([(p.filename or f"photo-{i + 1}.jpg", await p.read()) for i, p in enumerate(photos)])
        text = {key: str(form.get(key) or "").strip() for key in FIELDS if key != "photos"}
    finally:
        await form.close()
    options = job_options(text)  # the cheap checks first: a wrong field costs no photo decoding
    webhook = text["webhook_url"]
    if webhook:
        from .webhooks import check_url

        webhook = check_url(webhook)
    warnings = []
    for filename, content in files:
        if not content:
            raise unprocessable(f"The photo '{filename[:80]}' is empty (0 bytes). Add it again or pick another one.",
                                "empty_photo")
        # In a thread: decoding and checking a photo is CPU work that would hold every page of the server.
        check = await run_in_threadpool(photo_check.check_upload, filename, content)
        if check.error:  # the Create page marks it and leaves it out; a program is told at once
            raise unprocessable(check.error, "unusable_photo")
        warnings += [f"{filename[:80]}: {w}" for w in check.warnings]
    return NewModel(files=files, name=text["name"][:120] or "My product", options=options, webhook_url=webhook,
                    warnings=tuple(warnings))


def _check_limits(sizes: list[int]) -> None:
    """413 with the Create page's words when the photos break the count or byte limits."""
    if (len(sizes) > limits.MAX_JOB_PHOTOS or max(sizes) > limits.MAX_FILE_MB * MB
            or sum(sizes) > limits.MAX_JOB_MB * MB):
        try:
            intake.check_upload(sizes, settings.data_dir())
        except intake.JobRefused as refused:
            raise too_large(refused.message) from None


def job_options(text: dict[str, str]) -> pipeline.Options:
    """pipeline.Options from the form's text fields, with the Create page's defaults and words."""
    size = None
    if text.get("size"):
        unit = (text.get("unit") or "").lower()
        if unit and unit not in UNITS:
            raise unprocessable(f"The unit '{unit[:20]}' is not one Plinth knows: use {', '.join(UNITS)}.", "bad_unit")
        axis = (text.get("axis") or "height").lower()
        if axis not in AXES:
            raise unprocessable(f"The axis '{axis[:20]}' should be height, width or depth.", "bad_axis")
        try:
            size = pipeline.KnownSize(axis, pipeline.parse_size(f"{text['size']}{unit}"))
        except pipeline.PlinthError as error:
            raise unprocessable(error.message, "bad_size") from None
    elif text.get("unit"):
        raise unprocessable("A unit was given without a size: send 'size' too, e.g. size=85 and unit=cm.", "bad_size")
    defaults = pipeline.Options()
    try:
        options = pipeline.Options(kind=text.get("kind") or defaults.kind,
                                   placement=text.get("placement") or defaults.placement,
                                   quality=text.get("quality") or defaults.quality, size=size)
        options.check()
    except pipeline.PlinthError as error:
        raise ApiError(422, "bad_input", error.message) from None
    return options
