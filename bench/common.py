"""What every benchmark shares: options, tables, built models, benchmark_app, /proc sampling, daemon runs.

Benchmarks measure; they never assert. Each returns `Table`s whose rows the runner prints and whose
`summary` entries (a name and a number) end up in the final ratio table.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.status import Status

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MODELS = ("minilm-l6", "effnet-lite0", "silero-vad", "ppocr-v6")


class BenchError(RuntimeError):
    """A benchmark could not run (missing tool, model or component); the runner reports it and goes on."""


@dataclass(frozen=True)
class Opts:
    quick: bool = False
    scale: float = 1.0  # multiplies every measuring window (tests use < 1)
    device: str = "CPU"

    def secs(self, full: float, quick: float) -> float:
        return (quick if self.quick else full) * self.scale


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    summary: dict[str, float | None] = field(default_factory=dict)  # headline numbers for the runner
    text: str = ""  # pre-formatted output (another program's), printed as is under the title

    def add(self, *row: Any) -> None:
        self.rows.append(list(row))

    def render(self) -> str:
        if self.text or not self.columns:
            return "\n".join([f"## {self.title}", self.text, *(f"  note: {n}" for n in self.notes)])
        cells = [[fmt(c) for c in r] for r in self.rows]
        widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(self.columns)]
        line = "  ".join(h.ljust(w) for h, w in zip(self.columns, widths, strict=True))
        out = [f"## {self.title}", line, "  ".join("-" * w for w in widths)]
        for r in cells:  # first column left-aligned, numbers right-aligned
            out.append(
                "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
            )
        out += [f"  note: {n}" for n in self.notes]
        return "\n".join(out)


def fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


def ratio(a: float | None, b: float | None) -> float | None:
    return None if not a or not b else round(a / b, 3)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, round(q / 100 * (len(s) - 1)))]


# --- models ------------------------------------------------------------------------------------------------


def model_cache(names: tuple[str, ...] = MODELS) -> Path:
    """Cache dir holding the built models `names` (the defaults): $SENSORIUM_CACHE, the tests' cache, or the user
    cache."""
    from agent.config import default_dirs
    from encoders.modelstore import ModelStore

    candidates = [Path(os.environ["SENSORIUM_CACHE"])] if os.environ.get("SENSORIUM_CACHE") else []
    candidates += [ROOT / ".cache" / "test-models", default_dirs()[1]]
    for root in candidates:
        if all(ModelStore(root).is_built(m) for m in names):
            return root
    where = ", ".join(map(str, candidates))
    raise BenchError(f"{', '.join(names)} not built in any of {where}: run `sensorium models build`")


def model_dir(name: str) -> Path:
    from encoders.modelstore import ModelStore

    return ModelStore(model_cache()).require(name)


# --- benchmark_app -----------------------------------------------------------------------------------------


def compiled_props(compiled: Any) -> dict[str, str]:
    """The properties a compiled model actually runs with, to hand the same ones to benchmark_app."""
    out = {}
    for key in ("PERFORMANCE_HINT", "INFERENCE_NUM_THREADS", "NUM_STREAMS"):
        try:
            out[key] = str(compiled.get_property(key))
        except RuntimeError:  # not every device exposes every key
            pass
    if out.get("PERFORMANCE_HINT", "").startswith("PerformanceMode."):
        out["PERFORMANCE_HINT"] = out["PERFORMANCE_HINT"].split(".", 1)[1]
    return out


THROUGHPUT = re.compile(r"Throughput:\s+([\d.]+)\s*FPS")


def benchmark_app(
    xml: Path,
    device: str,
    props: dict[str, str],
    nireq: int,
    seconds: float,
    api: str = "async",
    data_shape: str | None = None,
    shape: str | None = None,
) -> float:
    """benchmark_app's throughput (inferences/s) for `xml` on `device` with exactly `props` and `nireq`."""
    exe = BIN / "benchmark_app"
    if not exe.exists():
        raise BenchError(f"{exe} not found (it ships with the openvino wheel)")
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "config.json"
        cfg.write_text(json.dumps({device: props}))
        cmd = [str(exe), "-m", str(xml), "-d", device, "-load_config", str(cfg), "-api", api]
        cmd += ["-t", str(max(1, round(seconds)))]
        if api == "async":
            cmd += ["-nireq", str(nireq)]
        if data_shape:
            cmd += ["-data_shape", data_shape]
        if shape:
            cmd += ["-shape", shape]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)
    m = THROUGHPUT.search(out.stdout)
    if not m:
        tail = "\n".join((out.stdout + out.stderr).strip().splitlines()[-5:])
        raise BenchError(f"benchmark_app printed no throughput (exit {out.returncode}):\n{tail}")
    return float(m.group(1))


# --- /proc -------------------------------------------------------------------------------------------------

TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants (Linux /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += parents.get(p, [])
    return out


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of these processes (seconds)."""
    total = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICK


def status_kb(pid: int, key: str) -> int:
    """A `VmRSS:`/`VmHWM:` style line of /proc/<pid>/status in kB (0 if gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def own_mb(key: str = "VmRSS") -> float:
    """This process's VmRSS (or VmHWM, the peak) in MB."""
    return status_kb(os.getpid(), key) / 1024


def reset_peak() -> bool:
    """Reset this process's peak RSS (VmHWM) to its current RSS (Linux >= 4.0); False where it cannot."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class CpuMeter:
    """CPU % of one core used by a process tree between `start()` and `stop()` (children re-listed each read)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.seen: dict[int, float] = {}

    def _read(self) -> None:
        for p in tree(self.pid):
            self.seen[p] = max(self.seen.get(p, 0.0), cpu_seconds([p]))

    def measure(self, seconds: float, every: float = 0.5) -> float:
        self._read()
        base = dict(self.seen)
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            time.sleep(min(every, max(0.0, seconds - (time.monotonic() - t0))))
            self._read()
        dt = time.monotonic() - t0
        used = sum(v - base.get(p, 0.0) for p, v in self.seen.items())
        return 100.0 * used / dt


# --- environment and daemon processes ----------------------------------------------------------------------


@contextmanager
def bench_home(env_extra: dict[str, str] | None = None):
    """A private SENSORIUM_HOME with the built models as cache; env vars restored afterwards."""
    with tempfile.TemporaryDirectory(prefix="sensorium-bench-") as tmp:
        env = {"SENSORIUM_HOME": str(Path(tmp) / "home"), "SENSORIUM_CACHE": str(model_cache()), **(env_extra or {})}
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            yield Path(tmp)
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def write_config(tmp: Path, text: str, own_dirs: bool = False) -> Path:
    """Write `text` as a config; `own_dirs` gives it a fresh data and runtime dir (one daemon per data dir)."""
    n = time.monotonic_ns()
    if own_dirs:
        run = Path(tempfile.mkdtemp(prefix="run", dir=tmp))
        text = f'[daemon]\ndata_dir = "{tmp / f"data{n}"}"\nruntime_dir = "{run}"\n' + text
    if "[metrics]" not in text:  # any free port: never collide with a user's daemon on 9464
        text += "\n[metrics]\nport = 0\n"
    if "[web]" not in text:
        text += "\n[web]\nport = 0\n"
    path = tmp / f"cfg-{n}.toml"
    path.write_text(text)
    return path


class DaemonProc:
    """`sensorium run` as its own process (as users run it), ready once it answers a ping."""

    def __init__(self, tmp: Path, config_text: str) -> None:
        from agent import config

        self.cfg_path = write_config(tmp, config_text, own_dirs=True)
        self.cfg = config.load(self.cfg_path)
        self.log = tmp / f"daemon-{time.monotonic_ns()}.log"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> DaemonProc:
        from agent import config
        from sinks.client import QueryError, request

        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "agent", "--config", str(self.cfg_path), "run"], stdout=log, stderr=log, cwd=ROOT
            )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"daemon exited {self.proc.returncode}: {self.log.read_text()[-800:]}")
            try:
                request(config.query_endpoint(self.cfg), {"op": "ping"}, timeout=0.5)
                return self
            except QueryError:
                time.sleep(0.2)
        self.__exit__()
        raise BenchError("daemon did not answer within 90 s")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def status(self) -> Status:
        from agent import config
        from agent.status import Status
        from sinks.client import request

        return Status.from_dict(request(config.query_endpoint(self.cfg), {"op": "status"})["status"])

    def __exit__(self, *exc: object) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def xvfb(tmp: Path):
    """An Xvfb screen (demo.standins.Display) with DISPLAY pointing at it for this process and its children."""
    from demo.standins import Display

    display = Display(tmp)
    return standin(display, lambda: {"DISPLAY": display.name}, display.close)


def pulse(tmp: Path):
    """A private PulseAudio with a silent null sink as the default input; env set for us and children."""
    from demo.standins import Pulse

    server = Pulse(tmp)
    return standin(server, server.env, server.stop)


@contextmanager
def standin(server: Any, env: Callable[[], dict[str, str]], stop: Callable[[], None]):
    """Start a test stand-in (a missing tool is a BenchError), set its environment, stop it afterwards."""
    from demo.standins import MissingTool

    try:
        server.start()
    except (MissingTool, RuntimeError) as e:
        raise BenchError(str(e)) from None
    try:
        with environ(env()):
            yield server
    finally:
        stop()


@contextmanager
def environ(env: dict[str, str]):
    """These environment variables set for this process and its children, restored afterwards."""
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def photos(n: int, w: int = 1280, h: int = 720, seed: int = 0) -> list:
    """`n` distinct RGB uint8 images (smooth random blobs: they compress and gate like real content)."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        small = rng.integers(0, 256, (h // 40, w // 40, 3), dtype=np.uint8)
        out.append(np.ascontiguousarray(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)))
    return out


def guarded(title: str, fn: Any, *args: Any) -> Table:
    """`fn(*args)` (a Table), or a table that says why it could not be measured, so one part never hides another."""
    try:
        return fn(*args)
    except Exception as e:
        import traceback

        t = Table(title, ["status"])
        t.add("not measured")
        t.notes.append(f"{type(e).__name__}: {e}")
        if not isinstance(e, BenchError):
            t.notes += traceback.format_exc().strip().splitlines()[-6:]
        return t
