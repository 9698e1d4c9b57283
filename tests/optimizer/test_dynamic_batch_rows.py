"""dynamic-batch on time-distributed exports: a batch merged with other axes into rows and split back
(rule 3b), and per-call inputs shared by all frames, differentially on ONNX Runtime CPU.

The streaming model below is FacePhys in miniature, written the way tf2onnx writes it (opset 11):
a [1, 1, H, W, C] frame (batch, time) reshaped to per-pixel rows [H*W, C, 1, 1] for a 1x1 Conv
and back to [1, 1, H, W, C'], a recurrent state decayed by ``Squeeze(dt) * rates`` (``dt: [1]``:
seconds per frame, one value per call), the batch merged with its unit time axis around a 3x3
Conv, and a per-pixel head averaged over the image.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxfit.errors import OnnxfitError
from onnxfit.optimizer import PassContext, get_passes, run_passes
from onnxfit.optimizer.passes.dynamic_batch.reshape_rules import frame_slot
from tests.conftest import make_model, run_ort, tensor_info

H = W = 6
C_IN, C, C_OUT = 3, 4, 2
N = 4


def _weight(name, shape, seed, scale=0.3):
    return numpy_helper.from_array((np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32),
                                   name)


def _ints(name, values):
    return helper.make_tensor(name, TensorProto.INT64, [len(values)], values)


def _scalar(name, value):
    return helper.make_tensor(name, TensorProto.FLOAT, [], [value])


def streaming_model(opset=11):
    """FacePhys in miniature: inputs x [1, 1, H, W, 3], dt [1], state [1, 1, H, W, 4]; outputs
    y [1, 2] (a pulse-like sample) and the new state."""
    nodes = [
        # time-distributed 1x1 Conv written per pixel: [1, 1, H, W, 3] -> [H*W, 3, 1, 1] -> [1, 1, H, W, 4]
        helper.make_node("Reshape", ["x", "pixels_shape"], ["pixels"], name="pixels"),
        helper.make_node("Conv", ["pixels", "w_in", "b_in"], ["pw"], name="pointwise_in"),
        helper.make_node("Clip", ["pw", "zero", "six"], ["pw6"], name="relu6"),
        helper.make_node("Add", ["pw6", "channel_bias"], ["pwb"], name="channel_bias_add"),
        helper.make_node("Reshape", ["pwb", "frames_shape"], ["frames"], name="frames"),
        # the state decays by one dt for all streams
        helper.make_node("Squeeze", ["dt"], ["dt_scalar"], axes=[0], name="dt_scalar"),
        helper.make_node("Mul", ["rates", "dt_scalar"], ["rate_dt"], name="rate_dt"),
        helper.make_node("Sub", ["one", "rate_dt"], ["keep"], name="keep"),
        helper.make_node("Mul", ["state", "keep"], ["kept"], name="kept"),
        helper.make_node("Mul", ["frames", "rate_dt"], ["fresh"], name="fresh"),
        helper.make_node("Add", ["kept", "fresh"], ["state_out"], name="state_update"),
        # the batch merged with its unit time axis around a 3x3 Conv (NHWC -> NCHW -> NHWC)
        helper.make_node("Reshape", ["state_out", "image_shape"], ["image"], name="merge_time"),
        helper.make_node("Transpose", ["image"], ["nchw"], perm=[0, 3, 1, 2], name="to_nchw"),
        helper.make_node("Conv", ["nchw", "w_mid"], ["mid"], pads=[1, 1, 1, 1], name="spatial"),
        helper.make_node("Transpose", ["mid"], ["nhwc"], perm=[0, 2, 3, 1], name="to_nhwc"),
        # per-pixel head and back: [1, H, W, 4] -> [H*W, 4, 1, 1] -> [1, H, W, 2]
        helper.make_node("Reshape", ["nhwc", "pixels2_shape"], ["pixels2"], name="pixels2"),
        helper.make_node("Conv", ["pixels2", "w_out"], ["head"], name="pointwise_out"),
        helper.make_node("Sigmoid", ["head"], ["gate"], name="gate"),
        helper.make_node("Reshape", ["gate", "back_shape"], ["back"], name="back"),
        helper.make_node("ReduceMean", ["back"], ["y"], axes=[1, 2], keepdims=0, name="mean"),
    ]
    inits = [
        _ints("pixels_shape", [H * W, C_IN, 1, 1]), _ints("frames_shape", [1, 1, H, W, C]),
        _ints("image_shape", [-1, H, W, C]), _ints("pixels2_shape", [H * W, C, 1, 1]),
        _ints("back_shape", [1, H, W, C_OUT]),
        _weight("w_in", [C, C_IN, 1, 1], 1), _weight("b_in", [C], 2), _weight("channel_bias", [C, 1, 1], 3),
        _weight("w_mid", [C, C, 3, 3], 4), _weight("w_out", [C_OUT, C, 1, 1], 5),
        numpy_helper.from_array(np.linspace(0.5, 2.0, C).astype(np.float32), "rates"),
        _scalar("zero", 0.0), _scalar("six", 6.0), _scalar("one", 1.0),
    ]
    inputs = [tensor_info("x", [1, 1, H, W, C_IN]), tensor_info("dt", [1]), tensor_info("state", [1, 1, H, W, C])]
    outputs = [tensor_info("y", [1, C_OUT]), tensor_info("state_out", [1, 1, H, W, C])]
    # value_info as exporters write it: the rewrite must leave none that pins batch 1
    return onnx.shape_inference.infer_shapes(make_model(nodes, inputs, outputs, inits, opset=opset))


def _run(model, batch_axes=None, opset=11):
    return run_passes(model, get_passes(["dynamic-batch"]), PassContext(opset=opset, batch_axes=batch_axes or {}))


def _dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def _streams(model, frames, dt, batch):
    """Run ``frames`` [T, N, 1, H, W, 3] with the state carried: all N streams in batches of ``batch``."""
    steps, n = frames.shape[:2]
    ys, states = np.zeros((steps, n, C_OUT), np.float32), np.zeros((n, 1, H, W, C), np.float32)
    for t in range(steps):
        for s in range(0, n, batch):
            y, states[s:s + batch] = run_ort(model, {"x": frames[t, s:s + batch], "dt": dt,
                                                     "state": states[s:s + batch]})
            ys[t, s:s + batch] = y
    return ys, states


def test_per_pixel_and_time_distributed_reshapes_keep_streams_apart():
    original = streaming_model()
    result = _run(original)
    rewritten = result.model
    assert any("input 'dt' [1] is taken as one value shared by all frames" in n for n in result.reports[0].notes)
    inputs = {i.name: _dims(i) for i in rewritten.graph.input}
    assert inputs == {"x": ["batch", 1, H, W, C_IN], "dt": [1], "state": ["batch", 1, H, W, C]}
    assert [_dims(o) for o in rewritten.graph.output] == [["batch", C_OUT], ["batch", 1, H, W, C]]
    shapes = {n.output[0]: numpy_helper.to_array(next(i for i in rewritten.graph.initializer if i.name == n.input[1]))
              for n in rewritten.graph.node if n.op_type == "Reshape"}
    # merged: -1 takes the batch times the pixels; split back: -1 takes the batch
    assert shapes["pixels"].tolist() == [-1, C_IN, 1, 1] and shapes["frames"].tolist() == [-1, 1, H, W, C]
    assert shapes["pixels2"].tolist() == [-1, C, 1, 1] and shapes["back"].tolist() == [-1, H, W, C_OUT]
    rows = {vi.name: _dims(vi) for vi in rewritten.graph.value_info}
    assert rows["pw"] == [f"batch*{H * W}", C, 1, 1]
    rng = np.random.default_rng(0)
    frames = rng.uniform(0, 1, (5, N, 1, H, W, C_IN)).astype(np.float32)
    dt = np.array([1 / 30], np.float32)
    # each stream alone through the original, and all four at once through the rewrite
    alone_y, alone_state = _streams(original, frames, dt, 1)
    np.testing.assert_array_equal(_streams(rewritten, frames, dt, 1)[0], alone_y)  # batch 1: bit-exact
    batched_y, batched_state = _streams(rewritten, frames, dt, N)
    np.testing.assert_allclose(batched_y, alone_y, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(batched_state, alone_state, rtol=1e-5, atol=1e-6)
    # another stream changing moves no other stream, bit for bit
    changed = frames.copy()
    changed[:, 2] = rng.uniform(0, 1, changed[:, 2].shape)
    moved_y, moved_state = _streams(rewritten, changed, dt, N)
    others = [0, 1, 3]
    np.testing.assert_array_equal(moved_y[:, others], batched_y[:, others])
    np.testing.assert_array_equal(moved_state[others], batched_state[others])
    assert not np.allclose(moved_y[:, 2], batched_y[:, 2])


def test_batch_axis_none_for_the_per_call_input_gives_the_same_model_without_the_guess():
    guessed = _run(streaming_model()).model
    told = _run(streaming_model(), {"dt": None})
    assert not any("dt" in n for n in told.reports[0].notes)
    assert [n.op_type for n in told.model.graph.node] == [n.op_type for n in guessed.graph.node]


def test_per_call_input_given_a_batch_axis_is_not_second_guessed():
    with pytest.raises(OnnxfitError, match=r"^node 'rate_dt' \(Mul broadcasting a fixed tensor along the batch axis\) "
                                           r"mixes frames; the batch cannot be made dynamic$"):
        _run(streaming_model(), {"dt": 0})


def test_per_call_input_used_as_it_is_stays_batched_and_the_error_names_the_flag():
    # c [1] is a bias broadcast along the columns: per frame it mixes them, and nothing in the
    # model says it is one value (it is never squeezed to a scalar), so the error says how to say so.
    nodes = [helper.make_node("Gemm", ["x", "w", "c"], ["y"], name="gemm")]
    model = make_model(nodes, [tensor_info("x", [1, 3]), tensor_info("c", [1])], [tensor_info("y", [1, 3])],
                       [_weight("w", [3, 3], 0)])
    with pytest.raises(OnnxfitError) as info:
        _run(model, opset=17)
    assert str(info.value).startswith("node 'gemm' (Gemm with a bias batched on another axis than its output) mixes")
    assert str(info.value).endswith("input 'c' [1] reaches it with a batch axis only guessed from its shape: if it "
                                    "holds one value for all frames, pass --batch-axis c=none")
    rewritten = _run(model, {"c": None}, opset=17).model
    assert [_dims(i) for i in rewritten.graph.input] == [["batch", 3], [1]]


def test_input_of_ones_beside_a_fixed_export_batch_above_1_is_shared():
    # x [10, 3] and c [1]: c cannot carry 10 frames, so it is one value for all of them (it used
    # to stop the pass: "input 'x' has a batch of 10 but input 'c' has 1").
    nodes = [helper.make_node("Mul", ["x", "c"], ["y"], name="scale")]
    model = make_model(nodes, [tensor_info("x", [10, 3]), tensor_info("c", [1])], [tensor_info("y", [10, 3])])
    result = _run(model, opset=17)
    assert [_dims(i) for i in result.model.graph.input] == [["batch", 3], [1]]
    assert ("input 'c' [1] is taken as one value shared by all frames, as with --batch-axis c=none: its batch of 1 "
            "is not the export batch of 10") in result.reports[0].notes
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    c = np.array([2.5], np.float32)
    np.testing.assert_array_equal(run_ort(result.model, {"x": x, "c": c})[0], x * c)


def _time_distributed(steps=3, softmax=False, split=True):
    """torch's ``x.view(B*T, C, H, W)`` exported at batch 1: [1, T, 3, 5, 5] -> [T, 3, 5, 5] -> Conv
    (-> Softmax over channels) -> [1, T, 4, 5, 5], or the Conv output itself as the graph output."""
    nodes = [helper.make_node("Reshape", ["x", "merged_shape"], ["merged"], name="merge_time"),
             helper.make_node("Conv", ["merged", "w"], ["c"], pads=[1, 1, 1, 1], name="conv")]
    last = "c"
    if softmax:
        nodes.append(helper.make_node("Softmax", [last], ["p"], axis=1, name="softmax"))
        last = "p"
    if split:
        nodes.append(helper.make_node("Reshape", [last, "split_shape"], ["y"], name="split_time"))
    else:
        nodes[-1].output[0] = "y"
    out = [1, steps, 4, 5, 5] if split else [steps, 4, 5, 5]
    return make_model(nodes, [tensor_info("x", [1, steps, 3, 5, 5])], [tensor_info("y", out)],
                      [_ints("merged_shape", [steps, 3, 5, 5]), _ints("split_shape", [1, steps, 4, 5, 5]),
                       _weight("w", [4, 3, 3, 3], 7)], opset=13)


def _assert_frames_alone(original, rewritten, frame_shape, seed=0):
    """Every frame of a batch of 4 equals the original run on that frame alone (a leading 1 added
    where the output gained the batch), and changing one frame moves no other."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, *frame_shape)).astype(np.float32)
    (together,) = run_ort(rewritten, {"x": x})
    assert together.shape[0] == N
    for j in range(N):
        (alone,) = run_ort(original, {"x": x[j:j + 1]})
        np.testing.assert_allclose(together[j].reshape(alone.shape), alone, rtol=1e-5, atol=1e-6)
    changed = x.copy()
    changed[1] = rng.standard_normal(frame_shape)
    (moved,) = run_ort(rewritten, {"x": changed})
    np.testing.assert_array_equal(moved[[0, 2, 3]], together[[0, 2, 3]])


@pytest.mark.parametrize("softmax", [False, True])
def test_batch_merged_with_time_steps_around_a_conv_is_split_back(softmax):
    original = _time_distributed(softmax=softmax)
    rewritten = _run(original, opset=13).model
    assert _dims(rewritten.graph.output[0]) == ["batch", 3, 4, 5, 5]
    _assert_frames_alone(original, rewritten, (3, 3, 5, 5))


def test_rows_that_reach_a_graph_output_are_split_there():
    # [1, 3, 3, 5, 5] -> [3, 3, 5, 5] -> Conv -> output: at batch N the output is [N, 3, 4, 5, 5]
    original = _time_distributed(split=False)
    rewritten = _run(original, opset=13).model
    assert _dims(rewritten.graph.output[0]) == ["batch", 3, 4, 5, 5]
    assert rewritten.graph.node[-1].op_type == "Reshape" and rewritten.graph.node[-1].output[0] == "y"
    _assert_frames_alone(original, rewritten, (3, 3, 5, 5))


def test_flatten_of_batch_and_time_into_gemm_rows_is_split_back():
    # Flatten(axis=2) of [1, T, 3, 2, 2] -> [T, 12] -> Gemm -> [T, 5] -> Reshape [1, T, 5]
    nodes = [helper.make_node("Flatten", ["x"], ["rows"], axis=2, name="flatten_time"),
             helper.make_node("Gemm", ["rows", "w", "bias"], ["g"], name="dense"),
             helper.make_node("Reshape", ["g", "split_shape"], ["y"], name="split_time")]
    original = make_model(nodes, [tensor_info("x", [1, 3, 3, 2, 2])], [tensor_info("y", [1, 3, 5])],
                          [_weight("w", [12, 5], 3), _weight("bias", [5], 4), _ints("split_shape", [1, 3, 5])],
                          opset=13)
    rewritten = _run(original, opset=13).model
    assert [n.op_type for n in rewritten.graph.node] == ["Flatten", "Gemm", "Reshape"]
    _assert_frames_alone(original, rewritten, (3, 3, 2, 2))


def test_per_pixel_dense_keeps_the_lift():
    # Keras Dense per pixel: [1, H, W, 3] -> [H*W, 3] -> MatMul -> [1, H, W, 4]: MatMul takes a lifted batch.
    nodes = [helper.make_node("Reshape", ["x", "rows_shape"], ["rows"], name="pixels"),
             helper.make_node("MatMul", ["rows", "w"], ["m"], name="dense"),
             helper.make_node("Reshape", ["m", "back_shape"], ["y"], name="back")]
    original = make_model(nodes, [tensor_info("x", [1, H, W, 3])], [tensor_info("y", [1, H, W, 4])],
                          [_ints("rows_shape", [H * W, 3]), _weight("w", [3, 4], 5), _ints("back_shape", [1, H, W, 4])],
                          opset=13)
    rewritten = _run(original, opset=13).model
    shapes = [numpy_helper.to_array(i).tolist() for i in rewritten.graph.initializer if i.name.endswith("batch_shape")]
    assert sorted(shapes) == sorted([[-1, H * W, 3], [-1, H, W, 4]])
    _assert_frames_alone(original, rewritten, (H, W, 3))


def test_a_reduction_over_the_rows_mixes_frames_and_names_the_node():
    original = _time_distributed(split=False)
    original.graph.node.append(helper.make_node("ReduceMean", ["y"], ["m"], axes=[0], keepdims=0, name="over_rows"))
    original.graph.output[0].CopyFrom(tensor_info("m", [4, 5, 5]))
    with pytest.raises(OnnxfitError, match=r"^node 'over_rows' \(ReduceMean over axis 0\) mixes frames"):
        _run(original, opset=13)


def test_a_fixed_per_row_tensor_broadcast_over_the_rows_is_refused():
    # A [3, 1, 1, 1] constant is one value per time step of one frame: over N frames' rows it would not line up.
    original = _time_distributed()
    original.graph.node.insert(2, helper.make_node("Add", ["c", "per_step"], ["c_step"], name="per_step_add"))
    original.graph.node[-1].input[0] = "c_step"
    original.graph.initializer.append(_weight("per_step", [3, 1, 1, 1], 9))
    with pytest.raises(OnnxfitError, match=r"^node 'per_step_add' \(Add broadcasting a fixed tensor along the batch"):
        _run(original, opset=13)


@pytest.mark.parametrize(("in_shape", "b", "out_shape", "rows", "slot"), [
    ((1, 1, 36, 36, 3), 0, (1296, 3, 1, 1), 1, (0, 1296)),   # per-pixel rows of one frame
    ((1296, 64, 1, 1), 0, (1, 36, 36, 64), 1296, (0, 1)),     # split back: one row per frame again
    ((1296, 32, 1, 1), 0, (1, 1, 36, 36, 32), 1296, (0, 1)),  # split back with the unit time axis
    ((1, 1, 36, 36, 32), 0, (1, 36, 36, 32), 1, (0, 1)),      # batch merged with a unit time axis
    ((1296, 64, 1, 1), 0, (1296, 64), 1296, (0, 1296)),       # rows stay rows
    ((1296, 64), 0, (36, 36, 64), 1296, (0, 36)),             # fewer, longer rows
    ((1296, 64), 0, (2592, 32), 1296, (0, 2592)),             # more, shorter rows
    ((4, 5, 1, 3), 2, (20, 1, 3), 1, (1, 1)),                 # a batch after other axes stays between them
    ((3, 1, 2, 2), 1, (3, 4), 1, (1, 4)),                     # ... merged there: rows between them
    ((1, 6), 0, (2, 3), 1, (0, 2)),
])
def test_frame_slot_decoding(in_shape, b, out_shape, rows, slot):
    assert frame_slot(in_shape, b, out_shape, 1, rows) == slot


def test_frame_slot_at_a_fixed_export_batch():
    assert frame_slot((10, 4), 0, (10, 2, 2), 10) == (0, 1)
    assert frame_slot((10, 4), 0, (20, 2), 10) == (0, 2)
    assert frame_slot((10, 4), 0, (4, 10), 10) is None  # frames interleave


def test_rows_keep_their_value_info_symbolic_and_the_model_checks():
    rewritten = _run(streaming_model()).model
    onnx.checker.check_model(rewritten)
    onnx.shape_inference.infer_shapes(rewritten, strict_mode=True)
