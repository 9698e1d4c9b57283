"""split-reshapes: a Split of a value that a Squeeze/Unsqueeze/Reshape only renamed splits the value
itself, its readers reshape each piece; checked bit for bit against ONNX Runtime."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper, numpy_helper

from onnxfit.app.optimize import optimize_model
from tests.conftest import assert_same_outputs, make_model, op_count, random_feeds, tensor_info

PASSES = ["split-reshapes", "reshape-chains"]


def const(name, value):
    return numpy_helper.from_array(np.asarray(value, np.int64), name)


def run(model):
    return optimize_model(model, target="cpu", passes=PASSES).model


def node(model, op):
    (found,) = [n for n in model.graph.node if n.op_type == op]
    return found


def squeeze_split(opset, readers=None, extra_outputs=(), extra_nodes=()):
    """FacePhys: x [1, 384, 1, 1] -> Squeeze [2, 3] -> Split(axis=-1) 3x128 -> Reshape, Unsqueeze, Unsqueeze."""
    inits = [const("target", [1, 32, 4, 1])]
    if opset >= 13:
        inits += [const("sq_axes", [2, 3]), const("unsq_axes", [1, 2])]
        squeeze = helper.make_node("Squeeze", ["x", "sq_axes"], ["s"])
        unsqueeze = {"inputs": ["unsq_axes"], "attrs": {}}
    else:
        squeeze = helper.make_node("Squeeze", ["x"], ["s"], axes=[2, 3])
        unsqueeze = {"inputs": [], "attrs": {"axes": [1, 2]}}
    if opset >= 18:
        split = helper.make_node("Split", ["s"], ["p0", "p1", "p2"], axis=-1, num_outputs=3)
    elif opset >= 13:
        inits.append(const("sizes", [128, 128, 128]))
        split = helper.make_node("Split", ["s", "sizes"], ["p0", "p1", "p2"], axis=-1)
    else:
        split = helper.make_node("Split", ["s"], ["p0", "p1", "p2"], axis=-1, split=[128, 128, 128])
    readers = readers or [
        helper.make_node("Reshape", ["p0", "target"], ["y0"]),
        helper.make_node("Unsqueeze", ["p1", *unsqueeze["inputs"]], ["y1"], **unsqueeze["attrs"]),
        helper.make_node("Unsqueeze", ["p2", *unsqueeze["inputs"]], ["y2"], **unsqueeze["attrs"]),
    ]
    outputs = [tensor_info("y0", [1, 32, 4, 1]), tensor_info("y1", [1, 1, 1, 128]), tensor_info("y2", [1, 1, 1, 128])]
    return make_model([squeeze, split, *readers, *extra_nodes], [tensor_info("x", [1, 384, 1, 1])],
                      [*outputs, *extra_outputs], inits, opset=opset)


@pytest.mark.parametrize("opset", [11, 13, 18])
def test_the_facephys_squeeze_before_a_split_goes_bit_exact(opset):
    model = squeeze_split(opset)
    result = run(model)
    assert len(result.graph.node) == len(model.graph.node) - 1
    assert op_count(result, "Squeeze") == 0 and op_count(result, "Unsqueeze") == 0
    assert op_count(result, "Reshape") == 3
    split = node(result, "Split")
    assert split.input[0] == "x" and helper.get_attribute_value(split.attribute[0]) == 1
    assert [n.output[0] for n in result.graph.node if n.op_type == "Reshape"] == ["y0", "y1", "y2"]
    assert_same_outputs(model, result, random_feeds(model))


def test_an_unsqueeze_before_a_split_goes_and_each_reader_reshapes_to_its_own_shape_bit_exact():
    # x [4, 6] -> Unsqueeze [0, 2] -> [1, 4, 1, 6] -> Split axis 3 into 2 + 4: the Split moves to axis 1 of x.
    model = make_model([
        helper.make_node("Unsqueeze", ["x"], ["u"], axes=[0, 2]),
        helper.make_node("Split", ["u"], ["p0", "p1"], axis=3, split=[2, 4]),
        helper.make_node("Squeeze", ["p0"], ["y0"], axes=[0, 2]),  # [4, 2]
        helper.make_node("Flatten", ["p0"], ["y1"], axis=2),  # [4, 2] too
        helper.make_node("Reshape", ["p1", "copy_first"], ["y2"]),  # [0, -1]: [1, 16], not [4, 4]
    ], [tensor_info("x", [4, 6])], [tensor_info("y0", [4, 2]), tensor_info("y1", [4, 2]), tensor_info("y2", [1, 16])],
        [const("copy_first", [0, -1])], opset=11)
    result = run(model)
    assert op_count(result, "Unsqueeze") == 0 and len(result.graph.node) == 4
    split = node(result, "Split")
    assert split.input[0] == "x" and helper.get_attribute_value(split.attribute[0]) == 1
    targets = {n.output[0]: numpy_helper.to_array(next(i for i in result.graph.initializer if i.name == n.input[1]))
               for n in result.graph.node if n.op_type == "Reshape"}
    assert {k: v.tolist() for k, v in targets.items()} == {"y0": [4, 2], "y1": [4, 2], "y2": [1, 16]}
    assert_same_outputs(model, result, random_feeds(model))


def assert_unchanged(model):
    result = run(model)
    assert len(result.graph.node) == len(model.graph.node)
    assert sorted(n.op_type for n in result.graph.node) == sorted(n.op_type for n in model.graph.node)
    assert node(result, "Split").input[0] == node(model, "Split").input[0]
    assert_same_outputs(model, result, random_feeds(model))


def test_a_piece_read_by_another_op_keeps_the_squeeze():
    readers = [helper.make_node("Reshape", ["p0", "target"], ["y0"]), helper.make_node("Relu", ["p1"], ["r"]),
               helper.make_node("Unsqueeze", ["r"], ["y1"], axes=[1, 2]),
               helper.make_node("Unsqueeze", ["p2"], ["y2"], axes=[1, 2])]
    assert_unchanged(squeeze_split(11, readers=readers))


def test_a_squeeze_another_node_reads_stays():
    model = squeeze_split(11, extra_nodes=[helper.make_node("Relu", ["s"], ["z"])],
                          extra_outputs=[tensor_info("z", [1, 384])])
    assert_unchanged(model)


def test_a_piece_the_graph_returns_keeps_the_squeeze():
    assert_unchanged(squeeze_split(11, extra_outputs=[tensor_info("p1", [1, 128])]))


def test_a_reshape_that_merges_dims_before_the_split_stays():
    # [1, 4, 6] -> [1, 24]: the split axis is no one axis of the input
    model = make_model([
        helper.make_node("Reshape", ["x", "flat"], ["r"]),
        helper.make_node("Split", ["r"], ["p0", "p1"], axis=1, split=[12, 12]),
        helper.make_node("Reshape", ["p0", "back"], ["y0"]),
        helper.make_node("Reshape", ["p1", "back"], ["y1"]),
    ], [tensor_info("x", [1, 4, 6])], [tensor_info("y0", [2, 6]), tensor_info("y1", [2, 6])],
        [const("flat", [1, 24]), const("back", [2, 6])], opset=11)
    assert_unchanged(model)
