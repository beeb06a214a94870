"""The daemon's run time never imports torch or the build recipes (`encoders.build`), even when it looks up
its models in the store: checked in a fresh interpreter, so other tests' imports cannot hide one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.env import ROOT

PROBE = """
import sys
from pathlib import Path
import agent.daemon, encoders.base  # every run-time module of encoders comes in through these
from encoders.modelstore import ModelStore
store = ModelStore(Path(sys.argv[1]))
for name in ("effnet-lite0", "silero-vad", "minilm-l6"):
    store.require(name), store.meta(name)
store.is_built("clip-vit-b32")
print(" ".join(sorted(m for m in sys.modules if m == "torch" or m.startswith(("torch.", "encoders.build")))))
"""


def test_run_time_imports_neither_torch_nor_build_recipes(model_cache: Path):
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(model_cache)], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == [], out.stdout
