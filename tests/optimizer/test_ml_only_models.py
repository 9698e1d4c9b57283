"""Models of ``ai.onnx.ml`` (or training) ops only import no default-domain opset: they go
through every target unchanged, partitions counted, and ``inspect`` describes them."""

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from onnxfit.optimizer.optimize import optimize_model
from tests.cli.test_contract import onnxfit
from tests.conftest import IR_VERSION, run_ort, tensor_info


def _label_encoder_model():
    node = helper.make_node("LabelEncoder", ["x"], ["y"], domain="ai.onnx.ml", keys_strings=["cat", "dog"],
                            values_int64s=[1, 2], default_int64=-1)
    graph = helper.make_graph([node], "encoder", [tensor_info("x", [3], TensorProto.STRING)],
                              [tensor_info("y", [3], TensorProto.INT64)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("ai.onnx.ml", 2)])
    model.ir_version = IR_VERSION
    return model


def _adagrad_model():
    """One training step (ai.onnx.preview.training), which ONNX Runtime's inference build lacks."""
    node = helper.make_node("Adagrad", ["r", "t", "x", "g", "h"], ["x_new", "h_new"],
                            domain="ai.onnx.preview.training", decay_factor=0.1, epsilon=1e-5, norm_coefficient=0.001)
    inputs = [tensor_info("r", []), tensor_info("t", [], TensorProto.INT64), tensor_info("x", [2]),
              tensor_info("g", [2]), tensor_info("h", [2])]
    graph = helper.make_graph([node], "step", inputs, [tensor_info("x_new", [2]), tensor_info("h_new", [2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("ai.onnx.preview.training", 1)])
    model.ir_version = IR_VERSION
    return model


@pytest.mark.parametrize("target", ["cpu", "coreml", "nnapi", "openvino"])
def test_ml_only_model_goes_through_unchanged(target):
    model = _label_encoder_model()
    result = optimize_model(model, target=target)
    assert not result.changed and result.model is model
    assert optimize_model(_adagrad_model(), target=target).model.SerializeToString() == \
        _adagrad_model().SerializeToString()


def test_ml_only_model_with_a_fixed_input_keeps_its_outputs():
    model = _label_encoder_model()
    x = np.array(["dog", "cat", "cow"], dtype=object)
    result = optimize_model(model, target="coreml", fixed_inputs={"x": x})
    assert not result.model.graph.input
    assert run_ort(result.model, {})[0].tolist() == run_ort(model, {"x": x})[0].tolist() == [2, 1, -1]


def test_optimize_and_inspect_cli_count_partitions_of_an_ml_only_model(tmp_path):
    path, out = tmp_path / "encoder.onnx", tmp_path / "out.onnx"
    onnx.save(_label_encoder_model(), path)
    run = onnxfit("optimize", path, "-o", out, "--target", "coreml", "--json")
    assert run.returncode == 0, run.stderr
    (doc,) = json.loads(run.stdout)["models"]
    assert doc["changed"] is False and doc["passes"] == []
    assert doc["partitions"]["before"]["total_nodes"] == doc["partitions"]["after"]["total_nodes"] == 1
    assert doc["partitions"]["before"]["partitions"] == 0  # CoreML has no LabelEncoder builder
    inspected = onnxfit("inspect", path, "--target", "nnapi", "--json")
    assert inspected.returncode == 0, inspected.stderr
    report = json.loads(inspected.stdout)
    assert report["opset"] is None and report["ops"] == {"LabelEncoder": 1}
