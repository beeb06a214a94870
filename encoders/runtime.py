"""OpenVINO runtime: one Core, device choice with a logged reason, compiled models with a cache.

Device policy: AUTO tries NPU, then GPU, then CPU. A device that is asked for but missing, or that
fails to compile the model, falls back to CPU and says why, unless `strict` is set. The model cache
(`CACHE_DIR`) makes the second start compile from cache, which matters most on the NPU.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import openvino as ov

log = logging.getLogger(__name__)


class DeviceError(RuntimeError):
    """The configured device cannot run the model and fallback is disabled."""


@dataclass(frozen=True)
class RuntimeConfig:
    device: str  # AUTO | NPU | GPU | CPU
    hint: str  # LATENCY | THROUGHPUT
    cpu_threads: int  # 0 = let OpenVINO decide
    strict: bool  # no fallback to CPU
    cache_dir: Path


@dataclass(frozen=True)
class Compiled:
    model: ov.CompiledModel
    device: str
    reason: str  # why this device was chosen, for logs and status
    seconds: float = 0.0  # compile time (read + compile), cold or from the cache
    from_cache: bool = False  # the device loaded a cached blob instead of compiling

    @property
    def optimal_requests(self) -> int:
        return int(self.model.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))


def loaded_from_cache(compiled: ov.CompiledModel) -> bool:
    try:
        return bool(compiled.get_property("LOADED_FROM_CACHE"))
    except RuntimeError:  # a plugin without the property
        return False


class Runtime:
    """Owns the OpenVINO Core; compiles IR files on the best available device."""

    def __init__(self, cfg: RuntimeConfig) -> None:
        self.cfg = cfg
        self.core = ov.Core()
        cfg.cache_dir.mkdir(parents=True, exist_ok=True)
        self.core.set_property({"CACHE_DIR": str(cfg.cache_dir)})

    @property
    def available(self) -> list[str]:
        return list(self.core.available_devices)

    def candidates(self) -> list[tuple[str, str]]:
        """Devices to try in order, each with the reason it is tried."""
        have = self.available
        want = self.cfg.device
        if want == "AUTO":
            order = [d for d in ("NPU", "GPU") if any(h.startswith(d) for h in have)]
            reason = "AUTO picked {} (available: " + ", ".join(have) + ")"
            return [(d, reason.format(d)) for d in order] + [("CPU", reason.format("CPU"))]
        if any(h.startswith(want) for h in have):
            return [(want, f"{want} as configured")]
        if self.cfg.strict:
            raise DeviceError(f"device {want} is not available (have: {', '.join(have)}) and strict is set")
        return [("CPU", f"fallback to CPU: {want} not available (have: {', '.join(have)})")]

    def _properties(self, device: str) -> dict:
        props: dict = {"PERFORMANCE_HINT": self.cfg.hint}
        if device == "CPU" and self.cfg.cpu_threads > 0:
            props["INFERENCE_NUM_THREADS"] = self.cfg.cpu_threads
        return props

    def needs_static_shapes(self) -> bool:
        """True when the first device tried is the NPU, which compiles static shapes only."""
        return self.candidates()[0][0] == "NPU"

    def compile(self, xml: Path, shapes: dict[str, list[int]] | None = None) -> Compiled:
        """Compile `xml` on the first candidate that works; CPU is the last resort unless strict."""
        cands = self.candidates()
        if cands[-1][0] != "CPU" and not self.cfg.strict:
            cands.append(("CPU", f"fallback to CPU: {self.cfg.device} could not compile the model"))
        t0 = time.perf_counter()
        model = self.core.read_model(xml)
        if shapes:
            model.reshape(shapes)
        errors: list[str] = []
        for dev, reason in cands:
            try:
                compiled = self.core.compile_model(model, dev, self._properties(dev))
            except RuntimeError as e:  # OpenVINO raises RuntimeError for plugin/compile failures
                errors.append(f"{dev}: {(str(e).strip().splitlines() or [type(e).__name__])[0]}")
                continue
            if errors:
                reason = f"{reason} ({'; '.join(errors)})"
            secs, cached = time.perf_counter() - t0, loaded_from_cache(compiled)
            log.info(
                "model %s/%s on %s in %.2fs%s: %s",
                xml.parent.name, xml.name, dev, secs, " (from cache)" if cached else "", reason,
            )  # fmt: skip
            return Compiled(compiled, dev, reason, secs, cached)
        raise DeviceError(f"{xml.parent.name}: no device could compile it: {'; '.join(errors)}")
