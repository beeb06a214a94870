"""Memory against a real embedded Chroma in a temp dir."""

import os
import stat

import cv2
import numpy as np

from encoders.records import Embedding, Encoded, Frame
from sinks.memory import Memory

T0 = 1_763_900_000_000_000_000  # ns


def unit(v) -> np.ndarray:
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v)


def item(i: int, vec: np.ndarray, source: str = "screen0", modality: str = "image") -> Encoded:
    img = np.full((60, 80, 3), (i * 40) % 256, np.uint8)
    f = Frame(source, modality, img, T0 + i * 1_000_000_000, i)
    return Encoded(f, (Embedding(f.id, source, modality, "t/4", vec, f.ts_ns, i, (f"label{i}",), (0.9,)),))


def memory(path, **kw) -> Memory:
    args = {"batch_size": 4, "flush_s": 0.1, "thumbnails": True, "thumb_width": 40, "queue_size": 100} | kw
    return Memory(path, **args)


def test_writes_batches_searches_and_persists(tmp_path):
    mem = memory(tmp_path)
    mem.start()
    basis = np.eye(4, dtype=np.float32)
    for i in range(10):
        mem.put(item(i, unit(basis[i % 4] + 0.01 * i)))
    mem.close()
    assert mem.stats() == {"stored": 10, "dropped": 0, "failed": 0, "queued": 0, "thumb_errors": 0}

    reopened = memory(tmp_path)  # a new client on the same folder sees everything
    assert reopened.count("t/4") == 10
    hits = reopened.search("t/4", basis[1], k=3)
    assert [h.id for h in hits] == [item(i, basis[0]).frame.id for i in (1, 5, 9)]
    assert hits[0].score > 0.99 and hits[0].labels == ["label1"] and hits[0].source == "screen0"
    thumb = cv2.imread(hits[0].thumb)
    assert thumb is not None and thumb.shape[1] == 40 and thumb.shape[0] == 30


def test_time_modality_and_source_filters(tmp_path):
    mem = memory(tmp_path)
    mem.start()
    v = unit([1, 0, 0, 0])
    for i in range(6):
        mem.put(item(i, v, source="screen0" if i % 2 else "cam0", modality="image"))
    mem.close()
    since, until = (T0 + 2e9) / 1e9, (T0 + 4e9) / 1e9
    hits = mem.search("t/4", v, k=10, since=since, until=until)
    assert sorted(round(h.ts - T0 / 1e9) for h in hits) == [2, 3, 4]
    assert {h.source for h in mem.search("t/4", v, k=10, source="cam0")} == {"cam0"}
    assert mem.search("t/4", v, k=10, modality="audio") == []


def test_full_queue_counts_drops(tmp_path):
    mem = memory(tmp_path, queue_size=2)  # writer not started: the queue fills
    for i in range(5):
        mem.put(item(i, unit([1, 0, 0, 0])))
    assert mem.stats()["dropped"] == 3


def test_data_dir_is_private(tmp_path):
    from agent.daemon import private_dir

    d = private_dir(tmp_path / "a" / "data")
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
