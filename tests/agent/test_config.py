import re
import socket
from pathlib import Path

import pytest

from agent import config
from agent.config import ConfigError
from tests.support.env import sensorium


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(text)
    return p


def test_defaults_load_and_user_overrides(tmp_path, monkeypatch):
    monkeypatch.setenv("SENSORIUM_HOME", str(tmp_path))
    cfg = config.load(write(tmp_path, "[screen]\nfps = 5\n[device]\nname = 'CPU'\n"))
    assert cfg.screen.fps == 5.0 and isinstance(cfg.screen.fps, float)
    assert cfg.device.name == "CPU"
    assert cfg.daemon.data_dir == tmp_path / "data"
    assert config.bus_endpoint(cfg) == f"ipc://{tmp_path / 'run' / 'bus.sock'}"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[screen]\nfsp = 2\n", "screen.fsp"),
        ("[nosuch]\nx = 1\n", "nosuch"),
        ("[screen]\nfps = 'fast'\n", "screen.fps"),
        ("[screen]\nenabled = 1\n", "screen.enabled"),
        ("[device]\nname = 'TPU'\n", "device.name"),
        ("[bus]\nendpoint = 'tcp://0.0.0.0:5555'\n", "bus.endpoint"),
        ("[store]\nbatch_size = 0\n", "store.batch_size"),
        ("[camera]\ndevice = 0\n", "camera.device"),
        ("[camera]\ndevice = ''\n", "camera.device"),
        ("[microphone]\nhop_s = 0\n", "microphone.hop_s"),
        ("[microphone]\nsilence_dbfs = 3.0\n", "microphone.silence_dbfs"),
        ("[microphone]\nname = 'screen0'\n", "microphone.name"),
        ("[camera]\nname = 'cam.0'\n", "camera.name"),
        ("[store]\nagent = 'my laptop'\n", "store.agent"),
        ("[speech]\nenabled = 'yes'\n", "speech.enabled"),
        ("[speech]\nmax_s = 45\n", "speech.max_s"),
        ("[speech]\nlanguage = 'English'\n", "speech.language"),
        ("[speech]\nqueue = 0\n", "speech.queue"),
        ("[speech]\nmin_silence_s = 0\n", "speech.min_silence_s"),
        ("[speech]\nonset = 1.5\n", "speech.onset"),
        ("[speech]\noffset = 0.6\n", "speech.offset"),
        ("[speech]\nlogprob = 0.5\n", "speech.logprob"),
        ("[models]\nspeech = 3\n", "models.speech"),
    ],
)
def test_bad_config_names_the_key(tmp_path, text, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        config.load(write(tmp_path, text))


def test_speech_defaults_and_overrides(tmp_path):
    sp = config.load(write(tmp_path, "")).speech
    assert (sp.enabled, sp.language, sp.min_silence_s, sp.max_s, sp.queue) == (True, "", 0.6, 30.0, 4)
    assert (sp.onset, sp.offset, sp.no_speech, sp.logprob, sp.compression) == (0.5, 0.35, 0.6, -1.0, 2.4)
    cfg = config.load(write(tmp_path, "[speech]\nlanguage = 'de'\nmax_s = 12\n[models]\nspeech = 'whisper-tiny-en'\n"))
    assert (cfg.speech.language, cfg.speech.max_s, cfg.models.speech) == ("de", 12.0, "whisper-tiny-en")


def test_bad_config_is_one_line_and_exit_2(tmp_path):
    out = sensorium("--config", str(write(tmp_path, "[device]\nname = 'TPU'\n")), "run", check=False)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "device.name" in lines[0] and "TPU" in lines[0], out.stderr


def test_invalid_toml_is_reported(tmp_path):
    out = sensorium("--config", str(write(tmp_path, "[screen\n")), "run", check=False)
    assert out.returncode == 2 and "not valid TOML" in out.stderr


def test_agents_sharing_a_store_prefix_their_source_names(tmp_path):
    alone = config.load(write(tmp_path, ""))
    assert (alone.store.agent, alone.screen.name) == ("", "screen0")  # embedded store: names as configured
    shared = config.load(write(tmp_path, "[store]\nurl = 'http://127.0.0.1:8000'\n"))
    assert shared.store.agent == re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname())  # the host name by default
    assert shared.microphone.name == f"{shared.store.agent}.mic0"
    named = config.load(write(tmp_path, "[store]\nurl = 'http://127.0.0.1:8000'\nagent = 'desk'\n"))
    assert (named.screen.name, named.camera.name) == ("desk.screen0", "desk.cam0")
