"""Keyword index of text memories (screen text, speech): SQLite FTS5 in the data dir, ranked by bm25.

Vectors find a memory by meaning; a number such as "4711" or a name such as "Müller" is found by its
words. Chroma's own full-text filter (`where_document={"$contains": ...}`) neither ranks nor folds case or
accents and must be asked bucket by bucket. bench/keywords.py at 100k text blocks in 31 day buckets
(shared 2-core machine, k=50): Chroma $contains p50 84 ms, p95 1344 ms, 862 rows/s inserted (1349 without
documents: the words cost it a third); FTS5 p50 28 ms, p95 88 ms, 9.8k rows/s, ranked by bm25. Its cost
grows with the rows a word matches (a word in most rows: ~150 ms), not with the index.

Tokens are unicode61 with diacritics removed, so "Muller" finds "Müller" and "Müller" finds "Muller".
Free user text becomes a safe MATCH expression (`match_expr`): only its words are kept, each quoted, so
`invoice #4711` or `"unbalanced` never is an FTS5 syntax error.

Rows are written by the memory writer thread after the store took them, in one transaction per batch,
and removed with their rows by forget and retention (a dropped bucket removes the keyword rows of its
space and time range once no other space holds them). The index is always local to this daemon, also
when the store is a Chroma server (store.url): text memories other agents wrote there are not in it.
Files: <data_dir>/keywords/index.sqlite (+ its WAL), the dir 0700 and the files 0600.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import threading
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

FILE = "index.sqlite"
MAX_TERMS = 32  # words of a query used; more only slow the match down
PREFIX_MIN = 3  # words this long and without digits also match as a prefix ("certif" → "certificate")
SNIPPET_TOKENS = 12
TOKEN = re.compile(r"[^\W_]+")  # what unicode61 keeps as a token: letters and digits

SCHEMA = """
create table if not exists docs(
    rowid integer primary key, id text unique not null, ts real not null, source text not null,
    modality text not null, thumb text, frame text);
create index if not exists docs_ts on docs(ts);
create table if not exists spaces(doc integer not null, space text not null, primary key(doc, space)) without rowid;
create virtual table if not exists kw using fts5(text, tokenize = "unicode61 remove_diacritics 2");
"""


@dataclass(frozen=True)
class Row:
    """One text memory to index (the writer makes these from a stored record's documents)."""

    id: str
    ts: float
    source: str
    modality: str
    space: str  # the vector space the row was stored in: the keyword row lives while any of its spaces does
    text: str
    thumb: str | None = None
    frame: str | None = None


@dataclass(frozen=True)
class Match:
    id: str
    ts: float
    source: str
    modality: str
    text: str
    snippet: str  # the matched words in [brackets], with … where text was cut
    thumb: str | None
    frame: str | None
    rank: float  # bm25: lower is better


# Words that would match nearly every text memory ("a cat" must not find every screen with an "a" on it); a
# query made of these only is searched as it is.
STOPWORDS = frozenset(
    "a an and are as at be but by for from has have in is it its of on or that the their there this to was "
    "were will with what when where which who why how do does did not no you your i me my we our he she they "
    "der die das und oder ein eine ist im in zu den dem des mit von für auf".split()
)


def words(text: str) -> list[str]:
    """The words of free text worth searching for, as the tokenizer would see them (NFKC first, so "ﬁle" is
    "file"), without stopwords unless there is nothing else."""
    found = TOKEN.findall(unicodedata.normalize("NFKC", text))
    kept = [w for w in found if w.casefold() not in STOPWORDS]
    return (kept or found)[:MAX_TERMS]


def match_expr(text: str, op: str = "AND") -> str | None:
    """A MATCH expression for `text`: every word quoted (no operator or quote in user text means anything),
    words of PREFIX_MIN letters or more also as a prefix, joined by `op`; None when `text` has no word."""
    terms = [f'"{w}"*' if len(w) >= PREFIX_MIN and not any(c.isdigit() for c in w) else f'"{w}"' for w in words(text)]
    return f" {op} ".join(terms) or None


class Keywords:
    """The index. `add` and `remove` from one thread (the memory writer); `search` from any."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        self.path = self.dir / FILE
        self._wlock = threading.Lock()
        self._rlock = threading.Lock()
        try:
            self._w, self._r = self._open()
        except sqlite3.DatabaseError as e:  # a corrupt file: keep it aside, start empty, say so
            bad = self.path.with_name(f"{FILE}.bad-{int(time.time())}")
            log.error("keyword index %s is unreadable (%s); moved to %s, starting empty", self.path, e, bad.name)
            self.path.replace(bad)
            for tail in ("-wal", "-shm"):
                Path(str(self.path) + tail).unlink(missing_ok=True)
            self._w, self._r = self._open()

    def _open(self) -> tuple[sqlite3.Connection, sqlite3.Connection]:
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))  # SQLite gives its WAL the file's mode
        os.chmod(self.path, 0o600)
        w = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            w.execute("pragma journal_mode=wal")  # queries read while the writer writes
            w.execute("pragma synchronous=normal")
            w.executescript(SCHEMA)
            w.execute("select count(*) from docs").fetchone()
        except sqlite3.DatabaseError:
            w.close()
            raise
        return w, sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)

    def close(self) -> None:
        with self._wlock, self._rlock:
            self._w.close()
            self._r.close()

    def __len__(self) -> int:
        with self._rlock:
            return int(self._r.execute("select count(*) from docs").fetchone()[0])

    def add(self, rows: Iterable[Row]) -> int:
        """Index `rows` in one transaction; a row already indexed only gains its space. Returns new rows."""
        new = 0
        with self._wlock:
            cur = self._w.cursor()
            cur.execute("begin")
            try:
                for r in rows:
                    got = cur.execute(
                        "insert into docs(id, ts, source, modality, thumb, frame) values (?, ?, ?, ?, ?, ?)"
                        " on conflict(id) do nothing returning rowid",
                        (r.id, r.ts, r.source, r.modality, r.thumb, r.frame),
                    ).fetchone()
                    if got is not None:
                        rowid = got[0]
                        cur.execute(
                            "insert into kw(rowid, text) values (?, ?)", (rowid, unicodedata.normalize("NFC", r.text))
                        )
                        new += 1
                    else:
                        rowid = cur.execute("select rowid from docs where id = ?", (r.id,)).fetchone()[0]
                    cur.execute("insert or ignore into spaces(doc, space) values (?, ?)", (rowid, r.space))
                cur.execute("commit")
            except BaseException:
                cur.execute("rollback")
                raise
        return new

    def remove(
        self, since: float | None, until: float | None, space: str | None = None, end: float | None = None
    ) -> int:
        """Remove rows with since <= ts <= until (and ts < end); with `space`, only that space's hold on them,
        and the rows no other space holds. Returns the rows removed."""
        conds, args = [], []
        for sql, value in (("ts >= ?", since), ("ts <= ?", until), ("ts < ?", end)):
            if value is not None:
                conds.append(sql)
                args.append(value)
        where = " and ".join(conds) or "1"
        with self._wlock:
            cur = self._w.cursor()
            cur.execute("begin")
            try:
                if space is not None:
                    cur.execute(
                        f"delete from spaces where space = ? and doc in (select rowid from docs where {where})",
                        (space, *args),
                    )
                    orphan = " and not exists (select 1 from spaces s where s.doc = docs.rowid)"
                    gone = cur.execute(f"select rowid from docs where {where}{orphan}", args).fetchall()
                else:
                    gone = cur.execute(f"select rowid from docs where {where}", args).fetchall()
                cur.executemany("delete from kw where rowid = ?", gone)
                cur.executemany("delete from spaces where doc = ?", gone)
                cur.executemany("delete from docs where rowid = ?", gone)
                cur.execute("commit")
            except BaseException:
                cur.execute("rollback")
                raise
        return len(gone)

    def search(
        self,
        text: str,
        k: int,
        since: float | None = None,
        until: float | None = None,
        modality: str | None = None,
        source: str | None = None,
    ) -> list[Match]:
        """Best first by bm25: rows with every word of `text`, or, when none has them all, with any of them."""
        for op in ("AND", "OR"):
            expr = match_expr(text, op)
            if expr is None:
                return []
            found = self._match(expr, k, since, until, modality, source)
            if found or len(words(text)) < 2:
                return found
        return []

    def _match(
        self, expr: str, k: int, since: float | None, until: float | None, modality: str | None, source: str | None
    ) -> list[Match]:
        conds, args = ["kw match ?"], [expr]
        filters = (("d.ts >= ?", since), ("d.ts <= ?", until), ("d.modality = ?", modality), ("d.source = ?", source))
        for sql, value in filters:
            if value is not None:
                conds.append(sql)
                args.append(value)
        sql = (
            "select d.id, d.ts, d.source, d.modality, kw.text,"
            f" snippet(kw, 0, '[', ']', '…', {SNIPPET_TOKENS}), d.thumb, d.frame, bm25(kw)"
            " from kw join docs d on d.rowid = kw.rowid"
            f" where {' and '.join(conds)} order by bm25(kw), d.ts desc limit ?"
        )
        with self._rlock:
            rows = self._r.execute(sql, (*args, k)).fetchall()
        # a snippet is shown on one line: the lines of a block run on
        return [
            Match(r[0], r[1], r[2], r[3], r[4], " ".join(r[5].split()), r[6] or None, r[7] or None, r[8]) for r in rows
        ]
