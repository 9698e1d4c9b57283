"""Nothing ONNX Runtime would refuse is written: the load guard asks ONNX Runtime itself where
onnx's checker and inference cannot tell."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from onnxfit.errors import OnnxfitError
from onnxfit.optimizer.load_guard import runtime_refuses
from onnxfit.app.optimize import optimize_model
from tests.cli.test_contract import onnxfit
from tests.conftest import make_model, run_ort, tensor_info


def _arange_in_a_function(start_dims):
    """``y = Range(start, 5, 1)`` inside a model-local function (as torch's dynamo exporter writes
    them), and an output declared [3] that is [2]: the original fails onnx's strict inference,
    so onnx's checks are waived for it, yet ONNX Runtime runs it."""
    scalar = lambda name, v: helper.make_node("Constant", [], [name], value=helper.make_tensor(name, TensorProto.INT64, [], [v]))  # noqa: E731
    function = helper.make_function("local", "Arange", ["start"], ["y"],
                                    [scalar("limit", 5), scalar("delta", 1),
                                     helper.make_node("Range", ["start", "limit", "delta"], ["y"])],
                                    [helper.make_opsetid("", 17)])
    nodes = [helper.make_node("Arange", ["start"], ["y"], domain="local"), helper.make_node("Relu", ["x"], ["z"])]
    model = make_model(nodes, [tensor_info("start", start_dims, TensorProto.INT64), tensor_info("x", [2])],
                       [tensor_info("y", ["n"], TensorProto.INT64), tensor_info("z", [3])])
    model.opset_import.append(helper.make_opsetid("local", 1))
    model.functions.append(function)
    return model


def test_fixed_value_that_onnx_runtime_refuses_inside_a_function_is_not_written(tmp_path):
    model = _arange_in_a_function(["k"])
    feeds = {"start": np.array([2], np.int64), "x": np.ones(2, np.float32)}
    assert run_ort(model, feeds)[0].tolist() == [2, 3, 4]  # ORT's Range kernel takes a [1] start
    with pytest.raises(OnnxfitError, match=r"would not load in ONNX Runtime \(.*Range.*should be scalars.*"
                                           r"nothing was written.*--fix-input \(start\)"):
        optimize_model(model, target="cpu", fixed_inputs={"start": np.array([2])})
    path, out = tmp_path / "arange.onnx", tmp_path / "out.onnx"
    onnx.save(model, path)
    result = onnxfit("optimize", path, "-o", out, "--target", "coreml", "--fix-input", "start=2")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "would not load in ONNX Runtime" in result.stderr and not out.exists()


def test_fixed_scalar_start_loads_and_keeps_the_outputs():
    model = _arange_in_a_function([])
    result = optimize_model(model, target="cpu", fixed_inputs={"start": np.array(2)})
    assert result.changed and runtime_refuses(result.model) is None
    assert run_ort(result.model, {"x": np.ones(2, np.float32)})[0].tolist() == [2, 3, 4]


def test_runtime_refuses_names_the_reason():
    bad = make_model([helper.make_node("Relu", ["x"], ["y"])], [tensor_info("x", [2], TensorProto.INT8)],
                     [tensor_info("y", [2], TensorProto.INT8)], opset=13)
    assert "Relu" in runtime_refuses(bad)
    assert runtime_refuses(make_model([helper.make_node("Relu", ["x"], ["y"])], [tensor_info("x", [2])],
                                      [tensor_info("y", [2])])) is None
