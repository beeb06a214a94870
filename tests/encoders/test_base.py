"""The frame-encoder base on a real (tiny) OpenVINO IR: the unit-vector rule, bad frames, error counting in
both inference modes (AsyncInferQueue and inline), and hand-off failures that must not escape."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import openvino as ov
import pytest

from encoders.base import BadFrame, FrameEncoder, Outputs, unit
from encoders.records import Encoded, Frame
from encoders.runtime import Runtime, RuntimeConfig


def test_unit_scales_a_copy_to_norm_one():
    v = np.array([3.0, 4.0], np.float64)
    out = unit(v)
    assert out.dtype == np.float32 and np.allclose(out, [0.6, 0.8]) and v.tolist() == [3.0, 4.0]


@pytest.mark.parametrize("v", [[0.0, 0.0], [np.nan, 1.0], [np.inf, 1.0]], ids=["zero", "nan", "inf"])
def test_unit_refuses_a_zero_or_non_finite_norm_as_a_model_error(v):
    with pytest.raises(ValueError, match="model output has norm") as e:
        unit(np.array(v, np.float32))
    assert not isinstance(e.value, BadFrame)  # the model's failure, not the frame's


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Runtime:
    return Runtime(RuntimeConfig("CPU", "LATENCY", 1, False, tmp_path_factory.mktemp("ov-cache")))


@pytest.fixture(scope="module")
def double_ir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """y = 2·x on a [1, 4] float32 input: outputs follow the frame, so a frame can make a zero or NaN vector."""
    import openvino.opset13 as ops

    x = ops.parameter([1, 4], np.float32, name="x")
    y = ops.multiply(x, ops.constant(np.float32(2.0)))
    y.output(0).set_names({"y"})
    xml = tmp_path_factory.mktemp("ir") / "double.xml"
    ov.save_model(ov.Model([y], [x], "double"), xml)
    return xml


class Queued(FrameEncoder):
    modality = "test"

    def __init__(self, runtime: Runtime, xml: Path, on_result: Callable[[Encoded], None]) -> None:
        self.name = "double"
        super().__init__(runtime.compile(xml), 2, on_result)

    def inputs(self, frame: Frame) -> dict[str, np.ndarray]:
        if frame.data.shape != (4,):
            raise BadFrame(f"expected 4 values, got {frame.data.shape}")
        return {"x": frame.data[np.newaxis]}

    def outputs(self, frame: Frame, request: ov.InferRequest) -> Outputs:
        if frame.source == "refused":  # what only the outputs can tell (audio: a silent window)
            raise BadFrame("nothing in it")
        return Outputs({"test/4": request.get_tensor("y").data[0]}, ("a",), (1.0,), {"k": "v"})


class Inline(Queued):
    inline = True


def frame(source: str, values: list[float], i: int) -> Frame:
    return Frame(source, "test", np.array(values, np.float32), 1_000 + i, i)


@pytest.mark.parametrize("cls", [Queued, Inline])
def test_every_frame_ends_completed_refused_or_counted_as_an_error(runtime, double_ir, cls, caplog):
    got: list[Encoded] = []

    def on_result(item: Encoded) -> None:
        if item.frame.source == "sink-fails":
            raise RuntimeError("sink down")
        got.append(item)

    enc = cls(runtime, double_ir, on_result)
    assert enc.requests == 2 and enc.device == "CPU" and (enc.queue is None) == enc.inline
    caplog.set_level(logging.DEBUG, logger="encoders.base")
    good = [frame("cam0", [3, 0, 4, 0], 0), frame("cam0", [0, 1, 0, 0], 1)]
    zero, nan = frame("cam0", [0, 0, 0, 0], 2), frame("cam0", [np.nan, 1, 1, 1], 3)  # 0 and NaN norms: unit()
    failing = [zero, nan, frame("sink-fails", [1, 1, 1, 1], 4)]
    for f in [good[0], *failing, good[1]]:
        enc.submit(f)
    with pytest.raises(BadFrame):
        enc.submit(frame("cam0", [1, 2, 3], 5))
    enc.drain()
    assert enc.stats == {"submitted": 5, "completed": 2, "bad_frames": 1, "errors": 3}
    assert sorted(r.frame.ts_ns for r in got) == [1_000, 1_001] and len(enc.latencies()) == 2
    by_ts = {r.frame.ts_ns: r.embeddings for r in got}
    (e,) = by_ts[1_000]
    assert e.space == "test/4" and e.labels == ("a",) and e.scores == (1.0,) and e.extra == {"k": "v"}
    assert e.vector.dtype == np.float32 and np.allclose(e.vector, [0.6, 0, 0.8, 0])  # 2·x, made unit
    errors = [r for r in caplog.records if r.name == "encoders.base" and r.levelno >= logging.WARNING]
    assert len(errors) == 1 and errors[0].exc_info and "frame cam0-1002" in errors[0].getMessage()  # then debug


def test_inline_outputs_can_still_refuse_a_frame_and_results_arrive_before_submit_returns(runtime, double_ir):
    got: list[Encoded] = []
    enc = Inline(runtime, double_ir, got.append)
    with pytest.raises(BadFrame, match="nothing in it"):
        enc.submit(frame("refused", [1, 1, 1, 1], 0))
    enc.submit(frame("cam0", [1, 1, 1, 1], 1))
    assert len(got) == 1  # on_result ran on the caller's thread
    assert enc.stats == {"submitted": 1, "completed": 1, "bad_frames": 1, "errors": 0}


def test_a_queued_frame_the_outputs_refuse_is_an_error_not_a_bad_frame(runtime, double_ir):
    """Once started on the queue the frame was accepted; the callback cannot raise to anyone."""
    got: list[Encoded] = []
    enc = Queued(runtime, double_ir, got.append)
    enc.submit(frame("refused", [1, 1, 1, 1], 0))
    enc.drain()
    assert enc.stats == {"submitted": 1, "completed": 0, "bad_frames": 0, "errors": 1} and not got
