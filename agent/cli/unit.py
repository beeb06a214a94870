"""A systemd user unit that runs this venv's `sensorium run`, so the daemon starts with the session.

The unit names the interpreter by absolute path (the venv's, not resolved through its symlink, so the venv's
packages are used) and the config by absolute path, because systemd starts it with neither our PATH nor our
working directory. Stopping is the daemon's own SIGTERM path (ordered drain, well under 2 s).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

UNIT_NAME = "sensorium.service"
ROOT = Path(__file__).resolve().parents[2]  # where `python -m agent` finds the package
PASSED_ENV = ("SENSORIUM_HOME", "SENSORIUM_CACHE")  # where this shell's `sensorium run` would keep its data
ENABLE_HINT = f"systemctl --user daemon-reload && systemctl --user enable --now {UNIT_NAME.removesuffix('.service')}"


def unit_path(env: Mapping[str, str] = os.environ) -> Path:
    """$XDG_CONFIG_HOME/systemd/user/sensorium.service (~/.config when unset)."""
    base = Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "systemd" / "user" / UNIT_NAME


def quote(arg: str, dollars: bool = True) -> str:
    """One ExecStart (or, with dollars=False, Environment) word: escape specifiers (%), $VARS, quote if needed."""
    arg = arg.replace("%", "%%")
    if dollars:  # ExecStart expands $VAR; Environment= does not
        arg = arg.replace("$", "$$")
    if arg and not any(c.isspace() or c in "\"'\\;" for c in arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unit_text(config: Path | None = None, python: str = sys.executable, env: Mapping[str, str] = os.environ) -> str:
    """The unit file's text; `config` is passed as `--config` (made absolute)."""
    argv = [str(Path(python).absolute()), "-m", "agent"]
    if config is not None:
        argv += ["--config", str(Path(config).absolute())]
    argv.append("run")
    environment = [f"Environment={quote(f'{k}={env[k]}', dollars=False)}" for k in PASSED_ENV if env.get(k)]
    lines = [
        "[Unit]",
        "Description=sensorium: live embeddings of the screen, webcam and microphone",
        f"Documentation=file://{ROOT / 'README.md'}",
        "# the screen needs the graphical session's DISPLAY; the unit lives and dies with the session",
        "After=graphical-session.target",
        "PartOf=graphical-session.target",
        "",
        "[Service]",
        "Type=simple",
        "WorkingDirectory=" + str(ROOT).replace("%", "%%"),  # the rest of the line; no quoting
        "ExecStart=" + " ".join(quote(a) for a in argv),
        "Environment=PYTHONUNBUFFERED=1",
        *environment,
        "Restart=on-failure",
        "RestartSec=5",
        "# exit 2 is bad config, no sensor or a daemon already running: restarting would not help",
        "RestartPreventExitStatus=2",
        "# SIGTERM to the daemon only: it stops its own helpers in order; stragglers are killed at the timeout",
        "KillSignal=SIGTERM",
        "KillMode=mixed",
        "TimeoutStopSec=5",
        "",
        "[Install]",
        "WantedBy=graphical-session.target",
    ]
    return "\n".join(lines) + "\n"


def install(text: str, path: Path | None = None) -> Path:
    """Write the unit (atomically: systemd may read it at any time) and return where."""
    path = path or unit_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path
