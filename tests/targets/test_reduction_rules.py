"""CoreML reductions (reduction_op_builder.cc): Sum and Mean in both formats, Max only in
MLProgram; an `axes` input must be a constant initializer."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxfit.targets.support import parse_version
from onnxfit.targets.partitions import estimate_partitions
from tests.conftest import make_model, tensor_info

VERSION = parse_version("1.32")


def _reduce(op: str, constant_axes: bool = True):
    """x -> Relu -> Reduce(axes [1], opset 18: axes is an input) -> Sigmoid."""
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node(op, ["r", "axes"], ["m"], keepdims=1),
             helper.make_node("Sigmoid", ["m"], ["y"])]
    inputs = [tensor_info("x", [1, 4, 8])]
    inits = [numpy_helper.from_array(np.array([1], np.int64), "axes")] if constant_axes else []
    if not constant_axes:
        inputs.append(tensor_info("axes", [1], TensorProto.INT64))
    return make_model(nodes, inputs, [tensor_info("y", [1, 1, 8])], inits, opset=18)


@pytest.mark.parametrize("target", ["coreml", "coreml-nn"])
@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMean"])
def test_sum_and_mean_in_both_formats(op, target):
    report = estimate_partitions(_reduce(op), target, VERSION)
    assert (report.partitions, report.nodes_on_ep, report.total_nodes) == (1, 3, 3), report.unsupported


def test_max_only_in_mlprogram():
    assert estimate_partitions(_reduce("ReduceMax"), "coreml", VERSION).nodes_on_ep == 3
    assert [u.op for u in estimate_partitions(_reduce("ReduceMax"), "coreml-nn", VERSION).unsupported] == ["ReduceMax"]


def test_axes_computed_at_run_time_are_refused():
    report = estimate_partitions(_reduce("ReduceMean", constant_axes=False), "coreml", VERSION)
    (reduce,) = [u for u in report.unsupported if u.op == "ReduceMean"]
    assert "axes" in reduce.reason
