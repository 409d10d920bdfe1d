"""The OpenAPI 3.1 document of /api/v1, written by hand (docs/api.md says the same in prose).

tests/test_api.py checks that every /api/v1 route of the app is here and nothing else is."""

from __future__ import annotations

from typing import Any

from .. import limits


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


_AUTH_ERRORS = {"401": _error("No token, or a revoked or mistyped one"), "429": _error("Too many requests (see Retry-After)")}
_NOT_FOUND = {"404": _error("No such id, or it belongs to another merchant")}


def _id(name: str, what: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": what, "schema": {"type": "string"}}


def _schemas() -> dict[str, Any]:
    nullable_str = {"type": ["string", "null"]}
    return {
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {
            "type": "object", "required": ["code", "message"],
            "properties": {"code": {"type": "string", "description": "a stable word to branch on"},
                           "message": {"type": "string", "description": "plain words to show a person"}}}}},
        "Accepted": {"type": "object", "properties": {
            "job_id": {"type": "string"}, "status_url": {"type": "string", "format": "uri"},
            "status": {"type": "string", "enum": ["queued"]},
            "warnings": {"type": "array", "items": {"type": "string"}}}},
        "Model": {"type": "object", "properties": {
            "id": {"type": "string", "description": "the merchant-side id (not the share link's)"},
            "name": {"type": "string"}, "url": {"type": "string", "format": "uri"},
            "share_url": {"type": ["string", "null"], "format": "uri",
                          "description": "the shopper's AR page; null while the model is not shared"},
            "shared": {"type": "boolean"},
            "files": {"type": "object", "properties": {k: {"type": "string", "format": "uri"}
                                                       for k in ("glb", "usdz", "obj_zip", "poster")}},
            "dimensions_m": {"type": "object", "properties": {k: {"type": "number"} for k in ("width", "height", "depth")}},
            "placement": {"type": "string", "enum": ["floor", "wall"]}, "kind": {"type": "string"},
            "verdict": {"type": ["string", "null"], "enum": ["good", "warnings", "failed", None]},
            "problems": {"type": "array", "items": {"type": "string"}},
            "warnings": {"type": "array", "items": {"type": "string"}},
            "reshoot": {"type": "array", "items": {"type": "string"}},
            "product_url": nullable_str, "expires": {"type": ["number", "null"]},
            "created": {"type": "number", "description": "unix time"},
            "report": {"type": "object", "description": "the full quality report"}}},
        "Job": {"type": "object", "properties": {
            "id": {"type": "string"}, "url": {"type": "string", "format": "uri"},
            "status": {"type": "string", "enum": ["queued", "running", "cancelling", "done", "failed", "cancelled"]},
            "finished": {"type": "boolean"}, "name": {"type": "string"},
            "stage": nullable_str, "stage_words": {"type": "string", "description": "the step, in plain words"},
            "fraction": {"type": "number", "minimum": 0, "maximum": 1}, "message": {"type": "string"},
            "position": {"type": ["integer", "null"]}, "created": {"type": "number"}, "ended": {"type": ["number", "null"]},
            "warnings": {"type": "array", "items": {"type": "string"}},
            "error": {"oneOf": [{"type": "null"}, {"type": "object", "properties": {
                "code": {"type": "string"}, "message": {"type": "string"}}}]},
            "model": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/Model"}]}}},
    }


def document(base: str = "") -> dict[str, Any]:
    form = {"type": "object", "required": ["photos"], "properties": {
        "photos": {"type": "array", "items": {"type": "string", "format": "binary"},
                   "description": f"1 to {limits.MAX_JOB_PHOTOS} photos, each at most {limits.MAX_FILE_MB:g} MB, "
                                  f"together at most {limits.MAX_JOB_MB:g} MB; the first is the front"},
        "name": {"type": "string", "maxLength": 120},
        "size": {"type": "string", "description": "one real measurement: 85 (with unit=cm), or 85cm"},
        "unit": {"type": "string", "enum": ["mm", "cm", "m", "in"]},
        "axis": {"type": "string", "enum": ["height", "width", "depth"], "default": "height"},
        "kind": {"type": "string", "enum": ["auto", "flat", "box", "revolve", "round"], "default": "auto"},
        "placement": {"type": "string", "enum": ["floor", "wall"], "default": "floor"},
        "quality": {"type": "string", "enum": ["fast", "balanced", "high"], "default": "balanced"},
        "webhook_url": {"type": "string", "format": "uri", "description": "called once when the job ends"}}}
    model_ok = {"200": {"description": "The model", "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Model"}}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Plinth API", "version": "1.0.0",
                 "description": "Turn product photos into an AR-ready 3D model and a share link. See docs/api.md."},
        "servers": [{"url": f"{base}/api/v1"}],
        "security": [{"bearer": []}],
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                      "description": "a token from Settings > API access"}},
                       "schemas": _schemas()},
        "paths": {
            "/openapi.json": {"get": {"summary": "This document", "security": [],
                                      "responses": {"200": {"description": "OpenAPI 3.1"}}}},
            "/models": {
                "post": {"summary": "Make a model from photos", "requestBody": {"required": True, "content": {
                    "multipart/form-data": {"schema": form}}},
                    "responses": {"202": {"description": "Queued", "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Accepted"}}}},
                        "400": _error("Not a multipart upload"), "413": _error("Over the photo count or size limit"),
                        "422": _error("A photo or a field the server cannot use"),
                        "507": _error("The server's disk is full"), **_AUTH_ERRORS}},
                "get": {"summary": "Your models, newest first", "parameters": [
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 50}},
                    {"name": "cursor", "in": "query", "schema": {"type": "string"},
                     "description": "next_cursor of the previous page"}],
                    "responses": {"200": {"description": "One page", "content": {"application/json": {"schema": {
                        "type": "object", "properties": {
                            "models": {"type": "array", "items": {"$ref": "#/components/schemas/Model"}},
                            "next_cursor": {"type": ["string", "null"]}}}}}},
                        "400": _error("A bad limit or cursor"), **_AUTH_ERRORS}}},
            "/models/{model_id}": {
                "parameters": [_id("model_id", "the model's id (not its share id)")],
                "get": {"summary": "One model", "responses": {**model_ok, **_NOT_FOUND, **_AUTH_ERRORS}},
                "patch": {"summary": "Rename it, set its product page or its link's last day",
                          "requestBody": {"required": True, "content": {"application/json": {"schema": {
                              "type": "object", "properties": {
                                  "name": {"type": "string"}, "product_url": {"type": ["string", "null"]},
                                  "expires": {"type": ["string", "null"], "format": "date"}}}}}},
                          "responses": {**model_ok, "400": _error("Not a JSON object of those fields"),
                                        "422": _error("A value the server cannot use"), **_NOT_FOUND, **_AUTH_ERRORS}},
                "delete": {"summary": "Move it to the Trash (restorable for 30 days)",
                           "responses": {"204": {"description": "In the Trash"}, **_NOT_FOUND, **_AUTH_ERRORS}}},
            "/jobs/{job_id}": {
                "parameters": [_id("job_id", "from POST /models")],
                "get": {"summary": "How a job is going", "responses": {
                    "200": {"description": "The job", "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Job"}}}}, **_NOT_FOUND, **_AUTH_ERRORS}}},
        },
    }
