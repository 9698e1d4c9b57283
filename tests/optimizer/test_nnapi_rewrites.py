"""reciprocal-to-div and reduce-sum-to-mean: ops the NNAPI EP has no builder for, rewritten into ops
it takes; bit-exact against ONNX Runtime, and left alone where the target runs the op itself."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper, numpy_helper

from onnxfit.app.optimize import optimize_model
from onnxfit.targets.partitions import estimate_partitions
from tests.conftest import assert_same_outputs, make_model, op_count, random_feeds, tensor_info


def reciprocal_model():
    return make_model([helper.make_node("Sqrt", ["x"], ["s"]), helper.make_node("Reciprocal", ["s"], ["y"])],
                      [tensor_info("x", [1, 8, 4, 4])], [tensor_info("y", [1, 8, 4, 4])])


def test_reciprocal_becomes_one_over_x_on_nnapi_bit_exact():
    model = reciprocal_model()
    result = optimize_model(model, target="nnapi", passes=["reciprocal-to-div"])
    assert [n.op_type for n in result.model.graph.node] == ["Sqrt", "Div"]
    assert estimate_partitions(result.model, "nnapi", (1, 32)).nodes_on_ep == 2
    special = np.array([0.0, -0.0, np.inf, 1e-30, 3.0, 7.0, 1e30, 0.1] * 16, np.float32).reshape(1, 8, 4, 4)
    for feeds in (random_feeds(model, 0), random_feeds(model, 1), {"x": np.abs(special)}):
        feeds = {"x": np.abs(feeds["x"])}
        assert_same_outputs(model, result.model, feeds)


def test_reciprocal_stays_where_the_target_runs_it():
    assert op_count(optimize_model(reciprocal_model(), target="cpu", passes=["reciprocal-to-div"]).model,
                    "Reciprocal") == 1


def sum_model(shape, axes, keepdims=1, opset=17):
    inits = [numpy_helper.from_array(np.array(axes, np.int64), "axes")] if opset >= 13 else []
    inputs = ["x", "axes"] if opset >= 13 else ["x"]
    attrs = {"keepdims": keepdims} if opset >= 13 else {"keepdims": keepdims, "axes": axes}
    return make_model([helper.make_node("ReduceSum", inputs, ["y"], **attrs)], [tensor_info("x", shape)],
                      [tensor_info("y", None)], inits, opset=opset)


@pytest.mark.parametrize("opset", [11, 17, 18])
@pytest.mark.parametrize("shape, axes, keepdims", [([1, 32, 4, 128], [3], 1), ([2, 4, 8], [-1, 1], 0), ([3, 16], [1], 1)])
def test_reduce_sum_over_a_power_of_two_becomes_mean_times_count_bit_exact(opset, shape, axes, keepdims):
    model = sum_model(shape, axes, keepdims, opset)
    result = optimize_model(model, target="nnapi", passes=["reduce-sum-to-mean"])
    assert [n.op_type for n in result.model.graph.node] == ["ReduceMean", "Mul"]
    assert estimate_partitions(result.model, "nnapi", (1, 32)).partitions == 1
    for seed in range(4):
        feeds = random_feeds(model, seed)
        feeds["x"] = feeds["x"] * np.exp(np.random.default_rng(seed).standard_normal(shape) * 4).astype(np.float32)
        assert_same_outputs(model, result.model, feeds)


def test_reduce_sum_of_other_counts_or_unknown_axes_stays():
    assert op_count(optimize_model(sum_model([5, 6], [1]), target="nnapi").model, "ReduceSum") == 1
    dynamic = make_model([helper.make_node("ReduceSum", ["x", "axes"], ["y"])], [tensor_info("x", [4, 8]),
                                                                                 tensor_info("axes", [1], 7)],
                         [tensor_info("y", None)])
    assert op_count(optimize_model(dynamic, target="nnapi", passes=["reduce-sum-to-mean"]).model, "ReduceSum") == 1
    assert op_count(optimize_model(sum_model([4, 8], [1]), target="cpu", passes=["reduce-sum-to-mean"]).model,
                    "ReduceSum") == 1


def test_reduce_sum_over_every_axis_when_none_are_given():
    model = make_model([helper.make_node("ReduceSum", ["x"], ["y"], keepdims=0)], [tensor_info("x", [4, 8])],
                       [tensor_info("y", None)], opset=13)
    result = optimize_model(model, target="nnapi", passes=["reduce-sum-to-mean"])
    assert op_count(result.model, "ReduceSum") == 0
    assert_same_outputs(model, result.model, random_feeds(model))
