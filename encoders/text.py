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

from .runtime import Runtime


def tokens(tokenizer: Tokenizer, text: str) -> dict[str, np.ndarray]:
    """`input_ids` and `attention_mask` of `text`, 1×L int64, padded/truncated as the tokenizer is set up."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("text must be a non-empty string")
    enc = tokenizer.encode(text)
    return {"input_ids": np.array([enc.ids], np.int64), "attention_mask": np.array([enc.attention_mask], np.int64)}


class TextEncoder:
    def __init__(self, runtime: Runtime, model_dir: Path) -> None:
        meta = json.loads((model_dir / "meta.json").read_text())
        self.space: str = meta["space"]
        self.max_length = int(meta["max_length"])
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.max_length)
        self.static = runtime.needs_static_shapes()
        shapes = {"input_ids": [1, self.max_length], "attention_mask": [1, self.max_length]}
        self.compiled = runtime.compile(model_dir / "model.xml", shapes if self.static else None)
        self.request = self.compiled.model.create_infer_request()
        self._lock = threading.Lock()

    def encode(self, text: str) -> np.ndarray:
        """Unit-norm float32 vector of `text`."""
        inputs = tokens(self.tokenizer, text)
        if self.static:
            pad = ((0, 0), (0, self.max_length - inputs["input_ids"].shape[1]))
            inputs = {k: np.pad(v, pad) for k, v in inputs.items()}
        with self._lock:
            self.request.infer(inputs)
            return self.request.get_tensor("embedding").data[0].astype(np.float32, copy=True)
