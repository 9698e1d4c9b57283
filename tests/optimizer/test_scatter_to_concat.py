"""scatter-to-concat: ScatterND writes of one box with constant indices (streaming-cache writes)
become Slices and Concats the CoreML EP takes; bit-exact against ONNX Runtime CPU, and left alone
where the indices are no box, values are combined, or the target runs ScatterND itself."""

from __future__ import annotations


import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxfit.app.optimize import optimize_model
from onnxfit.targets.partitions import estimate_partitions
from tests.conftest import assert_same_outputs, make_model, op_count, random_feeds, tensor_info



def box_indices(ranges) -> np.ndarray:
    """The index tuples of a box in row-major order, shaped [len_0, ..., len_{k-1}, k] as torch writes them."""
    axes = [np.arange(a, b) for a, b in ranges]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).astype(np.int64)


def scatter_model(data_shape, indices, updates_shape=None, opset=17, dtype=TensorProto.FLOAT, **attrs):
    """``y = ScatterND(tanh(x), indices, tanh(u))``: values from the EP, constant indices; the
    output is a graph output, so its name must stay."""
    indices = np.asarray(indices, np.int64)
    if updates_shape is None:
        updates_shape = list(indices.shape[:-1]) + list(data_shape[indices.shape[-1]:])
    op = "Tanh" if dtype == TensorProto.FLOAT else "Identity"
    nodes = [helper.make_node(op, ["x"], ["data"]), helper.make_node(op, ["u"], ["updates"]),
             helper.make_node("ScatterND", ["data", "indices", "updates"], ["y"], **attrs)]
    return make_model(nodes, [tensor_info("x", data_shape, dtype), tensor_info("u", updates_shape, dtype)],
                      [tensor_info("y", data_shape, dtype)], [numpy_helper.from_array(indices, "indices")], opset=opset)


def coreml(model, version="1.32", target="coreml"):
    return optimize_model(model, target=target, ort_version=version, passes=["scatter-to-concat"])


def assert_rewritten(model, seeds=(0, 1)):
    result = coreml(model)
    assert op_count(result.model, "ScatterND") == 0
    after = estimate_partitions(result.model, "coreml", (1, 32))
    assert after.partitions == 1 and after.nodes_on_ep == after.total_nodes
    for seed in seeds:
        assert_same_outputs(model, result.model, random_feeds(model, seed))
    return result


@pytest.mark.parametrize("opset", [11, 13, 18])
def test_cache_write_at_the_end_of_an_axis(opset):
    """gtcrn's form: ``cache[:, :, -4:, :] = new`` with every index spelled out (k = rank)."""
    model = scatter_model([1, 16, 16, 33], box_indices([(0, 1), (0, 16), (12, 16), (0, 33)]), opset=opset)
    before = estimate_partitions(model, "coreml", (1, 32))
    assert before.nodes_on_ep == before.total_nodes - 1  # the ScatterND
    result = assert_rewritten(model)
    assert [n.op_type for n in result.model.graph.node if n.op_type in ("Slice", "Concat")] == ["Slice", "Concat"]


def test_cache_write_of_one_leading_position():
    """gtcrn's other form: ``cache[1] = new``, indices [[1]], updates [1, ...]."""
    for row in (0, 1, -1):
        assert_rewritten(scatter_model([2, 3, 1, 1, 16], [[row]]))


def test_block_in_the_middle_of_an_axis():
    model = scatter_model([4, 10, 3], box_indices([(0, 4), (3, 7)]))
    result = assert_rewritten(model)
    assert op_count(result.model, "Slice") == 2 and op_count(result.model, "Concat") == 1


@pytest.mark.parametrize("ranges", [[(1, 3), (2, 5)], [(0, 2), (5, 8)], [(4, 6), (0, 3), (1, 4)]])
def test_block_partial_on_several_axes(ranges):
    shape = [6, 8, 5]
    model = scatter_model(shape, box_indices(ranges))
    result = assert_rewritten(model)
    partial = sum(1 for (a, b), d in zip(ranges, shape) if b - a < d)
    assert op_count(result.model, "Concat") == partial


def test_negative_indices_count_from_the_end():
    indices = box_indices([(0, 2), (5, 8)])
    indices[..., 1] -= 8  # -3, -2, -1
    assert_rewritten(scatter_model([2, 8, 3], indices))


def test_updates_shaped_otherwise_are_reshaped_to_the_box():
    # Four rows written as a [2, 2] grid of tuples: updates [2, 2, 4] -> the box [4, 4].
    model = scatter_model([6, 4], np.arange(1, 5).reshape(2, 2, 1))
    result = assert_rewritten(model)
    assert op_count(result.model, "Reshape") == 1
    # Every row written: the output is the updates, reshaped.
    whole = scatter_model([6, 4], np.arange(6).reshape(2, 3, 1))
    result = assert_rewritten(whole)
    assert [n.op_type for n in result.model.graph.node if n.op_type != "Tanh"] == ["Reshape"]


def test_integer_data_is_copied_too():
    model = scatter_model([3, 5], box_indices([(1, 2), (0, 5)]), dtype=TensorProto.INT64)
    assert_rewritten(model)


@pytest.mark.parametrize("reduction", ["add", "mul", "max", "min"])
def test_reduction_stays(reduction):
    model = scatter_model([2, 8, 3], box_indices([(0, 2), (5, 8)]), opset=18, reduction=reduction)
    result = coreml(model)
    assert op_count(result.model, "ScatterND") == 1
    assert any(f"reduction '{reduction}'" in line for r in result.reports for line in r.skipped)


@pytest.mark.parametrize("indices, why", [
    ([[0], [2]], "do not fill one box"),  # a gap
    ([[1], [1]], "do not fill one box"),  # a duplicate: the last write wins, in no stated order
    ([[2], [1]], "not one box in row-major order"),  # a box, listed backwards
    ([[0, 1], [1, 0]], "do not fill one box"),  # a diagonal
    ([[4]], "out of range"),
])
def test_indices_that_are_no_box_stay(indices, why):
    result = coreml(scatter_model([4, 3], indices))
    assert op_count(result.model, "ScatterND") == 1
    assert any(why in line for r in result.reports for line in r.skipped)


def test_computed_indices_stay():
    nodes = [helper.make_node("ScatterND", ["x", "i", "u"], ["y"])]
    model = make_model(nodes, [tensor_info("x", [4, 3]), tensor_info("i", [1, 1], TensorProto.INT64),
                               tensor_info("u", [1, 3])], [tensor_info("y", [4, 3])])
    assert op_count(coreml(model).model, "ScatterND") == 1


@pytest.mark.parametrize("target", ["cpu", "cuda"])
def test_targets_that_run_scatter_nd_leave_it(target):
    result = coreml(scatter_model([1, 16, 16, 33], box_indices([(0, 1), (0, 16), (12, 16), (0, 33)])), target=target)
    assert op_count(result.model, "ScatterND") == 1
    assert not any(r.skipped for r in result.reports)


def test_gtcrn_cache_writes_all_become_concats_bit_exact(zoo_model):
    from tests.zoo.manifest import _gtcrn_feeds

    model = onnx.load(zoo_model("gtcrn_simple"))
    assert op_count(model, "ScatterND") == 18
    result = coreml(model)
    assert op_count(result.model, "ScatterND") == 0
    assert [o.name for o in result.model.graph.output] == [o.name for o in model.graph.output]
    feeds = _gtcrn_feeds(1)
    rng = np.random.default_rng(1)
    noisy = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in feeds.items()}
    for f in (feeds, noisy):
        assert_same_outputs(model, result.model, f)
    before = estimate_partitions(model, "coreml", (1, 32)).partitions
    assert estimate_partitions(result.model, "coreml", (1, 32)).partitions < before
