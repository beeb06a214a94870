"""The retrieval eval, full run: the built-in scenario on virtual sensors, the real daemon on it, then its questions.

configs/eval/scenario.yaml holds both the timeline (what the screen, the camera and the microphone get, and when)
and the questions with their ground truth. Here the timeline is played on the stand-ins of `make demo` (Xvfb + feh,
an MJPEG camera on 127.0.0.1, a PulseAudio null sink), with a daemon of its own in a temporary SENSORIUM_HOME, the
models from the normal cache (SENSORIUM_CACHE). Before the start and after the end the screen and the camera show
plain grey, so memories outside the timeline exist (as they would) but answer nothing. Then every question is asked
through sinks.client (agent/eval/run.py) and scored (agent/eval/score.py): the table, the misses, and a JSON report.

With --calibrate every question is asked a second time without the daemon's no-answer threshold, and the best
cosine per kind of memory is printed for the right hits and for the questions that have no answer, which is how
the `[query.min_score]` defaults were chosen; and, for each miss, its rank and cosine without the threshold.

With --image-model NAME the daemon describes the screen and camera with another image model (`[models] image`,
e.g. a CLIP imported with `sensorium models import DIR` and built in SENSORIUM_CACHE), so the same questions
measure it against the default.

    python -m bench.eval [--set FILE] [--json-out FILE] [--calibrate] [--image-model NAME]
    (also: sensorium eval --scenario)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agent import config
from agent.eval import questions
from agent.eval.questions import QuestionSet, SetError
from agent.eval.run import K
from agent.eval.run import run as ask_all
from agent.eval.score import Report, table

SCREEN = (1280, 720)
GREY = 128
CONFIG = """\
# Written by `python -m bench.eval`: every sensor is a stand-in.
[daemon]
log_level = "WARNING"
[screen]
fps = 2.0
force_keep_s = 5.0
[camera]
device = "{camera}"
fps = 1.0
force_keep_s = 5.0
[store]
flush_s = 0.5
[metrics]
port = 0
{extra}"""


@dataclass(frozen=True)
class Event:
    at: float  # seconds from the start
    sense: str  # screen | camera | sound
    what: str


def timeline(scenario: dict) -> tuple[list[Event], float]:
    """The scenario's events, in time order, and its length; ValueError naming what is wrong."""
    seconds = scenario.get("seconds")
    if not isinstance(seconds, (int, float)) or seconds <= 0:
        raise ValueError("scenario.seconds must be a positive number")
    events = []
    for sense in ("screen", "camera", "sound"):
        for entry in scenario.get(sense) or []:
            if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], (int, float))):
                raise ValueError(f"scenario.{sense}: each entry is [seconds, name], got {entry!r}")
            if not 0 <= entry[0] < seconds:
                raise ValueError(f"scenario.{sense}: {entry!r} starts outside 0 to {seconds} s")
            events.append(Event(float(entry[0]), sense, str(entry[1])))
    return sorted(events, key=lambda e: (e.at, e.sense)), float(seconds)


def images(names: set[str]) -> dict[str, np.ndarray]:
    """Photos that ship in scikit-image's wheel (no download) and pages of demo/textpages.py, RGB."""
    import skimage.data

    from demo.textpages import PAGES, page

    out: dict[str, np.ndarray] = {"grey": np.full((SCREEN[1], SCREEN[0], 3), GREY, np.uint8)}
    for name in names - {"grey"}:
        if name in PAGES:
            out[name] = page(name, SCREEN).rgb
        elif name == "motorcycle":
            out[name] = skimage.data.stereo_motorcycle()[0]
        elif name in ("chelsea", "coffee", "rocket", "astronaut", "cat", "camera", "clock"):
            out[name] = np.ascontiguousarray(getattr(skimage.data, name)()[..., :3])
        else:
            raise ValueError(f"no image {name!r}: a page of demo/textpages.py or a scikit-image photo")
    return out


def sounds(names: set[str], tmp: Path) -> dict[str, Path]:
    """'say:<sentence>' (demo/speech.py, espeak-ng) and clips (music, white-noise, ...) as WAV files."""
    from demo.speech import RATE, clip, sentence, synthesise
    from demo.standins import write_wav

    out = {}
    for name in names:
        audio = synthesise(sentence(name[4:])) if name.startswith("say:") else clip(name)
        out[name] = write_wav(tmp / f"{name.replace(':', '-')}.wav", audio, RATE)
    return out


def play(events: list[Event], seconds: float, show: Callable[[str], None], camera: Callable[[str], None],
         sound: Callable[[str], None]) -> float:  # fmt: skip
    """Run the timeline against the monotonic clock; returns the wall-clock start (what truth times count from)."""
    t0 = time.time()
    start = time.monotonic()
    act = {"screen": show, "camera": camera, "sound": sound}
    for e in events:
        time.sleep(max(0.0, start + e.at - time.monotonic()))
        act[e.sense](e.what)
    time.sleep(max(0.0, start + seconds - time.monotonic()))
    return t0


def record(qset: QuestionSet, tmp: Path, extra_config: str = "", say: Callable[[str], None] = print) -> tuple[
        str, float, ExitStack]:  # fmt: skip
    """Play the scenario of `qset` with a daemon of its own; (query endpoint, start time, what to close).

    The caller asks its questions, then closes the stack (daemon, sensors, sounds)."""
    import subprocess

    from demo.__main__ import start_daemon, wait_running, wait_transcribed
    from demo.standins import Display, MjpegServer, Pulse, stop_process, which

    for tool in ("Xvfb", "feh", "pulseaudio", "pactl", "paplay", "espeak-ng"):
        which(tool)
    events, seconds = timeline(qset.scenario)
    pics = images({e.what for e in events if e.sense != "sound"})
    clips = sounds({e.what for e in events if e.sense == "sound"}, tmp)
    stack = ExitStack()
    saved = dict(os.environ)  # DISPLAY, PULSE_* and SENSORIUM_HOME point at the stand-ins until the stack closes
    stack.callback(lambda: (os.environ.clear(), os.environ.update(saved)))
    try:
        os.environ["SENSORIUM_HOME"] = str(tmp / "home")
        display = Display(tmp, size=f"{SCREEN[0]}x{SCREEN[1]}x24")
        stack.callback(display.close)
        display.start()
        display.show(pics["grey"])
        pulse = Pulse(tmp, sink="sensorium_eval")
        stack.callback(pulse.stop)
        pulse.start()
        cam = stack.enter_context(MjpegServer([pics["grey"]], fps=10))
        os.environ.update({"DISPLAY": display.name, **pulse.env()})
        cfg_path = tmp / "eval.toml"
        cfg_path.write_text(CONFIG.format(camera=cam.url, extra=extra_config))
        start_daemon(cfg_path, tmp / "daemon.log", stack)
        wait_running(cfg_path)
        time.sleep(2.0)  # a few grey frames first: memories from before the start
        playing: list[subprocess.Popen] = []
        stack.callback(lambda: [stop_process(p) for p in playing])
        say(f"playing {len(events)} events over {seconds:g} s")
        t0 = play(
            events, seconds, lambda n: display.show(pics[n]), lambda n: cam.set_frames([pics[n]]),
            lambda n: playing.append(pulse.play(clips[n], wait=False)),
        )  # fmt: skip
        display.show(pics["grey"])
        cam.set_frames([pics["grey"]])
        end = time.time()
        wait_transcribed(cfg_path, timeout=60.0)
        cfg = config.load(cfg_path)
        moments = getattr(cfg, "moments", None)  # late-fused slices wait grace_s for late senses (speech)
        if moments is not None and moments.enabled:
            time.sleep(max(0.0, end + moments.grace_s + moments.interval_s - time.time()))
        time.sleep(cfg.store.flush_s + 1.5)  # the writer's last batch
        return config.query_endpoint(config.load(cfg_path)), t0, stack
    except BaseException:
        stack.close()
        raise


def image_model(name: str) -> str:
    """The config lines that make the daemon use image model `name` (it must be built in SENSORIUM_CACHE)."""
    if not name.replace("-", "").replace(".", "").replace("_", "").isalnum():
        raise ValueError(f"image model name {name!r}: letters, digits, '-', '.' and '_' only")
    return f'[models]\nimage = "{name}"\n'


def calibrate(endpoint: str, qset: QuestionSet, by_question: dict[str, dict] | None = None) -> dict[
        str, dict[str, list[float]]]:  # fmt: skip
    """Per kind of memory (modality): the best cosine among each answerable question's right hits, and the best
    cosine of each no-answer question's hits, all asked without the threshold. `by_question`, when given, gets
    each question's rank and cosine without the threshold (what a miss would have been without it)."""
    from agent.eval.score import rank
    from sinks.client import request

    out: dict[str, dict[str, list[float]]] = {}
    for q in qset.questions:
        if q.kind == "around":
            continue
        body = {"op": "query", "text": q.query, "k": K, "modality": q.modality, "source": q.source}
        hits = request(endpoint, body | {"threshold": False}, timeout=30)["results"]
        # the threshold keeps a question answerable when any right hit clears it, so its cosine is the best right
        # hit's: the first right one in the unthresholded (rank-fused) order can be a low-cosine keyword match
        right = [h for h in hits if q.answerable and rank(q, [h], qset.slack)]
        top = max(right or hits, key=lambda h: h["score"], default=None)
        if by_question is not None:
            r = rank(q, hits, qset.slack) if q.answerable else None
            by_question[q.id] = {"rank": r, "score": round(top["score"], 3) if top else None}
        if right:
            out.setdefault(top["modality"], {}).setdefault("right", []).append(round(top["score"], 3))
        elif q.answerable:
            continue
        else:
            best: dict[str, float] = {}
            for h in hits:
                best[h["modality"]] = max(best.get(h["modality"], 0.0), h["score"])
            for mod, s in best.items():
                out.setdefault(mod, {}).setdefault("none", []).append(round(s, 3))
    return out


def evaluate(qset: QuestionSet, tmp: Path, extra_config: str = "", calib: bool = False,
             say: Callable[[str], None] = print) -> tuple[Report, float, dict]:  # fmt: skip
    """Record the scenario, ask every question, score; (report, start time, calibration data or {})."""
    _, seconds = timeline(qset.scenario)
    qset.check_times(0, seconds, "the scenario")
    endpoint, t0, stack = record(qset, tmp, extra_config, say)
    with stack:
        asked = qset.at(t0)
        t1 = time.monotonic()
        report = ask_all(endpoint, asked)
        say(f"asked {len(qset.questions)} questions in {time.monotonic() - t1:.1f} s")
        if not calib:
            return report, t0, {}
        by_question: dict[str, dict] = {}
        return report, t0, {"modalities": calibrate(endpoint, asked, by_question), "questions": by_question}


def run(opts: object = None) -> list:
    """For bench/runner.py: the full scenario (--quick does not shorten it: the timeline is the question set's)."""
    from bench.common import BenchError, Table
    from demo.standins import MissingTool

    qset = questions.builtin()
    tmp = Path(tempfile.mkdtemp(prefix="sensorium-eval-"))
    try:
        report, _, _ = evaluate(qset, tmp, say=lambda s: None)
    except MissingTool as e:
        raise BenchError(str(e)) from None
    finally:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    t = Table("Retrieval eval (configs/eval/scenario.yaml)", ["kind", "n", "R@1", "R@5", "R@10", "MRR", "no-match"])
    for r in report.rows:
        if r.kind == "none":
            t.add(r.kind, r.n, None, None, None, None, r.no_match)
        else:
            t.add(r.kind, r.n, r.recall[1], r.recall[5], r.recall[10], r.mrr, r.no_match)
    overall, none = report.row("overall"), report.row("none")
    kinds = [r for r in report.rows if r.kind not in ("overall", "none")]
    t.summary["eval.recall5"] = overall.recall[5] if overall else None
    t.summary["eval.worst_kind_recall5"] = min((r.recall[5] for r in kinds), default=None)
    t.summary["eval.no_answer_rate"] = none.no_match if none else None
    t.notes += [f"miss: {o.id} ({o.kind})" for o in report.misses]
    t.notes += [f"skipped {o.id}: {o.skipped}" for o in report.outcomes if o.skipped]
    return [t]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.eval", description=__doc__.split("\n\n")[0])
    p.add_argument("--set", help="a question set with a scenario (default: configs/eval/scenario.yaml)")
    p.add_argument("--json-out", help="write the JSON report here")
    p.add_argument("--calibrate", action="store_true", help="also print cosines without the no-answer threshold")
    p.add_argument("--keep", action="store_true", help="keep the temporary memory and daemon log")
    p.add_argument("--image-model", metavar="NAME", help="[models] image for the daemon (default: the config's)")
    args = p.parse_args(argv)
    try:
        qset = questions.load(args.set) if args.set else questions.builtin()
    except SetError as e:
        print(f"bench.eval: {e}", file=sys.stderr)
        return 2
    if not qset.scenario:
        print(f"bench.eval: {qset.path} has no scenario to play", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="sensorium-eval-"))
    t = time.monotonic()
    extra = image_model(args.image_model) if args.image_model else ""
    report, t0, calib = evaluate(qset, tmp, extra, calib=args.calibrate)
    print(table(report, origin=t0))
    print(f"\n(scenario and questions: {time.monotonic() - t:.0f} s; truth times above are seconds from the start)")
    out = report.to_json() | {"start": t0, "set": qset.path, "image_model": args.image_model}
    if calib:
        out["calibration"], out["unthresholded"] = calib["modalities"], calib["questions"]
        for mod, d in sorted(calib["modalities"].items()):
            print(f"calibration {mod:<6} right: {sorted(d.get('right', []))}")
            print(f"{'':18} none:  {sorted(d.get('none', []))}")
        for o in report.misses:
            if o.id in calib["questions"]:
                u = calib["questions"][o.id]
                print(f"without the threshold {o.id}: rank {u['rank']}, cosine {u['score']} (best right hit, or best)")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(out, indent=2))
    if args.keep:
        print(f"memory and daemon log in {tmp}")
    else:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
