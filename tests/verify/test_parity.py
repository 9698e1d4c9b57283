"""Parity: comparison maths, output matching, per-frame comparison, inputs and their validation."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from onnxfit.errors import OnnxfitError
from onnxfit.verification import verify
from onnxfit.verification.parity import compare_arrays, compare_outputs, match_outputs, stack_frames, tolerance_for
from tests.conftest import make_model, tensor_info
from tests.models import B, W, const, conv_net


def test_identical_arrays_match_exactly_with_cosine_one():
    a = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    result = compare_arrays("y", a, a.copy())
    assert result.ok and result.max_abs == 0 and result.mismatches == 0 and result.cosine == pytest.approx(1.0)
    assert result.histogram[0] == 12 and sum(result.histogram) == 12


def test_mismatches_count_elements_beyond_atol_plus_rtol_times_reference():
    ref = np.array([0.0, 1.0, 100.0, 100.0], np.float32)
    got = ref + np.array([5e-5, 2e-3, 0.05, 0.2], np.float32)  # bounds 1e-4, 1.1e-3, 0.1001, 0.1001
    result = compare_arrays("y", got, ref)
    assert result.mismatches == 2 and not result.ok
    assert result.max_abs == pytest.approx(0.2, rel=1e-3) and result.worst_index == [3]
    assert result.max_rel == pytest.approx(2e-3, rel=1e-2)  # element 0 (|ref| <= atol) is left out


def test_nan_matches_nan_but_not_a_number():
    ref = np.array([np.nan, 1.0], np.float32)
    assert compare_arrays("y", ref.copy(), ref).ok
    result = compare_arrays("y", np.array([1.0, 1.0], np.float32), ref)
    assert result.mismatches == 1 and result.max_abs == np.inf


def test_shape_mismatch_is_a_failure_with_a_note():
    result = compare_arrays("y", np.zeros((1, 3), np.float32), np.zeros((1, 2), np.float32))
    assert not result.ok and "shape [1, 3] differs from the reference's [1, 2]" in result.note


def test_default_tolerances_are_looser_for_fp16_and_exact_for_integers():
    assert tolerance_for(np.float32) == tolerance_for(np.dtype("float32"))
    assert tolerance_for(np.float16).atol > tolerance_for(np.float32).atol
    assert tolerance_for(np.int64).atol == 0 and tolerance_for(np.bool_).rtol == 0
    assert tolerance_for(np.float32, atol=0.5).atol == 0.5 and tolerance_for(np.float32, atol=0.5).rtol == 1e-3
    assert not compare_arrays("i", np.array([1, 2]), np.array([1, 3])).ok


def test_outputs_match_by_name_then_by_position():
    assert match_outputs(["a", "x", "y"], ["a", "b", "c"]) == [("a", "a"), ("x", "b"), ("y", "c")]
    assert match_outputs(["b", "a"], ["a", "b", "c"]) == [("a", "a"), ("b", "b"), (None, "c")]
    results = compare_outputs({"extra": np.zeros(1, np.float32)}, {})
    assert not results[0].ok and "extra output" in results[0].note


def test_stack_frames_maps_rank_grown_and_leading_one_outputs():
    frames = [{"rows": np.full((6, 2), i, np.float32), "emb": np.full((1, 3), i, np.float32)} for i in range(3)]
    batched = {"rows": np.zeros((3, 6, 2), np.float32), "emb": np.zeros((3, 3), np.float32)}
    stacked, problems = stack_frames(batched, frames)
    assert not problems
    assert stacked["rows"].shape == (3, 6, 2) and np.all(stacked["rows"][2] == 2)
    assert stacked["emb"].shape == (3, 3) and np.all(stacked["emb"][1] == 1)
    _, problems = stack_frames({"rows": np.zeros((18, 2), np.float32)}, [{"rows": f["rows"]} for f in frames])
    assert "no axis holds the batch" in problems["rows"]


def test_weights_perturbed_by_1e_2_fail_parity_against_the_reference():
    report = verify(conv_net(weight=W + 1e-2), conv_net())
    parity = report.check("parity")
    assert not parity.ok and not report.ok
    first = parity.details["comparisons"][0]
    assert first["label"].startswith("model vs reference model") and not first["ok"]
    assert first["outputs"][0]["mismatches"] > 0
    assert "output 'y' max abs error" in parity.summary
    # Every runtime still agrees with the reference runtime on the (perturbed) model itself.
    assert all(c["ok"] for c in parity.details["comparisons"][1:])


def test_model_equal_to_its_reference_passes_on_every_default_runtime():
    report = verify(conv_net(), conv_net())
    labels = [c["label"] for c in report.check("parity").details["comparisons"]]
    assert report.ok
    assert labels == [
        "model vs reference model on ort-cpu-noopt", "ort-cpu vs ort-cpu-noopt", "onnx-reference vs ort-cpu-noopt"
    ]


def _rows_model(batch):
    """REF at batch 1 gives [H*W, 2]; the dynamic-batch model gives [N, H*W, 2]."""
    shape = [-1, 2] if batch == 1 else [0, -1, 2]
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Transpose", ["c"], ["t"], perm=[0, 2, 3, 1], name="nhwc"),
        helper.make_node("Reshape", ["t", "shape"], ["rows"], name="rows"),
    ]
    out = [128, 2] if batch == 1 else [batch, 128, 2]
    return make_model(
        nodes, [tensor_info("x", [batch, 3, 8, 8])], [tensor_info("rows", out)],
        [const("w", W), const("b", B), const("shape", np.array(shape, np.int64))],
    )


def test_dynamic_batch_model_is_compared_per_frame_with_its_batch_1_reference():
    report = verify(_rows_model("N"), _rows_model(1))
    first = report.check("parity").details["comparisons"][0]
    assert report.ok, report.check("parity").summary
    assert first["mode"].startswith("per frame") and first["outputs"][0]["shape"] == [4, 128, 2]
    at_2 = verify(_rows_model("N"), _rows_model(1), batch=2).check("parity").details["comparisons"][0]
    assert at_2["outputs"][0]["shape"] == [2, 128, 2] and at_2["ok"]


def test_per_frame_comparison_catches_frames_written_to_the_wrong_slot():
    # Reversing the frames along the batch axis keeps shapes but sends frame 0's result to slot N-1.
    model = _rows_model("N")
    model.graph.node.append(helper.make_node("Slice", ["rows", "st", "en", "ax", "sp"], ["rev"], name="reverse"))
    model.graph.initializer.extend([const("st", np.array([-1], np.int64)), const("en", np.array([-(2**62)], np.int64)),
                                    const("ax", np.array([0], np.int64)), const("sp", np.array([-1], np.int64))])
    model.graph.output[0].CopyFrom(tensor_info("rev", ["N", 128, 2]))
    report = verify(model, _rows_model(1), runtimes=["ort-cpu-noopt"])
    assert not report.check("parity").ok


def test_symbolic_spatial_dims_default_to_64_and_say_so():
    model = conv_net()
    model.graph.input[0].CopyFrom(tensor_info("x", ["N", 3, "height", "width"]))
    parity = verify(model, runtimes=["ort-cpu"]).check("parity")
    assert "dim 'height' of input 'x' set to 64 (--input-shape changes it)" in parity.details["notes"]
    assert parity.details["inputs"]["x"]["shape"] == [1, 3, 64, 64]
    shaped = verify(model, input_shapes=["x=2x3x32x48"], runtimes=["ort-cpu"]).check("parity")
    assert shaped.details["inputs"]["x"]["shape"] == [2, 3, 32, 48] and not shaped.details["notes"]


def _scalar_model():
    nodes = [helper.make_node("Mul", ["x", "gain"], ["y"], name="gain")]
    return make_model(nodes, [tensor_info("x", ["N", 4]), tensor_info("gain", [])], [tensor_info("y", ["N", 4])])


def test_scalar_settings_must_come_from_inputs(tmp_path):
    with pytest.raises(OnnxfitError, match=r"'gain' \(scalar setting\) cannot be generated: give its values with --inputs"):
        verify(_scalar_model())
    npz = tmp_path / "inputs.npz"
    np.savez(npz, gain=np.array(0.5, np.float32))
    report = verify(_scalar_model(), inputs=npz)
    assert report.ok and report.check("parity").details["inputs"]["gain"]["source"] == "--inputs"


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"gian": np.array(0.5, np.float32)}, r"'gian' is not a model input \(inputs: x, gain\)"),
        ({"gain": np.array(0.5, np.float64)}, r"input 'gain' is float64, the model wants float32"),
        (
            {"gain": np.array(0.5, np.float32), "x": np.zeros((2, 5), np.float32)},
            r"input 'x' has shape \[2, 5\], the model wants \[N, 4\]",
        ),
        ({"gain": np.array(0.5, np.float32), "x": np.zeros((4,), np.float32)}, r"the model wants rank 2"),
    ],
)
def test_bad_npz_names_dtypes_and_shapes_are_clear_errors(tmp_path, arrays, message):
    npz = tmp_path / "bad.npz"
    np.savez(npz, **arrays)
    with pytest.raises(OnnxfitError, match=message):
        verify(_scalar_model(), inputs=npz)


def test_npz_that_is_not_an_npz_is_a_clear_error(tmp_path):
    bogus = tmp_path / "inputs.npz"
    bogus.write_bytes(b"not a zip")
    with pytest.raises(OnnxfitError, match="not a readable .npz"):
        verify(_scalar_model(), inputs=bogus)


def test_generated_inputs_are_deterministic_and_in_range():
    model = make_model(
        [helper.make_node("Identity", ["x"], ["y"]), helper.make_node("Identity", ["i"], ["j"])],
        [tensor_info("x", ["N", 3, 4, 4]), tensor_info("i", ["N", 5], TensorProto.INT64)],
        [tensor_info("y", ["N", 3, 4, 4]), tensor_info("j", ["N", 5], TensorProto.INT64)],
    )
    first = verify(model, seed=3, runtimes=["ort-cpu"]).check("parity")
    again = verify(model, seed=3, runtimes=["ort-cpu"]).check("parity")
    assert first.details == again.details
    from onnxfit.verification.inputs import make_inputs, model_inputs

    feeds, _ = make_inputs(model_inputs(model), batch=2, seed=3)
    assert feeds["x"].min() >= -1 and feeds["x"].max() <= 1 and feeds["x"].dtype == np.float32
    assert feeds["i"].min() >= 0 and feeds["i"].max() < 4 and feeds["i"].dtype == np.int64


def test_state_inputs_nobody_gave_start_at_zeros_and_say_so():
    # A streaming cell: y, state_out = tanh(x + state_in), both outputs; state [2, N, 4] as silero writes it.
    nodes = [helper.make_node("Add", ["x", "state_in"], ["s"]), helper.make_node("Tanh", ["s"], ["state_out"]),
             helper.make_node("ReduceSum", ["state_out"], ["y"], keepdims=0, axes=[0])]
    model = make_model(nodes, [tensor_info("x", [2, "N", 4]), tensor_info("state_in", [2, "N", 4])],
                       [tensor_info("y", ["N", 4]), tensor_info("state_out", [2, "N", 4])], opset=12)
    report = verify(model, runtimes=["ort-cpu"], batch_axes=["state_in=1", "x=1"])
    parity = report.check("parity")
    assert report.ok, parity.summary
    assert any("state_in start at zeros" in note for note in parity.details["notes"])


def test_placeholder_dim_names_bind_no_size():
    # Paddle2ONNX writes unknown dims as '?': [-1, 3, '?', '?'] fed 1x3x48x192 is one valid input
    nodes = [helper.make_node("Relu", ["x"], ["y"])]
    model = make_model(nodes, [tensor_info("x", ["-1", 3, "?", "?"])], [tensor_info("y", ["-1", 3, "?", "?"])])
    report = verify(model, inputs={"x": np.ones((1, 3, 48, 192), np.float32)}, runtimes=["ort-cpu"])
    assert report.ok, report.check("parity").summary
    # a real name still binds: the same 'H' twice must agree
    named = make_model(nodes, [tensor_info("x", ["N", 3, "H", "H"])], [tensor_info("y", ["N", 3, "H", "H"])])
    with pytest.raises(OnnxfitError, match="sets dim 'H' to 192"):
        verify(named, inputs={"x": np.ones((1, 3, 48, 192), np.float32)}, runtimes=["ort-cpu"])
