"""The CLIP text tower at run time: text queries and zero-shot labels in a CLIP model's space.

`ClipText` has the same surface as `TextEncoder` (`.space`, `.encode(str)`), so the query service
answers in the CLIP space next to MiniLM's. `ZeroShot` turns an image vector into labels for the
thumbnail/header: the label list (config `models.labels`) is embedded once at start with a prompt,
and a frame's labels are the softmax over the scaled cosines, best first. Only numpy, tokenizers and
OpenVINO are imported here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from .runtime import Runtime
from .text import TextTower

PROMPT = "a photo of {}"  # CLIP's zero-shot template; labels read naturally after it ("a cat", "a screen")


class ClipText(TextTower):
    """input text -> unit float32 vector through the static 1×L text IR; synchronous behind a lock."""

    def __init__(self, runtime: Runtime, model_dir: Path) -> None:
        meta = json.loads((model_dir / "meta.json").read_text())
        if meta.get("kind") != "clip":
            raise ValueError(f"{model_dir} is not a CLIP model (meta kind {meta.get('kind')!r})")
        t = meta["text"]
        self.space: str = meta["space"]
        self.logit_scale = float(meta.get("logit_scale", 100.0))
        self.length = int(t["length"])
        tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        tokenizer.enable_truncation(self.length)  # the tokenizer pads: the IR is static whatever the device
        tokenizer.enable_padding(length=self.length, pad_id=int(t["pad_id"]), pad_token=t["pad_token"])
        super().__init__(runtime.compile(model_dir / t["xml"]), tokenizer, t.get("output", "embedding"))


class ZeroShot:
    """Labeler: image vector -> (top labels, softmax scores) against a fixed label list."""

    def __init__(self, text: ClipText, labels: list[str], topk: int = 5, prompt: str = PROMPT) -> None:
        if not labels:
            raise ValueError("models.labels is empty: zero-shot labels need at least one label")
        self.labels = list(labels)
        self.topk = min(topk, len(self.labels))
        self.scale = text.logit_scale
        self.matrix = np.stack([text.encode(prompt.format(label)) for label in self.labels])  # [n, dim]

    def __call__(self, vector: np.ndarray) -> tuple[tuple[str, ...], tuple[float, ...]]:
        logits = self.scale * (self.matrix @ np.asarray(vector, np.float32))
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        order = np.argsort(-probs, kind="stable")[: self.topk]
        return tuple(self.labels[i] for i in order), tuple(round(float(probs[i]), 4) for i in order)
