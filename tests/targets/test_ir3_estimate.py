"""IR < 4 lists every initializer as a graph input, and ONNX Runtime treats them as constants:
the estimate must too (from IR 4 on, a listed initializer is overridable and builders refuse it)."""

from __future__ import annotations

import numpy as np
from onnx import helper, numpy_helper

from onnxfit.versions import parse_version
from onnxfit.targets.partitions import estimate_partitions
from tests.conftest import make_model, tensor_info


def _conv_relu(ir_version: int, weight_from_constant_of_shape: bool = False):
    """Conv(x, W, B) -> Relu with W, B listed among the inputs (as IR 3 requires); optionally W made
    by ConstantOfShape as in the onnx wheel's Caffe2 models, which ORT folds at load."""
    w_shape = np.array([4, 3, 3, 3], np.int64)
    inits = [numpy_helper.from_array(np.zeros(4, np.float32), "B")]
    nodes = []
    if weight_from_constant_of_shape:
        inits.append(numpy_helper.from_array(w_shape, "w_shape"))
        nodes.append(helper.make_node("ConstantOfShape", ["w_shape"], ["W"],
                                      value=numpy_helper.from_array(np.array([0.1], np.float32))))
    else:
        inits.append(numpy_helper.from_array(np.full(w_shape, 0.1, np.float32), "W"))
    nodes += [helper.make_node("Conv", ["x", "W", "B"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["y"])]
    listed = [tensor_info(t.name, list(t.dims), t.data_type) for t in inits]
    return make_model(nodes, [tensor_info("x", [1, 3, 8, 8]), *listed], [tensor_info("y", [1, 4, 8, 8])], inits,
                      opset=9, ir_version=ir_version)


def test_ir3_initializers_listed_as_inputs_are_constants_to_the_estimate():
    version = parse_version("1.32")
    for folded in (False, True):
        report = estimate_partitions(_conv_relu(3, folded), "coreml", version)
        assert (report.partitions, report.nodes_on_ep, report.total_nodes) == (1, 2, 2), report.unsupported


def test_ir4_initializers_listed_as_inputs_are_overridable():
    report = estimate_partitions(_conv_relu(4), "coreml", parse_version("1.32"))
    assert [u.op for u in report.unsupported] == ["Conv"]
    assert "constant initializer" in report.unsupported[0].reason
