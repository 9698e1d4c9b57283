"""merge-siblings: one element-wise op with constants over the pieces of one value runs once,
bit-exact against ONNX Runtime."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from onnxfit.app.optimize import optimize_model
from tests.conftest import assert_same_outputs, make_model, op_count, tensor_info

RNG = np.random.default_rng(0)


def const(name, value):
    return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)


def per_layer_steps(layers=4, opset=17):
    """FacePhys's dt chain: a = dt * w_i, b = 1 - a, c = 1 - b; b and c read further."""
    nodes, inits, outputs = [helper.make_node("Squeeze", ["dt"], ["s"])], [const("one", 1.0)], []
    for i in range(layers):
        inits.append(const(f"w{i}", RNG.standard_normal(32)))
        nodes += [helper.make_node("Mul", ["s", f"w{i}"], [f"a{i}"]), helper.make_node("Sub", ["one", f"a{i}"], [f"b{i}"]),
                  helper.make_node("Sub", ["one", f"b{i}"], [f"c{i}"]),
                  helper.make_node("Mul", ["x", f"b{i}"], [f"xb{i}"]), helper.make_node("Add", [f"xb{i}", f"c{i}"], [f"y{i}"])]
        outputs.append(tensor_info(f"y{i}", [2, 32]))
    if opset < 13:
        nodes[0] = helper.make_node("Squeeze", ["dt"], ["s"], axes=[0])
    return make_model(nodes, [tensor_info("dt", [1]), tensor_info("x", [2, 32])], outputs, inits, opset=opset)


def feeds():
    return {"dt": np.array([1 / 30], np.float32), "x": RNG.standard_normal((2, 32)).astype(np.float32)}


@pytest.mark.parametrize("opset", [11, 13, 17])
def test_per_layer_constants_of_a_shared_value_run_as_one_op_per_step_bit_exact(opset):
    model = per_layer_steps(opset=opset)
    result = optimize_model(model, target="cpu", passes=["merge-siblings"])
    out = result.model
    # 4 Mul + 8 Sub -> 1 Mul, 2 Sub and 2 Splits (the one after the Mul goes when its pieces move on)
    assert op_count(out, "Sub") == 2 and op_count(out, "Split") == 2
    assert op_count(out, "Mul") == 1 + 4  # the merged one and the four x * b_i
    assert len(out.graph.node) == len(model.graph.node) - 12 + 5
    assert_same_outputs(model, out, feeds(), exact=True)


def test_two_siblings_stay_since_nothing_is_saved():
    model = per_layer_steps(layers=2)
    assert optimize_model(model, target="cpu", passes=["merge-siblings"]).model.graph.node == model.graph.node


def test_siblings_that_broadcast_the_shared_value_nowhere_stay():
    # x is [2, 32] like every output: no axis to put the pieces side by side on
    nodes, inits = [], []
    for i in range(3):
        inits.append(const(f"w{i}", RNG.standard_normal(32)))
        nodes.append(helper.make_node("Mul", ["x", f"w{i}"], [f"y{i}"]))
    model = make_model(nodes, [tensor_info("x", [2, 32])], [tensor_info(f"y{i}", [2, 32]) for i in range(3)], inits)
    assert op_count(optimize_model(model, target="cpu", passes=["merge-siblings"]).model, "Mul") == 3


def test_a_split_whose_pieces_each_take_the_same_op_runs_it_before_the_split():
    nodes = [helper.make_node("Split", ["x"], ["p0", "p1", "p2"], axis=1),
             helper.make_node("Relu", ["p1"], ["r1"])]  # another reader: the old Split stays for it
    inits = []
    for i in range(3):
        inits.append(const(f"w{i}", RNG.standard_normal((1, 4))))
        nodes.append(helper.make_node("Add", [f"p{i}", f"w{i}"], [f"y{i}"]))
    model = make_model(nodes, [tensor_info("x", [3, 12])],
                       [tensor_info(n, [3, 4]) for n in ("y0", "y1", "y2", "r1")], inits)
    out = optimize_model(model, target="cpu", passes=["merge-siblings"]).model
    assert op_count(out, "Add") == 1 and op_count(out, "Split") == 2
    assert_same_outputs(model, out, {"x": RNG.standard_normal((3, 12)).astype(np.float32)}, exact=True)


def test_pieces_read_by_different_ops_stay():
    nodes = [helper.make_node("Split", ["x"], ["p0", "p1", "p2"], axis=1),
             helper.make_node("Add", ["p0", "c"], ["y0"]), helper.make_node("Add", ["p1", "c"], ["y1"]),
             helper.make_node("Mul", ["p2", "c"], ["y2"])]
    model = make_model(nodes, [tensor_info("x", [3, 12])], [tensor_info(f"y{i}", [3, 4]) for i in range(3)],
                       [const("c", 2.0)])
    assert optimize_model(model, target="cpu", passes=["merge-siblings"]).model.graph.node == model.graph.node


def test_the_default_pipeline_runs_it_for_cpu_and_cuda():
    model = per_layer_steps()
    for target in ("cpu", "cuda"):
        out = optimize_model(model, target=target).model
        assert op_count(out, "Split") == 2
        assert_same_outputs(model, out, feeds(), exact=True)


X_SHAPES = [(), (1, 4), (3, 1), (1, 1)]
CONSTANT_SHAPES = [(3, 4), (3, 4), (4,), (3, 1), (1, 4), ()]


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(X_SHAPES),
       st.lists(st.tuples(st.sampled_from(["Add", "Sub", "Mul", "Div"]), st.integers(0, 1),
                          st.sampled_from(CONSTANT_SHAPES), st.booleans()), min_size=1, max_size=6),
       st.booleans(), st.integers(0, 2**16))
def test_random_siblings_and_their_readers_stay_bit_exact(x_shape, siblings, one_op, seed):
    """Any mix of ops, sides and constant shapes on one value (``one_op``: all of the first's op
    and side, so that they merge), each result maybe read once more by the same kind of node:
    merged or not, the outputs are bit for bit the original's."""
    rng = np.random.default_rng(seed)
    nodes, inits, outputs = [], [], []
    for i, (op, side, shape, follow) in enumerate(siblings):
        op, side = (siblings[0][0], siblings[0][1]) if one_op else (op, side)
        inits.append(const(f"c{i}", rng.standard_normal(shape) + 3.0))
        inputs = ["x", f"c{i}"] if side == 0 else [f"c{i}", "x"]
        nodes.append(helper.make_node(op, inputs, [f"s{i}"]))
        out = f"s{i}"
        if follow:
            inits.append(const(f"d{i}", rng.standard_normal(shape) + 3.0))
            nodes.append(helper.make_node(op, [f"s{i}", f"d{i}"], [f"f{i}"]))
            out = f"f{i}"
        outputs.append(tensor_info(out, list(np.broadcast_shapes(x_shape, shape))))
    model = make_model(nodes, [tensor_info("x", list(x_shape))], outputs, inits)
    result = optimize_model(model, target="cpu", passes=["merge-siblings"])
    feeds = {"x": np.asarray(rng.standard_normal(x_shape) + 3.0, dtype=np.float32)}
    assert_same_outputs(model, result.model, feeds, exact=True)
    assert len(result.model.graph.node) <= len(model.graph.node)
