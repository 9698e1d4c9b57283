import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from onnxfit.optimizer import PassContext, get_passes, run_passes
from tests.conftest import assert_same_outputs, make_model, op_count, random_feeds, tensor_info


def _gather_model(axis, opset, index_as="initializer", data_shape=(2, 5, 4)):
    nodes, inits = [], []
    if index_as == "initializer":
        inits.append(helper.make_tensor("idx", TensorProto.INT64, [], [1]))
    else:
        nodes.append(helper.make_node("Constant", [], ["idx"], value=helper.make_tensor("v", TensorProto.INT64, [], [-1])))
    nodes.append(helper.make_node("Gather", ["x", "idx"], ["y"], axis=axis))
    out_shape = list(data_shape)
    del out_shape[axis]
    return make_model(nodes, [tensor_info("x", list(data_shape))], [tensor_info("y", out_shape)], inits, opset=opset)


def _run(model, opset):
    return run_passes(model, get_passes(["scalar-gather"]), PassContext(opset=opset)).model


@pytest.mark.parametrize("opset", [11, 13, 17])
@pytest.mark.parametrize("axis", [0, 1, 2, -1, -3])
@pytest.mark.parametrize("index_as", ["initializer", "constant-node"])
def test_scalar_gather_becomes_1d_gather_and_squeeze_bit_exact(opset, axis, index_as):
    model = _gather_model(axis, opset, index_as)
    rewritten = _run(model, opset)
    onnx.checker.check_model(rewritten)
    assert op_count(rewritten, "Squeeze") == 1
    gather = next(n for n in rewritten.graph.node if n.op_type == "Gather")
    shapes = {t.name: list(t.dims) for t in rewritten.graph.initializer}
    assert shapes.get(gather.input[1]) == [1] or gather.input[1] not in shapes
    assert_same_outputs(model, rewritten, random_feeds(model), exact=True)


def test_gather_with_1d_indices_is_left_alone():
    init = helper.make_tensor("idx", TensorProto.INT64, [2], [0, 1])
    model = make_model([helper.make_node("Gather", ["x", "idx"], ["y"], axis=1)],
                       [tensor_info("x", [2, 3])], [tensor_info("y", [2, 2])], [init])
    result = run_passes(model, get_passes(["scalar-gather"]), PassContext(opset=17))
    assert not result.changed
    assert result.model is model


def test_scalar_gather_inside_if_branch_is_rewritten():
    idx = helper.make_tensor("idx", TensorProto.INT64, [], [2])
    branch_nodes = [helper.make_node("Gather", ["x", "idx_b"], ["g"], axis=1)]
    then_graph = helper.make_graph(branch_nodes, "then", [], [tensor_info("g", [2])],
                                   [helper.make_tensor("idx_b", TensorProto.INT64, [], [2])])
    else_graph = helper.make_graph([helper.make_node("ReduceMax", ["x"], ["m"], axes=[1], keepdims=0)], "else", [],
                                   [tensor_info("m", [2])])
    nodes = [helper.make_node("If", ["cond"], ["y"], then_branch=then_graph, else_branch=else_graph)]
    model = make_model(nodes, [tensor_info("x", [2, 4]), tensor_info("cond", [], TensorProto.BOOL)],
                       [tensor_info("y", [2])], [idx], opset=13)
    rewritten = _run(model, 13)
    assert op_count(rewritten, "Squeeze") == 1
    for cond in (True, False):
        feeds = {"x": np.random.default_rng(1).standard_normal((2, 4)).astype(np.float32), "cond": np.array(cond)}
        assert_same_outputs(model, rewritten, feeds)
