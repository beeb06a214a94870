"""Lifecycle: one daemon per data dir, a systemd user unit, and recovery from SIGKILL.

The daemon tests run the real CLI as its own process on Xvfb, kill it the way the OOM killer or a power
button would, and start it again on the same data dir.
"""

from __future__ import annotations

import configparser
import datetime as dt
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import skimage.data

from agent.cli import unit
from agent.lock import LOCK_NAME, AlreadyRunning, DataDirLock, read_pid
from tests.support.daemon import ONLY_SCREEN, start_daemon, status, stop_daemon
from tests.support.env import ROOT, sensorium

# every frame is kept (threshold 0), written in batches of 4 or every 5 s: a kill usually lands mid-batch
BUSY = (
    "[device]\nname = 'CPU'\n[screen]\nfps = 6.0\ngate_threshold = 0.0\n[store]\nbatch_size = 4\nflush_s = 5.0\n"
    + ONLY_SCREEN
)
HOLDER = (
    "import sys, time; from agent.lock import DataDirLock; "
    "DataDirLock(sys.argv[1]).acquire(); print('ok', flush=True); time.sleep(60)"
)


def test_lock_is_exclusive_and_records_the_pid(tmp_path: Path) -> None:
    with DataDirLock(tmp_path) as first:
        assert first.held and read_pid(tmp_path / LOCK_NAME) == os.getpid()
        with pytest.raises(AlreadyRunning) as e:
            DataDirLock(tmp_path).acquire()  # flock conflicts across open files, even in one process
        assert e.value.pid == os.getpid() and f"pid {os.getpid()}" in str(e.value)
    assert read_pid(tmp_path / LOCK_NAME) is None  # released: the pid is cleared, the file stays
    DataDirLock(tmp_path).acquire().release()


def test_lock_of_a_killed_process_does_not_block(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert holder.stdout.readline().strip() == "ok"
        with pytest.raises(AlreadyRunning) as e:
            DataDirLock(tmp_path).acquire()
        assert e.value.pid == holder.pid
    finally:
        holder.kill()
        holder.wait(5)
    assert read_pid(tmp_path / LOCK_NAME) == holder.pid  # a stale file with a dead pid...
    with DataDirLock(tmp_path):  # ...does not block
        assert read_pid(tmp_path / LOCK_NAME) == os.getpid()


def parse_unit(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)  # systemd repeats Environment=
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string(text)
    return parser


def test_unit_runs_this_venv_with_the_config(tmp_path: Path) -> None:
    cfg = tmp_path / "my config.toml"
    cfg.write_text("[screen]\nfps = 1.0\n")
    out = sensorium("--config", str(cfg), "service", "install", "--print")
    u = parse_unit(out.stdout)
    svc = u["Service"]
    argv = shlex.split(svc["ExecStart"])
    assert Path(argv[0]).is_absolute() and os.access(argv[0], os.X_OK)
    assert Path(argv[0]).parent == Path(sys.executable).parent  # this venv's interpreter, not a system one
    assert argv[1:] == ["-m", "agent", "--config", str(cfg), "run"]
    assert Path(svc["WorkingDirectory"], "agent", "__main__.py").is_file()
    assert svc["Restart"] == "on-failure" and float(svc["RestartSec"]) >= 1
    assert svc["KillSignal"] == "SIGTERM" and 2 < float(svc["TimeoutStopSec"]) <= 10
    assert svc["RestartPreventExitStatus"] == "2"  # bad config, no sensor, already running: restarting cannot help
    assert u["Install"]["WantedBy"] == "graphical-session.target"  # it needs the session's display
    assert u["Unit"]["PartOf"] == "graphical-session.target" == u["Unit"]["After"]
    # the unit's own command line works: it is the real CLI with the same config
    cwd = svc["WorkingDirectory"]
    check = subprocess.run([*argv[:-1], "service", "install", "--print"], capture_output=True, text=True, cwd=cwd)
    assert check.returncode == 0 and check.stdout == out.stdout


def test_unit_passes_sensorium_home_so_the_service_uses_the_same_data() -> None:
    text = unit.unit_text(env={"SENSORIUM_HOME": "/h/my home", "PATH": "/bin"})
    assert 'Environment="SENSORIUM_HOME=/h/my home"' in text.splitlines() and "PATH" not in text


def test_unit_quotes_what_systemd_would_expand() -> None:
    assert unit.quote("/a b/c") == '"/a b/c"'
    assert unit.quote("50%$HOME") == "50%%$$HOME"
    assert unit.quote('say "hi"') == '"say \\"hi\\""'


def test_service_install_writes_under_xdg_config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    out = sensorium("service", "install")
    path = tmp_path / "xdg" / "systemd" / "user" / "sensorium.service"
    assert path.is_file() and str(path) in out.stdout
    assert "systemctl --user daemon-reload && systemctl --user enable --now sensorium" in out.stdout
    assert shlex.split(parse_unit(path.read_text())["Service"]["ExecStart"])[-1] == "run"
    assert list(path.parent.iterdir()) == [path]  # no temp file left


def test_service_install_refuses_a_broken_config(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[screen]\nfps = 'fast'\n")
    out = sensorium("--config", str(bad), "service", "install", "--print", check=False)
    assert out.returncode == 2 and "screen.fps" in out.stderr and not out.stdout


def stored_rows_before(data_dir: Path, ts: float) -> dict[str, int]:
    """Rows per space captured before `ts`, read straight from the store (run after the daemon stopped)."""
    from sinks.memory import Memory

    mem = Memory(data_dir, 1, 0.1, False, 8, 1)
    return {space: mem.count(space, until=ts) for space in mem.spaces()}


def test_one_daemon_per_data_dir_and_recovery_from_sigkill(xvfb, home, tmp_path: Path) -> None:
    xvfb.show(skimage.data.chelsea())
    proc, cfg = start_daemon(tmp_path, BUSY)
    first_pid = proc.pid
    try:
        second = sensorium("--config", str(tmp_path / "cfg.toml"), "run", check=False, timeout=60)
        assert second.returncode == 2, second.stderr
        lines = [line for line in second.stderr.splitlines() if "already running" in line]
        assert len(lines) == 1 and f"pid {proc.pid}" in lines[0], second.stderr
        assert proc.poll() is None  # the first one is untouched

        deadline = time.monotonic() + 20
        while (st := status(cfg))["memory"]["stored"] < 6 * 4 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert st["memory"]["stored"] >= 6 * 4, st
        time.sleep(0.4)  # let a partial batch build up, so the kill lands mid-batch
        st = status(cfg)
        stored, kept = st["memory"]["stored"], st["sources"]["screen0"]["kept"]
        kill_ts = time.time()
        proc.kill()  # SIGKILL: no drain, no flush, no unlock
        t_kill = time.monotonic()
        proc.wait(5)
    except BaseException:
        proc.kill()
        raise
    killed_log = (tmp_path / "daemon.log").read_text()
    (tmp_path / "daemon-killed.log").write_text(killed_log)
    assert read_pid(cfg.daemon.data_dir / LOCK_NAME) == first_pid  # the stale file is still there

    proc, cfg = start_daemon(tmp_path, BUSY)
    until = dt.datetime.fromtimestamp(kill_ts).isoformat()
    answering_s = time.monotonic() - t_kill
    try:
        out = sensorium("--config", str(tmp_path / "cfg.toml"), "query", "a cat", "--until", until, "--json")
        query_s = time.monotonic() - t_kill
        hits = json.loads(out.stdout)
        assert hits and all(h["ts"] < kill_ts for h in hits), hits
        time.sleep(1.0)
        after = status(cfg)
        assert after["memory"]["failed"] == 0 and after["sources"]["screen0"]["kept"] > 0, after
        assert read_pid(cfg.daemon.data_dir / LOCK_NAME) == proc.pid
    finally:
        took = stop_daemon(proc, tmp_path)  # SIGTERM after a recovery is still a clean exit 0
    assert took < 2.0, took

    rows = stored_rows_before(cfg.daemon.data_dir, kill_ts)
    spaces = len(rows)
    assert spaces == 2, rows
    survived = sum(rows.values())
    # `stored` counts rows (one per space per frame); at most the batch being written may be lost
    assert survived >= stored - cfg.store.batch_size * spaces, (survived, stored, rows)
    print(
        f"\nkill -9 → restarted daemon answering: {answering_s:.2f}s, first query answered: {query_s:.2f}s; "
        f"rows stored before kill per status {stored}, found after restart {survived} ({rows}); "
        f"frames kept before kill {kept}, frames in the store {survived // spaces}; "
        f"SIGTERM stop {took:.2f}s"
    )
