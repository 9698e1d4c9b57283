"""Advice: suggested flags come with a predicted partition count that a real run reproduces."""

from __future__ import annotations

import json

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from onnxfit.app.advice import advise
from onnxfit.cli import app
from onnxfit.app.optimize import optimize
from onnxfit.targets.partitions import count_partitions
from tests.conftest import make_model, tensor_info

runner = CliRunner()
VERSION = "1.32"


def symbolic_hw_model() -> onnx.ModelProto:
    """Conv -> Resize to sizes computed from Shape(x) (2x upsample) -> Relu: CoreML refuses computed sizes."""
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        n("Shape", ["c"], ["s"], name="shape"),
        n("Slice", ["s", "starts", "ends"], ["hw"], name="hw"),
        n("Mul", ["hw", "two"], ["hw2"], name="double"),
        n("Concat", ["head", "hw2"], ["sizes"], name="sizes", axis=0),
        n("Resize", ["c", "", "", "sizes"], ["r"], name="upsample", mode="nearest", nearest_mode="floor",
          coordinate_transformation_mode="asymmetric"),
        n("Relu", ["r"], ["y"], name="relu"),
    ]
    inits = [numpy_helper.from_array(np.random.default_rng(0).standard_normal((8, 3, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(np.array([2], np.int64), "starts"),
             numpy_helper.from_array(np.array([4], np.int64), "ends"),
             numpy_helper.from_array(np.array([2], np.int64), "two"),
             numpy_helper.from_array(np.array([1, 8], np.int64), "head")]
    return make_model(nodes, [tensor_info("x", [1, 3, "height", "width"])],
                      [tensor_info("y", [1, 8, None, None])], inits, opset=13)


def test_input_shape_advice_is_predicted_and_reproduced(tmp_path):
    model = symbolic_hw_model()
    (item,) = advise(model, "coreml", VERSION)
    assert item.flags == "--input-shape x=1x3x640x640"
    assert item.partitions_now > item.partitions_with == 1
    source = tmp_path / "m.onnx"
    onnx.save(model, source)
    out = optimize(source, tmp_path / "o.onnx", target="coreml", input_shapes={"x": (1, 3, 640, 640)}).output
    assert count_partitions(out, "coreml", VERSION).partitions == item.partitions_with


def test_ultralytics_imgsz_metadata_sets_the_suggested_size():
    model = symbolic_hw_model()
    model.metadata_props.add(key="imgsz", value="[320, 256]")
    (item,) = advise(model, "coreml", VERSION)
    assert item.flags == "--input-shape x=1x3x320x256"


def test_setting_input_that_decides_an_if_gets_fix_input_advice():
    # The If sits between EP nodes (it reads the Relu): Relu | If | Add, Sigmoid.
    then = helper.make_graph([helper.make_node("Neg", ["r"], ["a"])], "then", [], [tensor_info("a", None)])
    other = helper.make_graph([helper.make_node("Abs", ["r"], ["b"])], "else", [], [tensor_info("b", None)])
    nodes = [helper.make_node("Relu", ["x"], ["r"]),
             helper.make_node("Equal", ["mode", "one"], ["c"]),
             helper.make_node("If", ["c"], ["i"], then_branch=then, else_branch=other),
             helper.make_node("Add", ["r", "i"], ["s"]), helper.make_node("Sigmoid", ["s"], ["y"])]
    model = make_model(nodes, [tensor_info("x", [1, 4]), tensor_info("mode", [], TensorProto.INT64)],
                       [tensor_info("y", [1, 4])], [numpy_helper.from_array(np.array(1, np.int64), "one")])
    texts = [a.flags for a in advise(model, "coreml", VERSION)]
    assert texts == ["--fix-input mode=VALUE"]


def test_no_advice_for_a_model_that_runs_as_one_partition():
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], [tensor_info("x", [1, 3, "h", "w"])],
                       [tensor_info("y", [1, 3, "h", "w"])])
    assert advise(model, "coreml", VERSION) == []


def test_inspect_target_json_lists_the_advice(tmp_path):
    source = tmp_path / "m.onnx"
    onnx.save(symbolic_hw_model(), source)
    result = runner.invoke(app, ["inspect", str(source), "--target", "coreml", "--ort-version", VERSION, "--json"])
    assert result.exit_code == 0, result.output
    advice = json.loads(result.output)["advice"]
    assert advice["partitions_after_optimize"] > 1
    assert advice["suggestions"][0]["flags"] == "--input-shape x=1x3x640x640"
    bad = runner.invoke(app, ["inspect", str(source), "--target", "tpu"])
    assert bad.exit_code == 2 and "unknown target" in bad.output


def test_zoo_yolov8_advice_matches_a_real_run(zoo_model, tmp_path):
    source = zoo_model("yolov8n_nudenet")
    (item,) = [a for a in advise(onnx.load(source), "coreml", VERSION) if a.flags.startswith("--input-shape")]
    assert item.flags == "--input-shape images=1x3x320x320"  # from the export's imgsz metadata
    out = optimize(source, tmp_path / "o.onnx", target="coreml", input_shapes={"images": (1, 3, 320, 320)}).output
    assert count_partitions(out, "coreml", VERSION).partitions == item.partitions_with < item.partitions_now


def test_optimize_report_carries_the_advice_unless_asked_not_to(tmp_path):
    source = tmp_path / "m.onnx"
    onnx.save(symbolic_hw_model(), source)
    base = ["optimize", str(source), "-o", str(tmp_path / "o.onnx"), "--target", "coreml", "--ort-version", VERSION, "--json"]
    with_advice = json.loads(runner.invoke(app, base).output)["models"][0]
    assert [a["flags"] for a in with_advice["advice"]] == ["--input-shape x=1x3x640x640"]
    assert with_advice["advice"][0]["partitions_now"] == with_advice["partitions"]["after"]["partitions"]
    assert "advice" not in json.loads(runner.invoke(app, [*base, "--no-advice"]).output)["models"][0]
    shaped = json.loads(runner.invoke(app, [*base, "--input-shape", "x=1x3x64x64"]).output)["models"][0]
    assert shaped["partitions"]["after"]["partitions"] == 1 and "advice" not in shaped
