"""Config: configs/default.toml is the schema and the defaults; a user file overrides a subset.

Validation is by example: every user key must exist in the defaults with a value of the same type
(an int is accepted where a float is expected). Enumerated values are checked here too, so a bad
config fails at start with one line that names the key.

Plain dataclasses, not pydantic: a pydantic version (issue 14) was barely shorter (308 lines against 339),
said less ("should match pattern ..." for store.url, no "(dBFS)" or "(0 = any free port)"), needed guards
of its own, and made every CLI start about 0.6 s slower (the CLI does not import pydantic otherwise).
"""

from __future__ import annotations

import os
import re
import socket
import tomllib
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

DEFAULT_PATH: Traversable = files("configs") / "default.toml"  # package data: found in a wheel install too
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
DEVICES = ("AUTO", "NPU", "GPU", "CPU")
HINTS = ("LATENCY", "THROUGHPUT")
NAME = r"[A-Za-z0-9_-]+"  # a source or agent name: one part of a topic


class ConfigError(ValueError):
    """A config problem; the message names the key."""


@dataclass(frozen=True)
class DaemonCfg:
    data_dir: Path
    cache_dir: Path
    runtime_dir: Path
    log_level: str
    keys_dir: Path  # CURVE keys (sinks/bus/keys.py)


@dataclass(frozen=True)
class DeviceCfg:
    name: str
    strict: bool
    hint: str
    cpu_threads: int


@dataclass(frozen=True)
class ModelsCfg:
    image: str
    text: str
    audio: str
    ocr: str  # screen-text model (det + rec IRs)
    speech: str  # speech-transcript model (Whisper encoder + decoder IRs)
    labels: tuple[str, ...]  # zero-shot labels when the image model is CLIP-family


@dataclass(frozen=True)
class ScreenCfg:
    enabled: bool
    name: str
    monitor: int
    fps: float
    gate_threshold: float
    force_keep_s: float
    exclude_rects: tuple[tuple[int, int, int, int], ...]  # x, y, w, h in screen pixels
    exclude_windows: tuple[str, ...]  # regexes on window title or class
    exclude_mode: str  # mask | skip


@dataclass(frozen=True)
class RedactCfg:
    enabled: bool
    patterns: tuple[str, ...]  # the user's own regexes, on top of the built-in detectors (agent/text/redact.py)


@dataclass(frozen=True)
class CameraCfg:
    enabled: bool
    name: str
    device: str
    fps: float
    width: int
    height: int
    loop: bool
    gate_threshold: float
    force_keep_s: float


@dataclass(frozen=True)
class MicrophoneCfg:
    enabled: bool
    name: str
    device: str
    hop_s: float
    silence_dbfs: float
    queue: int


@dataclass(frozen=True)
class BusCfg:
    endpoint: str
    curve: bool
    send_hwm: int
    queue_size: int


@dataclass(frozen=True)
class StoreCfg:
    batch_size: int
    flush_s: float
    thumbnails: bool
    thumb_width: int
    queue_size: int
    url: str  # "" = embedded Chroma under data_dir; "http://host:port" = a `chroma run` server
    process: bool  # the store (Chroma client) in a child process
    agent: str  # prefix of this agent's source names ("" = none)
    bucket: str  # time bucket length: 1d, 6h, 30m
    retention_days: float  # 0 = keep forever
    retention_bytes: int  # 0 = no cap
    retention_every_s: float


@dataclass(frozen=True)
class QueryCfg:
    endpoint: str
    curve: bool
    min_score: dict[str, float]  # no-answer threshold of text queries per kind of memory (modality)


@dataclass(frozen=True)
class MetricsCfg:
    enabled: bool
    host: str
    port: int
    allow_remote: bool


@dataclass(frozen=True)
class WebCfg:
    enabled: bool
    host: str
    port: int
    token: str  # "" = a random one kept in <data_dir>/web.token (agent/web/security.py)


@dataclass(frozen=True)
class OcrCfg:
    screen: bool
    camera: bool
    min_interval_s: float
    min_score: float


@dataclass(frozen=True)
class SpeechCfg:
    enabled: bool
    language: str  # "" = detect per utterance
    min_silence_s: float
    max_s: float
    pad_s: float
    min_speech_s: float
    onset: float
    offset: float
    queue: int
    no_speech: float
    logprob: float
    min_logprob: float
    compression: float


@dataclass(frozen=True)
class MomentsCfg:
    enabled: bool
    interval_s: float
    grace_s: float
    weights: dict[str, float]  # kind of sense (agent/moments.py KINDS) → weight >= 0


@dataclass(frozen=True)
class Config:
    daemon: DaemonCfg
    device: DeviceCfg
    models: ModelsCfg
    screen: ScreenCfg
    redact: RedactCfg
    camera: CameraCfg
    microphone: MicrophoneCfg
    ocr: OcrCfg
    speech: SpeechCfg
    bus: BusCfg
    store: StoreCfg
    query: QueryCfg
    metrics: MetricsCfg
    moments: MomentsCfg
    web: WebCfg


def _merge(defaults: dict, user: dict, prefix: str = "") -> dict:
    out = dict(defaults)
    for key, value in user.items():
        name = f"{prefix}{key}"
        if key not in defaults:
            raise ConfigError(f"unknown key {name!r}")
        want = defaults[key]
        if isinstance(want, dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{name!r} must be a table")
            out[key] = _merge(want, value, name + ".")
            continue
        ok = type(value) is type(want) or (type(want) is float and type(value) is int)
        if not ok:
            raise ConfigError(f"{name!r} must be {type(want).__name__}, got {type(value).__name__} {value!r}")
        out[key] = float(value) if type(want) is float else value
    return out


def _choice(d: dict, key: str, allowed: tuple[str, ...], section: str) -> None:
    if d[key] not in allowed:
        raise ConfigError(f"'{section}.{key}' must be one of {', '.join(allowed)}, got {d[key]!r}")


def _positive(d: dict, key: str, section: str, allow_zero: bool = False) -> None:
    if d[key] < 0 or (d[key] == 0 and not allow_zero):
        raise ConfigError(f"'{section}.{key}' must be {'>= 0' if allow_zero else '> 0'}, got {d[key]!r}")


def _check_endpoint(value: str, key: str, curve: bool) -> None:
    """Nothing listens off-host in the clear: ipc://, tcp:// on a loopback address, or any tcp:// with CURVE."""
    if not value:
        return
    if value.startswith("ipc://"):
        return
    if value.startswith("tcp://"):
        host = value[len("tcp://") :].rsplit(":", 1)[0].strip("[]")
        if host in ("127.0.0.1", "localhost", "::1") or curve:
            return
        section = key.split(".")[0]
        raise ConfigError(
            f"{key!r}: {value!r} would listen off-host; use tcp://127.0.0.1:PORT or ipc://, "
            f"or set {section}.curve = true after `sensorium keys generate`"
        )
    raise ConfigError(f"{key!r}: {value!r} must start with ipc:// or tcp://")


def _screen_exclusions(scr: dict) -> dict:
    """Lists → tuples (the dataclass is frozen); bad rectangles or regexes fail here, naming the entry."""
    from .sources.exclude import MODES, parse_patterns, parse_rects

    _choice(scr, "exclude_mode", MODES, "screen")
    try:
        rects = parse_rects(scr["exclude_rects"])
        parse_patterns(scr["exclude_windows"])
    except ValueError as e:
        raise ConfigError(str(e)) from None
    rects_t = tuple((r.x, r.y, r.w, r.h) for r in rects)
    return {**scr, "exclude_rects": rects_t, "exclude_windows": tuple(scr["exclude_windows"])}


def _redact(r: dict) -> RedactCfg:
    """User patterns compile here, so a bad one stops the start naming it, not the first screen text."""
    from .text.redact import compile_patterns

    try:
        compile_patterns(r["patterns"])
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return RedactCfg(enabled=r["enabled"], patterns=tuple(r["patterns"]))


def _speech(sp: dict) -> SpeechCfg:
    """Whisper reads at most 30 s; probabilities are 0-1 with offset below onset (hysteresis)."""
    if sp["language"] and not re.fullmatch(r"[a-z]{2,3}", sp["language"]):
        want = '"" (detect) or a language code such as "en"'
        raise ConfigError(f"'speech.language' must be {want}, got {sp['language']!r}")
    for key in ("min_silence_s", "queue", "compression"):
        _positive(sp, key, "speech")
    for key in ("pad_s", "min_speech_s"):
        _positive(sp, key, "speech", allow_zero=True)
    if not 1 <= sp["max_s"] <= 30:
        raise ConfigError(f"'speech.max_s' must be from 1 to 30 (Whisper reads 30 s at most), got {sp['max_s']!r}")
    for key in ("onset", "offset", "no_speech"):
        if not 0 <= sp[key] <= 1:
            raise ConfigError(f"'speech.{key}' must be from 0 to 1, got {sp[key]!r}")
    if sp["offset"] >= sp["onset"]:
        raise ConfigError(f"'speech.offset' must be below speech.onset ({sp['onset']!r}), got {sp['offset']!r}")
    for key in ("logprob", "min_logprob"):
        if sp[key] > 0:
            raise ConfigError(f"'speech.{key}' must be <= 0 (a log-probability), got {sp[key]!r}")
    return SpeechCfg(**sp)


def _moments(mo: dict, names: list[str]) -> MomentsCfg:
    """Slices of 1 s to 1 h; weights >= 0 and at least one above 0 (else no moment could ever be made)."""
    if not 1 <= mo["interval_s"] <= 3600:
        raise ConfigError(f"'moments.interval_s' must be from 1 to 3600 seconds, got {mo['interval_s']!r}")
    _positive(mo, "grace_s", "moments", allow_zero=True)
    for kind, w in mo["weights"].items():
        if w < 0:
            raise ConfigError(f"'moments.weights.{kind}' must be >= 0 (0 leaves that sense out), got {w!r}")
    if mo["enabled"] and not any(w > 0 for w in mo["weights"].values()):
        raise ConfigError("'moments.weights': at least one weight must be > 0 (or set moments.enabled = false)")
    if mo["enabled"] and "all" in names:  # "<source>-<ns>" ids: a source "all" would share the moments' stream
        raise ConfigError("source name 'all' is the moments' stream; name the source otherwise")
    return MomentsCfg(mo["enabled"], mo["interval_s"], mo["grace_s"], dict(mo["weights"]))


def _metrics(m: dict) -> MetricsCfg:
    """Metrics listen on loopback unless allow_remote says otherwise (they name sources and show activity)."""
    if not 0 <= m["port"] <= 65535:
        raise ConfigError(f"'metrics.port' must be 0-65535 (0 = any free port), got {m['port']!r}")
    if m["host"] not in ("127.0.0.1", "localhost", "::1") and not m["allow_remote"]:
        raise ConfigError(
            f"'metrics.host' {m['host']!r} would listen off-host; use 127.0.0.1 or set metrics.allow_remote = true"
        )
    return MetricsCfg(**m)


def _web(w: dict) -> WebCfg:
    """The page and HTTP API listen on loopback; another address needs a token the user chose (and TLS in front)."""
    if not 0 <= w["port"] <= 65535:
        raise ConfigError(f"'web.port' must be 0-65535 (0 = any free port), got {w['port']!r}")
    if w["host"] not in ("127.0.0.1", "localhost", "::1") and len(w["token"]) < 16:
        raise ConfigError(
            f"'web.host' {w['host']!r} would serve your memory off this machine: set web.token to a secret of at "
            "least 16 characters, and put a TLS proxy in front (README, Web page), or use host = '127.0.0.1'"
        )
    return WebCfg(**w)


def _store(st: dict) -> None:
    from sinks.memory.buckets import parse_bucket

    try:
        parse_bucket(st["bucket"])
    except ValueError as e:
        raise ConfigError(f"'store.bucket': {e}") from None
    for key in ("retention_days", "retention_bytes"):
        _positive(st, key, "store", allow_zero=True)
    if st["url"] and not re.fullmatch(r"https?://[^/:\s]+(:\d+)?/?", st["url"]):
        raise ConfigError(f"'store.url' must be \"\" (embedded) or http://host:port, got {st['url']!r}")
    if st["agent"] and not re.fullmatch(NAME, st["agent"]):
        raise ConfigError(f"'store.agent' must be letters, digits, '_' or '-', got {st['agent']!r}")
    if st["url"] and not st["agent"]:  # a shared store: another machine's screen0 must not overwrite ours
        st["agent"] = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname()) or "agent"


def _labels(labels: list) -> tuple[str, ...]:
    """Zero-shot labels for CLIP-family image models: a non-empty list of non-empty strings."""
    if not labels or not all(isinstance(x, str) and x.strip() for x in labels):
        raise ConfigError("'models.labels' must be a non-empty list of non-empty strings")
    return tuple(labels)


def _home_dir(sub: str, xdg_var: str, xdg_default: str) -> Path:
    home = os.environ.get("SENSORIUM_HOME")
    if home:
        return Path(home) / sub
    base = os.environ.get(xdg_var) or str(Path.home() / xdg_default)
    return Path(base) / "sensorium"


def default_dirs() -> tuple[Path, Path, Path]:
    """(data, cache, runtime) dirs from SENSORIUM_HOME / SENSORIUM_CACHE / XDG variables."""
    data = _home_dir("data", "XDG_DATA_HOME", ".local/share")
    cache = Path(os.environ["SENSORIUM_CACHE"]) if os.environ.get("SENSORIUM_CACHE") else None
    cache = cache or _home_dir("cache", "XDG_CACHE_HOME", ".cache")
    if os.environ.get("SENSORIUM_HOME"):
        run = Path(os.environ["SENSORIUM_HOME"]) / "run"
    elif os.environ.get("XDG_RUNTIME_DIR"):
        run = Path(os.environ["XDG_RUNTIME_DIR"]) / "sensorium"
    else:
        run = Path(f"/tmp/sensorium-{os.getuid()}")
    return data, cache, run


def _read_toml(path: Path | Traversable) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} not found") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {str(path)!r} is not valid TOML: {e}") from None


def load(path: Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Defaults, then the user file, then `overrides` (same shape); validated."""
    raw = _read_toml(DEFAULT_PATH)
    if path is not None:
        raw = _merge(raw, _read_toml(Path(path)))
    if overrides:
        raw = _merge(raw, overrides)
    d, dev, scr, bus, st = raw["daemon"], raw["device"], raw["screen"], raw["bus"], raw["store"]
    _choice(d, "log_level", LOG_LEVELS, "daemon")
    _choice(dev, "name", DEVICES, "device")
    _choice(dev, "hint", HINTS, "device")
    _positive(dev, "cpu_threads", "device", allow_zero=True)
    _positive(scr, "fps", "screen")
    _positive(scr, "monitor", "screen", allow_zero=True)
    _positive(scr, "gate_threshold", "screen", allow_zero=True)
    _positive(scr, "force_keep_s", "screen")
    cam, mic = raw["camera"], raw["microphone"]
    for key in ("fps", "force_keep_s"):
        _positive(cam, key, "camera")
    for key in ("width", "height", "gate_threshold"):
        _positive(cam, key, "camera", allow_zero=True)
    if not cam["device"]:
        raise ConfigError("'camera.device' must not be empty (an index such as \"0\", a path or a URL)")
    _positive(mic, "hop_s", "microphone")
    _positive(mic, "queue", "microphone")
    if mic["silence_dbfs"] > 0:
        raise ConfigError(f"'microphone.silence_dbfs' must be <= 0 (dBFS), got {mic['silence_dbfs']!r}")
    names = [scr["name"], cam["name"], mic["name"]]
    for i, (section, name) in enumerate(zip(("screen", "camera", "microphone"), names, strict=True)):
        if not re.fullmatch(NAME, name):
            raise ConfigError(f"'{section}.name' must be letters, digits, '_' or '-' (a topic part), got {name!r}")
        if name in names[:i]:
            raise ConfigError(f"'{section}.name' {name!r} is used by another source")
    _positive(raw["ocr"], "min_interval_s", "ocr", allow_zero=True)
    if not 0 <= raw["ocr"]["min_score"] <= 1:
        raise ConfigError(f"'ocr.min_score' must be from 0 to 1, got {raw['ocr']['min_score']!r}")
    for key in ("send_hwm", "queue_size"):
        _positive(bus, key, "bus")
    for key in ("batch_size", "flush_s", "thumb_width", "queue_size", "retention_every_s"):
        _positive(st, key, "store")
    _store(st)
    for section in (scr, cam, mic):  # agents sharing one store (and bus) tell their sources apart by name
        section["name"] = f"{st['agent']}.{section['name']}" if st["agent"] else section["name"]
    _check_endpoint(bus["endpoint"], "bus.endpoint", bus["curve"])
    _check_endpoint(raw["query"]["endpoint"], "query.endpoint", raw["query"]["curve"])
    for key, v in raw["query"]["min_score"].items():
        if not 0 <= v < 1:
            raise ConfigError(f"'query.min_score.{key}' must be from 0 (off) to below 1, got {v!r}")
    data, cache, run = default_dirs()
    data = Path(d["data_dir"]).expanduser() if d["data_dir"] else data
    daemon = DaemonCfg(
        data_dir=data,
        cache_dir=Path(d["cache_dir"]).expanduser() if d["cache_dir"] else cache,
        runtime_dir=Path(d["runtime_dir"]).expanduser() if d["runtime_dir"] else run,
        log_level=d["log_level"],
        keys_dir=Path(d["keys_dir"]).expanduser() if d["keys_dir"] else data / "keys",
    )
    return Config(
        daemon=daemon,
        device=DeviceCfg(**dev),
        models=ModelsCfg(**{**raw["models"], "labels": _labels(raw["models"]["labels"])}),
        screen=ScreenCfg(**_screen_exclusions(scr)),
        redact=_redact(raw["redact"]),
        camera=CameraCfg(**cam),
        microphone=MicrophoneCfg(**mic),
        ocr=OcrCfg(**raw["ocr"]),
        speech=_speech(raw["speech"]),
        bus=BusCfg(**bus),
        store=StoreCfg(**st),
        query=QueryCfg(**raw["query"]),
        metrics=_metrics(raw["metrics"]),
        moments=_moments(raw["moments"], names),
        web=_web(raw["web"]),
    )


def bus_endpoint(cfg: Config) -> str:
    return cfg.bus.endpoint or f"ipc://{cfg.daemon.runtime_dir / 'bus.sock'}"


def query_endpoint(cfg: Config) -> str:
    return cfg.query.endpoint or f"ipc://{cfg.daemon.runtime_dir / 'query.sock'}"
