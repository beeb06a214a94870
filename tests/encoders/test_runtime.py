"""Runtime device policy and the async image encoder, on the real OpenVINO CPU plugin."""

from __future__ import annotations

import logging
import threading

import numpy as np
import pytest
import skimage.data

from encoders.base import BadFrame
from encoders.image import ImageEncoder
from encoders.modelstore import ModelNotBuilt, ModelStore
from encoders.records import Encoded, Frame
from encoders.runtime import DeviceError, Runtime, RuntimeConfig


def runtime(tmp_path, device: str, strict: bool = False) -> Runtime:
    return Runtime(RuntimeConfig(device, "LATENCY", 1, strict, tmp_path / "ov-cache"))


def test_missing_npu_falls_back_to_cpu_with_a_logged_reason(tmp_path, model_cache, caplog):
    xml = ModelStore(model_cache).require("effnet-lite0") / "model.xml"
    caplog.set_level(logging.INFO, logger="encoders.runtime")
    compiled = runtime(tmp_path, "NPU").compile(xml)
    assert compiled.device == "CPU"
    assert "fallback to CPU: NPU not available" in compiled.reason
    assert "NPU not available" in caplog.text
    assert any((tmp_path / "ov-cache").iterdir())  # compiled blobs are cached for the next start


def test_auto_picks_the_best_available_device(tmp_path, model_cache):
    xml = ModelStore(model_cache).require("minilm-l6") / "model.xml"
    rt = runtime(tmp_path, "AUTO")
    compiled = rt.compile(xml)
    assert compiled.device == ("NPU" if "NPU" in rt.available else "GPU" if "GPU" in rt.available else "CPU")
    assert compiled.reason.startswith("AUTO picked")


def test_strict_refuses_a_missing_device(tmp_path):
    rt = runtime(tmp_path, "NPU", strict=True)
    if "NPU" in rt.available:
        pytest.skip("this machine has an NPU")
    with pytest.raises(DeviceError, match="NPU is not available"):
        rt.candidates()


def test_strict_npu_fails_compile_clearly(tmp_path, model_cache):
    rt = runtime(tmp_path, "NPU", strict=True)
    if "NPU" in rt.available:
        pytest.skip("this machine has an NPU")
    with pytest.raises(DeviceError, match="strict is set"):
        rt.compile(ModelStore(model_cache).require("minilm-l6") / "model.xml")


@pytest.mark.parametrize("name", ["effnet-lite0", "minilm-l6"])
def test_second_compile_loads_the_cached_blob(tmp_path, model_cache, name):
    """A second start (a new Core) reads what the first wrote to cache_dir instead of compiling again."""
    xml = ModelStore(model_cache).require(name) / "model.xml"
    cache = tmp_path / "ov-cache"
    first = runtime(tmp_path, "CPU").compile(xml)
    blobs = {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in cache.iterdir()}
    assert not first.from_cache and blobs
    second = runtime(tmp_path, "CPU").compile(xml)
    assert second.from_cache  # OpenVINO's LOADED_FROM_CACHE
    assert {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in cache.iterdir()} == blobs  # read, not rewritten
    assert first.seconds > 0 and second.seconds > 0


def test_unbuilt_model_error_says_how_to_build(tmp_path):
    with pytest.raises(ModelNotBuilt, match="sensorium models build"):
        ModelStore(tmp_path).require("effnet-lite0")


def test_async_image_encoder_emits_both_spaces_per_frame(tmp_path, model_cache):
    results: list[Encoded] = []
    done = threading.Event()

    def on_result(item: Encoded) -> None:
        results.append(item)
        if len(results) == 6:
            done.set()

    enc = ImageEncoder(runtime(tmp_path, "CPU"), ModelStore(model_cache).require("effnet-lite0"), on_result)
    assert enc.requests >= 2  # OPTIMAL_NUMBER_OF_INFER_REQUESTS + 1
    photos = [skimage.data.chelsea(), skimage.data.coffee(), skimage.data.rocket()] * 2
    for i, img in enumerate(photos):
        enc.submit(Frame("screen0", "image", img, 1_000 + i, i))
    enc.drain()
    assert done.is_set() and enc.stats["completed"] == 6 and enc.stats["errors"] == 0
    by_ts = {r.frame.ts_ns: r for r in results}
    for i in range(6):
        spaces = {e.space: e for e in by_ts[1_000 + i].embeddings}
        assert set(spaces) == {"effnet-lite0/1280", "minilm-l6/384"}
        for e in spaces.values():
            assert e.vector.dtype == np.float32 and abs(np.linalg.norm(e.vector) - 1) < 1e-4
            assert len(e.labels) == 5 and e.scores == tuple(sorted(e.scores, reverse=True))
    assert {"tabby", "tiger cat", "Egyptian cat"} & set(by_ts[1_000].embeddings[0].labels)
    assert by_ts[1_001].embeddings[0].labels[0] == "espresso"
    # Same photo, same vector: requests do not mix up their outputs.
    assert np.allclose(by_ts[1_000].embeddings[0].vector, by_ts[1_003].embeddings[0].vector, atol=1e-5)


@pytest.mark.parametrize(
    "data",
    [
        np.zeros((0, 0, 3), np.uint8),
        np.zeros((10, 10, 3), np.float32),
        np.zeros((10, 10), np.uint8),
        np.zeros((10, 10, 4), np.uint8),
    ],
)
def test_bad_frames_are_refused_and_counted(tmp_path, model_cache, data):
    enc = ImageEncoder(runtime(tmp_path, "CPU"), ModelStore(model_cache).require("effnet-lite0"), lambda r: None)
    with pytest.raises(BadFrame):
        enc.submit(Frame("screen0", "image", data, 0, 0))
    assert enc.stats["bad_frames"] == 1 and enc.stats["submitted"] == 0


def test_models_build_for_npu_warms_the_cache_and_says_where_it_runs(tmp_path, model_cache):
    from tests.support.env import sensorium

    built = ModelStore(model_cache).require("effnet-lite0")
    (tmp_path / "cache" / "models").mkdir(parents=True)
    for dep in (built, ModelStore(model_cache).require("minilm-l6")):
        (tmp_path / "cache" / "models" / dep.name).symlink_to(dep)
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(f"[daemon]\ncache_dir = '{tmp_path / 'cache'}'\n")
    out = sensorium("--config", str(cfg), "models", "build", "effnet-lite0", "--device", "NPU").stdout
    assert "effnet-lite0: already built" in out
    if "NPU" not in runtime(tmp_path, "CPU").available:
        assert "model.xml: compiled on CPU" in out and "fallback to CPU: NPU not available" in out, out
    assert any((tmp_path / "cache" / "ov-cache").iterdir())  # the daemon's next start compiles from here
