"""The `embed` op: a text or an image (bytes) to one vector per space the daemon has for it.

`{"op": "embed", "text": str}` or an image form (agent/query/images.py) → `{"vectors": [{"space", "dim",
"dtype": "float32", "labels"?}, …]}` with each vector as a binary frame after the JSON one (little-endian
float32, like backfill), or with `"b64": true` inside the JSON as `"vector": "<base64>"` (JSON-only
clients). Text gets every query text encoder's vector (MiniLM, CLIP's text tower when installed); an image
every vector the image model gives (its own space, its ConSE text-space vector or CLIP's). So other
processes can compare their own data with the live streams without running the models.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import numpy as np

from agent.query.images import BadRequest, ImageQueryEncoder, encode_image, has_image, image_of
from agent.query.search import MAX_TEXT, QueryEncoder
from sinks.bus import wire


def embed(
    body: dict, texts: Sequence[QueryEncoder], image: ImageQueryEncoder | None, max_text: int = MAX_TEXT
) -> tuple[dict[str, Any], list[np.ndarray]]:
    """The `embed` op: (reply without its vectors, the vectors in the reply's order); with b64 both in the reply."""
    b64 = body.get("b64", False)
    if not isinstance(b64, bool):
        raise BadRequest("b64 must be true or false")
    text = body.get("text")
    if (text is None) != has_image(body):  # checked before an image is decoded
        raise BadRequest('give exactly one of text or an image ("image": true + a second frame, or image_b64)')
    entries: list[dict[str, Any]] = []
    vectors: list[np.ndarray] = []
    if text is not None:
        if not isinstance(text, str) or not text.strip() or len(text) > max_text:
            raise BadRequest(f"text must be a non-empty string of at most {max_text} characters")
        if not texts:
            raise BadRequest("this daemon has no text encoder")
        for enc in texts:
            entries.append({"space": enc.space})
            vectors.append(enc.encode(text))
    else:
        rgb = image_of(body)
        if rgb is None:  # not reached: has_image(body)
            raise BadRequest("no image in the request")
        for e in encode_image(image, rgb):
            entries.append({"space": e.space, "labels": list(e.labels)})
            vectors.append(e.vector)
    out = [np.ascontiguousarray(v, dtype=wire.DTYPE) for v in vectors]
    for entry, vec in zip(entries, out, strict=True):
        entry |= {"dim": int(vec.shape[0]), "dtype": "float32"}
        if b64:
            entry["vector"] = base64.b64encode(vec.tobytes()).decode("ascii")
    return {"vectors": entries}, [] if b64 else out
