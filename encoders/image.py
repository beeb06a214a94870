"""Image frames to vectors through an OpenVINO AsyncInferQueue.

Two kinds of image IR share this encoder (meta.json `kind`):
- `classifier` (EfficientNet-Lite0): outputs `feature`, `conse`, `top_prob`, `top_index`; labels are
  the classifier's top-5;
- `clip` (CLIP/SigLIP image tower): output `embedding`; labels are zero-shot, from a `Labeler` that
  scores the vector against the text tower's embeddings of a label list.
Mean/scale and layout live inside the IR (PrePostProcessor), so the input is plain RGB uint8. Resizing
is done where it measured faster (see README, Models): in Python with cv2 (static 1×S×S×3 input) or
inside the graph (the IR takes any H×W); a static-shape device (NPU) always gets the cv2 path.
OpenVINO's callback copies the outputs into `Embedding`s and hands them to `on_result` at once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import openvino as ov

from .base import BadFrame, FrameEncoder, Outputs
from .records import Embedding, Encoded, Frame
from .resize import shrink
from .runtime import Runtime

# (unit vector) -> (labels, scores), best first
Labeler = Callable[[np.ndarray], tuple[tuple[str, ...], tuple[float, ...]]]


def check_image(data: np.ndarray) -> None:
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 3 or data.shape[2] != 3:
        raise BadFrame(
            f"expected HxWx3 uint8 RGB, got {getattr(data, 'dtype', type(data))} {getattr(data, 'shape', '')}"
        )
    if data.shape[0] < 2 or data.shape[1] < 2:
        raise BadFrame(f"image too small: {data.shape}")


class ImageEncoder(FrameEncoder):
    """Classifier or CLIP image IR behind an AsyncInferQueue; both give unit float32 vectors per space."""

    modality = "image"

    def __init__(
        self,
        runtime: Runtime,
        model_dir: Path,
        on_result: Callable[[Encoded], None],
        labeler: Labeler | None = None,
        resize: str | None = None,  # "cv2" | "graph"; None = what the model's meta prefers
    ) -> None:
        meta = json.loads((model_dir / "meta.json").read_text())
        self.name = meta["name"]
        self.kind: str = meta.get("kind", "classifier")
        if self.kind == "clip":
            img = meta["image"]
            xml, self.input, self.size = model_dir / img["xml"], img["input"], int(img["input_size"])
            self.spaces: dict[str, str] = {"embedding": meta["space"]}  # output name -> space
            self.labels: list[str] = []
            prefer = img.get("resize", "cv2")
        else:
            xml, self.input, self.size = model_dir / "model.xml", meta["input"], int(meta["input_size"])
            self.spaces = meta["spaces"]
            self.labels = json.loads((model_dir / meta["labels"]).read_text())
            prefer = meta.get("resize", "cv2")
        self.labeler = labeler
        dynamic = runtime.core.read_model(xml).input(self.input).get_partial_shape().is_dynamic
        self.graph_resize = dynamic and (resize or prefer) == "graph" and not runtime.needs_static_shapes()
        shapes = None if self.graph_resize or not dynamic else {self.input: [1, self.size, self.size, 3]}
        compiled = runtime.compile(xml, shapes)
        # one request more than the device's optimum keeps it fed while a callback runs
        super().__init__(compiled, compiled.optimal_requests + 1, on_result)

    def preprocess(self, frame: Frame) -> np.ndarray:
        check_image(frame.data)
        if self.graph_resize:
            return np.ascontiguousarray(frame.data)[np.newaxis]
        return shrink(frame.data, self.size, self.size)[np.newaxis]

    def inputs(self, frame: Frame) -> dict[str, np.ndarray]:
        return {self.input: self.preprocess(frame)}

    def encode_now(self, rgb: np.ndarray) -> list[Embedding]:
        """Vectors of one RGB image, synchronously, on an infer request of its own (query images).

        A fresh request per call: queries are rare, and the capture path's queue is never borrowed.
        """
        frame = Frame("query", "image", rgb, time.time_ns(), time.monotonic_ns())
        inputs = self.inputs(frame)  # BadFrame for an unusable image
        request = self.compiled.model.create_infer_request()
        request.infer(inputs)
        return list(self.embeddings(frame, request))

    def outputs(self, frame: Frame, request: ov.InferRequest) -> Outputs:
        """Each space's output row; labels are the classifier's top-5 or the labeler's zero-shot ones."""

        def get(name: str) -> np.ndarray:
            return request.get_tensor(name).data[0]

        if self.kind == "clip":
            labels, scores = self.labeler(get("embedding")) if self.labeler else ((), ())
        else:
            idx, probs = get("top_index"), get("top_prob")
            labels = tuple(self.labels[int(i)] for i in idx)
            scores = tuple(round(float(p), 4) for p in probs)
        return Outputs({space: get(out) for out, space in self.spaces.items()}, labels, scores)
