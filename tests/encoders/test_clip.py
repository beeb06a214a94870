"""CLIP family: a tiny random CLIP/SigLIP (built offline) through import → build → IR, against PyTorch.

Both towers must match the torch reference (cosine ≥ 0.999) through the daemon's own encoders, with the
preprocessing inside the graph (u8 frames of any size, Pillow-style bicubic resize, mean/scale, layout).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from encoders.clip import PROMPT, ClipText, ZeroShot
from encoders.image import ImageEncoder
from encoders.modelstore import ModelNotBuilt, ModelStore
from encoders.records import Frame
from encoders.runtime import Runtime, RuntimeConfig
from tests.support import tiny_clip
from tests.support.env import sensorium

os.environ.setdefault("HF_HUB_OFFLINE", "1")
SENTENCES = ["a photo of a cat", "A RED rocket!", "a blue cup of coffee " * 8, "zebra"]


def cos(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """family -> (family, checkpoint folder, built model folder), built once per module via import + build."""
    done: dict[str, tuple[str, Path, Path]] = {}

    def get(family: str) -> tuple[str, Path, Path]:
        if family not in done:
            tmp = tmp_path_factory.mktemp(family)
            src = tiny_clip.make(tmp / f"tiny-{family}", family)
            store = ModelStore(tmp / "store")
            name = store.import_folder(src)
            assert name == f"tiny-{family}" and not store.is_built(name)
            done[family] = family, src, store.build(name)
        return done[family]

    return get


@pytest.fixture(scope="module", params=["clip", "siglip"])
def built(request, builds) -> tuple[str, Path, Path]:
    """Each family: the parity tests run on both."""
    return builds(request.param)


@pytest.fixture(scope="module")
def clip_built(builds) -> tuple[str, Path, Path]:
    """CLIP only, for what does not depend on the family (labels, async path, INT8, cv2 path)."""
    return builds("clip")


@pytest.fixture(scope="module")
def runtime(tmp_path_factory) -> Runtime:
    return Runtime(RuntimeConfig("CPU", "LATENCY", 0, False, tmp_path_factory.mktemp("ov-cache")))


def load_reference(built: tuple[str, Path, Path]):
    """(image tower, text tower, tokenizer, meta) in torch, from the checkpoint folder."""
    from encoders.build import clip

    family, src, folder = built
    model, tok, fam = clip.load(str(src))
    assert fam == family
    image, text = clip.towers(model, fam)
    return image, text, tok, json.loads((folder / "meta.json").read_text())


@pytest.fixture(scope="module")
def reference(built):
    return load_reference(built)


def torch_image(reference, rgb: np.ndarray) -> np.ndarray:
    import torch

    from encoders.build import clip

    image, _, _, meta = reference
    with torch.inference_mode():
        return image(clip.normalise(rgb, meta["image"]["mean"], meta["image"]["std"])).numpy()[0]


def photo(h: int, w: int, seed: int) -> np.ndarray:
    """A smooth random photo-like image (noise would make every resize disagree)."""
    small = np.random.default_rng(seed).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((w, h), Image.Resampling.BILINEAR))


@pytest.mark.parametrize("shape", [(32, 32), (90, 160), (480, 300)])
def test_image_tower_matches_torch_with_in_graph_preprocessing(built, runtime, reference, shape) -> None:
    _, _, folder = built
    enc = ImageEncoder(runtime, folder, lambda r: None, resize="graph")
    assert enc.graph_resize and enc.kind == "clip"
    rgb = photo(*shape, seed=shape[0])
    (emb,) = enc.encode_now(rgb)
    assert emb.space == reference[3]["space"] and emb.vector.dtype == np.float32
    assert abs(np.linalg.norm(emb.vector) - 1) < 1e-5
    size = reference[3]["image"]["input_size"]
    resized = np.asarray(Image.fromarray(rgb).resize((size, size), Image.Resampling.BICUBIC))
    assert cos(emb.vector, torch_image(reference, resized)) >= 0.999, shape


def test_image_tower_cv2_path_matches_torch(clip_built, runtime) -> None:
    import cv2

    _, _, folder = clip_built
    reference = load_reference(clip_built)
    enc = ImageEncoder(runtime, folder, lambda r: None, resize="cv2")
    assert not enc.graph_resize
    assert not enc.compiled.model.input("image").get_partial_shape().is_dynamic  # static 1×S×S×3
    rgb = photo(120, 200, seed=7)
    (emb,) = enc.encode_now(rgb)
    size = reference[3]["image"]["input_size"]
    resized = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA)
    assert cos(emb.vector, torch_image(reference, resized)) >= 0.999


def test_text_tower_matches_torch(built, runtime, reference) -> None:
    import torch

    family, _, folder = built
    _, text, tok, meta = reference
    enc = ClipText(runtime, folder)
    assert enc.space == meta["space"] and enc.length == tiny_clip.TEXT_LENGTH
    for sentence in SENTENCES:
        hf = tok(sentence, padding="max_length", max_length=enc.length, truncation=True, return_tensors="pt")
        assert enc.tokenizer.encode(sentence).ids == hf["input_ids"][0].tolist(), sentence
        with torch.inference_mode():
            want = text(hf["input_ids"], hf["attention_mask"]).numpy()[0]
        got = enc.encode(sentence)
        assert got.dtype == np.float32 and abs(np.linalg.norm(got) - 1) < 1e-5
        assert cos(got, want) >= 0.999, (family, sentence)


def test_zero_shot_labels_rank_by_the_text_tower(clip_built, runtime) -> None:
    _, _, folder = clip_built
    text = ClipText(runtime, folder)
    labels = ["a cat", "a dog", "a rocket", "a cup of coffee", "a man", "a screen"]
    zs = ZeroShot(text, labels, topk=3)
    vec = text.encode("a photo of a rocket")  # the label's own prompt must win
    got, scores = zs(vec)
    assert got[0] == "a rocket" and len(got) == 3
    assert scores == tuple(sorted(scores, reverse=True)) and 0 < sum(scores) <= 1.0001
    with pytest.raises(ValueError, match=r"models\.labels"):
        ZeroShot(text, [])


def test_clip_model_labels_frames_in_the_async_encoder(clip_built, runtime) -> None:
    _, _, folder = clip_built
    results = []
    text = ClipText(runtime, folder)
    labels = ["a cat", "a dog", "a car", "a rocket", "a man", "a screen"]
    enc = ImageEncoder(runtime, folder, results.append, labeler=ZeroShot(text, labels, topk=3))
    for i in range(3):
        enc.submit(Frame("screen0", "image", photo(60, 80, seed=i), 1_000 + i, i))
    enc.drain()
    assert enc.stats["completed"] == 3 and enc.stats["errors"] == 0
    # each frame's labels are the 3 of 6 whose prompts the text tower puts nearest to that frame's own vector,
    # best first, with their softmax probabilities over all 6
    prompts = np.stack([text.encode(PROMPT.format(label)) for label in labels])
    for item in sorted(results, key=lambda r: r.frame.ts_ns):
        (emb,) = item.embeddings
        logits = text.logit_scale * (prompts @ emb.vector)
        probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        best = np.argsort(-probs)[:3]
        assert emb.labels == tuple(labels[i] for i in best), (item.frame.ts_ns, emb.labels, probs)
        assert np.allclose(emb.scores, probs[best], atol=1e-3) and sum(emb.scores) < 1


def test_hub_model_offline_is_a_clear_error(tmp_path) -> None:
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(f"[daemon]\ncache_dir = '{tmp_path / 'cache'}'\n")
    out = sensorium("--config", str(cfg), "models", "build", "clip-vit-b32", check=False, timeout=120)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    assert "openai/clip-vit-base-patch32" in out.stderr and "sensorium models import" in out.stderr
    assert not list((tmp_path / "cache" / "models").glob("clip-vit-b32-*"))  # nothing half-built


def test_import_list_remove_and_a_failed_build_leaves_nothing(tmp_path, model_cache) -> None:
    src = tiny_clip.make(tmp_path / "My Tiny CLIP")
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(f"[daemon]\ncache_dir = '{tmp_path / 'cache'}'\n")
    arg = ["--config", str(cfg)]
    (src / "README.md").write_text("---\nlicense: mit\ntags: [clip]\n---\n# tiny\n")  # a model card
    assert "imported; build it with" in sensorium(*arg, "models", "import", str(src)).stdout
    row = next(x for x in sensorium(*arg, "models", "list").stdout.splitlines() if x.startswith("my-tiny-clip "))
    assert row.split()[1] == "no" and re.search(rf"\smit\s+dir:{re.escape(str(src))}$", row), row

    store = ModelStore(tmp_path / "cache")
    (src / "model.safetensors").unlink()  # the build now fails half-way (weights missing)
    out = sensorium(*arg, "models", "build", "my-tiny-clip", check=False, timeout=120)
    assert out.returncode != 0
    assert not store.is_built("my-tiny-clip")
    assert not list((tmp_path / "cache" / "models").glob("my-tiny-clip-*"))  # no .partial either
    with pytest.raises(ModelNotBuilt, match="models build my-tiny-clip"):
        store.require("my-tiny-clip")

    # An IR folder with a meta.json imports as it is: copied in, built, keyed by its files.
    ir = tmp_path / "ir"
    shutil.copytree(ModelStore(model_cache).require("effnet-lite0"), ir)
    assert "OpenVINO IR" in sensorium(*arg, "models", "import", str(ir), "--name", "my-effnet").stdout
    assert store.is_built("my-effnet") and store.meta("my-effnet")["spaces"]["conse"] == "minilm-l6/384"
    assert "my-effnet" in sensorium(*arg, "models", "list").stdout
    out = sensorium(*arg, "models", "remove", "my-effnet").stdout
    assert "removed" in out and not store.is_built("my-effnet")
    assert not list((tmp_path / "cache" / "models").glob("my-effnet-*"))
    (ir / "meta.json").write_text('{"name": "x"}')  # an IR without a usable meta is refused, saying why
    out = sensorium(*arg, "models", "import", str(ir), check=False)
    assert out.returncode == 2 and "needs 'name'" in out.stderr and "Traceback" not in out.stderr


def test_int8_build_loads_and_runs(clip_built, runtime) -> None:
    _, _, folder = clip_built
    store = ModelStore(folder.parent.parent)
    name = json.loads((folder / "meta.json").read_text())["name"]
    q_folder = store.build(name + "-int8")
    meta = json.loads((q_folder / "meta.json").read_text())
    assert meta["precision"] == "int8" and meta["int8_of"] == name
    fp = ImageEncoder(runtime, folder, lambda r: None)
    q = ImageEncoder(runtime, q_folder, lambda r: None)
    ops = {op.get_type_name() for op in runtime.core.read_model(q_folder / "image.xml").get_ops()}
    assert "FakeQuantize" in ops or "FakeConvert" in ops  # really quantized
    rgb = photo(100, 140, seed=3)
    (a,), (b,) = fp.encode_now(rgb), q.encode_now(rgb)
    assert b.space == a.space and b.vector.dtype == np.float32 and abs(np.linalg.norm(b.vector) - 1) < 1e-4
    # random tiny weights quantize worse than trained ones; unrelated vectors would be near 0 (±0.25 in 16-d)
    assert cos(a.vector, b.vector) > 0.7
    assert ClipText(runtime, q_folder).encode("a cat").shape == a.vector.shape  # text tower copied as is


def test_a_build_killed_midway_leaves_nothing_loadable(clip_built, tmp_path) -> None:
    import signal
    import subprocess
    import sys
    import time

    from tests.support.env import ROOT

    _, src, _ = clip_built
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(f"[daemon]\ncache_dir = '{tmp_path / 'cache'}'\n")
    store = ModelStore(tmp_path / "cache")
    name = store.import_folder(src, "killed")
    partial = store.path(name).with_name(store.path(name).name + ".partial")
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", "--config", str(cfg), "models", "build", name],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not (partial / "image.xml").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # mid-build: the image tower is written, the rest is not
    proc.wait(timeout=10)
    assert partial.is_dir() and not store.is_built(name)
    with pytest.raises(ModelNotBuilt):
        store.require(name)
    assert store.build(name) == store.path(name) and not partial.exists()  # the next build starts clean
