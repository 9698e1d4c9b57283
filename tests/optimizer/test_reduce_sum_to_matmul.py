"""reduce-sum-to-matmul: a dot product along the last axis, ``ReduceSum(Mul(x, v), axes=[-1])``,
becomes ``MatMul(x, Reshape(v, [K, 1]))``; checked against ONNX Runtime within float noise, and
left alone wherever it would compute something else."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxfit.app.optimize import optimize_model
from onnxfit.optimizer.selection import select_passes
from tests.conftest import assert_same_outputs, make_model, op_count, random_feeds, tensor_info

RULE = ["reduce-sum-to-matmul"]


def rule(model, target="cpu"):
    return optimize_model(model, target=target, passes=RULE)


def reduce_sum(inp, out, axes, opset, keepdims=None):
    """A ReduceSum in its opset's form: axes as an attribute before 13, a constant input from 13."""
    attrs = {} if keepdims is None else {"keepdims": keepdims}
    if opset < 13:
        return [helper.make_node("ReduceSum", [inp], [out], axes=axes, **attrs)], []
    return [helper.make_node("ReduceSum", [inp, "axes"], [out], **attrs)], [numpy_helper.from_array(
        np.array(axes, np.int64), "axes")]


def dot_model(x_shape=(1, 32, 4, 128), v_shape=(1, 1, 1, 128), axes=(-1,), opset=17, swap=False, keepdims=None,
              extra_outputs=()):
    """``ReduceSum(Mul(x, v))`` with x and v graph inputs."""
    mul = helper.make_node("Mul", ["v", "x"] if swap else ["x", "v"], ["m"])
    reduce, inits = reduce_sum("m", "y", list(axes), opset, keepdims)
    product = np.broadcast_shapes(x_shape, v_shape)
    summed = [axis % len(product) for axis in axes]
    y_shape = [1 if i in summed else d for i, d in enumerate(product) if keepdims != 0 or i not in summed]
    outputs = [tensor_info("y", y_shape), *(tensor_info(name, list(product)) for name in extra_outputs)]
    return make_model([mul, *reduce], [tensor_info("x", list(x_shape)), tensor_info("v", list(v_shape))], outputs,
                      inits, opset=opset)


def assert_rewritten(model, result):
    assert op_count(result.model, "MatMul") == 1
    assert op_count(result.model, "Mul") == 0 and op_count(result.model, "ReduceSum") == 0
    assert_same_outputs(model, result.model, random_feeds(model), exact=False, atol=1e-5, rtol=1e-5)


def test_facephys_dot_product_of_an_unsqueezed_vector_becomes_one_matmul():
    # FacePhys: x [1, 32, 4, 128] times ExpandDims of a [1, 128] state, summed over the last axis.
    unsqueeze = helper.make_node("Unsqueeze", ["w", "unsq_axes"], ["v"])
    mul = helper.make_node("Mul", ["x", "v"], ["m"], name="mul_68")
    reduce, inits = reduce_sum("m", "y", [3], 13, keepdims=1)
    model = make_model([unsqueeze, mul, *reduce], [tensor_info("x", [1, 32, 4, 128]), tensor_info("w", [1, 128])],
                       [tensor_info("y", [1, 32, 4, 1])],
                       [*inits, numpy_helper.from_array(np.array([1, 2], np.int64), "unsq_axes")], opset=13)
    result = rule(model)
    assert_rewritten(model, result)
    matmul = next(n for n in result.model.graph.node if n.op_type == "MatMul")
    assert matmul.input[0] == "x" and matmul.output[0] == "y"
    report = next(r for r in result.reports if r.name == "reduce-sum-to-matmul")
    assert report.rewritten == 1


def test_operands_in_either_order_are_rewritten():
    model = dot_model(swap=True)
    assert_rewritten(model, rule(model))


@pytest.mark.parametrize("v_shape", [(128,), (1, 128)])
def test_a_vector_of_lower_rank_is_rewritten(v_shape):
    model = dot_model(v_shape=v_shape)
    assert_rewritten(model, rule(model))


@pytest.mark.parametrize("opset", [11, 13, 18])
def test_both_axes_forms_are_read(opset):
    model = dot_model(x_shape=(2, 3, 16), v_shape=(1, 1, 16), axes=(2,), opset=opset)
    assert_rewritten(model, rule(model))


def test_float16_is_rewritten_within_its_precision():
    model = dot_model(x_shape=(2, 8, 16), v_shape=(16,))
    for value in (*model.graph.input, *model.graph.output):
        value.type.tensor_type.elem_type = TensorProto.FLOAT16
    result = rule(model)
    assert op_count(result.model, "MatMul") == 1 and op_count(result.model, "ReduceSum") == 0
    assert_same_outputs(model, result.model, random_feeds(model), exact=False, atol=1e-2, rtol=1e-2)


def test_only_where_the_target_ep_takes_the_matmul():
    # CoreML's NeuralNetwork MatMul builder takes a constant second input only: a column of a
    # graph input stays a Mul and a ReduceSum there, a column of weights becomes a MatMul.
    model = dot_model(x_shape=(1, 4, 16), v_shape=(1, 1, 16))
    result = rule(model, target="coreml-nn")
    assert op_count(result.model, "MatMul") == 0 and op_count(result.model, "ReduceSum") == 1
    report = next(r for r in result.reports if r.name == "reduce-sum-to-matmul")
    assert report.skipped == ["ReduceSum -> y: the target EP takes no MatMul of these inputs"]
    del model.graph.input[1]
    model.graph.initializer.append(numpy_helper.from_array(
        np.random.default_rng(1).standard_normal((1, 1, 16)).astype(np.float32), "v"))
    assert_rewritten(model, rule(model, target="coreml-nn"))


def test_a_vector_broadcast_on_another_axis_stays():
    # v [1, 32, 1, 128] varies along axis 1: a different vector for each row, not one column.
    result = rule(dot_model(v_shape=(1, 32, 1, 128)))
    assert op_count(result.model, "MatMul") == 0 and op_count(result.model, "ReduceSum") == 1


def test_an_x_that_the_mul_widens_stays():
    # v [1, 1, 128] adds a leading axis to x [4, 128]: the sum is [1, 4, 1], a MatMul's [4, 1].
    model = dot_model(x_shape=(4, 128), v_shape=(1, 1, 128))
    result = rule(model)
    assert op_count(result.model, "MatMul") == 0 and op_count(result.model, "ReduceSum") == 1


def test_a_sum_over_another_axis_stays():
    for axes in [(2,), (2, 3), (0, 1, 2, 3)]:
        result = rule(dot_model(axes=axes))
        assert op_count(result.model, "MatMul") == 0 and op_count(result.model, "ReduceSum") == 1, axes


def test_a_sum_over_every_axis_stays():
    mul = helper.make_node("Mul", ["x", "v"], ["m"])
    model = make_model([mul, helper.make_node("ReduceSum", ["m"], ["y"])],
                       [tensor_info("x", [4, 8]), tensor_info("v", [8])], [tensor_info("y", [1, 1])])
    assert op_count(rule(model).model, "ReduceSum") == 1


def test_keepdims_0_stays():
    result = rule(dot_model(keepdims=0))
    assert op_count(result.model, "MatMul") == 0 and op_count(result.model, "ReduceSum") == 1


def test_a_product_read_twice_stays():
    model = dot_model(extra_outputs=("m",))
    result = rule(model)
    assert op_count(result.model, "MatMul") == 0 and op_count(result.model, "Mul") == 1
    assert [o.name for o in result.model.graph.output] == ["y", "m"]


def test_a_product_read_by_another_node_stays():
    model = dot_model()
    model.graph.node.append(helper.make_node("Relu", ["m"], ["r"]))
    model.graph.output.append(tensor_info("r", [1, 32, 4, 128]))
    result = rule(model)
    assert op_count(result.model, "MatMul") == 0 and op_count(result.model, "ReduceSum") == 1


def test_integers_stay():
    model = dot_model(x_shape=(2, 8), v_shape=(8,))
    for value in (*model.graph.input, *model.graph.output):
        value.type.tensor_type.elem_type = TensorProto.INT64
    assert op_count(rule(model).model, "ReduceSum") == 1


def test_exact_leaves_it_out():
    assert "reduce-sum-to-matmul" in select_passes("cpu")
    assert "reduce-sum-to-matmul" not in select_passes("cpu", exact=True)
    model = dot_model()
    assert op_count(optimize_model(model, target="cpu", exact=True).model, "ReduceSum") == 1
    result = optimize_model(model, target="cpu")
    assert op_count(result.model, "ReduceSum") == 0 and op_count(result.model, "MatMul") == 1
    assert_same_outputs(model, result.model, random_feeds(model), exact=False)


def test_sums_of_one_vector_share_one_column():
    # Two sums of one unsqueezed vector (FacePhys: 20): one Reshape to [K, 1]; with the default rules
    # reshape-chains then folds the Unsqueeze into it.
    nodes = [helper.make_node("Unsqueeze", ["w", "unsq_axes"], ["v"])]
    for i in range(2):
        nodes += [helper.make_node("Mul", [f"x{i}", "v"], [f"m{i}"]),
                  helper.make_node("ReduceSum", [f"m{i}", "axes"], [f"y{i}"])]
    model = make_model(nodes, [tensor_info("x0", [1, 8, 4, 16]), tensor_info("x1", [1, 8, 4, 16]),
                               tensor_info("w", [1, 16])],
                       [tensor_info("y0", [1, 8, 4, 1]), tensor_info("y1", [1, 8, 4, 1])],
                       [numpy_helper.from_array(np.array([1, 2], np.int64), "unsq_axes"),
                        numpy_helper.from_array(np.array([-1], np.int64), "axes")])
    result = rule(model)
    assert sorted(n.op_type for n in result.model.graph.node) == ["MatMul", "MatMul", "Reshape", "Unsqueeze"]
    assert_same_outputs(model, result.model, random_feeds(model), exact=False)
    result = optimize_model(model, target="cpu")
    assert sorted(n.op_type for n in result.model.graph.node) == ["MatMul", "MatMul", "Reshape"]
    assert_same_outputs(model, result.model, random_feeds(model), exact=False)
