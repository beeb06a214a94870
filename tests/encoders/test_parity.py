"""The built OpenVINO IRs must agree with the PyTorch references they were converted from.

Models come from conftest's `model_cache` (built once into $SENSORIUM_CACHE or .cache/test-models).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import openvino as ov
import pytest

from encoders.modelstore import ModelStore

os.environ.setdefault("HF_HUB_OFFLINE", "1")
CAT_LABELS = {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat"}
SENTENCES = [
    "cat",
    "A cup of espresso on a saucer.",
    "The rocket lifted off from the launch pad at dawn, trailing a long column of white smoke "
    "while the crowd on the beach watched in silence. " * 6,
]


def cos(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="session")
def store(model_cache: Path) -> ModelStore:
    return ModelStore(model_cache)


@pytest.fixture(scope="session")
def core() -> ov.Core:
    return ov.Core()


@pytest.fixture(scope="session")
def minilm_ir(store: ModelStore, tmp_path_factory: pytest.TempPathFactory):
    """encode(text) -> vector through the daemon's own TextEncoder (its tokenisation included)."""
    from encoders.runtime import Runtime, RuntimeConfig
    from encoders.text import TextEncoder

    runtime = Runtime(RuntimeConfig("CPU", "LATENCY", 0, False, tmp_path_factory.mktemp("ov-cache")))
    return TextEncoder(runtime, store.require("minilm-l6")).encode


@pytest.fixture(scope="session")
def photos() -> dict[str, np.ndarray]:
    import skimage.data

    return {
        n: cv2.resize(getattr(skimage.data, n)(), (224, 224), interpolation=cv2.INTER_AREA)
        for n in ("chelsea", "coffee", "rocket")
    }


@pytest.fixture(scope="session")
def effnet_outputs(store: ModelStore, core: ov.Core, photos: dict[str, np.ndarray]):
    """{photo: (openvino outputs, torch outputs)} plus the label list."""
    import torch

    from encoders.build import effnet_lite0, minilm

    folder = store.require("effnet-lite0")
    meta = json.loads((folder / "meta.json").read_text())
    labels = json.loads((folder / meta["labels"]).read_text())
    compiled = core.compile_model(folder / "model.xml", "CPU")
    wrapper = effnet_lite0.make_wrapper(minilm.embed_texts([meta["prompt"].format(x) for x in labels]))
    out = {}
    for name, img in photos.items():
        res = compiled({meta["input"]: img[np.newaxis]})
        got = {k: res[k] for k in effnet_lite0.OUTPUTS}
        with torch.inference_mode():
            tensors = wrapper(effnet_lite0.normalise(img))
        ref = {k: t.numpy() for k, t in zip(effnet_lite0.OUTPUTS, tensors, strict=True)}
        out[name] = (got, ref)
    return out, labels


def test_minilm_matches_sentence_transformers(store: ModelStore, minilm_ir) -> None:
    from sentence_transformers import SentenceTransformer

    from encoders.build.minilm import source_dir

    st = SentenceTransformer(str(source_dir()), device="cpu")
    for text in SENTENCES:
        ref = st.encode([text], batch_size=1)[0]
        got = minilm_ir(text)
        assert got.shape == (384,) and got.dtype == np.float32
        assert abs(np.linalg.norm(got) - 1.0) < 1e-4
        assert cos(got, ref) >= 0.999, text[:40]


def test_effnet_matches_torch(effnet_outputs) -> None:
    out, labels = effnet_outputs
    for name, (got, ref) in out.items():
        assert got["feature"].shape == (1, 1280) and got["conse"].shape == (1, 384)
        assert got["top_prob"].shape == (1, 5) and got["top_index"].shape == (1, 5)
        assert cos(got["feature"], ref["feature"]) >= 0.999, name
        assert cos(got["conse"], ref["conse"]) >= 0.999, name
        assert abs(np.linalg.norm(got["conse"]) - 1.0) < 1e-4
        assert labels[int(got["top_index"][0, 0])] == labels[int(ref["top_index"][0, 0])], name


def test_effnet_sanity(effnet_outputs, minilm_ir) -> None:
    out, labels = effnet_outputs
    top5 = {labels[int(i)] for i in out["chelsea"][0]["top_index"][0]}
    assert top5 & CAT_LABELS, top5
    assert labels[int(out["coffee"][0]["top_index"][0, 0])] in {"espresso", "cup", "coffee mug"}
    cat = minilm_ir("a cat")
    sims = {name: cos(got["conse"], cat) for name, (got, _) in out.items()}
    assert sims["chelsea"] > max(sims["coffee"], sims["rocket"]), sims


def test_zero_shot_text_queries_find_the_right_photo_through_conse(store: ModelStore, minilm_ir, tmp_path) -> None:
    """Offline image model, real photos: each fitting query ranks its photo first among the four (ConSE space)."""
    import skimage.data

    from encoders.image import ImageEncoder
    from encoders.runtime import Runtime, RuntimeConfig

    runtime = Runtime(RuntimeConfig("CPU", "LATENCY", 0, False, tmp_path / "ov-cache"))
    enc = ImageEncoder(runtime, store.require("effnet-lite0"), lambda r: None)
    queries = {"astronaut": "an astronaut", "chelsea": "a cat", "coffee": "a cup of coffee", "rocket": "a rocket"}
    vectors = {}
    for name in queries:
        (conse,) = [e for e in enc.encode_now(getattr(skimage.data, name)()) if e.space == "minilm-l6/384"]
        vectors[name] = conse.vector
    for name, query in queries.items():
        q = minilm_ir(query)
        sims = {other: float(v @ q) for other, v in vectors.items()}
        assert max(sims, key=sims.__getitem__) == name, (query, sims)
