"""The eval end to end on a tiny scenario: virtual screen, camera and microphone, the real daemon (its own, from
the CLI), the questions asked through sinks.client and scored. That it runs and scores, not how well."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from agent.eval.questions import parse
from agent.eval.run import run
from agent.eval.score import table
from bench.eval import record
from tests.support.env import sensorium

TINY = """\
slack: 1.5
scenario:
  seconds: 16
  screen: [[0, chelsea], [8, invoice]]
  camera: [[0, coffee]]
  sound: [[0, "say:refund"], [8, music]]
questions:
  - {id: cat, kind: object_screen, query: a cat, source: screen0, truth: [[0, 8]]}
  - {id: coffee, kind: object_camera, query: a cup of coffee, source: cam0, truth: [[0, 16]]}
  - {id: invoice, kind: text_screen, query: invoice 4711, truth: [[8, 16]], truth_source: screen0}
  - {id: refund, kind: speech, query: refund for a damaged package, modality: text, source: mic0, truth: [[0, 8]]}
  - {id: music, kind: sound, query: music, modality: audio, truth: [[8, 14]]}
  - {id: around, kind: around, query: invoice 4711, modality: text, source: screen0, sense: "image:screen0",
     truth: [[8, 16]]}
  - {id: giraffe, kind: none, query: a giraffe}
"""


def test_tiny_scenario_runs_and_scores(home, tmp_path):
    qset = parse(TINY, "tiny.yaml")
    # one short sentence: a moment need not wait the default 40 s for a 30 s utterance's transcript
    endpoint, t0, stack = record(qset, tmp_path, "[moments]\ngrace_s = 5.0\n", say=lambda s: None)
    with stack:
        report = run(endpoint, qset.at(t0))
        # the same set from a file through the CLI, with the scenario's start: what a user runs on their memory
        (tmp_path / "tiny.yaml").write_text(TINY)
        start = dt.datetime.fromtimestamp(t0).isoformat()
        cfg = ["--config", str(tmp_path / "eval.toml")]
        cli = json.loads(
            sensorium(*cfg, "eval", "--set", str(tmp_path / "tiny.yaml"), "--start", start, "--json").stdout
        )
        stale = sensorium(
            *cfg, "eval", "--set", str(tmp_path / "tiny.yaml"), "--start", "2001-01-01T00:00", check=False
        )
    assert stale.returncode == 2 and "tiny.yaml:" in stale.stderr and "is outside memory" in stale.stderr
    by_id = {o.id: o for o in report.outcomes}
    assert set(by_id) == {q.id for q in qset.questions}
    assert not [o.error for o in report.outcomes if o.error]
    # the around op comes from another part: asked when the daemon has it, else skipped with the reason
    assert by_id["around"].skipped is None or "around" in by_id["around"].skipped
    # the invoice's number is read from the screen and found by its words: the pipeline ran end to end
    assert by_id["invoice"].rank == 1, table(report, t0)
    overall = report.row("overall")
    assert overall is not None and overall.n == 5 + (by_id["around"].skipped is None)
    assert 0 <= overall.recall[1] <= overall.recall[5] <= overall.recall[10] <= 1
    assert {q["id"]: q["rank"] for q in cli["questions"]}["invoice"] == 1
    assert [r["kind"] for r in cli["rows"]] == [r["kind"] for r in report.to_json()["rows"]]


def test_image_model_goes_into_the_daemon_config(tmp_path):
    from agent import config
    from bench.eval import CONFIG, image_model

    path = tmp_path / "eval.toml"
    path.write_text(CONFIG.format(camera="http://127.0.0.1:1/cam.mjpg", extra=image_model("tiny-clip-eval2")))
    cfg = config.load(path)
    assert cfg.models.image == "tiny-clip-eval2" and cfg.camera.fps == 1.0
    with pytest.raises(ValueError, match="image model name"):
        image_model('x"\n[daemon]')
