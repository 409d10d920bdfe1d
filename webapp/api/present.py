"""The JSON the API answers for a model and a job (also the webhook's body): plain words, metres,
absolute URLs. Model ids are the merchant-side `model_id`, never the public share id."""

from __future__ import annotations

from typing import Any

import pipeline

from .. import jobqueue, library
from ..jobs import Job, JobStatus

API = "/api/v1"


def model_json(model: library.Model, base: str) -> dict[str, Any]:
    judgement = model.judgement
    files = {key: f"{base}/models/{model.share_id}/{name}" for key, name in (
        ("glb", "model.glb"), ("usdz", "model.usdz"), ("obj_zip", "model.obj.zip"), ("poster", "poster.png"))
        if model.has_file(name)} if model.shared else {}  # has_file: no download from shared storage
    width, height, depth = model.dimensions_m
    return {
        "id": model.model_id,
        "name": model.name,
        "url": f"{base}{API}/models/{model.model_id}",
        "share_url": f"{base}/ar/{model.share_id}" if model.shared else None,
        "shared": model.shared,
        "files": files,
        "dimensions_m": {"width": width, "height": height, "depth": depth},
        "placement": model.placement,
        "kind": model.kind,
        "verdict": judgement.verdict.value if judgement.verdict is not None else None,
        "problems": list(judgement.problems),
        "warnings": list(judgement.cautions),
        "reshoot": list(judgement.reshoot),
        "product_url": model.product_url or None,
        "expires": model.expires,
        "created": model.created,
        "report": model.report,
    }


def job_json(job: Job, base: str, model: library.Model | None) -> dict[str, Any]:
    failed = job.status in (JobStatus.FAILED, JobStatus.CANCELLED)
    stage = job.stage if job.stage in pipeline.STAGE_WORDS else ""
    if job.status is JobStatus.QUEUED:
        words = "Waiting to start" if job.position <= 1 else f"Waiting: {job.position - 1} ahead in line"
        if jobqueue.no_machine_running():
            words = "Waiting: no machine is making models right now; it starts as soon as one is running"
    elif job.status is JobStatus.DONE:
        words = "Done"
    elif job.status is JobStatus.CANCELLING:
        words = "Stopping"
    elif job.status is JobStatus.CANCELLED:
        words = "Stopped"
    elif job.status is JobStatus.FAILED:
        words = "Could not be made"
    else:
        words = pipeline.STAGE_WORDS.get(stage, "Starting")
    body: dict[str, Any] = {
        "id": job.id,
        "url": f"{base}{API}/jobs/{job.id}",
        "status": job.status.value,
        "finished": job.status.finished,
        "name": job.name,
        "stage": stage or None,
        "stage_words": words,
        "fraction": round(float(job.fraction), 3) if job.status is not JobStatus.DONE else 1.0,
        "message": job.message,
        "position": job.position or None,
        "created": job.created,
        "ended": job.finished,
        "warnings": list(model.judgement.cautions) if model is not None else [],
        "error": None,
        "model": model_json(model, base) if model is not None else None,
    }
    if failed:
        message = job.error or ("The job was stopped before the model was made." if job.status is JobStatus.CANCELLED
                                else "The model could not be made.")
        body["error"] = {"code": "cancelled" if job.status is JobStatus.CANCELLED else "job_failed",
                         "message": message}
    elif job.status is JobStatus.DONE and model is not None and model.judgement.failed:
        problems = " ".join(model.judgement.problems) or "The model failed Plinth's quality checks."
        reshoot = ", ".join(model.judgement.reshoot)
        body["error"] = {"code": "failed_checks", "message": library.NOT_PUBLISHED + " " + problems
                         + (f" Photos to take again: {reshoot}." if reshoot else "")}
    return body
