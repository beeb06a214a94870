"""The no-answer threshold of text queries ([query.min_score]): the built MiniLM, a real Chroma and keyword
index, a real Service asked through sinks.client. Thresholds are set from the cosines measured here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agent.query.search import all_words
from agent.query.service import Service
from encoders.modelstore import ModelStore
from encoders.records import Embedding, Encoded, Frame, text_id
from encoders.runtime import Runtime, RuntimeConfig
from encoders.text import TextEncoder
from sinks.client import Rejected, query, request
from sinks.memory import Memory
from tests.support.env import sensorium

T0 = 1_763_900_000.0
TEXTS = ["The quarterly budget report goes to Sarah on Friday", "Heating maintenance: radiators off from 8 to 14"]
RELATED, UNRELATED = "the budget report for Sarah", "a giraffe eating leaves in the savanna"


@pytest.fixture(scope="module")
def world(tmp_path_factory, model_cache):
    root: Path = tmp_path_factory.mktemp("threshold")
    runtime = Runtime(RuntimeConfig("CPU", "LATENCY", 1, False, model_cache / "ov-cache"))
    text = TextEncoder(runtime, ModelStore(model_cache).require("minilm-l6"))
    memory = Memory(root / "data", 8, 0.1, True, 64, 100)
    items = []
    for i, words in enumerate(TEXTS):
        ts_ns = int((T0 + 60 * i) * 1e9)
        frame = Frame("screen0", "image", np.full((60, 80, 3), 40 * i, np.uint8), ts_ns, i)
        key = text_id("screen0", ts_ns, 0)
        items.append(Encoded(frame, (Embedding(frame.id, "screen0", "text", text.space, text.encode(words), ts_ns, 0,
                                               text=words, key=key),)))  # fmt: skip
    memory.write(items, {})
    services = []

    def serve(min_score: dict[str, float]) -> str:
        endpoint = f"ipc://{root}/q{len(services)}.sock"
        svc = Service(endpoint, memory, [text], lambda: {}, min_score=min_score)
        svc.start()
        services.append(svc)
        return endpoint

    yield serve
    for svc in services:
        svc.close()


def test_threshold_drops_what_is_unlike_and_says_so(world):
    off = world({"text": 0.0})
    raw = {t: query(off, t, k=2, timeout=30)[0]["score"] for t in (RELATED, UNRELATED)}
    assert raw[RELATED] > raw[UNRELATED]  # measured, not assumed: the gap the threshold sits in
    cut = (raw[RELATED] + raw[UNRELATED]) / 2
    on = world({"text": cut, "image": 0.0})
    reply = request(on, {"op": "query", "text": RELATED, "k": 2}, timeout=30)
    assert reply["results"][0]["text"] == TEXTS[0] and reply["threshold"]["text"] == cut
    reply = request(on, {"op": "query", "text": UNRELATED, "k": 2}, timeout=30)
    assert reply["results"] == [] and reply["below"] == 2
    everything = query(on, UNRELATED, k=2, timeout=30, threshold=False)
    assert len(everything) == 2
    assert request(off, {"op": "query", "text": UNRELATED, "k": 2}, timeout=30)["threshold"] is None


def test_cli_says_why_nothing_matches(world, tmp_path):
    off = world({"text": 0.0})
    best = query(off, UNRELATED, k=1, timeout=30)[0]["score"]
    on = world({"text": round(best + 0.01, 3)})
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(f'[query]\nendpoint = "{on}"\n')
    out = sensorium("--config", str(cfg), "query", UNRELATED).stdout
    assert out.startswith("no memories match: the closest, a text memory from"), out
    assert f"scores {best:.3f}, below the no-answer threshold query.min_score.text = {round(best + 0.01, 3):g}" in out
    shown = sensorium("--config", str(cfg), "query", UNRELATED, "--all", "-k", "1").stdout
    assert "no memories match" not in shown and "screen0" in shown


def test_a_keyword_hit_with_every_word_counts(world):
    on = world({"text": 0.99})  # no cosine clears this: only the words can
    assert [h["text"] for h in query(on, "radiators heating", k=3, timeout=30)] == [TEXTS[1]]
    assert query(on, "radiators giraffe", k=3, timeout=30) == []
    with pytest.raises(Rejected, match="threshold must be"):
        request(on, {"op": "query", "text": "x", "threshold": "no"}, timeout=30)


def test_all_words():
    assert all_words("Invoice #4711 Müller GmbH", "invoice 4711 muller")
    assert all_words("certificate has expired", "certif expired")  # a prefix, as the keyword index matches
    assert not all_words("Invoice #4711", "invoice 4712")
