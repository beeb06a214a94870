"""Scoring with synthetic hits: ranks, Recall@k, MRR, the no-answer rate and the misses."""

from __future__ import annotations

import json

from agent.eval.questions import parse
from agent.eval.score import outcome, rank, summarise, table

SET = parse("""\
slack: 1
questions:
  - {id: cat, kind: object_screen, query: a cat, truth: [[100, 110]], truth_source: screen0}
  - {id: coffee, kind: object_screen, query: coffee, truth: [[200, 210]]}
  - {id: said, kind: speech, query: budget, truth: [[300, 305]]}
  - {id: none1, kind: none, query: a giraffe}
  - {id: none2, kind: none, query: a boat}
""")


def hit(ts: float, source: str = "screen0", score: float = 0.5) -> dict:
    return {"id": f"{source}-{ts}", "ts": ts, "source": source, "modality": "image", "score": score, "labels": ["x"]}


def test_rank_is_the_first_hit_inside_the_truth_from_the_right_source():
    cat = SET.questions[0]
    hits = [hit(50), hit(105, "cam0"), hit(110.5), hit(104)]
    assert rank(cat, hits) == 4  # 105 is the wrong source, 110.5 is outside without slack
    assert rank(cat, hits, slack=1.0) == 3
    assert rank(cat, [hit(105, "laptop.screen0")]) == 1  # an agent-prefixed source is the same sensor
    assert rank(cat, []) is None
    moment = {"id": "all-1", "ts": 95.0, "source": "all", "modality": "moment", "extra": {"end": "105.0"}}
    assert rank(SET.questions[1], [moment]) is None and rank(cat, [moment | {"source": "screen0"}]) == 1  # overlaps
    around = {"id": "a", "ts": 104, "source": "screen0", "modality": "image", "score": None, "dt": 1.0}
    assert outcome(cat, [around]).rank == 1 and outcome(cat, [around]).top[0]["score"] == 0.0  # no cosine: 0


def test_report_per_kind_and_overall():
    outs = [
        outcome(SET.questions[0], [hit(50), hit(60), hit(105)], SET.slack),  # rank 3
        outcome(SET.questions[1], [hit(205)], SET.slack),  # rank 1
        outcome(SET.questions[2], [], SET.slack),  # false "no match"
        outcome(SET.questions[3], [], SET.slack),  # right: no match
        outcome(SET.questions[4], [hit(1, score=0.2)], SET.slack, below=0),  # wrong: an answer
    ]
    rep = summarise(outs)
    obj, speech, none, overall = (rep.row(k) for k in ("object_screen", "speech", "none", "overall"))
    assert obj.recall == {1: 0.5, 5: 1.0, 10: 1.0} and abs(obj.mrr - (1 / 3 + 1) / 2) < 1e-9
    assert speech.recall[10] == 0 and speech.no_match == 1.0
    assert none.n == 2 and none.no_match == 0.5
    assert overall.n == 3 and abs(overall.recall[5] - 2 / 3) < 1e-9
    assert [o.id for o in rep.misses] == ["said", "none2"]
    text = table(rep)
    assert "object_screen" in text and "said [speech] 'budget': no memories match; expected 300-305" in text
    assert "none2 [none] 'a boat'" in text
    data = json.loads(json.dumps(rep.to_json()))
    assert data["misses"] == ["said", "none2"]
    assert {r["kind"]: r for r in data["rows"]}["none"]["no_answer_rate"] == 0.5
    assert data["questions"][0]["rank"] == 3 and data["questions"][0]["right_score"] == 0.5
