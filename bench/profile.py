"""Profile the daemon under saturation with py-spy: where the CPU goes besides OpenVINO's own threads.

`python -m bench --only profile` starts a child process running the real daemon (bench.harness) fed by
a synthetic 1280×720 source offering more frames than the model takes, attaches `py-spy record` to it
twice (all busy samples; then only samples holding the GIL) and prints the top costs: by innermost
Python function (time in C extensions such as cv2 counts for the Python line that called them), by
thread role (inclusive), and the raw stack files' paths. OpenVINO's own inference threads are not
Python threads and do not appear: the profile shows the overhead around the model. Run it
alone: py-spy pauses the process to sample, which slows it a little.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from .common import BIN, ROOT, BenchError, Opts, Table, bench_home
from .harness import device_config, measure, running_daemon

# Leaves that are a thread waiting, which py-spy's idle detection does not always drop. start_async is
# mostly the dispatcher blocked on a busy device (the intended backpressure), not work.
WAITS = {"Condition.wait", "Event.wait", "Poller.poll", "_PollLikeSelector.select", "AsyncInferQueue.start_async"}
WAITS |= {"Connection._recv", "_worker"}  # the store's reply reader and idle pool workers, blocked in a read
ROLES = {  # a stack containing this function belongs to that thread
    "Dispatcher._run": "dispatcher (preprocess + start_async)",
    "ImageEncoder._done": "inference callback (outputs -> Embedding -> result stage)",
    "FanOut._run": "result stage (stale check + thumbnail + sinks.put)",
    "Memory._run": "memory writer (store calls)",
    "_Child._read": "store replies (from the Chroma process)",
    "Publisher._run": "publisher (JSON + ZMQ send)",
    "SyntheticSource._session": "synthetic source (gate + Frame)",
}


def child(seconds: float, fps: float, device: str) -> int:
    """Run the saturated daemon for `seconds`; print 'ready' once warm so the parent can attach."""
    from .pipeline import image_sources

    with bench_home() as tmp, running_daemon(tmp, device_config(device), image_sources(fps)) as d:
        time.sleep(2)
        print("ready", flush=True)
        r = measure(d, "image", 0, seconds)
        print(f"frames/s {r.frames_per_s:.1f} dropped {r.dropped} cpu {r.cpu_pct:.0f}%", flush=True)
    return 0


def frame_key(frame: str) -> str:
    """'fn (/abs/path/to/file.py:123)' → 'fn (file.py:123 relative to the repo or site-packages)'."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")")
    for marker in ("site-packages/", str(ROOT) + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})" if path else name


def parse(raw: Path) -> tuple[Counter, Counter, int]:
    """(self samples per leaf function, samples per thread role, total samples) from py-spy's raw format."""
    leaf: Counter = Counter()
    roles: Counter = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [frame_key(f) for f in stack.split(";")]
        names = {f.split(" (", 1)[0] for f in frames}
        if frames[-1].split(" (", 1)[0] in WAITS:
            continue
        total += n
        leaf[frames[-1]] += n
        role = next((r for key, r in ROLES.items() if key in names), "other")
        roles[role] += n
    return leaf, roles, total


def record(pid: int, seconds: float, out: Path, extra: list[str]) -> None:
    spy = BIN / "py-spy"
    if not spy.exists():
        raise BenchError(f"{spy} not found (pip install py-spy)")
    cmd = [str(spy), "record", "--pid", str(pid), "-d", str(max(1, round(seconds))), "-r", "100", "-f", "raw"]
    res = subprocess.run([*cmd, "-o", str(out), *extra], capture_output=True, text=True, timeout=seconds + 60)
    if res.returncode != 0 or not out.exists():
        raise BenchError(f"py-spy failed ({res.returncode}): {res.stderr.strip()[-400:]}")


def tables(kind: str, raw: Path, top: int) -> list[Table]:
    leaf, roles, total = parse(raw)
    a = Table(f"Profile ({kind}): innermost Python line, % of {total} samples", ["function (file:line)", "%"])
    for fn, n in leaf.most_common(top):
        a.add(fn, round(100 * n / total, 1))
    b = Table(f"Profile ({kind}): by thread role, % of samples", ["role", "%"])
    for role, n in roles.most_common():
        b.add(role, round(100 * n / total, 1))
    b.notes.append(f"raw stacks: {raw}")
    return [a, b]


def run(opts: Opts) -> list[Table]:
    from .pipeline import OFFER, limit

    secs = opts.secs(20, 5)
    with bench_home() as tmp:
        fps = OFFER * limit(tmp, device_config(opts.device), "image", opts).per_s
    out_dir = Path(tempfile.mkdtemp(prefix="sensorium-profile-"))
    args = ["--child", str(2 * secs + 10), "--fps", f"{fps:.1f}", "--device", opts.device]
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.profile", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise BenchError("profiled daemon did not start")
        busy = out_dir / "busy.txt"
        record(proc.pid, secs, busy, [])
        gil = out_dir / "gil.txt"
        record(proc.pid, secs, gil, ["--gil"])
        result = proc.stdout.readline().strip()
    finally:
        proc.kill()
        proc.wait(10)
    out = tables("busy Python threads", busy, 20) + tables("holding the GIL", gil, 15)
    out[0].notes.append(f"saturated run (source offers {fps:.0f}/s): {result}; waiting leaves excluded")
    return out


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--child", type=float, required=True, help="run the saturated daemon this long (internal)")
    p.add_argument("--fps", type=float, default=100.0, help="rate the synthetic source offers")
    p.add_argument("--device", default="CPU")
    args = p.parse_args()
    return child(args.child, args.fps, args.device)


if __name__ == "__main__":
    sys.exit(main())
