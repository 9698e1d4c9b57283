"""--dynamic-batch with --input-shape keeps each input's batch symbolic, however the exporter wrote it."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from onnxfit.app.optimize import optimize_model
from tests.conftest import make_model, run_ort, tensor_info


def _model(batch_dim) -> onnx.ModelProto:
    """Conv -> Resize with sizes = Shape(x)[:2] ++ 2*H,W (the FPN pattern), batch written as ``batch_dim``."""
    n = helper.make_node
    nodes = [n("Conv", ["x", "w"], ["c"]),
             n("Shape", ["c"], ["s"]), n("Slice", ["s", "zero", "two"], ["nc"]),
             n("Slice", ["s", "two", "four"], ["hw"]), n("Mul", ["hw", "twos"], ["hw2"]),
             n("Concat", ["nc", "hw2"], ["sizes"], axis=0),
             n("Resize", ["c", "", "", "sizes"], ["y"], mode="nearest")]
    inits = [numpy_helper.from_array(np.random.default_rng(0).standard_normal((4, 3, 1, 1)).astype(np.float32), "w")]
    inits += [numpy_helper.from_array(np.array(v, np.int64), k) for k, v in
              (("zero", [0]), ("two", [2]), ("four", [4]), ("twos", [2, 2]))]
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [batch_dim, 3, None, None])
    return make_model(nodes, [x], [tensor_info("y", None)], inits, opset=13)


@pytest.mark.parametrize("batch_dim", [-1, None, "N"], ids=["paddle-minus-1", "unnamed", "named"])
def test_batch_stays_symbolic_and_the_rest_folds(batch_dim):
    model = _model(batch_dim)
    if batch_dim == -1:  # Paddle2ONNX writes dim_value -1
        model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = -1
    result = optimize_model(model, "coreml", input_shapes={"x": (1, 3, 8, 10)}, dynamic_batch=True).model
    dims = result.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [3, 8, 10]
    (resize,) = [node for node in result.graph.node if node.op_type == "Resize"]
    assert {i.name for i in result.graph.initializer} >= {resize.input[2]}  # constant scales, no sizes
    x = np.random.default_rng(1).standard_normal((3, 3, 8, 10)).astype(np.float32)
    together = run_ort(result, {"x": x})[0]
    expected = run_ort(model, {"x": x})[0]
    np.testing.assert_array_equal(together, expected)
    for j in range(3):
        np.testing.assert_array_equal(run_ort(result, {"x": x[j:j + 1]})[0], together[j:j + 1])
