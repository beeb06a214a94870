"""The API's OpenAPI description: one path per op, its request as the query endpoint documents it (README, Query)."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

WHAT = {
    "query": "Search memory: text, image_b64 (or an image's bytes as the body, Content-Type image/*) or like "
    "(a memory id); k, since, until (unix seconds), modality, source. Ranked as `sensorium query`.",
    "embed": "The vector of a text or image in each space the daemon has (base64 float32 little-endian).",
    "around": "What every sense captured near a memory (id) or a time (at): window seconds, k, elsewhere.",
    "backfill": "Stored memories since a time, oldest first, with their vectors (base64 float32).",
    "timeline": "Counts per stream and bin in [since, until] (bins), with one memory per non-empty bin.",
    "status": "The daemon's status: sources, rates, drops, store lag, storage, models and devices.",
    "ping": "An empty answer: the daemon is up.",
    "pause": "Pause every source, or one (source), until resumed or for some seconds (for).",
    "resume": "Resume every source, or one (source).",
    "forget": "Delete memories, text and thumbnails captured in [since, until] (or older_than seconds).",
    "watch_add": "A standing query (name, text or image_b64, modality, threshold) that fires match events.",
    "watch_list": "The standing queries.",
    "watch_remove": "Remove a standing query by name.",
}
REPLY = {
    "description": '{"ok": true, ...} or {"ok": false, "error": "..."}',
    "content": {"application/json": {"schema": {"type": "object"}}},
}
ERRORS = {
    "400": {"description": "bad request (the error says what)"},
    "401": {"description": "missing or wrong token"},
    "403": {"description": "Origin is not this page's"},
    "413": {"description": "body too large"},
}


def describe(ops: Iterable[str], reads: Collection[str]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for op in ops:
        doc = {"summary": WHAT.get(op, op), "responses": {"200": REPLY, **ERRORS}}
        body = {"required": False, "content": {"application/json": {"schema": {"type": "object"}}}}
        paths[f"/api/{op}"] = {"post": {**doc, "operationId": op, "requestBody": body}}
        if op in reads:
            params = [{"name": "...", "in": "query", "description": "the same keys as the JSON body", "schema": {}}]
            paths[f"/api/{op}"]["get"] = {**doc, "operationId": f"{op}_get", "parameters": params}
    paths["/api/stream"] = {
        "get": {
            "summary": "Server-Sent Events: memory, match and forget events; vectors=1 adds each vector (base64), "
            "modality= and source= filter.",
            "responses": {"200": {"description": "text/event-stream"}},
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "sensorium", "version": "1", "description": "The daemon's memory over HTTP (README, Web)."},
        "components": {"securitySchemes": {"token": {"type": "apiKey", "in": "header", "name": "X-Sensorium-Token"}}},
        "security": [{"token": []}],
        "paths": paths,
    }
