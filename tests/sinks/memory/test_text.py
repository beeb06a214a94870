"""Text memories in a real Chroma (in this process and in the store process) and the FTS5 keyword index:
rows under their own id with their words, one modality per id stream, search by words, forget, retention,
the spool."""

from __future__ import annotations

import os
import stat
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from encoders.records import Embedding, Encoded, Frame, text_id
from sinks.memory.keywords import Keywords, Row, match_expr
from sinks.memory.spool import Record, Spool, decode, encode
from tests.support.rows import MIDNIGHT, at, balanced, memory, unit
from tests.support.wait import wait_until

DAY = 86400


def read(ts: float, lines: list[str], vec=(1, 0, 0, 0), source: str = "screen0", i: int = 0) -> Encoded:
    """A screen frame at `ts` and the text memories read from it (one per line), as the OCR worker hands them."""
    ts_ns = round(ts * 1e9)
    frame = Frame(source, "image", np.zeros((60, 80, 3), np.uint8), ts_ns, i)
    embs = tuple(
        Embedding(frame.id, source, "text", "t/4", unit(np.asarray(vec) + 0.01 * n), ts_ns, i, text=t, key=key)
        for n, t in enumerate(lines)
        for key in [text_id(source, ts_ns, n)]
    )
    return Encoded(frame, embs)


@pytest.mark.parametrize("process", [False, True], ids=["in-process", "store-process"])
def test_text_rows_carry_their_words_and_frame_and_filter_by_stream(tmp_path: Path, process: bool) -> None:
    mem = memory(tmp_path, process=process)
    try:
        picture = at(MIDNIGHT + 10, 1, vec=(1, 0, 0, 0))  # an image row of screen0 in the same space
        text = read(MIDNIGHT + 10, ["Invoice #4711 from Müller", "Total 1.250 EUR"], vec=(1, 0.1, 0, 0))
        mem.write([picture, text], {text.frame.id: "/thumbs/x.jpg"})
        hits = mem.search("t/4", unit((1, 0, 0, 0)), k=5)
        by_id = {h.id: h for h in hits}
        first = by_id[text.embeddings[0].id]
        assert len(hits) == 3 and first.id == f"screen0#text-{text.frame.ts_ns + 1}"
        assert first.text == "Invoice #4711 from Müller" and first.frame == text.frame.id
        assert first.modality == "text" and first.source == "screen0" and first.thumb == "/thumbs/x.jpg"
        assert by_id[picture.frame.id].text is None and by_id[picture.frame.id].frame is None
        # modality by id stream: "screen0#text" is text, "screen0" is image, though both say source screen0
        assert {h.id for h in mem.search("t/4", unit((1, 0, 0, 0)), 5, modality="text")} == {
            e.id for e in text.embeddings
        }
        assert [h.id for h in mem.search("t/4", unit((1, 0, 0, 0)), 5, modality="image")] == [picture.frame.id]
        assert len(mem.search("t/4", unit((1, 0, 0, 0)), 5, source="screen0")) == 3
        assert mem.search("t/4", unit((1, 0, 0, 0)), 5, source="screen") == []
        rows = mem.range(None)
        assert sorted(h.text or "" for h, _ in rows) == ["", "Invoice #4711 from Müller", "Total 1.250 EUR"]
        assert mem.vectors(text.embeddings[1].id).keys() == {"t/4"}
        st = mem.stats()
        assert st["stored"] == 3 and balanced(st) and st["keyword_errors"] == 0
    finally:
        mem.close()
    reopened = memory(tmp_path)  # a fresh store learns each stream's modality from its rows
    got = reopened.search("t/4", unit((1, 0, 0, 0)), 5, modality="text", source="screen0")
    assert sorted(h.text for h in got) == ["Invoice #4711 from Müller", "Total 1.250 EUR"]


@pytest.mark.parametrize("process", [False, True], ids=["in-process", "store-process"])
def test_a_transcripts_extra_metadata_is_stored_and_read_back(tmp_path: Path, process: bool) -> None:
    """Speech: start/end/language/confidence travel with the row (JSON in the metadata) to search and range."""
    ts_ns = round((MIDNIGHT + 20) * 1e9)
    frame = Frame("mic0", "audio", np.zeros(0, np.float32), ts_ns, 0)
    extra = {"start": f"{MIDNIGHT + 20:.3f}", "end": f"{MIDNIGHT + 23.5:.3f}", "language": "de", "confidence": "0.84"}
    vec = unit((0, 1, 0, 0))
    said = Embedding(frame.id, "mic0", "text", "t/4", vec, ts_ns, 0, extra=extra, text="Die Sitzung ist verschoben")
    said = Encoded(frame, (replace(said, key=text_id("mic0", ts_ns, 0)),))
    mem = memory(tmp_path, process=process)
    try:
        mem.write([said, read(MIDNIGHT + 10, ["no extra here"])])
        hits = {h.text: h for h in mem.search("t/4", vec, 5)}
        assert hits["Die Sitzung ist verschoben"].extra == extra and hits["no extra here"].extra is None
        assert {h.id: h.extra for h, _ in mem.range(None)}[said.embeddings[0].id] == extra
        assert [h.frame for h in mem.find_words("Sitzung", 5)] == [frame.id]
    finally:
        mem.close()


def test_words_are_found_ranked_with_snippets_and_filters(tmp_path: Path) -> None:
    mem = memory(tmp_path)
    mem.write(
        [
            read(MIDNIGHT + 10, ["Invoice #4711 from Müller GmbH, total 1.250 EUR"], i=1),
            read(MIDNIGHT + 20, ["Invoice 4712 for Schmidt", "invoices are due"], source="cam0", i=2),
            read(MIDNIGHT + 30, ["The certificate of example.org expired: NET::ERR_CERT_DATE_INVALID"], i=3),
            at(MIDNIGHT + 40, 4),  # an image row: nothing to index
        ]
    )
    assert len(mem.keywords) == 4
    first = mem.find_words("invoice 4711", 5)
    assert [h.text for h in first] == ["Invoice #4711 from Müller GmbH, total 1.250 EUR"]
    assert first[0].snippet == "[Invoice] #[4711] from Müller GmbH, total 1.250 EUR" and first[0].space == "keywords"
    assert first[0].frame == read(MIDNIGHT + 10, ["x"], i=1).frame.id and first[0].ts == MIDNIGHT + 10
    for q in ("Muller", "müller", "MÜLLER"):  # case and accents folded both ways
        assert [h.ts for h in mem.find_words(q, 5)] == [MIDNIGHT + 10], q
    assert len(mem.find_words("invoice", 5)) == 3  # "invoices" too: words of 3+ letters match as a prefix
    assert [h.source for h in mem.find_words("invoice", 5, source="cam0")] == ["cam0", "cam0"]
    assert [h.ts for h in mem.find_words("invoice", 5, since=MIDNIGHT + 15)] == [MIDNIGHT + 20] * 2
    assert mem.find_words("invoice", 5, until=MIDNIGHT + 15)[0].ts == MIDNIGHT + 10
    assert mem.find_words("invoice", 5, modality="image") == []
    assert mem.find_words("certificate expired", 1)[0].snippet.count("[") == 2
    # no word of the query in one row: rows with any of them, best first
    assert mem.find_words("Schmidt's unpaid invoice", 5)[0].text == "Invoice 4712 for Schmidt"
    for hostile in ('"unbalanced', "invoice #4711 OR", "NEAR(a b)", "*", "a AND", "col:x", "'; drop table docs; --"):
        mem.find_words(hostile, 5)  # never an FTS5 syntax error
    assert mem.find_words("!!! ???", 5) == [] and match_expr("!!!") is None
    assert mem.stats()["keyword_errors"] == 0


def test_forget_removes_the_words_too(tmp_path: Path) -> None:
    mem = memory(tmp_path)
    mem.write([read(MIDNIGHT + 10, ["secret invoice 4711"], i=1), read(MIDNIGHT + 100, ["later invoice 4800"], i=2)])
    mem.put(read(MIDNIGHT + 50, ["queued invoice 4750"], i=3))  # still queued: written, then forgotten
    assert len(mem.find_words("invoice", 10)) == 2
    out = mem.forget(MIDNIGHT, MIDNIGHT + 60)
    assert out["keywords"] == 2 and out["count"] == 2
    assert [h.text for h in mem.find_words("invoice", 10)] == ["later invoice 4800"]
    assert mem.find_words("secret", 10) == [] and mem.find_words("4711", 10) == []
    assert Keywords(tmp_path / "keywords").search("secret", 5) == []  # gone from the file, not only a cache


def test_retention_drops_the_words_of_dropped_buckets(tmp_path: Path) -> None:
    mem = memory(tmp_path, thumbnails=False)
    noon = MIDNIGHT + DAY // 2
    mem.write([read(noon - d * DAY, [f"report of day {d} invoice"], i=d) for d in range(4)])
    assert len(mem.find_words("invoice", 10)) == 4
    aged = memory(tmp_path, thumbnails=False, retention_days=1.0)
    assert aged.apply_retention(now=noon)["buckets"] == 2  # days 2 and 3
    assert sorted(h.text for h in aged.find_words("invoice", 10)) == [f"report of day {d} invoice" for d in (0, 1)]


def test_a_space_keeps_the_words_another_space_drops(tmp_path: Path) -> None:
    kw = Keywords(tmp_path / "kw")
    rows = [Row("s#text-1", 100.0, "s", "text", space, "shared words") for space in ("a/4", "b/4")]
    assert kw.add(rows) == 1 and kw.add(rows) == 0  # one row per memory, whatever its spaces; idempotent
    assert kw.remove(0, None, "a/4", end=200) == 0 and len(kw.search("shared", 5)) == 1  # b/4 still holds it
    assert kw.remove(0, None, "b/4", end=100) == 0  # end is exclusive: the row at 100 is not in [0, 100)
    assert kw.remove(0, None, "b/4", end=101) == 1 and kw.search("shared", 5) == []


def test_index_files_are_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    mem = memory(data)
    mem.write([read(MIDNIGHT, ["words"])])
    assert stat.S_IMODE(os.stat(data).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(data / "keywords").st_mode) == 0o700
    files = list((data / "keywords").iterdir())
    assert files and all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files), files


def test_a_corrupt_index_is_set_aside_and_memory_still_starts(tmp_path: Path) -> None:
    (tmp_path / "keywords").mkdir(mode=0o700)
    (tmp_path / "keywords" / "index.sqlite").write_bytes(b"not a database" * 100)
    mem = memory(tmp_path)
    mem.write([read(MIDNIGHT, ["fresh words"])])
    assert [h.text for h in mem.find_words("fresh", 5)] == ["fresh words"]
    assert len(list((tmp_path / "keywords").glob("index.sqlite.bad-*"))) == 1


def test_spool_keeps_the_words_and_old_files_still_read(tmp_path: Path) -> None:
    vecs = np.eye(2, 4, dtype=np.float32)
    metas = [{"ts": 1.0, "source": "s", "modality": "image"}, {"ts": 2.0, "source": "s", "modality": "text"}]
    rec = Record("t/4", ["s-1", "s#text-2"], vecs, metas, [None, "hello"])
    assert decode(encode(rec)).docs == [None, "hello"]
    old = encode(Record("t/4", rec.ids, vecs, metas))  # no docs: what a spool file from before looks like
    assert b"docs" not in old and decode(old).docs is None and decode(old).ids == rec.ids


def test_spooled_text_is_indexed_when_replayed(tmp_path: Path) -> None:
    item = read(time.time(), ["spooled invoice 4711"])
    e = item.embeddings[0]
    meta = {
        "ts": e.ts_ns / 1e9,
        "source": "screen0",
        "modality": "text",
        "labels": "",
        "thumb": "",
        "frame": e.frame_id,
    }
    Spool(tmp_path / "spool").append(Record("t/4", [e.id], e.vector[np.newaxis], [meta], [e.text]))
    mem = memory(tmp_path, process=True)  # the spool from a run whose store was down
    assert mem.find_words("spooled", 5) == []
    mem.start()
    try:
        wait_until(lambda: mem.stats()["spool_rows"] == 0, 30, "the spool replayed")
        assert [h.id for h in mem.find_words("invoice 4711", 5)] == [e.id]
        assert mem.search("t/4", e.vector, 1)[0].text == "spooled invoice 4711"
    finally:
        mem.close()
    st = mem.stats()
    assert st["recovered"] == st["stored"] == 1 and balanced(st)


def test_stopwords_alone_do_not_match_and_snippets_are_one_line(tmp_path: Path) -> None:
    kw = Keywords(tmp_path / "kw")
    kw.add([Row("s#text-1", 100.0, "s", "text", "a/4", "There was a problem\nconfirming the ssl certificate")])
    assert kw.search("a cat", 5) == []  # "a" is on nearly every screen: it finds nothing by itself
    assert kw.search("the", 5)  # a query of stopwords only is searched as it is
    (hit,) = kw.search("a certificate", 5)
    assert "\n" not in hit.snippet and "[certificate]" in hit.snippet
