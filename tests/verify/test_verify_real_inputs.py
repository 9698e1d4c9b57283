"""verify on inputs nobody here wrote: what can run runs, and a verdict rests only on what ran."""

from __future__ import annotations

import json

import numpy as np
import onnx
from onnx import TensorProto, helper
from typer.testing import CliRunner

from onnxfit.cli import app
from onnxfit.verification import verify
from tests.conftest import make_model, tensor_info


def _stateful_net():
    """``x [?, 4]`` and a state ``[2, ?, 8]`` whose dims do not say where the batch is (silero_vad's form)."""
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 8], np.linspace(-1, 1, 32).astype(np.float32))
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"]),
        helper.make_node("Add", ["state", "h"], ["state_out"]),
        helper.make_node("Relu", ["h"], ["y"]),
    ]
    return make_model(nodes, [tensor_info("x", ["", 4]), tensor_info("state", [2, "", 8])],
                      [tensor_info("y", None), tensor_info("state_out", None)], [w])


def test_unknown_state_batch_axis_runs_parity_and_leaves_the_frame_test_not_run(tmp_path):
    model = tmp_path / "state.onnx"
    onnx.save(_stateful_net(), model)
    feeds = tmp_path / "feeds.npz"
    rng = np.random.default_rng(0)
    np.savez(feeds, x=rng.standard_normal((1, 4)).astype(np.float32), state=np.zeros((2, 1, 8), np.float32))
    result = CliRunner().invoke(app, ["verify", str(model), "--reference", str(model), "--inputs", str(feeds)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "PASS parity" in text and "NOT RUN contamination" in text and "--batch-axis state=AXIS" in text
    assert "all checks that ran passed (not run: contamination)" in text
    # The flag the report names runs the test.
    report = verify(model, model, inputs=feeds, batch_axes={"state": 1})
    assert report.ok and report.check("contamination").ran
    assert report.check("contamination").summary == "frames independent at batch 4 on ort-cpu-noopt"


def test_a_failed_parity_still_fails_when_the_frame_test_is_not_run(tmp_path):
    model = _stateful_net()
    other = onnx.ModelProto()
    other.CopyFrom(model)
    other.graph.node[2].op_type = "Sigmoid"
    feeds = {"x": np.ones((1, 4), np.float32), "state": np.zeros((2, 1, 8), np.float32)}
    report = verify(other, model, inputs=feeds)
    assert not report.ok and not report.check("parity").ok
    assert not report.check("contamination").ran
    assert report.to_dict()["checks"][1]["ran"] is False


def test_silero_vad_verifies_against_itself_with_its_feeds_and_no_batch_axis(zoo_model, tmp_path):
    from tests.zoo.manifest import by_name

    source = zoo_model("silero_vad")
    feeds = tmp_path / "feeds.npz"
    np.savez(feeds, **by_name("silero_vad").feeds(1))
    report = verify(source, source, inputs=feeds, runtimes=["ort-cpu"])
    assert report.ok and report.check("parity").ok
    contamination = report.check("contamination")
    assert not contamination.ran and "--batch-axis state=AXIS" in contamination.summary


def test_batch1_model_whose_blockers_dynamic_batch_repairs_says_so_and_how(tmp_path):
    from pathlib import Path

    from onnxfit import optimize

    source = Path(__file__).resolve().parents[2] / "weights" / "scrfd_like.onnx"
    check = verify(source, source).check("contamination")
    assert check.ok and check.details["repair"] == {
        "command": "onnxfit optimize MODEL -o OUT --dynamic-batch", "left": [], "refused": None}
    assert check.summary == ("fixed batch 1: cannot be batched; the 9 node(s) that block batching are repaired by "
                             "`onnxfit optimize MODEL -o OUT --dynamic-batch`")
    # The command it names does repair them: the result batches with independent frames.
    out = optimize(source, tmp_path / "batched.onnx", target="cpu", dynamic_batch=True).output
    assert verify(out, source).check("contamination").summary == "frames independent at batch 4 on ort-cpu-noopt"


def test_batch1_model_that_mixes_frames_says_dynamic_batch_refuses_it():
    nodes = [helper.make_node("ReduceMean", ["x"], ["m"], axes=[0], keepdims=1), helper.make_node("Sub", ["x", "m"], ["y"])]
    model = make_model(nodes, [tensor_info("x", [1, 3, 4, 4])], [tensor_info("y", [1, 3, 4, 4])], opset=13)
    check = verify(model).check("contamination")
    assert check.ok  # batch 1: nothing mixes yet
    assert "1 node(s) block batching, and --dynamic-batch refuses it: node 'ReduceMean -> m'" in check.summary
    assert "mixes frames" in check.details["repair"]["refused"]


def test_dynamic_model_verifies_against_its_fixed_batch_original_in_padded_chunks():
    """The original exported at batch 3; the repaired model runs at 7: the reference runs 3 chunks
    of 3 (the last padded with copies of frame 6) and is compared frame by frame."""
    from tests.models import W, conv_net

    report = verify(conv_net(batch="N"), conv_net(batch=3), batch=7)
    assert report.ok, report.to_dict()
    (entry,) = [c for c in report.check("parity").details["comparisons"] if c["against"] == "reference model"]
    assert entry["mode"] == ("per frame: the reference run at its fixed batch 3 on 3 chunk(s) of the 7 frames "
                             "(the last padded), the model at batch 7")
    assert [o["shape"][0] for o in entry["outputs"]] == [7] and entry["outputs"][0]["max_abs"] == 0
    # A different model is still caught chunk by chunk.
    other = conv_net(batch="N", weight=-W)
    assert not verify(other, conv_net(batch=3), batch=7).check("parity").ok


def test_centerface_repaired_to_a_dynamic_batch_verifies_at_another_batch(zoo_model, tmp_path):
    from onnxfit import optimize

    source = zoo_model("centerface")  # exported at batch 10
    out = optimize(source, tmp_path / "centerface.onnx", target="cpu", dynamic_batch=True).output
    result = CliRunner().invoke(app, ["verify", str(out), "--reference", str(source), "--batch", "16", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    parity = document["checks"][0]["details"]["comparisons"][0]
    assert parity["mode"].startswith("per frame: the reference run at its fixed batch 10 on 2 chunk(s) of the 16")
    assert document["checks"][1]["summary"] == "frames independent at batch 16 on ort-cpu-noopt"


def _text_net(mix: bool = False):
    """A string input ``x [N, 2]`` copied twice along axis 1 (``mix``: rows of all frames swapped through
    a transpose, so frame i reads frame j)."""
    nodes = [helper.make_node("Concat", ["x", "x"], ["xx"], axis=1)]
    if mix:
        nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0]),
                 helper.make_node("Reshape", ["t", "shape"], ["y"])]
        shape = helper.make_tensor("shape", TensorProto.INT64, [2], [-1, 2])
        return make_model(nodes, [tensor_info("x", ["N", 2], TensorProto.STRING)],
                          [tensor_info("y", None, TensorProto.STRING)], [shape])
    return make_model(nodes, [tensor_info("x", ["N", 2], TensorProto.STRING)],
                      [tensor_info("xx", None, TensorProto.STRING)])


def test_string_inputs_verify_from_an_npz_of_str_arrays(tmp_path):
    model = tmp_path / "text.onnx"
    onnx.save(_text_net(), model)
    data = tmp_path / "text.npz"
    np.savez(data, x=np.array([["ab", "Cd"], ["e", "fgh"], ["ij", "k"]]))
    report = verify(model, model, inputs=data)
    assert report.ok, report.to_dict()
    (output,) = report.check("parity").details["comparisons"][0]["outputs"]
    assert output["shape"] == [3, 4] and output["mismatches"] == 0 and output["max_abs"] == 0
    assert report.check("contamination").summary == "frames independent at batch 4 on ort-cpu-noopt"
    # Frames that read each other's text are caught with the given text alone.
    mixed = verify(_text_net(mix=True), inputs=data).check("contamination")
    assert not mixed.ok and any("changing frame 0 changes frame" in f for f in mixed.details["failures"])


def test_string_inputs_without_data_or_as_pickled_objects_get_one_line_saying_how(tmp_path):
    model = tmp_path / "text.onnx"
    onnx.save(_text_net(), model)
    pickled = tmp_path / "objects.npz"
    np.savez(pickled, x=np.array([["ab", "Cd"]], dtype=object))
    for args, fragment in [([], "input 'x' is a string tensor: give its values with --inputs data.npz"),
                           (["--inputs", str(pickled)], "'x' is an object array, which .npz stores with pickle")]:
        result = CliRunner().invoke(app, ["verify", str(model), *args])
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert fragment in " ".join(result.output.split()) and "dtype=str" in result.output


def _token_type_net():
    """BERT's token-type embedding: ids in {0, 1} index a 2-row table; any other id is out of range."""
    table = helper.make_tensor("table", TensorProto.FLOAT, [2, 3], np.arange(6, dtype=np.float32))
    nodes = [helper.make_node("Gather", ["table", "ids"], ["emb"], axis=0),
             helper.make_node("ReduceSum", ["emb", "axes"], ["y"], keepdims=0)]
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    return make_model(nodes, [tensor_info("ids", ["batch", 5], TensorProto.INT64)], [tensor_info("y", None)],
                      [table, axes], opset=13)


def test_frame_test_changes_given_integer_inputs_only_to_values_they_hold():
    given = {"ids": np.array([[0, 1, 1, 0, 0], [0, 0, 1, 1, 1]], np.int64)}
    report = verify(_token_type_net(), inputs=given)
    assert report.ok, [c.summary for c in report.checks]
    frames = report.check("contamination").details["frames"]
    influence = np.array(frames["influence"])
    assert np.all(np.diag(influence) > 0), "each changed frame must move its own output"
    # One given frame: the changed frames are drawn from the values it holds (0 and 1 here).
    assert verify(_token_type_net(), inputs={"ids": given["ids"][:1]}).ok
    # A single value cannot vary: the report says so instead of inventing one.
    check = verify(_token_type_net(), inputs={"ids": np.zeros((1, 5), np.int64)}).check("contamination")
    assert check.ok and "input 'ids' holds one value in --inputs" in " ".join(check.details["notes"])


def _self_attention(dims):
    """Rows attend to each other: softmax(x x^T) x over axis 1 of ``x`` (a sequence, whatever its name)."""
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 2, 1]), helper.make_node("MatMul", ["x", "xt"], ["s"]),
             helper.make_node("Softmax", ["s"], ["p"], axis=-1), helper.make_node("MatMul", ["p", "x"], ["y"])]
    return make_model(nodes, [tensor_info("x", dims)], [tensor_info("y", dims)])


def test_a_batch_guess_the_graph_contradicts_is_no_verdict():
    """``[1, N, 16]``: N on axis 1 is named like a batch, but the model attends over it."""
    report = verify(_self_attention([1, "N", 16]))
    check = report.check("contamination")
    assert report.ok and not check.ran
    assert check.summary == ("not run: the batch axis of input 'x' is a guess (axis 1 (dim 'N')) that the graph does "
                             "not confirm (--batch-axis x=AXIS runs it)")
    assert check.details["guessed_axes"] == {"x": "axis 1 (dim 'N')"}
    assert check.details["failures"] == [] and "frame 0 run alone differs" in check.details["unconfirmed_failures"][0]
    # Given by the user, the same axis is tested and the mixing fails.
    given = verify(_self_attention([1, "N", 16]), batch_axes=["x=1"]).check("contamination")
    assert given.ran and not given.ok and "guessed_axes" not in given.details
    # On axis 0 a guess stands: a re-export that mixes its frames fails (tests/cli: naive rows net).
    leading = verify(_self_attention(["N", 16, 16])).check("contamination")
    assert leading.ok and leading.ran and leading.details["guessed_axes"] == {"x": "axis 0 (dim 'N')"}


def test_guessed_batch_axes_are_listed_as_guesses_in_the_report(tmp_path):
    from onnxfit.verification import write_report
    from tests.models import conv_net

    report = verify(conv_net())
    write_report(report, tmp_path)
    note = "batch axes guessed from dim names (--batch-axis NAME=AXIS sets them): x axis 0 (dim 'N')"
    assert note in report.check("contamination").details["notes"]
    assert note in (tmp_path / "report.md").read_text()


def test_an_input_named_like_a_state_is_one_only_if_the_graph_returns_its_kind():
    """``memory [1, 8, S, 6]`` feeding a head is a feature map: random data, not a zero state."""
    w = helper.make_tensor("w", TensorProto.FLOAT, [2, 8, 1, 1], np.ones(16, np.float32))
    head = make_model([helper.make_node("Conv", ["memory", "w"], ["y"])], [tensor_info("memory", [1, 8, "S", 6])],
                      [tensor_info("y", [1, 2, "S", 6])], [w])
    report = verify(head)
    assert report.ok
    inputs = report.check("parity").details
    assert not any("start at zeros" in n for n in inputs["notes"])
    # The same name with an output of its shape is a state, and starts at zeros.
    carried = make_model([helper.make_node("Relu", ["memory"], ["memory_out"])], [tensor_info("memory", [1, 8, "S", 6])],
                         [tensor_info("memory_out", [1, 8, "S", 6])])
    assert any("memory start at zeros" in n for n in verify(carried).check("parity").details["notes"])


def _stopwords_net():
    """A list of 4 words filtered to 3 (ONNX's StringNormalizer test): a static leading dim that no
    output keeps, and text outputs that runtimes return as str or object arrays."""
    node = helper.make_node("StringNormalizer", ["x"], ["y"], stopwords=["monday"], is_case_sensitive=1)
    return make_model([node], [tensor_info("x", [4], TensorProto.STRING)], [tensor_info("y", [3], TensorProto.STRING)])


def test_a_fixed_leading_dim_no_output_keeps_is_no_batch_and_text_outputs_compare_by_value(tmp_path):
    model = tmp_path / "stopwords.onnx"
    onnx.save(_stopwords_net(), model)
    feeds = tmp_path / "words.npz"
    np.savez(feeds, x=np.array(["monday", "tuesday", "wednesday", "thursday"]))
    result = CliRunner().invoke(app, ["verify", str(model), "--inputs", str(feeds), "--json"])
    assert result.exit_code == 0, result.output
    checks = {c["name"]: c for c in json.loads(result.output)["checks"]}
    assert checks["parity"]["ok"]  # onnx.reference's str array against ONNX Runtime's object array
    assert checks["contamination"]["ran"] is False and "--batch-axis x=AXIS" in checks["contamination"]["summary"]
    # Named as the batch, the dim is tested and the lost axis is a failure.
    result = CliRunner().invoke(app, ["verify", str(model), "--inputs", str(feeds), "--batch-axis", "x=0"])
    assert result.exit_code == 1 and "batch axis lost in output 'y'" in " ".join(result.output.split())
