"""The wheel is complete: installed (not editable) into a fresh venv and run from an unrelated directory,
`sensorium` starts and a config loads its defaults from the installed package data.

Installing every dependency from PyPI would take many minutes, so the fresh venv sees this venv's
third-party packages through a .pth line. Such a line only appends the directory to sys.path: the .pth
files inside it, among them the editable install's finder, are not run, and the source tree is on no path.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

from tests.support.env import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# What the build reads; the rest of the checkout (venv, caches, tests, .git) stays behind.
BUILD_INPUTS = {"pyproject.toml", PYPROJECT["project"]["readme"]} | {
    name.split(".")[0] for name in PYPROJECT["tool"]["setuptools"]["packages"]
}
PROBE = """
import json, agent, configs
from agent import config
cfg = config.load()
print(json.dumps({"agent": agent.__file__, "configs": configs.__file__, "default": str(config.DEFAULT_PATH),
                  "fps": cfg.screen.fps, "image": cfg.models.image, "port": cfg.metrics.port}))
"""


def run(cmd: list[str | Path], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    out = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=120, cwd=cwd, env=env)
    assert out.returncode == 0, f"{cmd} exited {out.returncode}:\n{out.stdout}\n{out.stderr}"
    return out


def build_wheel(tmp: Path) -> Path:
    """Build from a copy: setuptools writes build/ and *.egg-info next to the sources."""
    src = tmp / "src"
    src.mkdir()
    for name in BUILD_INPUTS:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", tmp / "dist", src], cwd=tmp)
    (wheel,) = (tmp / "dist").glob("sensorium-*.whl")
    return wheel


def fresh_venv(tmp: Path, wheel: Path) -> Path:
    """A venv holding only the wheel, then given read access to this venv's third-party packages."""
    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp)
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "--python", python]
    run([*pip, "install", "--no-deps", "--no-index", wheel], cwd=tmp)  # before the .pth: pip sees an empty venv
    site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd=tmp).stdout.strip())
    (site / "shared-third-party.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return venv


def test_installed_wheel_runs_and_finds_its_defaults_from_another_directory(tmp_path: Path) -> None:
    venv = fresh_venv(tmp_path, build_wheel(tmp_path))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["SENSORIUM_HOME"] = str(tmp_path / "home")

    usage = run([venv / "bin" / "sensorium", "--help"], cwd=elsewhere, env=env).stdout
    assert "usage: sensorium" in usage and "run" in usage, usage

    loaded = json.loads(run([venv / "bin" / "python", "-c", PROBE], cwd=elsewhere, env=env).stdout)
    for key in ("agent", "configs", "default"):  # the installed copy, not the checkout
        assert Path(loaded[key]).is_relative_to(venv), loaded
    assert loaded["default"].endswith("configs/default.toml"), loaded
    defaults = tomllib.loads((ROOT / "configs" / "default.toml").read_text())  # the checkout's, as shipped
    assert (loaded["fps"], loaded["image"], loaded["port"]) == (
        defaults["screen"]["fps"],
        defaults["models"]["image"],
        defaults["metrics"]["port"],
    )

    # `sensorium bench` starts `python -m bench` as a child: the benchmarks are in the wheel too.
    bench = subprocess.run(
        [venv / "bin" / "sensorium", "bench", "--only", "nope"], capture_output=True, text=True, cwd=elsewhere, env=env
    )
    assert bench.returncode == 2 and "unknown benchmark(s): nope" in bench.stderr, bench.stderr
