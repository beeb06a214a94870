"""The typed status reads and writes the JSON that `status --json` and the heartbeat have always carried."""

from __future__ import annotations

import copy
from dataclasses import asdict

from agent.cli.control import format_status
from agent.status import MomentStatus, SourceStatus, SpeechStatus, Status, TextStatus, WatchStatus, WebStatus

# `sensorium status --json` of a screen + microphone daemon before the status was typed (camera added by hand)
SAMPLE = {
    "uptime_s": 3.2,
    "device": {"image": "CPU", "audio": "CPU", "text": "CPU"},
    "sources": {
        "screen0": {
            "state": "running", "captured": 13, "kept": 1, "gated": 12, "forced": 0, "errors": 0, "last_error": "",
            "excluded": 0, "masked": 0, "dropped": 0, "discarded": 0, "rejected": 0, "queue": 0,
            "fps": {"in": 4.07, "kept": 0.31, "dropped": 0.0},
        },
        "cam0": {
            "state": "paused", "grabbed": 40, "captured": 20, "kept": 5, "gated": 15, "forced": 1, "errors": 1,
            "last_error": "camera gone", "reconnects": 1, "paused_until": 1_800_000_000.5, "dropped": 2,
            "discarded": 1, "rejected": 0, "queue": 1, "fps": {"in": None, "kept": None, "dropped": None},
        },
        "mic0": {
            "windows": 3, "kept": 0, "gated": 3, "bad": 0, "overflows": 0, "reconnects": 0, "errors": 0, "captured": 3,
            "samples_in": 94815, "samples_dropped": 0, "state": "running", "last_error": "", "dropped": 0,
            "discarded": 0, "rejected": 0, "queue": 0, "fps": {"in": 0.94, "kept": 0.0, "dropped": 0.0},
        },
    },
    "mailbox_depth": {"screen0": 0, "cam0": 1, "mic0": 0},
    "encoders": {
        "image": {
            "submitted": 1, "completed": 1, "bad_frames": 0, "errors": 0, "model": "effnet-lite0",
            "infer_p50_ms": 155.05, "infer_p95_ms": 155.05,
        },
        "audio": {
            "submitted": 0, "completed": 0, "bad_frames": 0, "errors": 0, "model": "silero-vad",
            "infer_p50_ms": None, "infer_p95_ms": None,
        },
    },
    "dispatchers": {"image": {"rejected": 0, "errors": 0}, "audio": {"rejected": 0, "errors": 0}},
    "latency_ms": {"p50": 195.07, "p95": 195.07},
    "publisher": {"sent": 5, "dropped": 0, "queued": 0},
    "memory": {
        "received": 2, "stored": 2, "queued": 0, "dropped": 0, "rejected": 0, "failed": 0, "lost": 0, "purged": 0,
        "recovered": 0, "spool_rows": 0, "spool_bytes": 0, "store_lag_s": 0.0, "buckets": 2, "store_process": 1022,
        "store_starts": 1, "thumb_errors": 0, "retention_errors": 0, "keyword_errors": 0,
    },
    "service": {"served": 1, "bad_requests": 0, "bad_frames": 0},
    "metrics": "http://127.0.0.1:45791/metrics",
}  # fmt: skip


def test_the_json_round_trips_key_for_key():
    st = Status.from_dict(copy.deepcopy(SAMPLE))
    # new keys: the result stage's queue (agent/pipeline/fanout.py), screen text and speech; an older daemon's
    # JSON reads as zeros (and screen text and speech "off")
    new = {"fanout": {"queued": 0, "dropped": 0, "errors": 0}, "text": asdict(TextStatus())}
    new |= {"watch": asdict(WatchStatus()), "health": {}, "health_dropped": 0}  # watches and encoder health (issue 17)
    new |= {"web": asdict(WebStatus())}  # the page (issue 18): an older daemon's reads as off
    new["memory"] = SAMPLE["memory"] | {"disk_bytes": None, "budget_bytes": 0, "retention_days": 0.0}  # storage
    assert st.to_dict() == SAMPLE | new | {"speech": asdict(SpeechStatus()), "moments": asdict(MomentStatus())}
    assert st.speech.state == "off" and st.speech.gated == {} and st.moments.state == "off"
    assert Status.from_dict(st.to_dict()) == st
    cam = st.sources["cam0"]
    assert (cam.state, cam.kept, cam.errors, cam.paused_until, cam.queue) == ("paused", 5, 1, 1_800_000_000.5, 1)
    assert cam.extras == {"grabbed": 40, "forced": 1, "reconnects": 1}  # what only a camera counts
    assert st.sources["mic0"].extras["samples_in"] == 94815 and st.sources["screen0"].extras["excluded"] == 0
    assert st.encoders["image"].model == "effnet-lite0" and st.memory.store_process == 1022


def test_a_source_status_keeps_every_counter_of_its_stats():
    stats = {"state": "running", "captured": 9, "kept": 4, "gated": 5, "errors": 0, "last_error": None, "masked": 3}
    src = SourceStatus.of(stats, dropped=1, discarded=0, rejected=2, queue=0, fps={"in": 1.0})
    assert src.extras == {"masked": 3} and src.paused_until is None
    assert src.to_dict() == stats | {"dropped": 1, "discarded": 0, "rejected": 2, "queue": 0, "fps": {"in": 1.0}}
    bare = SourceStatus.of({"state": "running", "captured": 2, "kept": 2}, dropped=0, discarded=0, rejected=0, queue=0)
    assert "gated" not in bare.to_dict()  # a source without a gate does not report one


def test_the_status_table_reads_the_typed_status():
    text = format_status(Status.from_dict(SAMPLE))
    assert "cam0     paused until " in text and "camera gone" in text, text
    assert "image    CPU        1   155.1   155.1       0" in text, text
    assert "published 5 (dropped 0); stored 2 (failed 0)" in text and "store process 1022" in text, text


def test_the_status_table_shows_speech():
    off = format_status(Status.from_dict(SAMPLE | {"speech": {"state": "off: model 'whisper-base' is not built"}}))
    assert "speech off: model 'whisper-base' is not built" in off, off
    on = {"state": "on", "device": "CPU", "model": "whisper-base", "transcribed": 7, "audio_s": 21.5, "memories": 6}
    on |= {"dropped": 1, "gated": {"loop": 1, "no_speech": 0}, "p50_ms": 310.0, "lag_p50_ms": 420.5}
    text = format_status(Status.from_dict(SAMPLE | {"speech": on}))
    assert "speech on CPU (whisper-base): 7 utterances transcribed (21.5 s; dropped 1, gated 1), 6 memories" in text
    assert "p50 310.0 ms, end→memory p50 420.5 ms" in text, text
    assert Status.from_dict(Status.from_dict(SAMPLE | {"speech": on}).to_dict()).speech.gated == {
        "loop": 1,
        "no_speech": 0,
    }


def test_the_status_table_shows_moments():
    assert "moments off" in format_status(Status.from_dict(SAMPLE))
    on = {"state": "on", "interval_s": 10.0, "emitted": 12, "pending": 2, "late": 1, "forgotten": 3}
    text = format_status(Status.from_dict(SAMPLE | {"moments": on}))
    assert "moments every 10 s: 12 emitted, 2 open, 1 late vectors left out, 3 dropped by forget" in text, text
