"""Build the screen-text OCR models: PP-OCRv6 small detection + recognition (Apache-2.0) as OpenVINO IR.

The ONNX files ship inside the `rapidocr` wheel, installed without its dependencies (`--no-deps`): it is a
source of files only. They are found through the installed distribution's file list, never by importing
rapidocr, whose import pulls in its hub/download logic and its dependencies (pyclipper, shapely, omegaconf,
requests). The IRs keep the ONNX's dynamic dims; the engine fixes shapes when it compiles (static for an
NPU). The recogniser's character list comes from the ONNX metadata (`character`, one per line), which
OpenVINO's reader exposes as rt_info["framework"]["character"]; it goes into meta.json.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from encoders.modelstore import ModelStore

NAME = "ppocr-v6"
PACKAGE = "rapidocr"
FILES = {"det": "rapidocr/models/PP-OCRv6_det_small.onnx", "rec": "rapidocr/models/PP-OCRv6_rec_small.onnx"}
LICENCES = ("LICENSE", "MODEL_LICENSES.md")  # in the wheel's dist-info (licenses/)
REC_HEIGHT = 48  # the recogniser's fixed input height
# rapidocr's defaults for these models (its config.yaml): BGR input, (x/255 - 0.5) / 0.5 for both models
REC = {"color": "BGR", "mean": 0.5, "std": 0.5}
DET = {**REC, "thresh": 0.3, "box_thresh": 0.5, "unclip_ratio": 1.6}


def _dist() -> metadata.Distribution:
    try:
        return metadata.distribution(PACKAGE)
    except metadata.PackageNotFoundError:
        raise RuntimeError(
            f"building {NAME} needs the `{PACKAGE}` wheel for its ONNX files: pip install --no-deps {PACKAGE}==3.10.0"
        ) from None


def _file(dist: metadata.Distribution, suffix: str) -> Path:
    """An installed file of the distribution whose path ends with `suffix` (no import of the package)."""
    for f in dist.files or ():
        if str(f).replace("\\", "/").endswith(suffix):
            path = Path(str(dist.locate_file(f)))
            if path.is_file():
                return path
    raise RuntimeError(f"{suffix} not found in the installed {PACKAGE} {dist.version}")


def source_files() -> dict[str, Path]:
    """The det/rec ONNX files of the installed rapidocr wheel."""
    dist = _dist()
    return {role: _file(dist, rel) for role, rel in FILES.items()}


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def charset(model) -> list[str]:
    """The recogniser's characters, in class order 1..N (0 is the CTC blank; N+1, a space, is added by the engine)."""
    try:
        text = model.get_rt_info(["framework", "character"]).astype(str)
    except (RuntimeError, KeyError, IndexError):
        raise RuntimeError("the recognition ONNX has no `character` metadata") from None
    return text.splitlines()


def best_class(rec):
    """The recogniser with outputs `index` (int32) and `prob` [B, T]: the best class per step and its probability.

    Greedy CTC needs only these; the full softmax [B, T, 18710] would be ~12 MB per 1280-wide line to copy
    out and argmax in numpy.
    """
    import openvino as ov
    import openvino.opset15 as ops

    probs = rec.get_results()[0].input_value(0)
    k, axis = ops.constant(np.array(1, np.int64)), ops.constant(np.array([2], np.int64))
    top = ops.topk(probs, k, 2, "max", "none", "i32")
    outs = [ops.result(ops.squeeze(top.output(i), axis)) for i in (1, 0)]
    for res, name in zip(outs, ("index", "prob"), strict=True):
        res.output(0).set_names({name})
        res.input_value(0).set_names({name})
    return ov.Model(outs, rec.get_parameters(), "ppocr_v6_rec")


def build(out_dir: Path, store: ModelStore, step: Callable[[str], None] | None = None) -> None:
    """Write det.xml/.bin, rec.xml/.bin, meta.json and the licence files into out_dir."""
    import openvino as ov

    step = step or (lambda msg: None)
    dist = _dist()
    src = source_files()
    core = ov.Core()
    models = {}
    for role, path in src.items():
        step(f"converting {path.name}")
        models[role] = core.read_model(str(path))
    chars = charset(models["rec"])
    classes = models["rec"].output(0).get_partial_shape()[2]
    if classes.is_static and classes.get_length() != len(chars) + 2:
        raise RuntimeError(f"recogniser has {classes} classes but its charset {len(chars)} (+ blank + space)")
    ov.save_model(models["det"], out_dir / "det.xml", compress_to_fp16=False)
    ov.save_model(best_class(models["rec"]), out_dir / "rec.xml", compress_to_fp16=False)
    step("copying licences")
    for name in LICENCES:
        shutil.copyfile(_file(dist, name), out_dir / name)
    meta = {
        "name": NAME,
        "kind": "ocr",
        "det": {"xml": "det.xml", "input": "x", **DET},
        "rec": {"xml": "rec.xml", "input": "x", "outputs": ["index", "prob"], "height": REC_HEIGHT, **REC},
        "charset": chars,  # class i+1; class 0 is the CTC blank, class len+1 a space (PaddleOCR's rec)
        "source": {
            "package": f"{PACKAGE}=={dist.version}",
            "files": {Path(FILES[r]).name: sha256(p) for r, p in src.items()},
        },
        "licence": "Apache-2.0",
        "licence_files": list(LICENCES),
    }
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n")
