"""The `embed` op and image bytes on the query endpoint: the shared World's real Service (built MiniLM and
EfficientNet IRs, real Chroma), asked through sinks.client, raw REQ sockets and the `sensorium embed` CLI.
"""

from __future__ import annotations

import base64
import json

import cv2
import numpy as np
import pytest
import skimage.data
import zmq

from agent.query import images
from agent.query.service import MAX_REQUEST
from sinks.client import MAX_IMAGE_BYTES, Rejected, b64_vector, embed, request, request_parts
from tests.agent.query.world import png
from tests.support.env import sensorium


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def raw_request(endpoint: str, frames: list[bytes]) -> list[bytes]:
    """Send exactly these frames on a REQ socket; the reply's frames."""
    sock = zmq.Context.instance().socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(endpoint)
        sock.send_multipart(frames)
        assert sock.poll(30_000), f"no answer to {len(frames)} frames"
        return sock.recv_multipart()
    finally:
        sock.close(0)


def test_embed_text_gives_the_text_encoders_vector(world):
    got = embed(world.endpoint, "a cup of coffee on a table")
    want = world.text.encode("a cup of coffee on a table")
    assert list(got) == [world.text.space] == ["minilm-l6/384"]
    vec = got[world.text.space]
    assert vec.dtype == np.dtype("<f4") and vec.shape == (384,) and abs(np.linalg.norm(vec) - 1) < 1e-4
    assert cosine(vec, want) > 0.999
    assert cosine(vec, embed(world.endpoint, "a rocket launch")[world.text.space]) < 0.9  # not one vector for all


def test_embed_image_bytes_gives_every_vector_of_the_image_model(world):
    rgb = skimage.data.astronaut()
    got = embed(world.endpoint, image=png(rgb))
    want = {e.space: e for e in world.image.encode_now(rgb)}
    assert sorted(got) == sorted(want) == world.spaces  # effnet's own space and its ConSE text-space vector
    for space, vec in got.items():
        assert vec.shape == want[space].vector.shape and cosine(vec, want[space].vector) > 0.999, space
    reply, frames = request_parts(world.endpoint, {"op": "embed", "image": True}, timeout=30, blob=png(rgb))
    assert [v["labels"] for v in reply["vectors"]] == [list(want[v["space"]].labels) for v in reply["vectors"]]
    assert [v["dim"] for v in reply["vectors"]] == [len(f) // 4 for f in frames]


def test_embed_in_base64_for_json_only_clients(world):
    pic = base64.b64encode(png(skimage.data.coffee())).decode()
    reply, frames = request_parts(world.endpoint, {"op": "embed", "image_b64": pic, "b64": True}, timeout=30)
    assert frames == [] and {v["dtype"] for v in reply["vectors"]} == {"float32"}
    by_frames = embed(world.endpoint, image=base64.b64decode(pic))
    for entry in reply["vectors"]:
        vec = b64_vector(entry)
        assert vec.shape == (entry["dim"],) and np.array_equal(vec, by_frames[entry["space"]])
    text = request(world.endpoint, {"op": "embed", "text": "a cat", "b64": True})["vectors"]
    assert cosine(b64_vector(text[0]), world.text.encode("a cat")) > 0.999


@pytest.mark.parametrize(
    ("body", "blob", "error"),
    [
        ({"image": "/etc/passwd"}, None, "not a path"),
        ({"image": True}, b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "108 bytes that OpenCV cannot decode"),
        ({"image": True}, b"", "0 bytes that OpenCV cannot decode"),
        ({"image": True}, None, "needs the image's bytes as a second frame"),
        ({"text": "a cat"}, b"\xff\xd8", 'needs "image": true'),
        ({"image_b64": "aGVsbG8="}, b"x", 'needs "image": true'),
        ({"image": True, "image_b64": "aGVsbG8="}, b"x", "give the image once"),
        ({}, None, "exactly one of text or an image"),
        ({"text": "a cat", "b64": "yes"}, None, "b64 must be true or false"),
        ({"text": ""}, None, "non-empty string"),
    ],
)
def test_bad_embed_requests_get_a_clear_error_and_are_counted(world, body, blob, error):
    before = world.service.stats()["bad_requests"]
    with pytest.raises(Rejected, match=error):
        request_parts(world.endpoint, {"op": "embed", **body}, timeout=30, blob=blob)
    assert world.service.stats()["bad_requests"] == before + 1


def test_too_many_pixels_and_1x1_are_refused(world, monkeypatch):
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 100 * 100)  # the service runs in this process
    with pytest.raises(Rejected, match=r"too large \(101×100, at most 10000 pixels\)"):
        embed(world.endpoint, image=png(np.zeros((100, 101, 3), np.uint8)))
    with pytest.raises(Rejected, match=r"image \(1×1\) cannot be encoded"):
        embed(world.endpoint, image=png(np.zeros((1, 1, 3), np.uint8)))


def test_huge_requests_and_extra_frames_are_refused_and_the_service_lives(world):
    stats = world.service.stats()
    huge = json.dumps({"op": "embed", "image_b64": "A" * MAX_REQUEST}).encode()
    reply = json.loads(raw_request(world.endpoint, [huge])[0])
    assert reply["ok"] is False and f"got {len(huge)} bytes (at most {MAX_REQUEST})" in reply["error"]
    three = [b'{"op": "embed", "image": true}', png(skimage.data.coffee()), b"more"]
    reply = json.loads(raw_request(world.endpoint, three)[0])
    assert reply == {"ok": False, "error": reply["error"]} and "at most one binary frame" in reply["error"]
    assert "got 3 frames" in reply["error"]
    after = world.service.stats()
    assert after["bad_frames"] == stats["bad_frames"] + 2 and after["bad_requests"] == stats["bad_requests"] + 2
    assert request(world.endpoint, {"op": "ping"}) == {"ok": True}
    with pytest.raises(ValueError, match="at most 64 MB"):  # ZMQ would drop the peer without an answer
        embed(world.endpoint, image=bytearray(MAX_IMAGE_BYTES + 1))


def test_the_client_wants_one_input_as_bytes(world, tmp_path):
    with pytest.raises(TypeError, match="not a path"):
        embed(world.endpoint, image=str(tmp_path / "x.png"))
    with pytest.raises(TypeError, match="exactly one"):
        embed(world.endpoint, "a cat", image=b"x")
    with pytest.raises(TypeError, match="exactly one"):
        embed(world.endpoint)


def test_cli_embed_text_and_image(world, tmp_path):
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(f'[query]\nendpoint = "{world.endpoint}"\n')
    out = sensorium("--config", str(cfg), "embed", "a cat", "--json")
    vec = np.asarray(json.loads(out.stdout)["minilm-l6/384"], np.float32)
    assert cosine(vec, world.text.encode("a cat")) > 0.999
    path = tmp_path / "rocket.jpg"
    cv2.imwrite(str(path), cv2.cvtColor(skimage.data.rocket(), cv2.COLOR_RGB2BGR))
    lines = sensorium("--config", str(cfg), "embed", "--image", str(path)).stdout.splitlines()
    assert sorted(line.split()[0] for line in lines) == world.spaces
    assert all("norm=1.0000" in line for line in lines) and "dim=1280" in "".join(lines)
    bad = sensorium("--config", str(cfg), "embed", "--image", str(tmp_path / "none.jpg"), check=False)
    assert bad.returncode == 2 and "cannot read" in bad.stderr
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    bad = sensorium("--config", str(cfg), "embed", "--image", str(empty), check=False)
    assert bad.returncode == 2 and "0 bytes that OpenCV cannot decode" in bad.stderr
