"""Real encoders for the watch tests: MiniLM text probes, effnet-lite0 image vectors (ConSE in MiniLM's space)."""

from __future__ import annotations

from pathlib import Path

import pytest

from encoders.image import ImageEncoder
from encoders.modelstore import ModelStore
from encoders.runtime import Runtime, RuntimeConfig
from encoders.text import TextEncoder


@pytest.fixture(scope="package")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Runtime:
    return Runtime(RuntimeConfig("CPU", "LATENCY", 0, False, tmp_path_factory.mktemp("ov-cache")))


@pytest.fixture(scope="package")
def text_encoder(runtime: Runtime, model_cache: Path) -> TextEncoder:
    return TextEncoder(runtime, ModelStore(model_cache).require("minilm-l6"))


@pytest.fixture(scope="package")
def image_encoder(runtime: Runtime, model_cache: Path) -> ImageEncoder:
    return ImageEncoder(runtime, ModelStore(model_cache).require("effnet-lite0"), lambda r: None)
