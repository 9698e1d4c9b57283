"""verify on the batch layouts real exporters write: -1 dims, fixed batch N, a state batched on
axis 1, time-major inputs, a reference that already mixes frames. Each symptom has one test on
a model built here and one on a zoo model (tests/zoo/manifest.py), all run on ONNX Runtime."""

from __future__ import annotations

import os
import re
import stat

import numpy as np
import onnx
import pytest
from onnx import helper
from typer.testing import CliRunner

from onnxfit.cli import app
from onnxfit.verification import verify, write_report
from onnxfit.verification.runtimes import concise_ort_error
from tests.conftest import make_model, run_ort, tensor_info
from tests.models import B, W, const, conv_net
from tests.zoo.manifest import by_name


def cli(*args):
    return CliRunner().invoke(app, ["verify", *map(str, args)])


def zoo_npz(tmp_path, name: str, batch: int):
    path = tmp_path / f"{name}_b{batch}.npz"
    np.savez(path, **by_name(name).feeds(batch))
    return path


# -------------------------------------------------------------- 1. dim_value <= 0 is symbolic


def test_input_dims_stored_as_minus_one_are_symbolic_batch_and_size():
    model = make_model(
        [helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[1, 1, 1, 1], name="conv")],
        [tensor_info("x", [-1, 3, -1, -1])], [tensor_info("y", [-1, 4, -1, -1])], [const("w", W), const("b", B)],
    )
    report = verify(model)
    assert report.ok, [c.summary for c in report.checks]
    assert report.check("parity").details["inputs"]["x"]["shape"] == [1, 3, 64, 64]
    assert report.check("contamination").details["frames"]["batch"] == 4


def test_paddle_cls_model_with_minus_one_batch_verifies(zoo_model):
    report = verify(zoo_model("ppocr_mobile_v2_cls"))
    assert report.ok, [c.summary for c in report.checks]
    assert report.check("parity").details["inputs"]["x"]["shape"] == [1, 3, 64, 64]
    assert report.check("contamination").summary == "frames independent at batch 4 on ort-cpu-noopt"


# -------------------------------------------------------------- 7a. fixed batch N > 1


def _batch_mean_net(batch):
    """y = x - mean over the batch: every frame depends on all of them."""
    nodes = [helper.make_node("ReduceMean", ["x"], ["m"], axes=[0], keepdims=1, name="batch_mean"),
             helper.make_node("Sub", ["x", "m"], ["y"], name="center")]
    return make_model(nodes, [tensor_info("x", [batch, 4])], [tensor_info("y", [batch, 4])])


def test_fixed_batch_3_model_is_tested_by_perturbation_at_batch_3():
    check = verify(conv_net(batch=3)).check("contamination")
    assert check.ok, check.summary
    assert check.summary == "frames independent at fixed batch 3 on ort-cpu-noopt"
    influence = np.array(check.details["frames"]["influence"])
    assert influence.shape == (3, 3) and np.all(np.diag(influence) > 0)
    assert np.all(influence[~np.eye(3, dtype=bool)] == 0)


def test_fixed_batch_3_model_that_mixes_frames_fails_naming_the_frames():
    check = verify(_batch_mean_net(3)).check("contamination")
    assert not check.ok
    assert check.summary.startswith("output 'y': changing frame 0 changes frame 1")


def test_centerface_fixed_batch_10_passes_contamination_by_perturbation(zoo_model):
    report = verify(zoo_model("centerface"))
    check = report.check("contamination")
    assert report.ok, [c.summary for c in report.checks]
    assert check.details["dynamic"] is False and check.details["frames"]["batch"] == 10
    influence = np.array(check.details["frames"]["influence"])
    assert np.all(np.diag(influence) > 0) and np.all(influence[~np.eye(10, dtype=bool)] == 0)


# -------------------------------------------------------------- 7b. state batched on axis 1


def _state_net(batch_dim, state_dims):
    """y = x + mean(state over its first axis); stateN = state + x: the batch is axis 1 of state."""
    nodes = [helper.make_node("ReduceMean", ["state"], ["s"], axes=[0], keepdims=0, name="mean_dirs"),
             helper.make_node("Add", ["x", "s"], ["y"], name="mix_in"),
             helper.make_node("Unsqueeze", ["x", "zero"], ["x1"], name="x1"),
             helper.make_node("Add", ["state", "x1"], ["stateN"], name="update")]
    return make_model(
        nodes, [tensor_info("x", [batch_dim, 4]), tensor_info("state", state_dims)],
        [tensor_info("y", [batch_dim, 4]), tensor_info("stateN", state_dims)],
        [const("zero", np.array([0], np.int64))], opset=13,
    )


STATE_FEEDS = {"state": np.zeros((2, 1, 4), np.float32)}


def test_state_named_batch_on_axis_1_is_batched_on_axis_1():
    check = verify(_state_net("batch", [2, "batch", 4]), inputs=STATE_FEEDS).check("contamination")
    assert check.ok, check.summary
    assert check.details["batch_axes"] == {"x": 0, "state": 1}
    assert check.details["frames"]["output_axes"] == {"y": 0, "stateN": 1}


def test_unnamed_state_batch_axis_leaves_the_frame_test_to_the_batch_axis_option():
    model = _state_net(None, [2, None, 4])
    check = verify(model, inputs=STATE_FEEDS).check("contamination")
    assert check.ok and not check.ran
    assert re.search(r"input 'state' \[2, \?, 4\].*--batch-axis state=1", check.details["notes"][0])
    report = verify(model, inputs=STATE_FEEDS, batch_axes=["state=1"])
    assert report.ok, [c.summary for c in report.checks]


def test_batch_axis_option_on_the_command_line(tmp_path):
    model_path = tmp_path / "state.onnx"
    onnx.save(_state_net(None, [2, None, 4]), model_path)
    np.savez(tmp_path / "in.npz", **STATE_FEEDS)
    result = cli(model_path, "--inputs", tmp_path / "in.npz")
    assert result.exit_code == 0 and "NOT RUN contamination" in result.output
    assert "--batch-axis state=AXIS" in " ".join(result.output.split())
    result = cli(model_path, "--inputs", tmp_path / "in.npz", "--batch-axis", "state=1")
    assert result.exit_code == 0, result.output
    bad = cli(model_path, "--inputs", tmp_path / "in.npz", "--batch-axis", "state=x")
    assert bad.exit_code == 2 and "non-negative integer or none" in bad.output


def test_silero_vad_unnamed_state_needs_batch_axis_state_1_for_its_frame_test(zoo_model, tmp_path):
    path, npz = zoo_model("silero_vad"), zoo_npz(tmp_path, "silero_vad", 4)
    result = cli(path, "--inputs", npz)
    assert result.exit_code == 0 and "PASS parity" in result.output and "NOT RUN contamination" in result.output
    text = " ".join(result.output.split())
    assert "input 'state' [2, ?, 128]" in text and "--batch-axis state=1" in text
    report = verify(path, inputs=npz, batch_axes={"state": 1})
    assert report.ok, [c.summary for c in report.checks]
    assert report.check("contamination").details["frames"]["output_axes"]["stateN"] == 1


@pytest.mark.parametrize("name", ["silero_vad_16k_op15", "silero_vad_half", "silero_vad_op18_ifless"])
def test_silero_vad_state_named_batch_is_batched_on_axis_1(zoo_model, tmp_path, name):
    report = verify(zoo_model(name), inputs=zoo_npz(tmp_path, name, 1))
    check = report.check("contamination")
    assert report.ok, [c.summary for c in report.checks]
    assert check.details["batch_axes"] == {"input": 0, "state": 1}
    assert check.summary == "frames independent at batch 4 on ort-cpu-noopt"


# -------------------------------------------------------------- 7c. time-major


def test_time_major_input_with_recurrent_state_is_no_batch_axis_not_contamination():
    # CumSum over time carries step t into t+1: a recurrent model in one op.
    nodes = [helper.make_node("CumSum", ["input", "axis0"], ["acc"], name="recur"),
             helper.make_node("Add", ["acc", "h"], ["out"], name="with_h")]
    model = make_model(
        nodes, [tensor_info("input", ["sequence_length", 4]), tensor_info("h", [1, 4])],
        [tensor_info("out", ["sequence_length", 4])], [const("axis0", np.array(0, np.int64))],
    )
    report = verify(model, inputs={"h": np.zeros((1, 4), np.float32)})
    check = report.check("contamination")
    assert report.ok and check.summary == "no batch axis: time-major"
    assert "input 'input' ['sequence_length', 4] leads with time" in check.details["notes"][0]


@pytest.mark.parametrize("name", ["silero_vad_16k_sequence", "silero_vad_v6_whisper"])
def test_time_major_silero_is_reported_no_batch_axis(zoo_model, tmp_path, name):
    report = verify(zoo_model(name), inputs=zoo_npz(tmp_path, name, 4))
    assert report.ok, [c.summary for c in report.checks]
    assert report.check("contamination").summary == "no batch axis: time-major"


# -------------------------------------------------------------- 7d. --reference mixing


def _with_batch_centering(model: onnx.ModelProto, output: str) -> onnx.ModelProto:
    """``model`` whose ``output`` has its batch mean subtracted: frames now mix."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    for node in graph.node:
        node.output[:] = [f"{o}_raw" if o == output else o for o in node.output]
        node.input[:] = [f"{i}_raw" if i == output else i for i in node.input]
    graph.node.extend([
        helper.make_node("ReduceMean", [f"{output}_raw"], [f"{output}_mean"], axes=[0], keepdims=1, name="batch_mean"),
        helper.make_node("Sub", [f"{output}_raw", f"{output}_mean"], [output], name="center"),
    ])
    return model


def _rewritten(model: onnx.ModelProto) -> onnx.ModelProto:
    """A rewrite that changes no number: an Identity in front of every graph output."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    for out in model.graph.output:
        for node in model.graph.node:
            node.output[:] = [f"{o}_pre" if o == out.name else o for o in node.output]
            node.input[:] = [f"{i}_pre" if i == out.name else i for i in node.input]
        model.graph.node.append(helper.make_node("Identity", [f"{out.name}_pre"], [out.name], name=f"id_{out.name}"))
    return model


def test_mixing_the_reference_already_has_is_a_note_and_added_mixing_fails():
    original = _with_batch_centering(conv_net(), "y")
    check = verify(_rewritten(original), reference=original).check("contamination")
    assert check.ok and check.summary == "frames mix as they do in the reference: no mixing added"
    assert any("not added by this model" in n for n in check.details["notes"])
    added = verify(original, reference=conv_net()).check("contamination")
    assert not added.ok and "output 'y': changing frame 0 changes frame 1" in " ".join(added.details["failures"])


def test_zoo_model_against_reference_that_mixes_frames(zoo_model):
    clean = onnx.load(zoo_model("ppocr_mobile_v2_cls"))
    original = _with_batch_centering(clean, clean.graph.output[0].name)
    report = verify(_rewritten(original), reference=original)
    assert report.ok, [c.summary for c in report.checks]
    assert report.check("contamination").details["reference_failures"]
    added = verify(original, reference=clean).check("contamination")
    assert not added.ok and "changing frame 0 changes frame 1" in " ".join(added.details["failures"])


# -------------------------------------------------------------- onnx.reference gaps (squeezenet)


def test_softmax_opset_11_skips_onnx_reference_which_computes_it_wrong():
    model = make_model([helper.make_node("Softmax", ["x"], ["y"], name="sm")],
                       [tensor_info("x", [1, 4, 1, 1])], [tensor_info("y", [1, 4, 1, 1])], opset=11)
    x = np.arange(4, dtype=np.float32).reshape(1, 4, 1, 1)
    assert not np.allclose(run_ort(model, {"x": x})[0], 1.0)  # ORT follows the 2-D coercion
    report = verify(model)
    assert report.ok and report.runtimes == ["ort-cpu-noopt", "ort-cpu"]
    assert any("onnx-reference not run: Softmax (opset 11)" in n for n in report.check("parity").details["notes"])


def test_squeezenet_ir3_verifies(zoo_model):
    report = verify(zoo_model("squeezenet_ir3"))
    assert report.ok, [c.summary for c in report.checks]
    assert "onnx-reference" not in report.runtimes


# -------------------------------------------------------------- ORT failures: one clean line


def test_ort_failure_is_one_line_without_ort_log(tmp_path, capfd):
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["y"], name="hard")]
    model = make_model(nodes, [tensor_info("x", ["N", 4])], [tensor_info("y", [1, 4])],
                       [const("shape", np.array([1, 4], np.int64))])
    onnx.save(model, tmp_path / "m.onnx")
    result = cli(tmp_path / "m.onnx")
    err = capfd.readouterr().err
    assert result.exit_code == 1
    assert "onnxruntime" not in err and "\x1b[" not in err
    assert "the model fails at batch 4 on ort-cpu-noopt: Reshape node 'hard':" in " ".join(result.output.split())


def test_concise_ort_error_keeps_the_innermost_node_and_reason():
    text = ("[ONNXRuntimeError] : 1 : FAIL : Non-zero status code returned while running If node. Name:'If_0' "
            "Status Message: Non-zero status code returned while running LSTM node. Name:'rnn/LSTM' "
            "Status Message: Input initial_h must have shape {1,4,128}. Actual:{1,1,128}")
    assert concise_ort_error(text) == "LSTM node 'rnn/LSTM': Input initial_h must have shape {1,4,128}. Actual:{1,1,128}"


def test_silero_vad_wrong_batch_axis_fails_in_one_line_without_ort_log(zoo_model, tmp_path, capfd):
    result = cli(zoo_model("silero_vad"), "--inputs", zoo_npz(tmp_path, "silero_vad", 1), "--batch-axis", "state=0")
    err = capfd.readouterr().err
    assert result.exit_code == 1 and "onnxruntime" not in err
    assert "LSTM node" in result.output and "Input initial_h must have shape" in " ".join(result.output.split())


# -------------------------------------------------------------- 9. report file mode


def test_reports_get_the_umask_like_models(tmp_path):
    old = os.umask(0o022)
    try:
        paths = write_report(verify(conv_net()), tmp_path / "out")
    finally:
        os.umask(old)
    assert {stat.S_IMODE(p.stat().st_mode) for p in paths} == {0o644}
