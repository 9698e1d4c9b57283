"""onnx.reference is estimated before it runs and skipped, with the reason, when a run would not
fit its budget: a small dilated-conv net must not take the machine down."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from onnxfit.verification import verify
from onnxfit.verification.reference_cost import memory_budget, reference_cost
from tests.conftest import make_model, tensor_info


def _dilated_net(channels=64, dilation=16):
    """A U-Net's dilated bottleneck in 150 KB of weights: a 3x3 conv at dilation 16 is 33x33 taps to im2col."""
    rng = np.random.default_rng(0)
    w1 = helper.make_tensor("w1", TensorProto.FLOAT, [channels, 3, 3, 3],
                            rng.standard_normal(channels * 27).astype(np.float32) * 0.1)
    w2 = helper.make_tensor("w2", TensorProto.FLOAT, [channels, channels, 3, 3],
                            rng.standard_normal(channels * channels * 9).astype(np.float32) * 0.01)
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1], name="stem"),
             helper.make_node("Conv", ["a", "w2"], ["y"], pads=[dilation] * 4, dilations=[dilation] * 2,
                              name="dilated")]
    return make_model(nodes, [tensor_info("x", ["N", 3, 64, 64])], [tensor_info("y", ["N", channels, 64, 64])],
                      [w1, w2])


@pytest.mark.parametrize("channels, dilation, batch", [(16, 4, 2), (8, 2, 4)])
def test_estimate_matches_what_onnx_reference_allocates(channels, dilation, batch):
    model = _dilated_net(channels, dilation)
    x = np.random.default_rng(0).random((batch, 3, 64, 64), dtype=np.float32)
    evaluator = ReferenceEvaluator(model)
    tracemalloc.start()
    try:
        evaluator.run(None, {"x": x})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    estimate = reference_cost(model, {"x": x.shape})
    assert estimate.what == "Conv 'dilated'"
    assert 0.8 * peak < estimate.peak < 1.25 * peak, (peak, estimate)


def test_verify_skips_onnx_reference_when_a_run_would_not_fit_its_budget():
    model = _dilated_net()
    assert reference_cost(model, {"x": (4, 3, 64, 64)}).peak > 4 * memory_budget()
    for runtimes in (None, ["onnx-reference"]):  # added by default or asked for: skipped all the same
        report = verify(model, batch=4, runtimes=runtimes)
        assert report.ok, [c.summary for c in report.checks]
        (skipped,) = [c for c in report.check("parity").details["comparisons"] if c["runtime"] == "onnx-reference"]
        assert skipped["skipped"].startswith("onnx-reference not run: it would need ~12.8 GiB for this run "
                                             "(Conv 'dilated': 12.8 GiB of im2col columns), above its budget of")


def test_onnx_reference_still_runs_where_it_fits():
    report = verify(_dilated_net(channels=4, dilation=2), batch=1)
    (entry,) = [c for c in report.check("parity").details["comparisons"] if c["runtime"] == "onnx-reference"]
    assert entry["ok"] and not entry.get("skipped") and entry["outputs"][0]["max_abs"] < 1e-5
