"""Image bytes from a request: the one decoder every op that takes an image uses (query, embed, watches).

Clients send an image's bytes, never a path: `{"image": true}` with the bytes as the request's second ZMQ
frame, or `{"image_b64": "<base64>"}` for JSON-only clients (within the request's 1 MB). The daemon opens
no file a client names: any local process could otherwise make it read any file it can read.
"""

from __future__ import annotations

import base64
import binascii
from typing import Protocol

import cv2
import numpy as np

from encoders.records import Embedding

MAX_IMAGE_BYTES = 64 << 20  # also the largest frame the endpoint accepts (service.MAX_MSG)
MAX_IMAGE_PIXELS = 100_000_000  # also OPENCV_IO_MAX_IMAGE_PIXELS (agent/__init__.py): refused before decoding
BLOB = "_blob"  # body key of the request's binary frame (bytes | None); JSON cannot carry bytes, so no client sets it
PATH_REFUSED = (
    'image must be the image\'s bytes, not a path: send {"image": true} with the bytes as a second frame, or '
    '"image_b64" (base64); the daemon opens no file a client names'
)


class BadRequest(ValueError):
    pass


class ImageQueryEncoder(Protocol):
    """An RGB image to its vectors, synchronously (encoders.image.ImageEncoder.encode_now)."""

    def encode_now(self, rgb: np.ndarray) -> list[Embedding]: ...


def decode_image(data: bytes) -> np.ndarray:
    """Encoded image bytes (JPEG, PNG, …) as RGB uint8; BadRequest when empty, too big or not an image."""
    if len(data) > MAX_IMAGE_BYTES:
        raise BadRequest(f"image is larger than {MAX_IMAGE_BYTES >> 20} MB")
    buf = np.frombuffer(data, np.uint8)
    try:
        bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR) if buf.size else None
    except cv2.error as e:  # e.g. a size over OPENCV_IO_MAX_IMAGE_PIXELS (agent/__init__.py), checked before decoding
        too_big = "CV_IO_MAX_IMAGE" in str(e)
        why = f"declares more than {MAX_IMAGE_PIXELS} pixels" if too_big else "cannot be decoded"
        raise BadRequest(f"image ({len(data)} bytes) {why}") from None
    if bgr is None:
        raise BadRequest(f"image: {len(data)} bytes that OpenCV cannot decode as an image")
    if bgr.shape[0] * bgr.shape[1] > MAX_IMAGE_PIXELS:
        raise BadRequest(f"image is too large ({bgr.shape[1]}×{bgr.shape[0]}, at most {MAX_IMAGE_PIXELS} pixels)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def has_image(body: dict) -> bool:
    return body.get("image") is not None or body.get("image_b64") is not None


def image_of(body: dict) -> np.ndarray | None:
    """The request's image as RGB (None when it has none): `image: true` + the binary frame, or `image_b64`."""
    flag, b64, blob = body.get("image"), body.get("image_b64"), body.get(BLOB)
    if flag is None and b64 is None:
        if blob is not None:
            raise BadRequest('a second frame carries image bytes: give "image": true with it')
        return None
    if flag is not None and b64 is not None:
        raise BadRequest('give the image once: "image": true with a second frame, or "image_b64"')
    if isinstance(flag, str):
        raise BadRequest(PATH_REFUSED)
    if flag is not None:
        if flag is not True:
            raise BadRequest(f"image must be true (its bytes in a second frame), not {flag!r:.40}; {PATH_REFUSED}")
        if not isinstance(blob, bytes):
            raise BadRequest('"image": true needs the image\'s bytes as a second frame of the request')
        return decode_image(blob)
    if blob is not None:
        raise BadRequest('give the image once: "image_b64" or a second frame, not both')
    if not isinstance(b64, str):
        raise BadRequest("image_b64 must be a string (the image's bytes in base64)")
    try:
        data = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("image_b64 is not valid base64") from None
    return decode_image(data)


def encode_image(encoder: ImageQueryEncoder | None, rgb: np.ndarray) -> list[Embedding]:
    """Every vector the image model gives for `rgb`; BadRequest without an image model or for an unusable image."""
    if encoder is None:
        raise BadRequest("image requests need the image model; this daemon runs without an image source")
    try:
        return encoder.encode_now(rgb)
    except ValueError as e:  # BadFrame: e.g. a 1×1 image
        raise BadRequest(f"image ({rgb.shape[1]}×{rgb.shape[0]}) cannot be encoded: {e}") from None
