"""Models of ``ai.onnx.ml`` (or training) ops only import no default-domain opset: they go
through every target unchanged, partitions counted, and ``inspect`` describes them. Classifiers
that mix both keep their ZipMap's sequence of maps."""

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from onnxfit.app.optimize import optimize_model
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


def _classifier_with_zipmap():
    """skl2onnx's classifier form: default-domain ops with ai.onnx.ml ones, and ZipMap's
    ``seq(map(int64, float))`` output, which graph-surgeon would write as a sequence of tensors."""
    nodes = [helper.make_node("Identity", ["x"], ["features"]),
             helper.make_node("LinearClassifier", ["features"], ["label", "scores"], domain="ai.onnx.ml",
                              classlabels_ints=[0, 1], coefficients=[1.0, -1.0, 0.5, 0.5], intercepts=[0.0, 0.1],
                              post_transform="SOFTMAX"),
             helper.make_node("ZipMap", ["scores"], ["probabilities"], domain="ai.onnx.ml", classlabels_int64s=[0, 1])]
    maps = helper.make_sequence_type_proto(helper.make_map_type_proto(TensorProto.INT64,
                                                                      helper.make_tensor_type_proto(TensorProto.FLOAT, [])))
    graph = helper.make_graph(nodes, "classifier", [tensor_info("x", ["n", 2])],
                              [tensor_info("label", ["n"], TensorProto.INT64), helper.make_value_info("probabilities", maps)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15), helper.make_opsetid("ai.onnx.ml", 1)])
    model.ir_version = IR_VERSION
    return model


@pytest.mark.parametrize("target", ["cpu", "coreml"])
@pytest.mark.parametrize("fix", [False, True])
def test_classifier_with_zipmap_keeps_its_sequence_of_maps(target, fix):
    model = _classifier_with_zipmap()
    x = np.array([[1, 2], [3, -1]], np.float32)
    result = optimize_model(model, target=target, fixed_inputs={"x": x} if fix else None)
    assert result.changed  # the Identity goes
    assert result.model.graph.output[1].type == model.graph.output[1].type
    label, probabilities = run_ort(result.model, {} if fix else {"x": x})
    expected_label, expected_probabilities = run_ort(model, {"x": x})
    assert label.tolist() == expected_label.tolist() and probabilities == expected_probabilities
