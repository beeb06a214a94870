"""Watches in process: validation, the file (atomic, 0600, corrupt → set aside), matching and cooldown with
real MiniLM text probes against real effnet-lite0 image results."""

from __future__ import annotations

import json
import logging
import stat
import time
from pathlib import Path

import numpy as np
import pytest
import skimage.data

from agent.query.search import BadRequest
from agent.watch import Watches
from agent.watch.spec import CONSE_THRESHOLD
from encoders.records import Encoded, Frame

Published = list[tuple[str, dict]]


def watches(tmp_path: Path, text_encoder, out: Published | None = None, **kw) -> Watches:
    sink = out if out is not None else []
    return Watches(tmp_path, [text_encoder], lambda topic, body: sink.append((topic, body)), redact=False, **kw)


def result(image_encoder, rgb: np.ndarray, source: str, at_s: float) -> Encoded:
    """The image encoder's vectors of `rgb` as a result captured at monotonic second `at_s`."""
    ns = int(at_s * 1e9)
    frame = Frame(source, "image", rgb, time.time_ns(), ns)
    embs = tuple(e.__class__.of(frame, e.space, e.vector, e.labels, e.scores) for e in image_encoder.encode_now(rgb))
    return Encoded(frame, embs)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"name": "a b", "text": "x"}, "name must be"),
        ({"name": "x" * 65, "text": "x"}, "name must be"),
        ({"name": "", "text": "x"}, "name must be"),
        ({"name": "ok", "text": "   "}, "text is empty"),
        ({"name": "ok"}, "needs text"),
        ({"name": "ok", "text": "x", "modality": "smell"}, "modality must be"),
        ({"name": "ok", "text": "x", "threshold": 2}, "threshold must be"),
        ({"name": "ok", "text": "x", "threshold": True}, "threshold must be"),
        ({"name": "ok", "text": "x", "cooldown": -1}, "cooldown must be"),
        ({"name": "ok", "text": "x", "source": 3}, "source must be"),
        ({"name": "ok", "image": True}, "image watches need"),
    ],
)
def test_bad_requests_are_refused_with_the_field(tmp_path, text_encoder, body, error) -> None:
    w = watches(tmp_path, text_encoder)
    with pytest.raises(BadRequest, match=error):
        w.add(body)
    assert w.list({})["watches"] == [] and not (tmp_path / "watches.json").exists()


def test_watches_survive_a_restart_and_the_file_is_private(tmp_path, text_encoder) -> None:
    w = watches(tmp_path, text_encoder)
    w.add({"name": "cat", "text": "a cat", "modality": "image", "source": "cam0", "cooldown": 5})
    w.add({"name": "door", "text": "a person at the door", "threshold": 0.3})
    path = tmp_path / "watches.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []  # written in one step

    again = watches(tmp_path, text_encoder)
    listed = {x["name"]: x for x in again.list({})["watches"]}
    assert set(listed) == {"cat", "door"}
    assert listed["cat"]["modality"] == "image" and listed["cat"]["source"] == "cam0" and listed["cat"]["cooldown"] == 5
    assert listed["door"]["threshold"] == 0.3 and listed["door"]["spaces"] == [text_encoder.space]
    assert again.remove({"name": "cat"}) == {"removed": "cat"}
    assert [x["name"] for x in watches(tmp_path, text_encoder).list({})["watches"]] == ["door"]
    with pytest.raises(BadRequest, match="no watch named 'cat'"):
        again.remove({"name": "cat"})


def test_same_name_replaces_and_the_limit_is_enforced(tmp_path, text_encoder) -> None:
    w = watches(tmp_path, text_encoder, max_watches=2)
    assert w.add({"name": "a", "text": "a cat"})["replaced"] is False
    assert w.add({"name": "a", "text": "a dog"})["replaced"] is True
    w.add({"name": "b", "text": "a car"})
    with pytest.raises(BadRequest, match="at most 2 watches"):
        w.add({"name": "c", "text": "a horse"})
    w.add({"name": "b", "text": "a red car"})  # replacing is not adding
    assert [(x["name"], x["text"]) for x in w.list({})["watches"]] == [("a", "a dog"), ("b", "a red car")]


@pytest.mark.parametrize(
    ("content", "kept"),
    [
        (b"{not json", 0),
        (b"\xff\xfe", 0),
        (b'{"version": 9, "watches": []}', 0),
        (
            json.dumps({"version": 1, "watches": [{"name": "ok", "text": "a cat"}, {"name": "bad name", "text": "x"}]}),
            1,
        ),
    ],
)
def test_a_bad_file_is_set_aside_and_the_daemon_starts(tmp_path, text_encoder, caplog, content, kept) -> None:
    path = tmp_path / "watches.json"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    with caplog.at_level(logging.ERROR, logger="agent.watch.store"):
        w = watches(tmp_path, text_encoder)
    assert len(w.list({})["watches"]) == kept
    assert "watches file" in caplog.text and "kept as" in caplog.text
    aside = list(tmp_path.glob("watches.json.bad-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == path.read_bytes()
    assert w.file.errors == 1
    w.add({"name": "new", "text": "a dog"})  # the next change writes a good file
    assert len(watches(tmp_path, text_encoder).list({})["watches"]) == kept + 1


def test_a_cat_fires_once_per_cooldown_and_a_coffee_does_not(tmp_path, text_encoder, image_encoder) -> None:
    out: Published = []
    w = watches(tmp_path, text_encoder, out)
    w.add({"name": "cat", "text": "a cat", "cooldown": 10})
    w.add({"name": "camcat", "text": "a cat", "source": "cam0"})  # filtered: the results come from screen0
    cat, coffee = skimage.data.chelsea(), skimage.data.coffee()

    w.put(result(image_encoder, coffee, "screen0", 100.0), "/t/coffee.jpg")
    assert out == []
    first = result(image_encoder, cat, "screen0", 101.0)
    w.put(first, "/t/cat.jpg")
    assert [t for t, _ in out] == ["match.cat"]
    head = out[0][1]
    assert head["id"] == first.frame.id and head["thumb"] == "/t/cat.jpg" and head["watch"] == "cat"
    assert head["space"] == text_encoder.space and head["score"] >= CONSE_THRESHOLD
    assert head["source"] == "screen0" and head["modality"] == "image" and "cat" in " ".join(head["labels"])

    for at in (105.0, 112.0, 121.0):  # one long event: each match within 10 s of the last one is suppressed
        w.put(result(image_encoder, cat, "screen0", at), None)
    assert len(out) == 1 and w.stats()["suppressed"] == 3
    w.put(result(image_encoder, cat, "screen0", 131.5), None)  # 10.5 s quiet: a new event
    assert len(out) == 2 and w.stats() == {"watches": 2, "fired": 2, "suppressed": 3, "errors": 0}
    listed = {x["name"]: x for x in w.list({})["watches"]}
    assert listed["cat"]["fired"] == 2 and listed["camcat"]["fired"] == 0


def test_a_text_memory_matches_with_the_text_threshold_and_words_follow_redaction(tmp_path, text_encoder) -> None:
    from encoders.records import Embedding

    def memory(words: str) -> Encoded:
        frame = Frame("screen0", "image", np.zeros((4, 4, 3), np.uint8), time.time_ns(), time.monotonic_ns())
        e = Embedding.of(frame, text_encoder.space, text_encoder.encode(words))
        e = e.__class__(**{**e.__dict__, "modality": "text", "text": words, "key": f"screen0#text-{frame.ts_ns + 1}"})
        return Encoded(frame, (e,))

    for redact in (False, True):
        out: Published = []
        (tmp_path / str(redact)).mkdir()
        w = watches(tmp_path / str(redact), text_encoder, out)
        w.redact = redact
        w.add({"name": "door", "text": "a person at the door", "modality": "text"})
        w.put(memory("Invoice 4711: total due 120 EUR by Friday"))
        assert out == []
        w.put(memory("Someone is standing at the front door"))
        assert len(out) == 1
        head = out[0][1]
        assert head["modality"] == "text" and head["frame"] and head["id"].startswith("screen0#text-")
        assert head["text"] == (None if redact else "Someone is standing at the front door")


def test_any_field_value_is_answered_with_a_clear_error_or_a_watch(tmp_path, text_encoder) -> None:
    w = watches(tmp_path, text_encoder, max_watches=1000)
    values = [None, True, 0, -1, 1e308, float("nan"), "", "x", "a" * 3000, [], {}, [1], {"a": 1}, "image"]
    fields = ("name", "text", "modality", "source", "threshold", "cooldown", "image")
    for i, (field, value) in enumerate((f, v) for f in fields for v in values):
        body = {"name": f"w{i}", "text": "a cat", field: value}
        try:
            w.add(body)
        except BadRequest as e:
            assert str(e) and "internal" not in str(e)
    assert all(isinstance(x["threshold"], (float, type(None))) for x in w.list({})["watches"])


def test_a_file_that_cannot_be_written_refuses_the_change(tmp_path, text_encoder) -> None:
    w = watches(tmp_path, text_encoder)
    (tmp_path / "watches.json").mkdir()  # os.replace cannot put a file there
    with pytest.raises(BadRequest, match="watches not changed: cannot write"):
        w.add({"name": "cat", "text": "a cat"})
    assert w.list({})["watches"] == []


def test_an_image_watch_keeps_its_vectors_across_a_restart_and_matches_that_photo(
    tmp_path, text_encoder, image_encoder
) -> None:
    """An image watch's probes come from the request's image (the daemon passes its image model's vectors) and
    are stored: they cannot be recomputed from text at the next start."""
    cat, coffee = skimage.data.chelsea(), skimage.data.coffee()

    def probes(body: dict) -> list[tuple[str, np.ndarray]]:
        rgb = {"cat": cat, "coffee": coffee}[body["image_b64"]]  # stands for the decoded bytes
        return [(e.space, e.vector) for e in image_encoder.encode_now(rgb) if e.space != text_encoder.space]

    w = watches(tmp_path, text_encoder, image_probes=probes)
    assert w.add({"name": "cup", "image_b64": "coffee"})["watch"]["image"] is True
    out: Published = []
    again = watches(tmp_path, text_encoder, out)  # restarted, and without an image decoder: the vectors are kept
    assert [x["name"] for x in again.list({})["watches"]] == ["cup"]
    again.put(result(image_encoder, cat, "screen0", 1.0), None)
    assert out == []
    again.put(result(image_encoder, coffee, "screen0", 2.0), None)
    assert [t for t, _ in out] == ["match.cup"] and out[0][1]["space"] != text_encoder.space
