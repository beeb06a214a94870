"""Fuzz the HTTP API (hypothesis) like the ZMQ endpoint (tests/agent/query/test_fuzz.py): the real app on uvicorn
over a real Service (Chroma memory, the built MiniLM IR), asked by a real HTTP client.

Whatever arrives — any op name, body bytes, content type, query string, thumbnail path — the answer is a JSON
`{"ok": false, "error": ...}` with a 4xx status unless the request was valid, never a 500 or a dropped
connection; the server answers ping afterwards and the kept service's rows survive. Mutating ops go to a
scratch server, as there.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.query.service import FRAMES
from agent.web.app import Counts, build
from agent.web.security import Guard
from agent.web.server import WebServer
from agent.web.stream import Stream
from tests.agent.query.test_fuzz import FUZZ, KEYS, OPS, ROWS, Served, json_values

TOKEN = "fuzz-token-0123456789"
AUTH = {"X-Sensorium-Token": TOKEN}
MUTATING = ("pause", "resume", "forget", "watch_add", "watch_remove")
STATUS = {200, 400, 401, 403, 404, 405, 413}


@dataclass
class Site:
    served: Served
    web: WebServer
    http: httpx.Client
    thumbs: Path


def site(root: Path, served: Served) -> Site:
    thumbs = root / "thumbs"
    (thumbs / "2026-11-23").mkdir(parents=True)
    (thumbs / "2026-11-23" / "screen0-1.jpg").write_bytes(b"\xff\xd8 a thumbnail")
    (root / "secret.jpg").write_bytes(b"not yours")  # beside the folder: must never be served
    stream = Stream(lambda p: None)
    counts = Counts()
    app = build(served.svc, Guard(TOKEN), stream, thumbs, FRAMES, counts)
    web = WebServer(app, "127.0.0.1", 0, stream, counts)
    web.start()
    return Site(served, web, httpx.Client(base_url=web.url, timeout=30), thumbs)


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Iterator[tuple[Site, Site]]:
    from tests.agent.query import test_fuzz

    both = test_fuzz.services.__wrapped__(tmp_path_factory, model_cache)  # the ZMQ fuzz's two services
    kept, scratch = next(both)
    out = site(tmp_path_factory.mktemp("web-kept"), kept), site(tmp_path_factory.mktemp("web-scratch"), scratch)
    yield out
    for s in out:
        s.http.close()
        s.web.close()
    next(both, None)


def check(sites: tuple[Site, Site], op: str, r: httpx.Response) -> dict:
    assert r.status_code in STATUS, (r.status_code, r.text[:300])
    reply = r.json()
    assert isinstance(reply, dict) and isinstance(reply.get("ok"), bool), reply
    assert reply["ok"] == (r.status_code == 200), (r.status_code, reply)
    if not reply["ok"]:
        assert isinstance(reply["error"], str) and reply["error"] and "internal error" not in reply["error"], reply
    s = pick(sites, op)
    assert s.http.get("/api/ping", headers=AUTH).json() == {"ok": True}
    assert sites[0].served.memory.count() == len(ROWS), ("the kept service lost rows", op, reply)
    return reply


def pick(sites: tuple[Site, Site], op: str) -> Site:
    return sites[1] if op in MUTATING else sites[0]


ops = st.sampled_from((*OPS, "timeline", "watch_list", "watch_add")) | st.text(max_size=12)
ctypes = st.sampled_from(("application/json", "text/plain", "image/jpeg", "image/png", "", "multipart/form-data"))


@FUZZ
@given(op=ops, body=st.binary(max_size=300), ctype=ctypes)
def test_random_bodies_are_answered(sites, op, body, ctype):
    r = pick(sites, op).http.post(f"/api/{quote(op, safe='')}", content=body, headers={**AUTH, "content-type": ctype})
    check(sites, op, r)


@FUZZ
@given(op=ops, body=st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=10), json_values, max_size=6))
def test_random_objects_are_answered(sites, op, body):
    check(sites, op, pick(sites, op).http.post(f"/api/{quote(op, safe='')}", content=json.dumps(body), headers=AUTH))


@FUZZ
@given(op=ops, params=st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), st.text(max_size=20), max_size=5))
def test_random_query_strings_are_answered(sites, op, params):
    check(sites, op, pick(sites, op).http.get(f"/api/{quote(op, safe='')}", params=params, headers=AUTH))


@FUZZ
@given(path=st.text(st.sampled_from("./%2e5fa-_~x\\:2F"), max_size=40) | st.text(max_size=30))
def test_thumbnail_paths_never_leave_the_folder(sites, path):
    s = sites[0]
    r = s.http.get("/thumbs/" + quote(path, safe="/%"), headers=AUTH)
    assert r.status_code in (200, 404), (path, r.status_code)
    if r.status_code == 200:  # only the one file inside the folder
        assert r.content == b"\xff\xd8 a thumbnail", path
    assert b"not yours" not in r.content


@pytest.mark.parametrize(
    "path", ["../secret.jpg", "..%2Fsecret.jpg", "%2e%2e/secret.jpg", "2026-11-23/../../secret.jpg", "/etc/passwd"]
)
def test_traversal_is_refused(sites, path):
    r = sites[0].http.get("/thumbs/" + path, headers=AUTH)
    assert r.status_code == 404 and b"not yours" not in r.content


def test_huge_and_deep_bodies(sites):
    s = sites[0]
    huge = s.http.post("/api/query", content=b"{" + b" " * (48 << 20), headers=AUTH)
    assert huge.status_code == 413 and not huge.json()["ok"]
    with socket.create_connection(("127.0.0.1", s.web.port), timeout=10) as raw:  # says 1 TB, sends 2 bytes
        raw.sendall(f"POST /api/query HTTP/1.1\r\nHost: x\r\nX-Sensorium-Token: {TOKEN}\r\n".encode())
        raw.sendall(b"Content-Type: application/json\r\nContent-Length: 1099511627776\r\n\r\n{}")
        assert raw.recv(200).startswith(b"HTTP/1.1 413 ")
    deep = s.http.post("/api/query", content=b"[" * 100_000, headers=AUTH)
    assert deep.status_code == 400
    hits = s.http.post("/api/query", json={"text": "a kitten", "k": 3}, headers=AUTH).json()
    assert hits["results"][0]["labels"] == ["a cat on a sofa"], hits  # still answering right
    assert json.loads(s.http.get("/api/openapi.json").text)["openapi"].startswith("3.")
