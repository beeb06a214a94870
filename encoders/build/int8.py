"""INT8 image models: NNCF post-training quantization of a built FP32 image IR (`NAME-int8`).

Calibration images ship in scikit-image's wheel (no download): the greyscale and scientific photos,
the colour wheel, the logo, one stereo view and half of the LFW face crops, each also mirrored and
cropped. The everyday photos (astronaut, cat, chelsea, coffee, rocket, the other stereo view) and the
other half of the faces are held out: `held_out()` is what `encoders.build.measure int8` compares FP
and INT8 on (top-1 agreement, embedding cosine). INT8 keeps the FP model's spaces: its vectors are
approximations of the same embedding, so memories stay searchable across the switch.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

CALIBRATION = (
    "brick", "camera", "clock", "coins", "colorwheel", "grass", "gravel", "hubble_deep_field",
    "immunohistochemistry", "logo", "moon", "page", "retina", "text", "cell", "checkerboard",
)  # fmt: skip
HELD_OUT = ("astronaut", "cat", "chelsea", "coffee", "rocket")
FACES = 200  # skimage.data.lfw_subset(): even indices calibrate, odd ones are held out


def _rgb(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype != np.uint8:
        img = (np.clip(img, 0, 1) * 255).astype(np.uint8) if img.dtype.kind == "f" else img.astype(np.uint8) * 255
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img[..., :3])


def _views(img: np.ndarray) -> list[np.ndarray]:
    """The image, mirrored, and a centre crop: more calibration variety from few shipped photos."""
    h, w = img.shape[:2]
    crop = img[h // 6 : h - h // 6, w // 6 : w - w // 6]
    return [img, img[:, ::-1].copy(), np.ascontiguousarray(crop)]


def images(names: tuple[str, ...], faces: slice, stereo: int) -> list[np.ndarray]:
    import skimage.data as data

    out = [v for n in names for v in _views(_rgb(getattr(data, n)()))]
    out += _views(_rgb(data.stereo_motorcycle()[stereo]))
    out += [_rgb(f) for f in data.lfw_subset()[faces]]
    return out


def calibration() -> list[np.ndarray]:
    return images(CALIBRATION, slice(0, FACES, 2), 0)


def held_out() -> list[np.ndarray]:
    return images(HELD_OUT, slice(1, FACES, 2), 1)


def image_xml(meta: dict) -> tuple[str, str, int]:
    """(IR file, input name, input size) of a built image model's meta."""
    if meta.get("kind") == "clip":
        return meta["image"]["xml"], meta["image"]["input"], int(meta["image"]["input_size"])
    if "input_size" not in meta:
        raise ValueError(f"{meta.get('name')} is not an image model: only image models are quantized")
    return "model.xml", meta["input"], int(meta["input_size"])


def quantize(model: Any, size: int, step: Callable[[str], None]) -> Any:
    import cv2
    import nncf

    data = [cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)[None] for img in calibration()]
    step(f"quantizing with NNCF on {len(data)} calibration images")
    return nncf.quantize(model, nncf.Dataset(data), subset_size=len(data), fast_bias_correction=True)


def build(out_dir: Path, store: Any, base: str, step: Callable[[str], None] = print) -> None:
    """Copy the FP model's files and replace its image IR by the INT8 one."""
    import openvino as ov

    src = store.require(base)
    meta = json.loads((src / "meta.json").read_text())
    xml, _, size = image_xml(meta)
    for path in src.iterdir():
        if path.name not in (xml, xml[:-4] + ".bin", "meta.json") and path.is_file():
            shutil.copy2(path, out_dir / path.name)
    model = ov.Core().read_model(src / xml)
    ov.save_model(quantize(model, size, step), out_dir / xml, compress_to_fp16=False)
    meta.update({"precision": "int8", "int8_of": base})
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
