"""Where the checkout is, whether this is CI, system tools the tests need, and the CLI as a user runs it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(tool: str) -> str:
    """Path of a system tool; a missing one skips locally but fails under CI (make test installs them)."""
    path = shutil.which(tool)
    if path is None:
        msg = f"{tool} not installed (make test installs it when run as root)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return path


def sensorium(*args: str, timeout: float = 60, check: bool = True, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Run the CLI in a separate process, as a user would (from `cwd`: relative paths are the user's)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    out = subprocess.run(
        [sys.executable, "-m", "agent", *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env
    )
    if check and out.returncode != 0:
        raise AssertionError(f"sensorium {' '.join(args)} exited {out.returncode}:\n{out.stderr}")
    return out
