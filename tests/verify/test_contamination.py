"""Cross-frame contamination: the dynamic frame test and the static batch-flow analysis."""

from __future__ import annotations

import numpy as np
from onnx import helper

from onnxfit.verification import verify
from onnxfit.verification.contamination import BATCH_RULES, batch_flow
from tests.conftest import assert_frames_independent, make_model, tensor_info
from tests.models import B, W, const, conv_net, naive_rows_net, softmax_mixing_net

RNG = np.random.default_rng(0)


def test_clean_conv_net_with_symbolic_batch_passes_with_diagonal_influence():
    check = verify(conv_net()).check("contamination")
    assert check.ok, check.summary
    frames = check.details["frames"]
    assert frames["batch"] == 4
    influence = np.array(frames["influence"])
    assert influence.shape == (4, 4)
    assert np.all(np.diag(influence) > 0) and np.all(influence[~np.eye(4, dtype=bool)] == 0)
    assert frames["alone"]["y"] == [0.0] * 4 or max(frames["alone"]["y"]) < 1e-5


def test_naive_reshape_flattening_the_batch_fails_and_names_the_reshape():
    check = verify(naive_rows_net()).check("contamination")
    assert not check.ok
    assert "batch axis lost in output 'y'" in check.summary
    assert "Reshape 'flatten_rows'" in check.summary
    finding = check.details["static"]["findings"][0]
    assert (finding["node"], finding["op"], finding["kind"]) == ("flatten_rows", "Reshape", "merges")


def test_softmax_over_the_merged_batch_axis_mixes_frames_and_fails():
    check = verify(softmax_mixing_net()).check("contamination")
    assert not check.ok
    assert "frame 0 run alone differs" in check.summary
    failures = check.details["failures"]
    assert any("changing frame 0 changes frame 1" in f for f in failures)
    blocking = [f for f in check.details["static"]["findings"] if f["blocking"]]
    assert blocking[0]["node"] == "softmax" and blocking[0]["kind"] == "mixes"
    assert "merged: N*128" in blocking[0]["message"]


def test_output_with_batch_merged_into_a_middle_axis_is_reported_lost():
    # [N, 4, 8, 8] -> [1, N*64, 4]: the anchor layout of a detector re-exported without care.
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Transpose", ["c"], ["t"], perm=[0, 2, 3, 1], name="nhwc"),
        helper.make_node("Reshape", ["t", "shape"], ["y"], name="anchors"),
    ]
    model = make_model(
        nodes, [tensor_info("x", ["N", 3, 8, 8])], [tensor_info("y", [1, None, 4])],
        [const("w", W), const("b", B), const("shape", np.array([1, -1, 4], np.int64))],
    )
    check = verify(model).check("contamination")
    assert not check.ok
    assert "batch axis lost in output 'y': shape [1, 64, 4] at batch 1, [1, 256, 4] at batch 4" in check.summary
    assert check.details["static"]["lost"]["y"].endswith("first changed by Reshape 'anchors'")


def test_fixed_batch_model_passes_with_note_and_names_blocking_nodes():
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Reshape", ["c", "shape"], ["y"], name="hard_reshape"),
    ]
    model = make_model(
        nodes, [tensor_info("x", [1, 3, 8, 8])], [tensor_info("y", [1, 256])],
        [const("w", W), const("b", B), const("shape", np.array([1, 256], np.int64))],
    )
    check = verify(model).check("contamination")
    assert check.ok
    assert check.details["dynamic"] is False
    notes = " ".join(check.details["notes"])
    assert "cannot be batched" in notes
    assert "block batching: Reshape 'hard_reshape' hard-codes the batch size (target shape [1, 256])" in notes


def test_fixed_batch_clean_model_says_dynamic_batch_should_work():
    check = verify(conv_net(batch=1)).check("contamination")
    assert check.ok and "no node blocks --dynamic-batch" in " ".join(check.details["notes"])


def _flow(nodes, inputs, outputs, inits=(), shapes=None):
    model = make_model(nodes, inputs, outputs, inits)
    return batch_flow(model, shapes or {i.name: (1, *[d.dim_value for d in i.type.tensor_type.shape.dim[1:]]) for i in inputs})


def test_batch_flow_transpose_there_and_back_is_only_a_move():
    flow = _flow(
        [helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0, 2], name="t1"),
         helper.make_node("Relu", ["t"], ["r"], name="relu"),
         helper.make_node("Transpose", ["r"], ["y"], perm=[1, 0, 2], name="t2")],
        [tensor_info("x", ["N", 5, 6])], [tensor_info("y", ["N", 5, 6])],
    )
    assert flow.ok, flow.problems
    assert [(f.node, f.kind) for f in flow.findings] == [("t1", "moves")]
    assert flow.outputs["y"] == "batch on axis 0"


def test_batch_flow_matmul_contracting_over_the_batch_mixes():
    flow = _flow(
        [helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0], name="xt"),
         helper.make_node("MatMul", ["t", "x"], ["y"], name="gram")],
        [tensor_info("x", ["N", 8])], [tensor_info("y", [8, 8])],
    )
    mixes = [f for f in flow.findings if f.kind == "mixes"]
    assert mixes and mixes[0].node == "gram" and "sums over the batch axis 1" in mixes[0].message


def test_batch_flow_reduce_mean_over_axis_0_reduces_with_axes_input_or_attribute():
    for opset_nodes, inits in (
        ([helper.make_node("ReduceMean", ["x", "axes"], ["y"], name="mean")], [const("axes", np.array([0], np.int64))]),
        ([helper.make_node("ReduceMean", ["x"], ["y"], axes=[0], name="mean")], []),
    ):
        opset = 18 if inits else 17
        model = make_model(opset_nodes, [tensor_info("x", ["N", 4])], [tensor_info("y", [1, 4])], inits, opset=opset)
        flow = batch_flow(model, {"x": (1, 4)})
        assert [(f.node, f.kind) for f in flow.findings] == [("mean", "reduces")]


def test_batch_flow_layer_norm_from_axis_0_mixes_but_from_axis_1_does_not():
    for axis, mixes in ((0, True), (1, False)):
        nodes = [helper.make_node("LayerNormalization", ["x", "s"], ["y"], axis=axis, name="ln")]
        flow = _flow(nodes, [tensor_info("x", ["N", 4])], [tensor_info("y", ["N", 4])],
                     [const("s", np.ones((4,) if axis else (3, 4), np.float32))], shapes={"x": (3, 4)})
        assert any(f.kind == "mixes" for f in flow.findings) is mixes


def test_batch_rules_table_covers_the_ops_that_mix_without_changing_shapes():
    for op in ("Softmax", "LayerNormalization", "ReduceMean", "MatMul", "Gather", "Conv", "LSTM", "CumSum"):
        assert op in BATCH_RULES


def test_static_inputs_whose_leading_dims_disagree_are_not_taken_for_a_batch():
    """A streaming step: frame [1, 4] and a GRU-like cache [2, 1, 4] whose leading 2 is a layer
    index. Verify used to test 'batch 2' and then refuse its own guess ("--batch 2: no input has
    a dynamic batch dim"); now it says the dims disagree and tests no frames."""
    nodes = [
        helper.make_node("Unsqueeze", ["x", "zero"], ["x3"], name="lift"),
        helper.make_node("Add", ["cache", "x3"], ["cache_out"], name="update"),
        helper.make_node("ReduceSum", ["cache_out", "zero"], ["y"], keepdims=0, name="sum_layers"),
    ]
    model = make_model(
        nodes, [tensor_info("x", [1, 4]), tensor_info("cache", [2, 1, 4])],
        [tensor_info("y", [1, 4]), tensor_info("cache_out", [2, 1, 4])],
        [const("zero", np.array([0], np.int64))],
    )
    feeds = {"x": RNG.standard_normal((1, 4)).astype(np.float32), "cache": np.zeros((2, 1, 4), np.float32)}
    report = verify(model, inputs=feeds)
    check = report.check("contamination")
    assert report.ok and check.ok
    assert check.details["dynamic"] is False
    assert "disagree on a fixed batch dim (x: 1 (axis 0), cache: 2 (axis 0))" in check.details["notes"][0]
    # Naming the cache's batch axis makes both inputs agree on batch 1: the static analysis runs.
    named = verify(model, inputs=feeds, batch_axes={"cache": 1}).check("contamination")
    assert named.ok and "cannot be batched" in " ".join(named.details["notes"])


def _streaming_feeds(original):
    """Batch-1 data for the FacePhys-like streaming model: a frame, dt, and an all-zero state."""
    return {"x": RNG.uniform(0, 1, (1, 1, 6, 6, 3)).astype(np.float32), "dt": np.array([1 / 30], np.float32),
            "state": np.zeros((1, 1, 6, 6, 4), np.float32)}


def test_time_distributed_rows_after_dynamic_batch_verify_per_frame_with_a_shared_per_call_input():
    """dynamic-batch kept per-pixel rows [N*36, C, 1, 1] between Reshapes and left dt [1] shared:
    the frames test independent at batch 4, the static flow follows the rows (a merge, not a
    blocker) to outputs on axis 0, and dt is named as one value for all frames."""
    from onnxfit.optimizer import PassContext, get_passes, run_passes
    from tests.optimizer.test_dynamic_batch_rows import streaming_model

    original = streaming_model()
    rewritten = run_passes(original, get_passes(["dynamic-batch"]), PassContext(opset=11)).model
    for batch_axis in (None, ["dt=none"]):
        report = verify(rewritten, original, batch=4, inputs=_streaming_feeds(original), batch_axes=batch_axis,
                        runtimes=["ort-cpu-noopt"])
        static = assert_frames_independent(report)
        check = report.check("contamination")
        assert {(f["node"], f["kind"], f["blocking"]) for f in static["findings"]} == {
            ("pixels", "merges", False), ("pixels2", "merges", False)}
        assert not static["notes"]
        shared_note = ("input 'dt' has a fixed batch dim of 1 next to the symbolic batch of 'x': one value shared "
                       "by all frames (--batch-axis dt=none says so)")
        assert (shared_note in check.details["notes"]) is (batch_axis is None)


def test_batch_flow_follows_a_run_time_batch_in_an_expand_shape_before_opset_13():
    """At opset 11 onnx's data propagation misses Concat(Shape(x)[0], ...): the probe evaluates it,
    so the Concat that dynamic-batch gave a batch-wide constant is followed, not a dead end."""
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"], name="shape"),
        helper.make_node("Gather", ["shape", "zero"], ["n"], axis=0, name="batch"),
        helper.make_node("Concat", ["n", "rest"], ["wide"], axis=0, name="wide"),
        helper.make_node("Expand", ["pad", "wide"], ["pad_n"], name="expand"),
        helper.make_node("Concat", ["x", "pad_n"], ["y"], axis=1, name="cat"),
    ]
    model = make_model(nodes, [tensor_info("x", ["N", 3])], [tensor_info("y", ["N", 4])],
                       [const("zero", np.array([0], np.int64)), const("rest", np.array([1], np.int64)),
                        const("pad", np.zeros((1, 1), np.float32))], opset=11)
    flow = batch_flow(model, {"x": (1, 3)})
    assert flow.ok and flow.outputs["y"] == "batch on axis 0" and not flow.notes
