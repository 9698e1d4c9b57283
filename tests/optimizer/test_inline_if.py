"""inline-if and --fix-input: decided Ifs become their branch; outputs equal on ORT."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from onnxfit.cli import app
from onnxfit.errors import OnnxfitError
from onnxfit.fixed_inputs import METADATA_KEY, parse_fixed_inputs, read_fixed_inputs, resolve_fixed_inputs
from onnxfit.app.optimize import optimize_model
from tests.conftest import make_model, op_count, run_ort, tensor_info

runner = CliRunner()


def _branch(name: str, op: str, x: str, scale: float) -> onnx.GraphProto:
    """A branch with its own initializer and node named like its sibling's: names collide once inlined."""
    const = numpy_helper.from_array(np.full([1], scale, np.float32), "k")
    nodes = [helper.make_node(op, [x, "k"], ["t"], name="scale"), helper.make_node("Relu", ["t"], [f"{name}_out"], name="act")]
    return helper.make_graph(nodes, name, [], [helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, None)], [const])


def sample_rate_model(opset: int = 17) -> onnx.ModelProto:
    """Two sibling Ifs on ``sr == 16000`` (names k/t/scale repeated in every branch), one nested."""
    inner = helper.make_node("If", ["is16k"], ["inner_out"], name="inner_if",
                             then_branch=_branch("inner_then", "Mul", "x", 3.0),
                             else_branch=_branch("inner_else", "Add", "x", 4.0))
    then_outer = helper.make_graph(
        [inner, helper.make_node("Neg", ["inner_out"], ["outer_then_out"], name="scale")], "outer_then", [],
        [helper.make_tensor_value_info("outer_then_out", TensorProto.FLOAT, None)])
    nodes = [
        helper.make_node("Constant", [], ["sr16k"], value=numpy_helper.from_array(np.array(16000, np.int64))),
        helper.make_node("Equal", ["sr", "sr16k"], ["is16k"], name="eq"),
        helper.make_node("If", ["is16k"], ["a"], name="outer_if", then_branch=then_outer,
                         else_branch=_branch("outer_else", "Sub", "x", 1.0)),
        helper.make_node("If", ["is16k"], ["b"], name="second_if", then_branch=_branch("second_then", "Mul", "x", 2.0),
                         else_branch=_branch("second_else", "Mul", "x", 0.5)),
        helper.make_node("Add", ["a", "b"], ["y"], name="scale"),
    ]
    return make_model(nodes, [tensor_info("x", ["N", 4]), tensor_info("sr", [], TensorProto.INT64)],
                      [tensor_info("y", ["N", 4])], opset=opset)


@pytest.mark.parametrize("sr", [16000, 8000])
def test_fix_input_inlines_every_if_and_matches_the_original(sr):
    model = sample_rate_model()
    result = optimize_model(model, "cpu", fixed_inputs={"sr": sr})
    new = result.model
    assert op_count(new, "If") == 0
    assert [i.name for i in new.graph.input] == ["x"]
    onnx.checker.check_model(new, full_check=True)  # names stayed unique after inlining siblings
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    expected = run_ort(model, {"x": x, "sr": np.array(sr, np.int64)})
    np.testing.assert_array_equal(run_ort(new, {"x": x})[0], expected[0])
    assert read_fixed_inputs(new)["sr"].tolist() == sr


def test_inline_if_alone_decides_shape_tests():
    """``If(Shape(x)[1] == 4)`` with a static dim: the inline-if pass alone decides it."""
    then = helper.make_graph([helper.make_node("Squeeze", ["x", "ax"], ["sq"])], "then", [],
                             [helper.make_tensor_value_info("sq", TensorProto.FLOAT, None)],
                             [numpy_helper.from_array(np.array([2], np.int64), "ax")])
    other = helper.make_graph([helper.make_node("Identity", ["x"], ["id"])], "else", [],
                              [helper.make_tensor_value_info("id", TensorProto.FLOAT, None)])
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "two"], ["d"], axis=0),
        helper.make_node("Equal", ["d", "one"], ["c"]),
        helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other),
    ]
    inits = [numpy_helper.from_array(np.array(2, np.int64), "two"), numpy_helper.from_array(np.array(1, np.int64), "one")]
    model = make_model(nodes, [tensor_info("x", ["N", 3, 1])], [tensor_info("y", None)], inits)
    new = optimize_model(model, "cpu", passes=["inline-if"]).model
    assert op_count(new, "If") == 0
    x = np.random.default_rng(1).standard_normal((2, 3, 1)).astype(np.float32)
    np.testing.assert_array_equal(run_ort(new, {"x": x})[0], run_ort(model, {"x": x})[0])


def _squeeze_if(tensor: str, axis: int, out: str) -> list[onnx.NodeProto]:
    """torch's ``squeeze(axis)`` on a dynamic dim: ``If(Shape(t)[axis] == 1, Squeeze, Identity)``."""
    then = helper.make_graph([helper.make_node("Squeeze", [tensor, f"{out}_ax"], [f"{out}_sq"])], f"{out}_then", [],
                             [helper.make_tensor_value_info(f"{out}_sq", TensorProto.FLOAT, None)],
                             [numpy_helper.from_array(np.array([axis], np.int64), f"{out}_ax")])
    other = helper.make_graph([helper.make_node("Identity", [tensor], [f"{out}_id"])], f"{out}_else", [],
                              [helper.make_tensor_value_info(f"{out}_id", TensorProto.FLOAT, None)])
    return [
        helper.make_node("Shape", [tensor], [f"{out}_shape"]),
        helper.make_node("Gather", [f"{out}_shape", "axis_t"], [f"{out}_dim"], axis=0),
        helper.make_node("Equal", [f"{out}_dim", "one"], [f"{out}_c"]),
        helper.make_node("If", [f"{out}_c"], [out], then_branch=then, else_branch=other),
    ]


def held_if_model() -> onnx.ModelProto:
    """An If decided by a partly known shape (``state [2, N, 8]``: dim 0 is 2) whose branch holds an
    If on a dynamic dim: as in silero-vad's LSTM cell."""
    inner = _squeeze_if("x", 2, "branch_out")
    then = helper.make_graph(inner, "then", [], [helper.make_tensor_value_info("branch_out", TensorProto.FLOAT, None)])
    other = helper.make_graph([helper.make_node("Identity", ["x"], ["plain"])], "else", [],
                              [helper.make_tensor_value_info("plain", TensorProto.FLOAT, None)])
    nodes = [
        helper.make_node("Shape", ["state"], ["st_shape"]),
        helper.make_node("Gather", ["st_shape", "zero"], ["st0"], axis=0),
        helper.make_node("Equal", ["st0", "two"], ["is2"]),
        helper.make_node("If", ["is2"], ["y"], then_branch=then, else_branch=other),
    ]
    inits = [numpy_helper.from_array(np.array(v, np.int64), n) for n, v in
             (("zero", 0), ("two", 2), ("one", 1), ("axis_t", 2))]
    return make_model(nodes, [tensor_info("x", ["N", 3, "T"]), tensor_info("state", [2, "N", 8])],
                      [tensor_info("y", None)], inits)


def test_if_decided_by_partial_shapes_stays_when_its_branch_would_expose_undecided_ifs():
    model = held_if_model()
    result = optimize_model(model, "coreml")
    new = result.model
    assert op_count(new, "If") == 2  # held: inlining would leave the inner If as a CPU island
    held = [s for r in result.reports for s in r.skipped if "decided by shapes" in s]
    assert held
    # The condition stays computed, so ONNX Runtime does not inline it at load time either.
    assert op_count(new, "Shape") >= 1
    feeds = {"x": np.random.default_rng(2).standard_normal((2, 3, 1)).astype(np.float32),
             "state": np.zeros((2, 2, 8), np.float32)}
    np.testing.assert_array_equal(run_ort(new, feeds)[0], run_ort(model, feeds)[0])

    # Fixed shapes decide the inner If too: then everything is inlined.
    fixed = optimize_model(model, "coreml", input_shapes={"x": (2, 3, 1), "state": (2, 2, 8)}).model
    assert op_count(fixed, "If") == 0
    np.testing.assert_array_equal(run_ort(fixed, feeds)[0], run_ort(model, feeds)[0])


@pytest.mark.parametrize("target", ["cpu", "cuda", "openvino"])
def test_targets_that_run_ifs_themselves_inline_what_shapes_decide(target):
    model = held_if_model()
    new = optimize_model(model, target).model
    assert op_count(new, "If") == 1  # the outer If goes; the inner one is decided only at run time
    feeds = {"x": np.random.default_rng(2).standard_normal((2, 3, 1)).astype(np.float32),
             "state": np.zeros((2, 2, 8), np.float32)}
    np.testing.assert_array_equal(run_ort(new, feeds)[0], run_ort(model, feeds)[0])


# ----------------------------------------------------------------------------------- --fix-input


def test_fixed_values_take_the_declared_dtype_and_shape(tmp_path):
    model = make_model([helper.make_node("Mul", ["x", "scale"], ["y"])],
                       [tensor_info("x", ["N", 2]), tensor_info("scale", [2]), tensor_info("sr", [1], TensorProto.INT64)],
                       [tensor_info("y", ["N", 2])])
    np.save(tmp_path / "scale.npy", np.array([0.5, 2.0], np.float64))
    values = resolve_fixed_inputs(model, parse_fixed_inputs(["scale=@" + str(tmp_path / "scale.npy"), "sr=16000"]))
    assert values["scale"].dtype == np.float32 and values["scale"].tolist() == [0.5, 2.0]
    assert values["sr"].dtype == np.int64 and values["sr"].shape == (1,)  # a scalar fits a declared [1]
    assert resolve_fixed_inputs(model, parse_fixed_inputs(["scale=1,3"]))["scale"].tolist() == [1.0, 3.0]
    with pytest.raises(OnnxfitError, match="not a model input"):
        resolve_fixed_inputs(model, {"rate": np.array(1)})
    with pytest.raises(OnnxfitError, match="declared"):
        resolve_fixed_inputs(model, parse_fixed_inputs(["scale=1,2,3"]))
    with pytest.raises(OnnxfitError, match="holds integers"):
        resolve_fixed_inputs(model, parse_fixed_inputs(["sr=0.5"]))
    with pytest.raises(OnnxfitError, match="NAME=VALUE"):
        parse_fixed_inputs(["sr"])


def test_cli_fix_input_records_the_value_and_verify_feeds_it_to_the_original(tmp_model_path, tmp_path):
    source = tmp_model_path(sample_rate_model())
    out = tmp_path / "vad16k.onnx"
    result = runner.invoke(app, ["optimize", str(source), "-o", str(out), "--target", "coreml", "--fix-input", "sr=16000",
                                 "--verify", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["models"][0]["verify"]["ok"]
    saved = onnx.load(out)
    assert {p.key for p in saved.metadata_props} >= {METADATA_KEY}
    assert op_count(saved, "If") == 0
    # verify on its own reads the recorded value; a contradicting explicit value fails parity.
    ok = runner.invoke(app, ["verify", str(out), "--reference", str(source)])
    assert ok.exit_code == 0, ok.output
    wrong = runner.invoke(app, ["verify", str(out), "--reference", str(source), "--fix-input", "sr=8000"])
    assert wrong.exit_code == 1, wrong.output


def test_cli_fix_input_errors_are_one_line(tmp_model_path, tmp_path):
    source = tmp_model_path(sample_rate_model())
    result = runner.invoke(app, ["optimize", str(source), "-o", str(tmp_path / "o.onnx"), "--fix-input", "rate=1"])
    assert result.exit_code == 2
    assert "not a model input" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o.onnx").exists()


def test_prepare_keys_the_cache_on_fixed_values(tmp_model_path, tmp_path):
    from onnxfit.app.prepare import prepare_entry

    source = tmp_model_path(sample_rate_model())
    a = prepare_entry(source, "cpu", cache_dir=tmp_path / "c", fixed_inputs={"sr": 16000})
    b = prepare_entry(source, "cpu", cache_dir=tmp_path / "c", fixed_inputs={"sr": 8000})
    assert a.key != b.key
    x = np.ones((1, 4), np.float32)
    for entry, sr in ((a, 16000), (b, 8000)):
        expected = run_ort(sample_rate_model(), {"x": x, "sr": np.array(sr, np.int64)})[0]
        np.testing.assert_array_equal(run_ort(entry.path, {"x": x})[0], expected)
