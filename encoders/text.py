"""Text to a vector with the MiniLM IR (mean pooling and L2 norm are inside the graph).

Used for queries and labels, not on the capture path, so it runs synchronously behind a lock.
Sequences are not padded: the CPU IR takes any length; a static-shape device gets a fixed length.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from .base import unit
from .runtime import Compiled, Runtime


def tokens(tokenizer: Tokenizer, text: str) -> dict[str, np.ndarray]:
    """`input_ids` and `attention_mask` of `text`, 1×L int64, padded/truncated as the tokenizer is set up."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("text must be a non-empty string")
    enc = tokenizer.encode(text)
    return {"input_ids": np.array([enc.ids], np.int64), "attention_mask": np.array([enc.attention_mask], np.int64)}


class TextTower:
    """A text IR behind one synchronous request and a lock (queries and label lists: rare and short);
    the output row goes through the same unit() rule as every frame encoder's vectors."""

    def __init__(self, compiled: Compiled, tokenizer: Tokenizer, output: str, pad_to: int = 0) -> None:
        self.compiled = compiled
        self.tokenizer = tokenizer
        self.output = output
        self.pad_to = pad_to  # > 0: pad the tokens to this length (a static-shape IR)
        self.request = compiled.model.create_infer_request()
        self._lock = threading.Lock()

    def encode(self, text: str) -> np.ndarray:
        """Unit-norm float32 vector of `text` (ValueError for empty text or a 0/NaN model output)."""
        inputs = tokens(self.tokenizer, text)
        if self.pad_to:
            pad = ((0, 0), (0, self.pad_to - inputs["input_ids"].shape[1]))
            inputs = {k: np.pad(v, pad) for k, v in inputs.items()}
        with self._lock:
            self.request.infer(inputs)
            return unit(self.request.get_tensor(self.output).data[0])


class TextEncoder(TextTower):
    """MiniLM: mean pooling and L2 norm inside the graph; unpadded on a dynamic-shape device."""

    def __init__(self, runtime: Runtime, model_dir: Path) -> None:
        meta = json.loads((model_dir / "meta.json").read_text())
        self.space: str = meta["space"]
        self.max_length = int(meta["max_length"])
        tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        tokenizer.no_padding()
        tokenizer.enable_truncation(self.max_length)
        self.static = runtime.needs_static_shapes()
        shapes = {"input_ids": [1, self.max_length], "attention_mask": [1, self.max_length]}
        compiled = runtime.compile(model_dir / "model.xml", shapes if self.static else None)
        super().__init__(compiled, tokenizer, "embedding", self.max_length if self.static else 0)
