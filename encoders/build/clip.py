"""Build a CLIP-family checkpoint (CLIP, SigLIP) as two OpenVINO IRs, image and text towers, static model shapes.

The source is a Hugging Face hub id (on a machine that can reach the hub) or a local folder with
config.json, the weights and the tokenizer files. Each tower ends in its projection and an L2 norm, so
both give unit vectors in one space (`clip-<name>/<dim>`). The image IR takes uint8 RGB NHWC frames of
any size: resize (Pillow-style bicubic, as the checkpoint's processor), mean/scale and layout are folded
in with PrePostProcessor. The daemon reshapes it to a static 1×S×S×3 and resizes with cv2 (meta
`resize: cv2`): that measured faster on the CPU (README, Models) and is what the NPU needs anyway.
The text IR takes input_ids/attention_mask [1, L], L from the tokenizer/config. The tokenizer is saved
as tokenizer.json so the daemon needs only `tokenizers`. torch and transformers are imported lazily.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

FAMILIES = ("clip", "siglip")
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
# Frames are squashed to S×S, not centre-cropped as the processors do: a screen's edges matter.
RESIZE = "RESIZE_BICUBIC_PILLOW"


class SourceError(RuntimeError):
    """The checkpoint cannot be loaded: the message says what was tried and what to do instead."""


def is_hf_folder(path: Path) -> bool:
    """A local Hugging Face CLIP/SigLIP-style checkpoint folder."""
    cfg = Path(path) / "config.json"
    if not cfg.is_file():
        return False
    try:
        return json.loads(cfg.read_text()).get("model_type") in FAMILIES
    except (ValueError, OSError):
        return False


def load(source: str) -> tuple[Any, Any, str]:
    """(model, tokenizer, family) from a local folder or a hub id; SourceError with a way out otherwise."""
    from huggingface_hub.utils import logging as hub_logging
    from transformers import AutoModel, AutoTokenizer

    hub_logging.set_verbosity_error()  # an offline machine gets our one message, not the hub's retries
    local = Path(source).expanduser()
    if local.is_dir():
        if not is_hf_folder(local):
            raise SourceError(f"{local} has no config.json with model_type in {FAMILIES}")
        where = str(local)
    else:
        where = source
    try:
        model = AutoModel.from_pretrained(where).eval()
        tokenizer = AutoTokenizer.from_pretrained(where)
    except (OSError, ValueError) as e:
        if local.is_dir():
            raise SourceError(f"cannot load the checkpoint in {local}: {first_line(e)}") from None
        offline = os.environ.get("HF_HUB_OFFLINE") in ("1", "true", "TRUE", "yes")
        raise SourceError(
            f"could not get {source!r} from the Hugging Face hub"
            f"{' (HF_HUB_OFFLINE is set)' if offline else ''}: {first_line(e)}\n"
            f"On a machine that can reach the hub, download the folder, e.g.\n"
            f"  hf download {source} --local-dir ./{source.split('/')[-1]}\n"
            f"then copy it here and run: sensorium models import ./{source.split('/')[-1]}"
        ) from None
    family = model.config.model_type
    if family not in FAMILIES:
        raise SourceError(f"{source}: model_type {family!r} is not one of {FAMILIES}")
    return model, tokenizer, family


def first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:300]


def image_settings(model: Any, source: str, family: str) -> tuple[int, tuple[float, ...], tuple[float, ...]]:
    """(size, mean, std): the checkpoint's preprocessor_config.json when present, else the family's."""
    size = int(model.config.vision_config.image_size)
    mean, std = (OPENAI_MEAN, OPENAI_STD) if family == "clip" else ((0.5,) * 3, (0.5,) * 3)
    pre = Path(source).expanduser() / "preprocessor_config.json"
    if pre.is_file():
        cfg = json.loads(pre.read_text())
        mean, std = tuple(cfg.get("image_mean", mean)), tuple(cfg.get("image_std", std))
    return size, mean, std


def text_length(model: Any, tokenizer: Any) -> int:
    limit = int(model.config.text_config.max_position_embeddings)
    tok = int(getattr(tokenizer, "model_max_length", limit) or limit)
    return min(limit, tok) if tok < 1_000_000 else limit


def towers(model: Any, family: str) -> tuple[Any, Any]:
    """torch modules: pixels f32 [1,3,S,S] -> unit vector; (input_ids, attention_mask) -> unit vector."""
    import torch
    from torch.nn import functional as F

    class Image(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = model

        def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
            return F.normalize(self.m.get_image_features(pixel_values=pixel_values).pooler_output, dim=-1)

    class Text(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            # SigLIP was trained on max-length padding without a mask; CLIP pools at the first EOS.
            mask = attention_mask if family == "clip" else None
            out = self.m.get_text_features(input_ids=input_ids, attention_mask=mask).pooler_output
            return F.normalize(out, dim=-1)

    return Image().eval(), Text().eval()


def normalise(image: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]) -> Any:
    """uint8 HxWx3 RGB at the tower's size -> the f32 NCHW tensor the torch tower takes (references, tests)."""
    import torch

    x = torch.from_numpy(np.array(image, copy=True)).float().permute(2, 0, 1)[None] / 255.0
    return (x - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]


def image_ir(tower: Any, size: int, mean: tuple[float, ...], std: tuple[float, ...]) -> Any:
    """ov.Model: uint8 [1, H, W, 3] RGB (any H, W) -> `embedding` [1, D]."""
    import openvino as ov
    import torch
    from openvino.preprocess import PrePostProcessor, ResizeAlgorithm

    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ov.convert_model(tower, example_input=torch.zeros(1, 3, size, size), input=[1, 3, size, size])
    model.outputs[0].get_tensor().set_names({"embedding"})
    ppp = PrePostProcessor(model)
    inp = ppp.input()
    inp.tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")).set_spatial_dynamic_shape()
    inp.model().set_layout(ov.Layout("NCHW"))
    pre = inp.preprocess().convert_element_type(ov.Type.f32).resize(getattr(ResizeAlgorithm, RESIZE))
    pre.mean([m * 255.0 for m in mean]).scale([s * 255.0 for s in std])
    model = ppp.build()
    model.inputs[0].get_tensor().set_names({"image"})
    return model


def text_ir(tower: Any, length: int) -> Any:
    """ov.Model: input_ids, attention_mask int64 [1, L] -> `embedding` [1, D]."""
    import openvino as ov
    import torch

    ids = torch.ones(1, length, dtype=torch.int64)
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ov.convert_model(
            tower,
            example_input={"input_ids": ids, "attention_mask": ids},
            input=[("input_ids", [1, length], ov.Type.i64), ("attention_mask", [1, length], ov.Type.i64)],
        )
    for port, name in zip(model.inputs, ("input_ids", "attention_mask"), strict=True):
        port.get_tensor().set_names({name})
    model.outputs[0].get_tensor().set_names({"embedding"})
    return model


def save_tokenizer(tokenizer: Any, out: Path, length: int) -> dict:
    """tokenizer.json for the `tokenizers` runtime, padded and truncated to `length`; returns its settings."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:  # e.g. SigLIP's SentencePiece-only tokenizer
        from transformers.convert_slow_tokenizer import convert_slow_tokenizer

        try:
            backend = convert_slow_tokenizer(tokenizer)
        except (ValueError, KeyError, ImportError) as e:
            raise SourceError(
                f"the checkpoint's tokenizer ({type(tokenizer).__name__}) has no `tokenizers` version and "
                f"transformers cannot convert it ({first_line(e)}); add a tokenizer.json to the folder"
            ) from None
    backend.no_padding()
    backend.no_truncation()
    backend.save(str(out / "tokenizer.json"))
    pad = tokenizer.pad_token or tokenizer.eos_token
    return {"length": length, "pad_token": pad, "pad_id": int(tokenizer.convert_tokens_to_ids(pad))}


def build(out_dir: Path, store: Any, source: str, name: str, step: Callable[[str], None] = print) -> None:
    """Write image.xml, text.xml (+ .bin), tokenizer.json and meta.json into out_dir."""
    import openvino as ov
    import torch

    step(f"loading {source}")
    model, tokenizer, family = load(source)
    size, mean, std = image_settings(model, source, family)
    length = text_length(model, tokenizer)
    image_tower, text_tower = towers(model, family)
    step(f"converting the image tower (1×3×{size}×{size})")
    ov.save_model(image_ir(image_tower, size, mean, std), out_dir / "image.xml", compress_to_fp16=False)
    step(f"converting the text tower (1×{length})")
    ov.save_model(text_ir(text_tower, length), out_dir / "text.xml", compress_to_fp16=False)
    step("saving the tokenizer")
    tok = save_tokenizer(tokenizer, out_dir, length)
    with torch.inference_mode():
        dim = int(image_tower(torch.zeros(1, 3, size, size)).shape[-1])
    scale = float(model.logit_scale.detach().exp()) if hasattr(model, "logit_scale") else 100.0
    meta = {
        "name": name,
        "family": family,
        "kind": "clip",
        "source": source,
        "space": f"{name if name.startswith(FAMILIES) else f'{family}-{name}'}/{dim}",
        "dim": dim,
        "logit_scale": scale,
        "image": {"xml": "image.xml", "input": "image", "input_size": size, "mean": mean, "std": std, "resize": "cv2"},
        "text": {"xml": "text.xml", "output": "embedding", **tok},
    }
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
