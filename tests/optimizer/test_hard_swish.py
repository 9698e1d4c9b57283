"""hard-swish: Add/Clip/Mul/Div hard-swish and hard-sigmoid chains become the ONNX ops, within
1e-6 of the chain on ONNX Runtime; chains that are something else stay."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper, numpy_helper

from onnxfit.app.optimize import optimize_model
from tests.conftest import assert_same_outputs, make_model, random_feeds, tensor_info


def const(name, value):
    return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)


def hardswish_chain(opset, *, shift=3.0, div="Div", x_first=True):
    """Paddle2ONNX's hardswish: Div(Mul(x, Clip(Add(x, 3), 0, 6)), 6), bounds as the opset writes them."""
    clip = (helper.make_node("Clip", ["a", "lo", "hi"], ["c"]) if opset >= 11
            else helper.make_node("Clip", ["a"], ["c"], min=0.0, max=6.0))
    last = (helper.make_node("Div", ["m", "six"], ["y"]) if div == "Div"
            else helper.make_node("Mul", ["sixth", "m"], ["y"]))
    inits = [const("three", shift), const("six", 6.0), const("sixth", np.float32(1 / 6))]
    if opset >= 11:
        inits += [const("lo", 0.0), const("hi", 6.0)]
    return make_model([
        helper.make_node("Add", ["x", "three"], ["a"]),
        clip,
        helper.make_node("Mul", ["x", "c"] if x_first else ["c", "x"], ["m"]),
        last,
    ], [tensor_info("x", [2, 8, 5, 5])], [tensor_info("y", [2, 8, 5, 5])], inits, opset=opset)


def feeds(model):
    return {"x": (random_feeds(model)["x"] * 4).astype(np.float32)}  # both bounds of the Clip reached


@pytest.mark.parametrize("opset, expected", [(10, ["HardSigmoid", "Mul"]), (13, ["HardSigmoid", "Mul"]), (14, ["HardSwish"])])
@pytest.mark.parametrize("div, x_first", [("Div", True), ("Mul", False)])
def test_a_written_out_hardswish_becomes_the_onnx_op_within_1e6(opset, expected, div, x_first):
    model = hardswish_chain(opset, div=div, x_first=x_first)
    result = optimize_model(model, target="cpu", passes=["hard-swish"])
    assert sorted(n.op_type for n in result.model.graph.node) == sorted(expected)
    assert [o.name for o in result.model.graph.output] == ["y"]
    assert_same_outputs(model, result.model, feeds(model), exact=False, atol=1e-6, rtol=1e-6)


def test_a_written_out_hardsigmoid_becomes_one_node_within_1e6():
    model = make_model([
        helper.make_node("Add", ["x", "three"], ["a"]),
        helper.make_node("Clip", ["a", "lo", "hi"], ["c"]),
        helper.make_node("Div", ["c", "six"], ["y"]),
    ], [tensor_info("x", [4, 16])], [tensor_info("y", [4, 16])],
        [const("three", 3.0), const("lo", 0.0), const("hi", 6.0), const("six", 6.0)])
    result = optimize_model(model, target="cpu", passes=["hard-swish"])
    assert [n.op_type for n in result.model.graph.node] == ["HardSigmoid"]
    assert_same_outputs(model, result.model, feeds(model), exact=False, atol=1e-6, rtol=1e-6)


def test_torch_style_hardsigmoid_times_x_becomes_hardswish_from_opset_14():
    model = make_model([
        helper.make_node("HardSigmoid", ["x"], ["h"], alpha=float(np.float32(1 / 6)), beta=0.5),
        helper.make_node("Mul", ["x", "h"], ["y"]),
    ], [tensor_info("x", [4, 16])], [tensor_info("y", [4, 16])], opset=14)
    result = optimize_model(model, target="cpu", passes=["hard-swish"])
    assert [n.op_type for n in result.model.graph.node] == ["HardSwish"]
    assert_same_outputs(model, result.model, feeds(model), exact=False, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("change", ["shift", "shared", "output"])
def test_chains_that_are_not_hardswish_stay(change):
    model = hardswish_chain(13, shift=2.0 if change == "shift" else 3.0)
    if change == "shared":  # the Clip's output is read elsewhere too
        model.graph.node.append(helper.make_node("Relu", ["c"], ["r"]))
        model.graph.output.append(tensor_info("r", [2, 8, 5, 5]))
    if change == "output":
        model.graph.output.append(tensor_info("m", [2, 8, 5, 5]))
    result = optimize_model(model, target="cpu", passes=["hard-swish"])
    assert not any(n.op_type in ("HardSigmoid", "HardSwish") for n in result.model.graph.node)


def test_exact_leaves_hardswish_chains_alone():
    model = hardswish_chain(13)
    result = optimize_model(model, target="cpu", exact=True)
    assert not any(n.op_type in ("HardSigmoid", "HardSwish") for n in result.model.graph.node)
