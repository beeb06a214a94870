"""Queries by text, image bytes and memory id: a real Service on an ipc socket over a real Memory (Chroma),
with the built MiniLM and EfficientNet IRs on CPU, asked through sinks.client and the `sensorium query` CLI.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json

import numpy as np
import pytest
import skimage.data

from agent.cli.args import parse_time
from agent.cli.bus import window
from agent.query.search import fuse
from sinks.client import Rejected, request_parts
from sinks.memory.store import Hit
from tests.agent.query.world import T0, png
from tests.support.env import sensorium


def hit(id_: str, space: str, score: float) -> Hit:
    return Hit(id_, 0.0, "s", "image", space, score, [], None)


def test_rank_fusion_rewards_agreement_and_keeps_the_best_score():
    a = [hit("x", "A", 0.9), hit("y", "A", 0.8), hit("z", "A", 0.7)]
    b = [hit("y", "B", 0.95), hit("w", "B", 0.5), hit("x", "B", 0.4)]
    out = fuse([a, b], k=3)
    assert [h["id"] for h in out] == ["y", "x", "w"]  # y: ranks 2+1 beat x: ranks 1+3
    assert out[0]["score"] == 0.95 and out[0]["space"] == "B" and out[0]["spaces"] == ["A", "B"]
    assert out[1]["score"] == 0.9 and out[1]["space"] == "A" and out[1]["spaces"] == ["A", "B"]
    assert out[0]["rrf"] == round(1 / 62 + 1 / 61, 6)
    assert out[2]["spaces"] == ["B"] and len(fuse([a, b], k=10)) == 4


def test_text_query_finds_the_cats_first(world):
    hits = world.ask(text="a cat", k=5)
    assert {hits[0]["id"], hits[1]["id"]} == {world.ids["chelsea"], world.ids["cat_flipped"]}, hits
    assert hits[0]["spaces"] == ["minilm-l6/384"] and hits[0]["score"] > hits[2]["score"]


def test_image_query_by_bytes_is_answered_in_every_image_space(world):
    hits = world.ask(image=png(skimage.data.coffee()), k=3)
    assert hits[0]["id"] == world.ids["coffee"], hits
    assert sorted(hits[0]["spaces"]) == world.spaces and hits[0]["score"] > 0.99  # PNG is lossless


def test_image_query_in_base64_finds_the_same(world):
    body = {"op": "query", "k": 3, "image_b64": base64.b64encode(png(skimage.data.rocket())).decode()}
    reply, frames = request_parts(world.endpoint, body, timeout=30)
    assert reply["results"][0]["id"] == world.ids["rocket"] and frames == []


def test_more_like_a_memory_excludes_it(world):
    hits = world.ask(like=world.ids["chelsea"], k=4)
    ids = [h["id"] for h in hits]
    assert world.ids["chelsea"] not in ids and len(ids) == 4
    assert ids[0] == world.ids["cat_flipped"] and sorted(hits[0]["spaces"]) == world.spaces


def test_window_modality_and_source_filters(world):
    hits = world.ask(text="a cat", k=10, since=T0 + 30, until=T0 + 150)
    assert {h["id"] for h in hits} == {world.ids["coffee"], world.ids["rocket"]}
    assert [h["id"] for h in world.ask(text="a cat", k=10, source="cam0")] == [world.ids["coffee"]]
    assert world.ask(text="a cat", k=10, modality="audio") == []
    since = dt.datetime.fromtimestamp(T0 + 200)  # datetimes work as well as unix seconds
    assert [h["id"] for h in world.ask(like=world.ids["rocket"], since=since)] == [world.ids["cat_flipped"]]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"like": "screen0-123"}, "no memory with id 'screen0-123'"),
        ({"like": "nonsense"}, "no memory with id"),
        ({"image": __file__}, "not a path: send"),  # the daemon opens no file a client names
        ({"image": True}, "needs the image's bytes as a second frame"),
        ({"image_b64": "not base64!"}, "not valid base64"),
        ({"image_b64": base64.b64encode(b"garbage" * 10).decode()}, "70 bytes that OpenCV cannot decode"),
        ({"image_b64": ""}, "0 bytes that OpenCV cannot decode"),
        ({"text": "a cat", "image": True}, "exactly one of"),
        ({}, "exactly one of"),
        ({"text": "a cat", "since": 10.0, "until": 5.0}, "since is after until"),
        ({"text": "a cat", "k": 0}, "k must be"),
        ({"image": 42}, "image must be true"),
    ],
)
def test_bad_queries_get_a_clear_error_and_are_counted(world, body, error):
    before = world.service.stats()["bad_requests"]
    with pytest.raises(Rejected, match=error):
        request_parts(world.endpoint, {"op": "query", **body})
    assert world.service.stats()["bad_requests"] == before + 1


def test_a_tiny_image_is_refused(world):
    with pytest.raises(Rejected, match=r"image \(1×1\) cannot be encoded"):
        world.ask(image=png(np.zeros((1, 1, 3), np.uint8)))


def test_the_client_takes_bytes_not_paths(world, tmp_path):
    with pytest.raises(TypeError, match="not a path"):
        world.ask(image=str(tmp_path / "cup.png"))
    with pytest.raises(TypeError, match="not a path"):
        world.ask(image=tmp_path / "cup.png")


def test_backfill_returns_rows_oldest_first_with_vectors(world):
    reply, vectors = request_parts(world.endpoint, {"op": "backfill", "since": T0 + 60, "limit": 1000})
    rows = reply["rows"]
    per_frame = len(world.spaces)
    assert len(rows) == len(vectors) == 4 * per_frame and reply["more"] is False
    assert [r["ts"] for r in rows] == sorted(r["ts"] for r in rows) and rows[0]["id"] == world.ids["coffee"]
    for r, raw in zip(rows, vectors, strict=True):
        vec = np.frombuffer(raw, "<f4")
        assert r["dim"] == vec.shape[0] and r["dtype"] == "float32" and abs(np.linalg.norm(vec) - 1) < 1e-4
    page, _ = request_parts(world.endpoint, {"op": "backfill", "since": T0, "limit": 3})
    assert len(page["rows"]) == 3 and page["more"] is True
    with pytest.raises(Rejected, match="needs since"):
        request_parts(world.endpoint, {"op": "backfill"})


def test_cli_query_by_image_and_between(world, tmp_path):
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(f'[query]\nendpoint = "{world.endpoint}"\n')
    (tmp_path / "rocket.png").write_bytes(png(skimage.data.rocket()))
    # a path relative to the CLI's cwd, which is not the service's: the CLI reads the file and sends its bytes
    out = sensorium("--config", str(cfg), "query", "--image", "rocket.png", "-k", "2", "--json", cwd=tmp_path)
    assert json.loads(out.stdout)[0]["id"] == world.ids["rocket"]
    missing = sensorium("--config", str(cfg), "query", "--image", "nope.png", check=False, cwd=tmp_path)
    assert missing.returncode == 2 and "cannot read nope.png: No such file" in missing.stderr
    start, end = (dt.datetime.fromtimestamp(T0 + s).isoformat() for s in (50, 70))
    out = sensorium("--config", str(cfg), "query", "a cup", "--between", start, end)
    assert out.stdout.count("\n") == 1 and "cam0" in out.stdout and "effnet" not in out.stdout
    bad = sensorium("--config", str(cfg), "query", "--like", "cam0-1", check=False)
    assert bad.returncode == 2 and "no memory with id" in bad.stderr


def test_clock_times_and_between_wrap_midnight():
    now = dt.datetime(2026, 11, 23, 0, 30).timestamp()
    assert parse_time("00:10", now) == dt.datetime(2026, 11, 23, 0, 10).timestamp()
    assert parse_time("23:00", now) == dt.datetime(2026, 11, 22, 23, 0).timestamp()  # last night
    assert parse_time("10m", now) == now - 600
    args = argparse.Namespace(between=[parse_time("23:00", now), parse_time("01:00", now)], since=None, until=None)
    assert window(args) == (dt.datetime(2026, 11, 22, 23).timestamp(), dt.datetime(2026, 11, 23, 1).timestamp())
    with pytest.raises(argparse.ArgumentTypeError):
        parse_time("yesterday-ish", now)
