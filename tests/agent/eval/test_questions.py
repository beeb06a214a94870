"""Question sets: the shipped scenario parses; malformed ones fail with the line that is wrong."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest

from agent.eval import questions
from agent.eval.questions import SetError, parse

GOOD = """\
slack: 1
questions:
  - id: cat
    kind: object_screen
    query: a cat
    modality: image
    source: screen0
    truth: [[0, 8], [64, 72.5]]
  - {id: nothing, kind: none, query: a giraffe}
  - {id: plants, kind: around, query: water the plants, sense: "image:screen0", truth: [[40, 48]]}
"""


def test_parses_fields_and_moves_relative_truth_to_a_start():
    s = parse(GOOD)
    cat, nothing, plants = s.questions
    assert (cat.kind, cat.query, cat.modality, cat.source) == ("object_screen", "a cat", "image", "screen0")
    assert cat.line == 3
    assert [(i.start, i.end) for i in cat.truth] == [(0, 8), (64, 72.5)] and cat.relative
    assert not nothing.answerable and nothing.truth == ()
    assert plants.sense == "image:screen0"
    moved = s.at(1000.0)
    assert [(i.start, i.end) for i in moved.questions[0].truth] == [(1000, 1008), (1064, 1072.5)]
    assert not moved.relative and s.slack == 1


def test_iso_times_are_absolute():
    s = parse("questions:\n  - {id: a, kind: speech, query: x, truth: [['2026-11-23T14:00:00', '2026-11-23 14:05']]}\n")
    (iv,) = s.questions[0].truth
    assert not s.relative
    assert iv.start == dt.datetime(2026, 11, 23, 14, 0).timestamp() and iv.end - iv.start == 300


def test_the_builtin_scenario_is_valid_and_big_enough():
    s = questions.builtin()
    assert len(s.questions) >= 40
    assert {q.kind for q in s.questions} == set(questions.KINDS)
    s.check_times(0, s.scenario["seconds"], "the scenario")
    from bench.eval import timeline

    events, seconds = timeline(s.scenario)
    assert seconds == s.scenario["seconds"] and {e.sense for e in events} == {"screen", "camera", "sound"}


def test_the_heldout_set_plays_the_same_scenario_and_asks_other_questions():
    base, held = questions.builtin(), questions.builtin("heldout")
    assert held.scenario == base.scenario and held.slack == base.slack
    assert len(held.questions) >= 40 and sum(not q.answerable for q in held.questions) >= 10
    assert {q.kind for q in held.questions} == set(questions.KINDS)
    held.check_times(0, held.scenario["seconds"], "the scenario")
    asked = {(q.query.lower(), q.kind, q.source, q.sense) for q in base.questions}
    assert not [q.id for q in held.questions if (q.query.lower(), q.kind, q.source, q.sense) in asked]


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("questions:\n  - id: a\n    kind: [unclosed\n", 4, "not valid YAML"),
        ("questions:\n  - {id: a, kind: smell, query: x, truth: [[0, 1]]}\n", 2, "unknown kind 'smell'"),
        ("questions:\n  - {id: a, kind: speech, truth: [[0, 1]]}\n", 2, "missing 'query'"),
        ("questions:\n  - {id: a, kind: speech, query: x}\n", 2, "missing 'truth'"),
        ("questions:\n  - id: a\n    kind: speech\n    query: x\n    truth: [[5, 1]]\n", 5, "ends before it starts"),
        ("questions:\n  - id: a\n    kind: speech\n    query: x\n    truth: [[0, tomorrow]]\n", 5, "neither seconds"),
        ("questions:\n  - {id: a, kind: none, query: x}\n  - {id: a, kind: none, query: y}\n", 3, "used twice"),
        ("questions:\n  - {id: a, kind: none, query: x, colour: red}\n", 2, "unknown field 'colour'"),
        ("questions:\n  - {id: a, kind: around, query: x, truth: [[0, 1]]}\n", 2, "needs sense"),
        ("questions:\n  - {id: a, kind: speech, query: x, modality: smell, truth: [[0, 1]]}\n", 2, "modality"),
        ("questions: []\n", 1, "non-empty list"),
        ("nonsense: 1\n", 1, "unknown top-level key"),
        ("", 1, "empty question set"),
    ],
)
def test_errors_name_the_line(text: str, line: int, words: str):
    with pytest.raises(SetError) as e:
        parse(text, "my.yaml")
    assert str(e.value).startswith(f"my.yaml:{line}:"), str(e.value)
    assert words in str(e.value)


def test_truth_outside_memory_names_its_line(tmp_path: Path):
    path = tmp_path / "set.yaml"
    path.write_text(
        textwrap.dedent("""\
        questions:
          - id: old
            kind: speech
            query: the budget
            truth:
              - ['2020-01-01T10:00:00', '2020-01-01T10:01:00']
        """)
    )
    s = questions.load(path)
    s.check_times(dt.datetime(2019, 12, 31).timestamp(), dt.datetime(2020, 1, 2).timestamp())  # inside: fine
    with pytest.raises(SetError, match=rf"{path}:6: question 'old': truth 2020-01-01 10:00:00 .* is outside memory"):
        s.check_times(dt.datetime(2026, 1, 1).timestamp(), dt.datetime(2026, 2, 1).timestamp())


def test_unreadable_file(tmp_path: Path):
    with pytest.raises(SetError, match="cannot read"):
        questions.load(tmp_path / "missing.yaml")
