"""Question sets for `sensorium eval`: YAML with ground truth, parsed with line numbers.

A set is a mapping with `questions:` (and, for the built-in scenario, `scenario:`, the timeline the virtual
sensors play, which bench/eval.py reads). Each question:

    - id: cat-on-screen          # unique
      kind: object_screen        # one of KINDS
      query: a cat               # what a user would type (for `around`: the anchor query)
      modality: image            # optional filters sent with the query, as `--modality` / `--source`
      source: screen0
      sense: image:screen0       # `around` only: the sense whose memories answer (as the around op names it)
      truth_source: screen0      # optional: a hit counts only if it comes from this source
      truth: [[0, 8], [64, 72]]  # when the right memories were captured: seconds from the scenario start,
                                 # or ISO times ["2026-11-23T14:00:00", "2026-11-23T14:05:00"] in a user's set

A `none` question has no truth: its right answer is "no memories match". Errors name the file and line.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

KINDS = ("object_screen", "object_camera", "text_screen", "speech", "sound", "cross_sense", "around", "none")
MODALITIES = ("image", "audio", "text", "moment")
FIELDS = {"id", "kind", "query", "modality", "source", "sense", "truth", "truth_source", "k"}


class SetError(ValueError):
    """A question set that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class Interval:
    start: float  # unix seconds once resolved; seconds from the scenario start before
    end: float
    line: int

    def holds(self, ts: float, slack: float = 0.0) -> bool:
        return self.start - slack <= ts <= self.end + slack


@dataclass(frozen=True)
class Question:
    id: str
    kind: str
    query: str
    line: int
    modality: str | None = None
    source: str | None = None
    sense: str | None = None
    truth_source: str | None = None
    truth: tuple[Interval, ...] = ()
    relative: bool = False  # truth in seconds from the scenario start (resolved by `at`)

    @property
    def answerable(self) -> bool:
        return self.kind != "none"

    def at(self, start: float) -> Question:
        """This question with relative truth moved to absolute times (the scenario started at `start`)."""
        if not self.relative:
            return self
        moved = tuple(Interval(start + i.start, start + i.end, i.line) for i in self.truth)
        return Question(**{**self.__dict__, "truth": moved, "relative": False})


@dataclass(frozen=True)
class QuestionSet:
    path: str
    questions: tuple[Question, ...]
    slack: float = 0.0  # seconds added on each side of every truth interval (capture and playback jitter)
    scenario: dict[str, Any] = field(default_factory=dict)  # the timeline (built-in set only), plain data

    @property
    def relative(self) -> bool:
        return any(q.relative for q in self.questions)

    def at(self, start: float) -> QuestionSet:
        return QuestionSet(self.path, tuple(q.at(start) for q in self.questions), self.slack, self.scenario)

    def check_times(self, lo: float, hi: float, what: str = "memory") -> None:
        """Every truth interval must overlap [lo, hi] (what memory holds, or the scenario's length)."""
        for q in self.questions:
            for i in q.truth:
                if i.end + self.slack < lo or i.start - self.slack > hi:
                    raise SetError(
                        f"{self.path}:{i.line}: question {q.id!r}: truth {_when(i.start)} to {_when(i.end)} "
                        f"is outside {what} ({_when(lo)} to {_when(hi)})"
                    )


def _when(t: float) -> str:
    if abs(t) < 10**8:  # relative seconds
        return f"{t:g} s"
    return dt.datetime.fromtimestamp(t).isoformat(" ", "seconds")


class _Reader:
    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, node: Node | None, msg: str) -> SetError:
        line = node.start_mark.line + 1 if node is not None else 1
        return SetError(f"{self.path}:{line}: {msg}")

    def mapping(self, node: Node, what: str) -> dict[str, Node]:
        if not isinstance(node, MappingNode):
            raise self.fail(node, f"{what} must be a mapping (key: value)")
        out: dict[str, Node] = {}
        for k, v in node.value:
            if not isinstance(k, ScalarNode):
                raise self.fail(k, f"{what}: keys must be plain words")
            if k.value in out:
                raise self.fail(k, f"{what}: {k.value!r} given twice")
            out[k.value] = v
        return out

    def text(self, node: Node, what: str) -> str:
        if not isinstance(node, ScalarNode) or node.tag != "tag:yaml.org,2002:str" or not node.value.strip():
            raise self.fail(node, f"{what} must be non-empty text")
        return node.value.strip()

    def number(self, node: Node, what: str) -> float:
        try:
            v = float(yaml.safe_load(yaml.serialize(node))) if isinstance(node, ScalarNode) else math.nan
        except (TypeError, ValueError):
            v = math.nan
        if not math.isfinite(v):
            raise self.fail(node, f"{what} must be a number")
        return v

    def time(self, node: Node, what: str) -> tuple[float, bool]:
        """(value, relative): a number of seconds from the scenario start, or an ISO time (unix seconds)."""
        if not isinstance(node, ScalarNode):
            raise self.fail(node, f"{what} must be seconds from the start or an ISO time")
        if node.tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float"):
            v = self.number(node, what)
            if v < 0:
                raise self.fail(node, f"{what} must be >= 0 seconds from the start, got {v:g}")
            return v, True
        try:
            t = dt.datetime.fromisoformat(node.value.strip().replace(" ", "T"))
        except ValueError:
            raise self.fail(node, f"{what} {node.value!r} is neither seconds nor an ISO time") from None
        return t.timestamp(), False

    def interval(self, node: Node, qid: str) -> tuple[Interval, bool]:
        if not isinstance(node, SequenceNode) or len(node.value) != 2:
            raise self.fail(node, f"question {qid!r}: each truth interval is [from, to]")
        (a, rel_a), (b, rel_b) = (self.time(n, f"question {qid!r}: truth time") for n in node.value)
        if rel_a != rel_b:
            raise self.fail(node, f"question {qid!r}: mix of seconds and ISO times in one interval")
        if b < a:
            raise self.fail(node, f"question {qid!r}: truth interval ends before it starts")
        return Interval(a, b, node.start_mark.line + 1), rel_a

    def question(self, node: Node) -> Question:
        m = self.mapping(node, "a question")
        line = node.start_mark.line + 1
        for key, v in m.items():
            if key not in FIELDS:
                raise self.fail(v, f"unknown field {key!r} (known: {', '.join(sorted(FIELDS))})")
        for key in ("id", "kind", "query"):
            if key not in m:
                raise self.fail(node, f"question is missing {key!r}")
        qid = self.text(m["id"], "id")
        kind = self.text(m["kind"], f"question {qid!r}: kind")
        if kind not in KINDS:
            raise self.fail(m["kind"], f"question {qid!r}: unknown kind {kind!r} (known: {', '.join(KINDS)})")
        opt = {k: self.text(m[k], f"question {qid!r}: {k}") for k in ("modality", "source", "sense", "truth_source")
               if k in m}  # fmt: skip
        if opt.get("modality") not in (None, *MODALITIES):
            raise self.fail(m["modality"], f"question {qid!r}: modality must be one of {', '.join(MODALITIES)}")
        if kind == "around" and "sense" not in opt:
            raise self.fail(node, f"question {qid!r}: an around question needs sense (e.g. image:screen0)")
        if kind != "around" and "sense" in opt:
            raise self.fail(m["sense"], f"question {qid!r}: sense is for around questions only")
        truth: list[Interval] = []
        rel: set[bool] = set()
        if kind == "none":
            if "truth" in m:
                raise self.fail(m["truth"], f"question {qid!r}: a none question has no truth")
        else:
            t = m.get("truth")
            if t is None:
                raise self.fail(node, f"question {qid!r}: missing 'truth' (the times the answer was captured)")
            if not isinstance(t, SequenceNode) or not t.value:
                raise self.fail(t, f"question {qid!r}: truth is a list of [from, to] intervals")
            for n in t.value:
                iv, r = self.interval(n, qid)
                truth.append(iv)
                rel.add(r)
            if len(rel) > 1:
                raise self.fail(t, f"question {qid!r}: mix of seconds and ISO times")
        return Question(
            qid, kind, self.text(m["query"], f"question {qid!r}: query"), line, truth=tuple(truth),
            relative=rel == {True}, **opt,
        )  # fmt: skip


def parse(text: str, path: str = "<set>") -> QuestionSet:
    """A question set from YAML text; SetError naming the line on anything malformed."""
    r = _Reader(path)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise SetError(f"{path}:{line}: not valid YAML: {getattr(e, 'problem', None) or e}") from None
    if root is None:
        raise SetError(f"{path}:1: empty question set")
    top = r.mapping(root, "a question set")
    for key, v in top.items():
        if key not in ("questions", "slack", "scenario"):
            raise r.fail(v, f"unknown top-level key {key!r} (known: questions, slack, scenario)")
    qs = top.get("questions")
    if not isinstance(qs, SequenceNode) or not qs.value:
        raise r.fail(qs or root, "'questions' must be a non-empty list")
    questions = [r.question(n) for n in qs.value]
    seen: dict[str, int] = {}
    for q in questions:
        if q.id in seen:
            raise SetError(f"{path}:{q.line}: question id {q.id!r} is used twice (first on line {seen[q.id]})")
        seen[q.id] = q.line
    slack = r.number(top["slack"], "slack") if "slack" in top else 0.0
    if slack < 0:
        raise r.fail(top["slack"], "slack must be >= 0 seconds")
    scenario = yaml.safe_load(yaml.serialize(top["scenario"])) if "scenario" in top else {}
    return QuestionSet(path, tuple(questions), slack, scenario or {})


def load(path: str | Path) -> QuestionSet:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise SetError(f"{p}: cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise SetError(f"{p}: not UTF-8 text") from None
    return parse(text, str(p))


def builtin(name: str = "scenario") -> QuestionSet:
    """A set that ships with sensorium (configs/eval/<name>.yaml)."""
    from importlib.resources import files

    res = files("configs").joinpath("eval", f"{name}.yaml")
    return parse(res.read_text(encoding="utf-8"), f"configs/eval/{name}.yaml")
