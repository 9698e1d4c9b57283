"""gather-flat-indices: a sliding-window Gather (constant indices [K, W]) read only by Reshapes reads
its indices flattened, so no value exceeds the target's rank limit; bit-exact against ONNX Runtime
CPU, and left alone where a reader sees the shape, the rank fits, or the target has no limit."""

from __future__ import annotations


import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper, shape_inference

from onnxfit.app.optimize import optimize_model
from onnxfit.optimizer.selection import select_passes
from onnxfit.targets.partitions import estimate_partitions
from tests.conftest import assert_same_outputs, make_model, op_count, random_feeds, tensor_info



def windows(count, width, dtype=np.int64) -> np.ndarray:
    """torch unfold's indices: ``count`` windows of ``width`` consecutive positions, step 1."""
    return (np.arange(count)[:, None] + np.arange(width)[None, :]).astype(dtype)


def window_model(data_shape, indices, axis, targets, opset=11, readers=None):
    """``y_i = Reshape(Gather(tanh(x), indices, axis), target_i)``; ``readers`` replaces the Reshapes."""
    nodes = [helper.make_node("Tanh", ["x"], ["data"]),
             helper.make_node("Gather", ["data", "indices"], ["windows"], axis=axis)]
    inits = [numpy_helper.from_array(np.asarray(indices), "indices")]
    outputs = []
    for i, target in enumerate(targets):
        inits.append(numpy_helper.from_array(np.asarray(target, np.int64), f"target{i}"))
        nodes.append(helper.make_node("Reshape", ["windows", f"target{i}"], [f"y{i}"]))
        outputs.append(helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, None))
    for node in readers or []:
        nodes.append(node)
        outputs.append(helper.make_tensor_value_info(node.output[0], TensorProto.FLOAT, None))
    return make_model(nodes, [tensor_info("x", data_shape)], outputs, inits, opset=opset)


def rewrite(model, target="coreml"):
    return optimize_model(model, target=target, ort_version="1.32", passes=["gather-flat-indices"])


def max_rank(model) -> int:
    inferred = shape_inference.infer_shapes(model, strict_mode=True)
    values = [*inferred.graph.value_info, *inferred.graph.output]
    return max(len(v.type.tensor_type.shape.dim) for v in values)


def indices_shape(model) -> list[int]:
    gather = next(n for n in model.graph.node if n.op_type == "Gather")
    return list(next(t for t in model.graph.initializer if t.name == gather.input[1]).dims)


def assert_unchanged(model, target="coreml", why=None):
    result = rewrite(model, target)
    assert indices_shape(result.model) == indices_shape(model)
    report = next(r for r in result.reports if r.name == "gather-flat-indices")
    assert not report.changed
    if why is not None:
        assert any(why in line for line in report.skipped), report.skipped
    return result


def test_gtcrn_sliding_windows_stay_within_rank_5_bit_exact():
    """gtcrn's form: [1, 8, 1, 1, 35], windows [3, 33] on axis 4 -> rank 6, Reshape [1, 24, 1, 33]."""
    model = window_model([1, 8, 1, 1, 35], windows(3, 33), 4, [[1, 24, 1, 33]])
    assert max_rank(model) == 6
    result = rewrite(model)
    assert indices_shape(result.model) == [99]
    assert max_rank(result.model) == 5
    assert op_count(result.model, "Gather") == 1 and op_count(result.model, "Reshape") == 1
    before = estimate_partitions(model, "coreml", (1, 32))
    after = estimate_partitions(result.model, "coreml", (1, 32))
    assert before.nodes_on_ep == before.total_nodes - 2  # the Gather and the Reshape
    assert after.partitions == 1 and after.nodes_on_ep == after.total_nodes
    for seed in (0, 1):
        assert_same_outputs(model, result.model, random_feeds(model, seed))


def test_every_reader_a_reshape_negative_axis_and_indices_int32():
    indices = windows(4, 5, np.int32)
    indices[1] -= 12  # negative positions count from the end, as Gather reads them
    model = window_model([2, 3, 1, 1, 12], indices, -1, [[2, 3, 20], [-1, 5], [6, 1, 4, 5]])
    result = rewrite(model)
    gather = next(n for n in result.model.graph.node if n.op_type == "Gather")
    flat = next(t for t in result.model.graph.initializer if t.name == gather.input[1])
    assert flat.data_type == TensorProto.INT32 and list(flat.dims) == [20]
    assert max_rank(result.model) == 5
    assert_same_outputs(model, result.model, random_feeds(model))


def test_nnapi_limit_4_on_a_rank_5_output():
    model = window_model([1, 8, 1, 35], windows(3, 33), 3, [[1, 24, 1, 33]])
    assert_unchanged(model, "coreml")  # rank 5 is within CoreML's limit
    result = rewrite(model, "nnapi")
    assert indices_shape(result.model) == [99]
    assert max_rank(result.model) == 4
    assert_same_outputs(model, result.model, random_feeds(model))


def test_output_rank_within_the_limit_stays():
    assert_unchanged(window_model([1, 8, 1, 35], windows(3, 33), 3, [[1, 24, 1, 33]]))
    assert_unchanged(window_model([1, 8, 35], windows(3, 33), 2, [[1, 24, 33]]), "nnapi")


def test_a_reader_that_is_not_a_reshape_stays():
    model = window_model([1, 8, 1, 1, 35], windows(3, 33), 4, [[1, 24, 1, 33]],
                         readers=[helper.make_node("Relu", ["windows"], ["r"])])
    assert_unchanged(model, why="Relu")


def test_a_reshape_target_with_0_stays():
    # 0 copies the input's dim at that place: after flattening it would copy another one.
    model = window_model([1, 8, 1, 1, 35], windows(3, 33), 4, [[0, 24, 1, 33]])
    assert_unchanged(model, why="0 in its target")


def test_a_graph_output_stays():
    model = window_model([1, 8, 1, 1, 35], windows(3, 33), 4, [[1, 24, 1, 33]])
    model.graph.output.append(helper.make_tensor_value_info("windows", TensorProto.FLOAT, None))
    assert_unchanged(model, why="graph output")


def test_data_above_the_limit_too_stays():
    model = window_model([1, 2, 1, 1, 1, 35], windows(3, 33), 5, [[1, 6, 1, 33]])
    assert_unchanged(model, why="data is rank 6")


def test_targets_without_a_rank_limit_leave_it():
    model = window_model([1, 8, 1, 1, 35], windows(3, 33), 4, [[1, 24, 1, 33]])
    result = assert_unchanged(model, "cpu")
    assert not any(r.skipped for r in result.reports)


def test_the_default_coreml_pipeline_removes_the_unfold_transpose_and_the_rank_6_value():
    """torch's unfold as exported: Gather -> Transpose moving a unit axis -> Reshape."""
    nodes = [helper.make_node("Tanh", ["x"], ["data"]),
             helper.make_node("Gather", ["data", "indices"], ["windows"], axis=4),
             helper.make_node("Transpose", ["windows"], ["moved"], perm=[0, 1, 2, 4, 3, 5]),
             helper.make_node("Reshape", ["moved", "target"], ["flat"]),
             helper.make_node("Relu", ["flat"], ["y"])]
    inits = [numpy_helper.from_array(windows(3, 33), "indices"),
             numpy_helper.from_array(np.array([1, 24, 1, 33], np.int64), "target")]
    model = make_model(nodes, [tensor_info("x", [1, 8, 1, 1, 35])], [tensor_info("y", [1, 24, 1, 33])], inits,
                       opset=11)
    result = optimize_model(model, target="coreml", ort_version="1.32")
    assert max_rank(result.model) == 5
    assert op_count(result.model, "Transpose") == 0
    after = estimate_partitions(result.model, "coreml", (1, 32))
    assert after.partitions == 1 and after.nodes_on_ep == after.total_nodes
    assert_same_outputs(model, result.model, random_feeds(model))


def test_gtcrn_coreml_partitions_and_outputs(zoo_model):
    from tests.zoo.manifest import _gtcrn_feeds

    model = onnx.load(zoo_model("gtcrn_simple"))
    without = [p for p in select_passes("coreml") if p != "gather-flat-indices"]
    before = optimize_model(model, target="coreml", ort_version="1.32", passes=without)
    after = optimize_model(model, target="coreml", ort_version="1.32")
    report = next(r for r in after.reports if r.name == "gather-flat-indices")
    assert report.rewritten == 7 and not report.skipped
    assert max_rank(before.model) == 6 and max_rank(after.model) == 5
    partitions_before = estimate_partitions(before.model, "coreml", (1, 32))
    partitions_after = estimate_partitions(after.model, "coreml", (1, 32))
    assert partitions_before.partitions == 10
    assert partitions_after.partitions == 3
    # What stays on the CPU: the 4 GRUs over a sequence (rnn-step unrolls one step only).
    assert sorted({u.op for u in partitions_after.unsupported}) == ["GRU"]
    assert len(partitions_after.unsupported) == 4
    feeds = _gtcrn_feeds(1)
    rng = np.random.default_rng(1)
    noisy = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in feeds.items()}
    for f in (feeds, noisy):
        assert_same_outputs(model, after.model, f, exact=False, atol=1e-5, rtol=1e-5)
        assert_same_outputs(before.model, after.model, f)  # the rule itself is bit-exact
