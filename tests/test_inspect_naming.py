"""`onnxfit inspect` names nameless nodes by their first output and tells scalars from unknown shapes."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from onnxfit.cli import app
from onnxfit.app.inspection import inspect_model
from tests.conftest import make_model, tensor_info

runner = CliRunner()


def _nameless_model() -> onnx.ModelProto:
    """Nameless nodes throughout: a reflect Pad, and a Shape whose chain feeds a Reshape and an Expand."""
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["padded"], mode="reflect"),
        helper.make_node("Shape", ["padded"], ["dims"]),
        helper.make_node("Identity", ["dims"], ["dims_copy"]),
        helper.make_node("Reshape", ["padded", "dims_copy"], ["reshaped"]),
        helper.make_node("Expand", ["reshaped", "dims"], ["y"]),
    ]
    pads = numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads")
    inputs = [tensor_info("x", [1, 3, 4, 4]), helper.make_tensor_value_info("gain", TensorProto.FLOAT, [])]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    return make_model(nodes, inputs, outputs, [pads])


def test_nameless_nodes_in_findings_are_named_by_their_first_output():
    findings = inspect_model(_nameless_model())["findings"]
    assert findings["pads"] == [{"node": "Pad -> padded", "mode": "reflect", "pass": "reflect-pad"}]
    # Both nameless consumers count: the walk must not take every nameless node for the same one.
    assert findings["shape_chains"] == [{"node": "Shape -> dims", "feeds": ["Expand", "Reshape"], "pass": "fold-shapes"}]


def test_scalar_input_is_an_empty_shape_and_unknown_rank_is_null():
    report = inspect_model(_nameless_model())
    assert {v["name"]: v["shape"] for v in report["inputs"]} == {"x": [1, 3, 4, 4], "gain": []}
    assert report["outputs"] == [{"name": "y", "dtype": "float32", "shape": None}]


def test_paddle_minus_one_dims_show_as_unknown(tmp_path):
    model = _nameless_model()
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = -1  # Paddle's "any batch"
    assert inspect_model(model)["inputs"][0]["shape"] == ["?", 3, 4, 4]


def test_cli_table_shows_scalar_unknown_rank_and_labels(tmp_path):
    path = tmp_path / "nameless.onnx"
    onnx.save(_nameless_model(), path)
    result = runner.invoke(app, ["inspect", str(path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[2].strip(): line for line in result.output.splitlines() if line.count("│") >= 5}
    assert "scalar" in rows["gain"] and "? (rank unknown)" in rows["y"]
    assert "Pad -> padded" in result.output and "Shape -> dims" in result.output
    assert "│ ''" not in result.output
