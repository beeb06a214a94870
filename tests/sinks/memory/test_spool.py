"""The on-disk spool: durable records, replay order, restart, corruption, purge."""

import os
import stat

import numpy as np

from sinks.memory.spool import Record, Spool


def rec(space: str, ts: list[float]) -> Record:
    ids = [f"s-{round(t * 1e9)}" for t in ts]
    vecs = np.random.default_rng(len(ts)).standard_normal((len(ts), 4)).astype(np.float32)
    return Record(space, ids, vecs, [{"ts": t, "source": "s", "modality": "image"} for t in ts])


def test_records_come_back_in_order_after_a_restart(tmp_path):
    sp = Spool(tmp_path / "spool")
    a, b = rec("a/4", [10.0, 11.0]), rec("b/4", [5.0])
    sp.append(a)
    sp.append(b)
    assert (len(sp), sp.rows, sp.oldest_ts) == (2, 3, 5.0) and sp.bytes > 2 * 3 * 16
    files = sorted((tmp_path / "spool").iterdir())
    assert all(stat.S_IMODE(os.stat(f).st_mode) == 0o600 for f in files)
    assert stat.S_IMODE(os.stat(tmp_path / "spool").st_mode) == 0o700

    (tmp_path / "spool" / "000000000099.tmp").write_bytes(b"half a record")  # a crash mid-append
    again = Spool(tmp_path / "spool")
    assert again.rows == 3 and not list((tmp_path / "spool").glob("*.tmp"))
    path, got = again.head()
    assert got.space == "a/4" and got.ids == a.ids and np.array_equal(got.vectors, a.vectors) and got.metas == a.metas
    again.pop(path)
    again.append(rec("c/4", [1.0]))  # numbered after what is there: replay order stays append order
    assert again.head()[1].space == "b/4"
    again.pop(again.head()[0])
    assert again.head()[1].space == "c/4"


def test_an_unreadable_file_is_quarantined_and_counted(tmp_path):
    sp = Spool(tmp_path)
    sp.append(rec("a/4", [1.0]))
    sp.append(rec("a/4", [2.0]))
    first = sorted(tmp_path.glob("*.spool"))[0]
    first.write_bytes(first.read_bytes()[:-5])  # truncated on disk
    again = Spool(tmp_path)
    assert again.bad_files == 1 and again.rows == 1 and (tmp_path / "bad" / first.name).exists()
    assert again.head()[1].metas[0]["ts"] == 2.0


def test_purge_removes_rows_in_a_range_and_keeps_the_rest_in_place(tmp_path):
    sp = Spool(tmp_path)
    sp.append(rec("a/4", [1.0, 2.0, 3.0]))
    sp.append(rec("a/4", [2.5]))
    assert sp.purge(2.0, 2.6) == 2
    assert sp.rows == 2 and len(sp) == 1
    _, left = sp.head()
    assert [m["ts"] for m in left.metas] == [1.0, 3.0] and left.vectors.shape == (2, 4)
    assert Spool(tmp_path).rows == 2  # the rewrite is on disk
