"""lower-rank: element-wise regions above the target EP's rank limit run on fewer dims, bit-exact
against ONNX Runtime, with the interface (names, shapes) kept and no Reshape pairs left."""

from __future__ import annotations

import collections

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxfit.app.optimize import optimize_model
from onnxfit.optimizer.passes.lower_rank import ELEMENTWISE
from onnxfit.shapes import infer_shapes
from onnxfit.targets.partitions import estimate_partitions
from onnxfit.targets.presets import get_target
from tests.conftest import assert_same_outputs, make_model, op_count, random_feeds, tensor_info


def const(name, value):
    return numpy_helper.from_array(np.asarray(value), name)


def lower(model, target="nnapi"):
    return optimize_model(model, target=target, passes=["lower-rank"])


def elementwise_ranks(model) -> dict[str, int]:
    """Rank of every value an element-wise node writes (onnx shape inference), by node name."""
    shapes = infer_shapes(model)
    return {n.name: len(shapes[n.output[0]]) for n in model.graph.node if n.op_type in ELEMENTWISE}


def reshape_pairs(model) -> list[str]:
    written_by = {out: n.op_type for n in model.graph.node for out in n.output}
    return [n.name for n in model.graph.node if n.op_type == "Reshape" and written_by.get(n.input[0]) == "Reshape"]


def time_distributed_model():
    """tf2onnx's time-distributed EMA: Reshape to rank 5, element-wise with a rank-5 state input
    and [8] / [1, 1, 1, 1, 8] parameters, the new state returned (rank 5), Reshape back, Relu."""
    rng = np.random.default_rng(1)
    nodes = [
        helper.make_node("Reshape", ["x", "to5"], ["x5"], name="to_rank5"),
        helper.make_node("Mul", ["x5", "alpha"], ["ax"], name="mul_alpha"),
        helper.make_node("Mul", ["state_in", "beta"], ["bs"], name="mul_beta"),
        helper.make_node("Add", ["ax", "bs"], ["state_out"], name="ema"),
        helper.make_node("Sub", ["x5", "state_out"], ["d"], name="diff"),
        helper.make_node("Abs", ["d"], ["a"], name="abs"),
        helper.make_node("Sqrt", ["a"], ["r"], name="sqrt"),
        helper.make_node("Clip", ["r", "lo", "hi"], ["c"], name="clip"),
        helper.make_node("Mul", ["c", "gamma"], ["g"], name="mul_gamma"),
        helper.make_node("Reshape", ["g", "to4"], ["g4"], name="to_rank4"),
        helper.make_node("Relu", ["g4"], ["y"], name="relu"),
    ]
    weights = [const("to5", np.array([1, 1, 6, 6, 8], np.int64)), const("to4", np.array([1, 6, 6, 8], np.int64)),
               const("alpha", rng.random(8, dtype=np.float32)), const("beta", rng.random(8, dtype=np.float32)),
               const("gamma", rng.random((1, 1, 1, 1, 8), dtype=np.float32)),
               const("lo", np.float32(0.1)), const("hi", np.float32(1.5))]
    return make_model(nodes, [tensor_info("x", [1, 6, 6, 8]), tensor_info("state_in", [1, 1, 6, 6, 8])],
                      [tensor_info("y", [1, 6, 6, 8]), tensor_info("state_out", [1, 1, 6, 6, 8])], weights)


def test_a_time_distributed_region_runs_at_rank_4_bit_exact_with_its_interface_kept():
    model = time_distributed_model()
    result = lower(model)
    assert result.changed
    assert set(elementwise_ranks(result.model).values()) == {4}
    assert_same_outputs(model, result.model, random_feeds(model))
    assert result.model.graph.output == model.graph.output  # names and rank-5 shapes
    # The producing Reshape writes rank 4 itself and the consuming Reshape reads rank 4: two
    # Reshapes added, for the state input and the state output.
    assert op_count(result.model, "Reshape") == 4 and not reshape_pairs(result.model)


def test_broadcast_constants_stay_right_aligned():
    result = lower(time_distributed_model())
    read = {i for n in result.model.graph.node if n.op_type in ("Mul", "Clip") for i in n.input}
    shapes = {t.name: list(t.dims) for t in result.model.graph.initializer if t.name in read}
    assert shapes["alpha"] == shapes["beta"] == [8]  # lacks the dropped axis: the same constant
    assert [1, 1, 1, 8] in shapes.values() and "gamma" not in shapes  # [1, 1, 1, 1, 8] as a new constant
    assert shapes["lo"] == shapes["hi"] == []


def test_nnapi_partitions_go_down_and_the_target_pipeline_leaves_no_reshape_pairs():
    model = time_distributed_model()
    result = optimize_model(model, target="nnapi")
    assert "lower-rank" in get_target("nnapi").passes
    before = estimate_partitions(model, "nnapi", (1, 32))
    after = estimate_partitions(result.model, "nnapi", (1, 32))
    assert (before.partitions, after.partitions) == (2, 1)
    # Left on the CPU: only the Reshape of the rank-5 state input, before the partition.
    assert [u.name for u in after.unsupported] == ["state_in_rank4"]
    assert not reshape_pairs(result.model)
    assert_same_outputs(model, result.model, random_feeds(model))


@pytest.mark.parametrize("target", ["cpu", "cuda", "openvino"])
def test_targets_without_a_rank_limit_are_left_alone(target):
    assert not lower(time_distributed_model(), target).changed


def test_coreml_lowers_rank_6_to_5():
    nodes = [helper.make_node("Mul", ["x", "w"], ["m"]), helper.make_node("Tanh", ["m"], ["y"])]
    model = make_model(nodes, [tensor_info("x", [1, 1, 2, 3, 4, 5])], [tensor_info("y", [1, 1, 2, 3, 4, 5])],
                       [const("w", np.random.default_rng(0).random((3, 1, 5), dtype=np.float32))])
    result = lower(model, "coreml")
    assert set(elementwise_ranks(result.model).values()) == {5}
    assert_same_outputs(model, result.model, random_feeds(model))


def test_a_region_between_nodes_the_ep_refuses_stays_rather_than_become_an_island():
    # rivagan's Conv3d blocks: rank-5 Conv (NNAPI: rank <= 4) -> Mul/Add/Tanh -> Conv
    rng = np.random.default_rng(3)
    nodes = [helper.make_node("Conv", ["x", "k1"], ["c1"], name="conv1"),
             helper.make_node("Mul", ["c1", "s"], ["m"], name="mul"), helper.make_node("Tanh", ["m"], ["t"], name="tanh"),
             helper.make_node("Conv", ["t", "k2"], ["y"], name="conv2")]
    model = make_model(nodes, [tensor_info("x", [1, 2, 1, 6, 6])], [tensor_info("y", [1, 2, 1, 6, 6])],
                       [const("k1", rng.random((2, 2, 1, 1, 1), dtype=np.float32)),
                        const("k2", rng.random((2, 2, 1, 1, 1), dtype=np.float32)),
                        const("s", rng.random((2, 1, 1, 1), dtype=np.float32))])
    result = lower(model)
    assert not result.changed
    report = next(r for r in result.reports if r.name == "lower-rank")
    assert "every node next to it stays on the CPU" in report.skipped[0]
    assert estimate_partitions(result.model, "nnapi", (1, 32)).partitions == 0


def test_a_region_without_enough_unit_axes_is_left_alone_and_reported():
    nodes = [helper.make_node("Add", ["x", "b"], ["s"], name="add"),
             helper.make_node("Relu", ["s"], ["y"], name="relu")]
    model = make_model(nodes, [tensor_info("x", [2, 3, 4, 5, 6])], [tensor_info("y", [2, 3, 4, 5, 6])],
                       [const("b", np.ones(6, np.float32))])
    result = lower(model)
    assert not result.changed
    report = next(r for r in result.reports if r.name == "lower-rank")
    assert report.skipped == ["add and 1 more element-wise nodes: rank 5 with 0 axes of size 1 in every value: "
                              "1 needed for rank <= 4"]


def test_a_value_read_by_an_axis_carrying_op_is_reshaped_back_for_it():
    nodes = [
        helper.make_node("Relu", ["x4"], ["r"], name="relu"),  # on the EP: the region is no island
        helper.make_node("Reshape", ["r", "to5"], ["x"], name="to_rank5"),
        helper.make_node("Mul", ["x", "w"], ["m"], name="mul"),
        helper.make_node("Sigmoid", ["m"], ["s"], name="sigmoid"),
        helper.make_node("ReduceMean", ["m"], ["mean"], axes=[2, 3], keepdims=1, name="mean"),
        helper.make_node("Transpose", ["s"], ["t"], perm=[0, 1, 4, 2, 3], name="transpose"),
    ]
    model = make_model(nodes, [tensor_info("x4", [1, 3, 4, 5])],
                       [tensor_info("mean", [1, 1, 1, 1, 5]), tensor_info("t", [1, 1, 5, 3, 4])],
                       [const("w", np.random.default_rng(2).random(5, dtype=np.float32)),
                        const("to5", np.array([1, 1, 3, 4, 5], np.int64))], opset=13)
    result = lower(model)
    assert elementwise_ranks(result.model) == {"relu": 4, "mul": 4, "sigmoid": 4}
    shapes = infer_shapes(result.model)
    readers = {n.op_type: n.input[0] for n in result.model.graph.node if n.op_type in ("ReduceMean", "Transpose")}
    assert {op: shapes[name] for op, name in readers.items()} == {"ReduceMean": (1, 1, 3, 4, 5),
                                                                   "Transpose": (1, 1, 3, 4, 5)}
    assert readers == {"ReduceMean": "m", "Transpose": "s"}  # the values keep their names
    assert_same_outputs(model, result.model, random_feeds(model))


def test_a_region_inside_an_if_branch_reading_an_outer_value_is_lowered():
    branch = helper.make_graph([helper.make_node("Mul", ["x", "x"], ["sq"]), helper.make_node("Exp", ["sq"], ["e"])],
                               "then", [], [tensor_info("e", [1, 1, 2, 3, 4])])
    # the else branch reads another input: a CPU reader of x would make the region an island (rule 6)
    other = helper.make_graph([helper.make_node("Neg", ["x2"], ["n"])], "else", [], [tensor_info("n", [1, 1, 2, 3, 4])])
    nodes = [helper.make_node("If", ["cond"], ["y"], then_branch=branch, else_branch=other)]
    model = make_model(nodes, [tensor_info("cond", [], TensorProto.BOOL), tensor_info("x", [1, 1, 2, 3, 4]),
                               tensor_info("x2", [1, 1, 2, 3, 4])], [tensor_info("y", [1, 1, 2, 3, 4])])
    result = lower(model)
    assert result.changed
    for cond in (True, False):
        feeds = {"cond": np.array(cond), **{k: v for k, v in random_feeds(model).items() if k != "cond"}}
        assert_same_outputs(model, result.model, feeds)
    then = next(a.g for a in result.model.graph.node[0].attribute if a.name == "then_branch")
    assert [n.op_type for n in then.node].count("Reshape") == 2  # x in, e back out


# ------------------------------------------------------------------------------------- FacePhys


def test_facephys_keeps_no_element_wise_node_above_rank_4_on_nnapi_and_stays_bit_exact():
    from tests.zoo.test_facephys import MODEL, stream

    facephys = onnx.load(MODEL)
    # reciprocal-to-div left out of both: ONNX Runtime's DivMulFusion rounds its Div(1, x) * y once.
    exact = [p for p in get_target("nnapi").passes if p != "reciprocal-to-div"]
    lowered = optimize_model(facephys, target="nnapi", passes=exact).model
    without = optimize_model(facephys, target="nnapi", passes=[p for p in exact if p != "lower-rank"]).model
    before = estimate_partitions(without, "nnapi", (1, 32))
    after = estimate_partitions(lowered, "nnapi", (1, 32))
    assert after.partitions < before.partitions
    rank_5 = collections.Counter(u.op for u in after.unsupported if "rank 5" in u.reason)
    # Left: the Reshapes of the rank-5 graph inputs (the interface stays) and a ReduceMean of a
    # Reshape (no element-wise region; axis-carrying ops are not lowered).
    graph_inputs = {i.name for i in lowered.graph.input}
    assert rank_5 == {"Reshape": 17, "ReduceMean": 1}
    assert all(u.reason.split("'")[1] in graph_inputs for u in after.unsupported
               if "rank 5" in u.reason and u.op == "Reshape")
    for frame, plain in zip(stream(lowered, frames=5), stream(without, frames=5)):
        assert all(np.array_equal(a, b) for a, b in zip(frame, plain))
