"""`sensorium models list | build | import | remove`: the model store from the command line.

Builds need the `build` extra (torch, transformers, nncf); list/import-of-IR/remove need only the daemon's
packages. A build prints one progress line per step with a bar for the model's steps so far.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from agent import config as config_mod


def _store(args: argparse.Namespace, step=None):
    from encoders.modelstore import ModelStore

    cfg = config_mod.load(Path(args.config) if args.config else None)
    return cfg, ModelStore(cfg.daemon.cache_dir, step)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def cmd_list(args: argparse.Namespace) -> int:
    import json

    from encoders.modelstore import NPU_READY, folder_size

    cfg, store = _store(args)
    active = {cfg.models.image, cfg.models.text, cfg.models.audio, cfg.models.ocr, cfg.models.speech}
    rows = [("model", "built", "space", "size", "devices", "licence", "source")]
    for name, spec in store.specs().items():
        built = store.is_built(name)
        space = size = "-"
        if built:
            folder = store.path(name)
            meta = json.loads((folder / "meta.json").read_text())
            space = meta.get("space") or ", ".join(sorted(set(meta.get("spaces", {}).values()))) or "(text lines)"
            size = _size(folder_size(folder))
        mark = "*" if name in active else ""
        rows.append((name + mark, "yes" if built else "no", space, size, NPU_READY, spec.licence, spec.source))
    for name in list(store.specs()):
        q = name + "-int8"
        if store.is_built(q):
            folder = store.path(q)
            rows.append((q, "yes", "(as " + name + ")", _size(folder_size(folder)), "CPU GPU NPU", "", "NNCF INT8"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    print(f"(* = active in config; store: {store.root / 'models'})")
    return 0


class Progress:
    """One line per build step: `[###-----] name: step (elapsed)`; steps are not known ahead, so the bar fills
    towards a typical count and stays full beyond it."""

    def __init__(self, name: str, expected: int = 5) -> None:
        self.name, self.expected, self.n, self.t0 = name, expected, 0, time.monotonic()

    def __call__(self, msg: str) -> None:
        self.n += 1
        filled = min(self.n, self.expected) * 20 // self.expected
        bar = "#" * filled + "-" * (20 - filled)
        print(f"[{bar}] {self.name}: {msg} ({time.monotonic() - self.t0:.1f}s)", file=sys.stderr, flush=True)


def cmd_build(args: argparse.Namespace) -> int:
    from encoders.build.clip import SourceError
    from encoders.modelstore import ModelNotBuilt

    progress = Progress("")
    cfg, store = _store(args, progress)
    names = args.names or [cfg.models.text, cfg.models.image, cfg.models.audio, cfg.models.ocr, cfg.models.speech]
    for name in names:
        target = name + "-int8" if args.int8 and not name.endswith("-int8") else name
        progress.name, progress.n, progress.t0 = target, 0, time.monotonic()
        try:
            was = store.is_built(target)
            t0 = time.monotonic()
            path = store.build(target, force=args.force)
        except (ModelNotBuilt, SourceError) as e:
            print(f"sensorium: {e}", file=sys.stderr)
            return 2
        state = "already built" if was and not args.force else f"built in {time.monotonic() - t0:.1f}s"
        print(f"{target}: {state} → {path}")
        if args.device:
            _warm(cfg, store, target, args.device)
    return 0


def _warm(cfg, store, name: str, device: str) -> None:
    """Compile the built IRs on `device` (falling back as the daemon would) and fill the compile cache."""
    from encoders.runtime import Runtime, RuntimeConfig

    dev = cfg.device
    runtime = Runtime(RuntimeConfig(device, dev.hint, dev.cpu_threads, dev.strict, cfg.daemon.cache_dir / "ov-cache"))
    folder = store.path(name)
    if store.spec(name).modality == "ocr":  # det + rec in the shapes the engine uses (a width bucket each)
        from encoders.ocr import OcrEngine

        t0 = time.monotonic()
        ocr = OcrEngine(runtime, folder)
        print(f"  det.xml, rec.xml: compiled on {ocr.device} in {time.monotonic() - t0:.2f}s ({ocr.det.reason})")
        return
    for xml in sorted(folder.glob("*.xml")):
        t0 = time.monotonic()
        static = runtime.needs_static_shapes()
        shapes = _static_shapes(runtime, xml) if static else None
        compiled = runtime.compile(xml, shapes)
        print(f"  {xml.name}: compiled on {compiled.device} in {time.monotonic() - t0:.2f}s ({compiled.reason})")


def _static_shapes(runtime, xml: Path) -> dict[str, list[int]] | None:
    """Fixed shapes for an IR with dynamic inputs, from its meta (NPU compiles static shapes only)."""
    import json

    meta = json.loads((xml.parent / "meta.json").read_text())
    model = runtime.core.read_model(xml)
    out = {}
    for port in model.inputs:
        if not port.get_partial_shape().is_dynamic:
            continue
        name = port.get_any_name()
        if name == "image":
            size = int(meta.get("input_size") or meta["image"]["input_size"])
            out[name] = [1, size, size, 3]
        else:
            out[name] = [1, int(meta.get("max_length") or meta["text"]["length"])]
    return out or None


def cmd_import(args: argparse.Namespace) -> int:
    from encoders.modelstore import ImportFailed

    progress = Progress("import")
    _, store = _store(args, progress)
    try:
        name = store.import_folder(Path(args.path), args.name, args.licence)
    except ImportFailed as e:
        print(f"sensorium: {e}", file=sys.stderr)
        return 2
    if store.is_built(name):
        print(f"{name}: imported (OpenVINO IR) → {store.path(name)}")
    else:
        print(f"{name}: imported; build it with: sensorium models build {name}")
        print(f'then use it with [models] image = "{name}" in your config')
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from encoders.modelstore import ModelNotBuilt

    _, store = _store(args)
    try:
        gone = store.remove(args.name)
    except ModelNotBuilt as e:
        print(f"sensorium: {e}", file=sys.stderr)
        return 2
    for path in gone:
        print(f"removed {path}")
    if not gone:
        print(f"{args.name}: nothing built")
    return 0


def add_parser(sub) -> None:
    """The `models` subcommand and its actions."""
    m = sub.add_parser("models", help="list, build, import or remove models")
    ms = m.add_subparsers(dest="action", required=True)
    ls = ms.add_parser("list", help="known models: built?, space, size, devices, licence, source")
    ls.set_defaults(fn=cmd_list)
    b = ms.add_parser("build", help="convert models to OpenVINO IR (needs the build extra)")
    b.add_argument("names", nargs="*", help="models to build (default: the configured ones)")
    b.add_argument("--force", action="store_true", help="rebuild even if built")
    b.add_argument("--int8", action="store_true", help="also quantize to INT8 with NNCF (builds NAME-int8)")
    b.add_argument("--device", choices=["AUTO", "NPU", "GPU", "CPU"], help="compile on this device to warm the cache")
    b.set_defaults(fn=cmd_build)
    im = ms.add_parser("import", help="add a local Hugging Face CLIP/SigLIP folder or an OpenVINO IR folder")
    im.add_argument("path")
    im.add_argument("--name", help="model name (default: the folder's name)")
    im.add_argument("--licence", default="", help="licence to show in `models list`")
    im.set_defaults(fn=cmd_import)
    rm = ms.add_parser("remove", help="delete a model's built files (and forget an import)")
    rm.add_argument("name")
    rm.set_defaults(fn=cmd_remove)
