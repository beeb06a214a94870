"""The HTTP API as another program meets it: a real daemon (Xvfb showing a cat → OpenVINO → Chroma) serving
uvicorn on loopback; requests with and without the token, from another origin, at the thumbnail folder's walls,
and the live stream."""

from __future__ import annotations

import json
import threading
import time

import httpx
import skimage.data

from agent.web.security import read_token
from tests.support.daemon import ONLY_SCREEN, start_daemon, status, stop_daemon

CONFIG = "[device]\nname = 'CPU'\n[screen]\nfps = 4.0\nforce_keep_s = 1.0\n[store]\nflush_s = 0.2\n" + ONLY_SCREEN
CATS = {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat", "lynx"}


def first_event(url: str, headers: dict, kind: str, timeout: float = 30.0) -> dict:
    """The first SSE event of `kind` on the stream (a real HTTP client reading the wire format)."""
    with httpx.stream("GET", url, headers=headers, timeout=timeout) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        event = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[len("event: ") :]
            elif line.startswith("data: ") and event == kind:
                return json.loads(line[len("data: ") :])
    raise AssertionError(f"no {kind} event")


def test_http_api_serves_memory_to_the_token_holder_only(xvfb, home, tmp_path):
    xvfb.show(skimage.data.chelsea())
    proc, cfg = start_daemon(tmp_path, CONFIG)
    try:
        page = status(cfg)["web"]["url"]
        assert page.startswith("http://127.0.0.1:") and page.endswith("/"), page
        token = read_token(cfg.daemon.data_dir)
        assert token and (cfg.daemon.data_dir / "web.token").stat().st_mode & 0o077 == 0
        auth = {"X-Sensorium-Token": token}
        api = page + "api/"

        # the live stream sees the next kept frame (force_keep_s = 1) with its thumbnail link, vector on request
        got = first_event(api + "stream?vectors=1", auth, "memory")
        assert got["source"] == "screen0" and got["thumb_url"].startswith("/thumbs/"), got
        assert len(got["vector"]) > 100

        assert httpx.get(api + "status").status_code == 401
        assert httpx.get(api + "status", headers={"X-Sensorium-Token": token + "x"}).status_code == 401
        st = httpx.get(api + "status", headers=auth).json()
        assert st["ok"] and st["status"]["sources"]["screen0"]["state"] == "running"

        deadline = time.monotonic() + 30
        while True:  # the cat is stored a moment after it is seen
            reply = httpx.post(api + "query", json={"text": "a cat", "k": 3}, headers=auth).json()
            if reply["results"] or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        top = reply["results"][0]
        assert CATS & set(top["labels"]) and top["thumb_url"].startswith("/thumbs/"), top
        same = httpx.get(api + "query", params={"text": "a cat", "k": 3}, headers=auth).json()["results"]
        assert same[0]["id"] == top["id"]  # GET form, same ranking

        # thumbnails: with the cookie (as <img> sends it), only from the thumbnail folder
        jar = {"sensorium_token": token}
        jpg = httpx.get(page.rstrip("/") + top["thumb_url"], cookies=jar)
        assert jpg.status_code == 200 and jpg.content[:2] == b"\xff\xd8"
        assert httpx.get(page.rstrip("/") + top["thumb_url"]).status_code == 401
        for sneaky in ("../web.token", "..%2Fweb.token", "%2e%2e/%2e%2e/cfg.toml", "/etc/passwd", "x/../../web.token"):
            r = httpx.get(page + "thumbs/" + sneaky, cookies=jar)
            assert r.status_code == 404 and token not in r.text, (sneaky, r.status_code)

        # writes: POST, token in the header (a cookie is not enough), and never from another origin
        assert httpx.get(api + "pause", headers=auth).status_code == 405
        assert httpx.post(api + "pause", json={}, cookies=jar).status_code == 401
        evil = httpx.post(api + "pause", json={}, headers={**auth, "Origin": "http://evil.example"})
        assert evil.status_code == 403 and "evil.example" in evil.json()["error"]
        assert status(cfg)["sources"]["screen0"]["state"] == "running"
        own = page.rstrip("/")
        paused = httpx.post(api + "pause", json={"source": "screen0"}, headers={**auth, "Origin": own}).json()
        assert paused["ok"] and paused["paused"] == ["screen0"], paused
        assert status(cfg)["sources"]["screen0"]["state"] == "paused"
        assert httpx.post(api + "resume", json={}, headers=auth).json()["resumed"] == ["screen0"]

        # bad input is answered, counted, and the daemon goes on
        before = status(cfg)["service"]["bad_requests"]
        cases = [
            (b"{not json", "application/json", 400),
            (b"[1, 2]", "application/json", 400),
            (b"[" * 100_000, "application/json", 400),
            (json.dumps({"text": 5}).encode(), "application/json", 400),
            (json.dumps({"text": "a cat", "k": "many"}).encode(), "application/json", 400),
            (json.dumps({"image_b64": "not base64!"}).encode(), "application/json", 400),
            (b"\xff\xd8 not really a jpeg", "image/jpeg", 400),
        ]
        for body, ctype, want in cases:
            r = httpx.post(api + "query", content=body, headers={**auth, "content-type": ctype})
            assert r.status_code == want and r.json()["ok"] is False and r.json()["error"], (body[:20], r.text)
        assert httpx.post(api + "smell", json={}, headers=auth).status_code == 404
        huge = httpx.post(api + "query", content=b"x" * (49 << 20), headers=auth)
        assert huge.status_code == 413
        st = status(cfg)
        assert st["service"]["bad_requests"] >= before + 4  # the ones that reached an op
        assert st["web"]["bad"] >= 5 and st["web"]["refused"] >= 4, st["web"]  # the ones the HTTP layer answered

        spec = httpx.get(api + "openapi.json").json()
        assert {"/api/query", "/api/forget", "/api/stream"} <= set(spec["paths"])
        assert "get" in spec["paths"]["/api/query"] and "get" not in spec["paths"]["/api/forget"]

        html = httpx.get(page)
        assert html.status_code == 200 and "default-src 'self'" in html.headers["content-security-policy"]
        assert html.headers["x-frame-options"] == "DENY"
    finally:
        stop_daemon(proc, tmp_path)


def test_stream_fans_out_and_a_slow_reader_does_not_stop_others(xvfb, home, tmp_path):
    """Ten clients at once all get memories; one that never reads is not waited for."""
    xvfb.show(skimage.data.astronaut())
    proc, cfg = start_daemon(tmp_path, CONFIG)
    try:
        page, token = status(cfg)["web"]["url"], read_token(cfg.daemon.data_dir)
        auth = {"X-Sensorium-Token": token}
        stalled = httpx.Client(timeout=30).stream("GET", page + "api/stream", headers=auth)
        stalled.__enter__()  # connected, never read
        got: list[dict] = []
        threads = [
            threading.Thread(target=lambda: got.append(first_event(page + "api/stream", auth, "memory")))
            for _ in range(10)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(40)
        assert len(got) == 10 and all(g["source"] == "screen0" for g in got)
        deadline = time.monotonic() + 10
        while status(cfg)["web"]["clients"] != 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert status(cfg)["web"]["clients"] == 1  # the stalled one; the others left when they closed
        stop_daemon(proc, tmp_path)  # exits 0 (within its wait) with a client still connected
        stalled.__exit__(None, None, None)
    finally:
        if proc.poll() is None:
            stop_daemon(proc, tmp_path)
