"""dynamic-batch on real third-party exports and on small models built like them.

Each rewritten model runs on ONNX Runtime CPU: at the export batch it gives the original outputs,
and at batch 4 every frame's outputs equal that frame run alone.
"""

import io

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper

from onnxfit.errors import OnnxfitError
from onnxfit.optimizer import PassContext, get_passes, run_passes
from onnxfit.graphs import default_opset
from tests.conftest import make_model, run_ort, tensor_info

BATCH = 4


def _run(model, input_shapes=None):
    ctx = PassContext(opset=default_opset(model), input_shapes=dict(input_shapes or {}))
    return run_passes(model, get_passes(["dynamic-batch"]), ctx)


def _weight(name, shape, seed):
    values = np.random.default_rng(seed).standard_normal(shape).astype(np.float32) * 0.3
    return numpy_helper.from_array(values, name)


def _frame_inputs(model):
    initializers = {t.name for t in model.graph.initializer}
    return [vi for vi in model.graph.input if vi.name not in initializers]


def _feeds(model, batch, frame_shapes, axes, seed=0):
    """Random inputs with ``batch`` frames on each input's batch axis (axes[name] None: not batched)."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for vi in _frame_inputs(model):
        shape = list(frame_shapes[vi.name])
        if axes.get(vi.name, 0) is not None:
            shape.insert(axes.get(vi.name, 0), batch)
        feeds[vi.name] = rng.standard_normal(shape).astype(np.float32)
    return feeds


def _assert_same_at_export_batch(original, rewritten, feeds):
    for old, new in zip(run_ort(original, feeds), run_ort(rewritten, feeds)):
        assert new.shape == old.shape
        np.testing.assert_allclose(new, old, atol=1e-5, rtol=1e-5)


def _assert_frames_independent(model, frame_shapes, axes=None, out_axes=None, atol=1e-4):
    """At batch 4 each frame's outputs equal that frame run alone."""
    axes = axes or {}
    feeds = _feeds(model, BATCH, frame_shapes, axes, seed=1)
    whole = run_ort(model, feeds)
    for j in range(BATCH):
        alone = {name: np.take(x, [j], axis=axes.get(name, 0)) if axes.get(name, 0) is not None else x
                 for name, x in feeds.items()}
        for k, (w, a) in enumerate(zip(whole, run_ort(model, alone))):
            axis = (out_axes or {}).get(k, 0)
            assert w.shape[axis] == BATCH
            np.testing.assert_allclose(np.take(w, [j], axis=axis), a, atol=atol, rtol=1e-4)


def _dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


# ---------------------------------------------------------------------------- a fixed batch above 1

def _batch_10_head():
    """Conv -> Reshape([10, 36]) -> Expand([10, 36]) -> Add: batch 10 written into constants."""
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]),
             helper.make_node("Reshape", ["c", "shape"], ["flat"]),
             helper.make_node("Expand", ["flat", "wide"], ["wide_flat"]),
             helper.make_node("Add", ["wide_flat", "bias"], ["y"])]
    inits = [_weight("w", [4, 3, 3, 3], 0), helper.make_tensor("shape", TensorProto.INT64, [2], [10, 36]),
             _weight("bias", [1, 36], 1), helper.make_tensor("wide", TensorProto.INT64, [2], [10, 36])]
    return make_model(nodes, [tensor_info("x", [10, 3, 5, 5])], [tensor_info("y", [10, 36])], inits, opset=9)


def test_fixed_batch_10_in_reshape_and_expand_constants_is_repaired_like_a_1():
    original = _batch_10_head()
    rewritten = _run(original).model
    assert _dims(rewritten.graph.input[0]) == ["batch", 3, 5, 5]
    assert _dims(rewritten.graph.output[0]) == ["batch", 36]
    _assert_same_at_export_batch(original, rewritten, _feeds(original, 10, {"x": (3, 5, 5)}, {}))
    _assert_frames_independent(rewritten, {"x": (3, 5, 5)})


def test_fixed_batch_10_merged_into_another_axis_is_refused_naming_the_node():
    nodes = [helper.make_node("Reshape", ["x", "pairs"], ["y"])]
    model = make_model(nodes, [tensor_info("x", [10, 4])], [tensor_info("y", [20, 2])],
                       [helper.make_tensor("pairs", TensorProto.INT64, [2], [-1, 2])])
    with pytest.raises(OnnxfitError, match=r"^node 'Reshape -> y' \(Reshape\) merges the fixed batch of 10"):
        _run(model)


def test_centerface_exported_at_batch_10_gets_a_dynamic_batch(zoo_model):
    original = onnx.load(zoo_model("centerface"))
    rewritten = _run(original).model
    assert _dims(_frame_inputs(rewritten)[0]) == ["batch", 3, 32, 32]
    name = _frame_inputs(original)[0].name
    _assert_same_at_export_batch(original, rewritten, _feeds(original, 10, {name: (3, 32, 32)}, {}))
    _assert_frames_independent(rewritten, {name: (3, 32, 32)})


# ---------------------------------------------------------------------------- Resize sizes from Shape chains

def _fpn_helper_model():
    """Legacy torch FPN upsample: nameless nodes, empty roi/scales, sizes = Shape -> Gather ->
    Unsqueeze -> Concat (a Cast round trip that onnx data propagation does not follow), then a
    Reshape with batch 1 written into it."""
    node = helper.make_node
    nodes = [node("Conv", ["x", "w1"], ["c1"], strides=[2, 2], pads=[1, 1, 1, 1]),
             node("Conv", ["c1", "w2"], ["c2"], strides=[2, 2], pads=[1, 1, 1, 1]),
             node("Shape", ["c2"], ["s2"]), node("Slice", ["s2", "zero", "two", "zero"], ["nc"]),
             node("Shape", ["c1"], ["s1"]), node("Gather", ["s1", "i2"], ["h"], axis=0),
             node("Gather", ["s1", "i3"], ["wd"], axis=0),
             node("Unsqueeze", ["h"], ["hu"], axes=[0]), node("Unsqueeze", ["wd"], ["wu"], axes=[0]),
             node("Concat", ["hu", "wu"], ["hw_int"], axis=0), node("Cast", ["hw_int"], ["hw_float"], to=1),
             node("Cast", ["hw_float"], ["hw"], to=7), node("Concat", ["nc", "hw"], ["sizes"], axis=0),
             node("Resize", ["c2", "roi", "scales", "sizes"], ["st"], mode="nearest"),
             node("Add", ["c1", "st"], ["sum"]), node("Reshape", ["sum", "flat"], ["y"])]
    inits = [_weight("w1", [4, 3, 3, 3], 0), _weight("w2", [4, 4, 3, 3], 1),
             helper.make_tensor("zero", TensorProto.INT64, [1], [0]), helper.make_tensor("two", TensorProto.INT64, [1], [2]),
             helper.make_tensor("i2", TensorProto.INT64, [], [2]), helper.make_tensor("i3", TensorProto.INT64, [], [3]),
             helper.make_tensor("roi", TensorProto.FLOAT, [0], []), helper.make_tensor("scales", TensorProto.FLOAT, [0], []),
             helper.make_tensor("flat", TensorProto.INT64, [2], [1, 256])]
    return make_model(nodes, [tensor_info("x", [1, 3, 16, 16])], [tensor_info("y", [1, 256])], inits, opset=11)


def test_resize_sizes_from_a_shape_chain_are_seen_through():
    original = _fpn_helper_model()
    rewritten = _run(original).model
    reshape = next(n for n in rewritten.graph.node if n.op_type == "Reshape")
    shape = {t.name: numpy_helper.to_array(t) for t in rewritten.graph.initializer}[reshape.input[1]]
    assert shape.tolist() == [-1, 256]
    _assert_same_at_export_batch(original, rewritten, _feeds(original, 1, {"x": (3, 16, 16)}, {}))
    _assert_frames_independent(rewritten, {"x": (3, 16, 16)})


class _TorchFpn(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fine = torch.nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.coarse = torch.nn.Conv2d(4, 4, 3, stride=2, padding=1)
        self.head = torch.nn.Conv2d(4, 2, 1)

    def forward(self, x):
        fine = self.fine(x)
        up = F.interpolate(self.coarse(fine), size=fine.shape[2:], mode="nearest")
        return self.head(fine + up).reshape(1, -1)


def test_torch_fpn_interpolate_to_a_feature_size_exported_at_batch_1_is_repaired():
    torch.manual_seed(0)
    buffer = io.BytesIO()
    torch.onnx.export(_TorchFpn().eval(), (torch.zeros(1, 3, 16, 16),), buffer, dynamo=False, opset_version=11,
                      input_names=["x"], output_names=["y"])
    original = onnx.load_from_string(buffer.getvalue())
    assert any(n.op_type == "Resize" for n in original.graph.node)
    rewritten = _run(original).model
    assert _dims(rewritten.graph.output[0]) == ["batch", 128]
    _assert_same_at_export_batch(original, rewritten, _feeds(original, 1, {"x": (3, 16, 16)}, {}))
    _assert_frames_independent(rewritten, {"x": (3, 16, 16)})


# ---------------------------------------------------------------------------- symbolic batch, symbolic H/W

def test_symbolic_batch_reshape_taking_the_batch_from_shape_needs_no_repair():
    # YOLOv8 DFL / Paddle flatten: Reshape(x, Concat(Shape(x)[0], [4], [-1])) with H and W symbolic.
    node = helper.make_node
    nodes = [node("Conv", ["x", "w"], ["c"]), node("Shape", ["c"], ["s"]),
             node("Gather", ["s", "i0"], ["n"], axis=0), node("Unsqueeze", ["n", "ax0"], ["nu"]),
             node("Concat", ["nu", "four", "rest"], ["shape"], axis=0), node("Reshape", ["c", "shape"], ["r"]),
             node("Softmax", ["r"], ["p"], axis=1), node("ReduceSum", ["p", "ax2"], ["y"], keepdims=0)]
    inits = [_weight("w", [8, 3, 1, 1], 3), helper.make_tensor("i0", TensorProto.INT64, [], [0]),
             helper.make_tensor("ax0", TensorProto.INT64, [1], [0]), helper.make_tensor("four", TensorProto.INT64, [1], [4]),
             helper.make_tensor("rest", TensorProto.INT64, [1], [-1]), helper.make_tensor("ax2", TensorProto.INT64, [1], [2])]
    model = make_model(nodes, [tensor_info("x", ["batch", 3, "height", "width"])], [tensor_info("y", ["batch", 4])],
                       inits)
    result = _run(model)
    assert not result.changed and result.model is model
    _assert_frames_independent(model, {"x": (3, 6, 5)})


@pytest.mark.parametrize(("name", "input_shapes"), [
    ("yolov8n_nudenet", {}), ("ppocr_mobile_v2_cls", {}), ("ppocr_v4_rec", {"x": (1, 3, 48, 320)})])
def test_zoo_models_with_a_symbolic_batch_and_symbolic_hw_pass(zoo_model, name, input_shapes):
    from tests.zoo.manifest import by_name

    original = onnx.load(zoo_model(name))
    result = _run(original, input_shapes)
    frame = by_name(name).input_shape
    (x,) = _frame_inputs(original)
    # The batch already flows through Shape(x)[0]; the model comes back runnable at any batch.
    assert _dims(_frame_inputs(result.model)[0])[0] not in (1, 0) or not result.changed
    _assert_frames_independent(result.model, {x.name: frame[x.name][1:]}, atol=1e-3)


# ---------------------------------------------------------------------------- IR 3: initializers are inputs

def test_ir3_model_lists_the_new_shape_constants_as_graph_inputs():
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("Reshape", ["c", "shape"], ["y"], name="flatten")]
    inits = [_weight("w", [4, 3, 3, 3], 0), helper.make_tensor("shape", TensorProto.INT64, [2], [1, 36])]
    inputs = [tensor_info("x", [1, 3, 5, 5]), tensor_info("w", [4, 3, 3, 3]),
              tensor_info("shape", [2], TensorProto.INT64)]
    original = make_model(nodes, inputs, [tensor_info("y", [1, 36])], inits, opset=9, ir_version=3)
    rewritten = _run(original).model
    onnx.checker.check_model(rewritten)
    listed = {vi.name for vi in rewritten.graph.input}
    assert {t.name for t in rewritten.graph.initializer} <= listed
    _assert_same_at_export_batch(original, rewritten, _feeds(original, 1, {"x": (3, 5, 5)}, {}))
    _assert_frames_independent(rewritten, {"x": (3, 5, 5)})


@pytest.mark.parametrize("name", ["shufflenet_ir3", "inception_v1_ir3"])
def test_ir3_zoo_classifiers_get_a_dynamic_batch(zoo_model, name):
    original = onnx.load(zoo_model(name))
    rewritten = _run(original).model
    onnx.checker.check_model(rewritten)
    (x,) = _frame_inputs(original)
    _assert_same_at_export_batch(original, rewritten, _feeds(original, 1, {x.name: (3, 224, 224)}, {}))
    _assert_frames_independent(rewritten, {x.name: (3, 224, 224)})


# ---------------------------------------------------------------------------- batch axis from dim names

def test_state_with_the_batch_on_axis_1_and_a_scalar_setting():
    # silero-vad's interface: input [batch, 4], state [2, batch, 4], sr a scalar.
    node = helper.make_node
    nodes = [node("Unsqueeze", ["input"], ["u"], axes=[0]), node("Add", ["state", "u"], ["mixed"]),
             node("Cast", ["sr"], ["srf"], to=TensorProto.FLOAT), node("Mul", ["mixed", "srf"], ["stateN"]),
             node("Transpose", ["stateN"], ["t"], perm=[1, 0, 2]), node("Reshape", ["t", "shape"], ["output"])]
    inputs = [tensor_info("input", ["batch", 4]), tensor_info("state", [2, "batch", 4]),
              tensor_info("sr", [], TensorProto.INT64)]
    outputs = [tensor_info("output", [1, 8]), tensor_info("stateN", [2, "batch", 4])]
    model = make_model(nodes, inputs, outputs, [helper.make_tensor("shape", TensorProto.INT64, [2], [1, 8])], opset=11)
    rewritten = _run(model).model
    assert _dims(rewritten.graph.output[0]) == ["batch", 8]
    axes = {"input": 0, "state": 1, "sr": None}
    frames = {"input": (4,), "state": (2, 4), "sr": ()}
    feeds = _feeds(model, 1, frames, axes)
    feeds["sr"] = np.array(3, np.int64)
    _assert_same_at_export_batch(model, rewritten, feeds)
    whole = _feeds(rewritten, BATCH, frames, axes, seed=2)
    whole["sr"] = np.array(3, np.int64)
    out, state = run_ort(rewritten, whole)
    for j in range(BATCH):
        alone = {"input": whole["input"][j:j + 1], "state": whole["state"][:, j:j + 1], "sr": whole["sr"]}
        out_j, state_j = run_ort(rewritten, alone)
        np.testing.assert_allclose(out[j:j + 1], out_j, atol=1e-6)
        np.testing.assert_allclose(state[:, j:j + 1], state_j, atol=1e-6)


def test_input_whose_batch_axis_cannot_be_known_is_refused_naming_it():
    model = make_model([helper.make_node("Relu", ["state"], ["y"])], [tensor_info("state", [2, None, 128])],
                       [tensor_info("y", [2, None, 128])])
    with pytest.raises(OnnxfitError, match=r"^input 'state' \[2, None, 128\]: its dims do not say which axis"):
        _run(model)


def test_silero_vad_with_unnamed_state_dims_is_refused_naming_the_input(zoo_model):
    with pytest.raises(OnnxfitError, match=r"^input 'state' \[2, None, 128\]: its dims do not say which axis") as info:
        _run(onnx.load(zoo_model("silero_vad")))
    assert "\n" not in str(info.value)


def test_if_using_an_already_symbolic_batch_leaves_the_graph_as_exported():
    # The batch flows into an If branch the walk does not follow; the exporter made it symbolic already.
    then_graph = helper.make_graph([helper.make_node("Relu", ["x"], ["t"])], "then", [], [tensor_info("t", ["batch", 4])])
    else_graph = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [], [tensor_info("e", ["batch", 4])])
    model = make_model([helper.make_node("If", ["flag"], ["y"], then_branch=then_graph, else_branch=else_graph)],
                       [tensor_info("x", ["batch", 4]), tensor_info("flag", [], TensorProto.BOOL)],
                       [tensor_info("y", ["batch", 4])])
    result = _run(model)
    assert not result.changed
    assert "batch already symbolic; left as exported" in " ".join(result.reports[0].notes)
    assert onnx.printer.to_text(result.model.graph) == onnx.printer.to_text(model.graph)


@pytest.mark.parametrize("name", ["silero_vad_16k_op15", "silero_vad_op18_ifless", "silero_vad_half"])
def test_silero_vad_with_a_symbolic_batch_into_if_branches_is_left_as_exported(zoo_model, name):
    model = onnx.load(zoo_model(name))
    result = _run(model)
    assert not result.changed
    assert "left as exported" in " ".join(result.reports[0].notes)
    assert [n.op_type for n in result.model.graph.node] == [n.op_type for n in model.graph.node]


def test_nameless_node_is_named_by_its_output_in_errors():
    model = make_model([helper.make_node("Softmax", ["x"], ["probs"], axis=0)], [tensor_info("x", [1, 5])],
                       [tensor_info("probs", [1, 5])])
    with pytest.raises(OnnxfitError, match=r"^node 'Softmax -> probs' \(Softmax over axis 0\) mixes frames"):
        _run(model)


def _lstm_model(layout=0):
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((1, 12, 4)).astype(np.float32), "W")
    r = numpy_helper.from_array(rng.standard_normal((1, 12, 3)).astype(np.float32), "R")
    x_shape, h_shape = ([1, 1, 4], [1, 1, 3]) if layout == 0 else ([1, 1, 4], [1, 1, 3])
    node = helper.make_node("LSTM", ["x", "W", "R", "", "", "h", "c"], ["y", "y_h", "y_c"], hidden_size=3,
                            layout=layout)
    return make_model([node], [tensor_info("x", x_shape), tensor_info("h", h_shape), tensor_info("c", h_shape)],
                      [tensor_info("y", None), tensor_info("y_h", None), tensor_info("y_c", None)], [w, r])


def test_lstm_with_batch_axis_from_the_user_keeps_frames_independent():
    # A streaming cell exported at batch 1: x [seq, batch, in], states [dirs, batch, hidden].
    model = _lstm_model()
    ctx = PassContext(opset=default_opset(model), batch_axes={"x": 1, "h": 1, "c": 1})
    rewritten = run_passes(model, get_passes(["dynamic-batch"]), ctx).model
    rng = np.random.default_rng(1)
    whole = {"x": rng.standard_normal((1, 3, 4)).astype(np.float32),
             "h": rng.standard_normal((1, 3, 3)).astype(np.float32),
             "c": rng.standard_normal((1, 3, 3)).astype(np.float32)}
    y, y_h, y_c = run_ort(rewritten, whole)
    for j in range(3):
        alone = run_ort(rewritten, {k: v[:, j:j + 1] for k, v in whole.items()})
        np.testing.assert_allclose(y[:, :, j:j + 1], alone[0], atol=1e-6)
        np.testing.assert_allclose(y_h[:, j:j + 1], alone[1], atol=1e-6)
        np.testing.assert_allclose(y_c[:, j:j + 1], alone[2], atol=1e-6)
    original = run_ort(model, {k: v[:, :1] for k, v in whole.items()})
    for a, b in zip(original, run_ort(rewritten, {k: v[:, :1] for k, v in whole.items()})):
        np.testing.assert_array_equal(a, b)


def test_lstm_state_batch_on_the_wrong_axis_is_refused_naming_the_node():
    model = _lstm_model()
    ctx = PassContext(opset=default_opset(model), batch_axes={"x": 1, "h": 0, "c": 1})
    with pytest.raises(OnnxfitError, match=r"^node 'LSTM -> y' \(LSTM with the batch of input 5 on axis 0"):
        run_passes(model, get_passes(["dynamic-batch"]), ctx)


def test_batch_axis_naming_no_input_is_a_one_line_error():
    model = _lstm_model()
    ctx = PassContext(opset=default_opset(model), batch_axes={"state": 1})
    with pytest.raises(OnnxfitError, match=r"^--batch-axis state=...: 'state' is not a model input"):
        run_passes(model, get_passes(["dynamic-batch"]), ctx)


def test_silero_vad_with_batch_axis_state_1_gets_a_dynamic_batch(zoo_model):
    # Every dim of silero_vad is unnamed: --batch-axis state=1 tells where its state holds frames.
    model = onnx.load(zoo_model("silero_vad_openvino_16k"))
    ctx = PassContext(opset=default_opset(model), batch_axes={"state": 1})
    result = run_passes(model, get_passes(["dynamic-batch"]), ctx)
    assert result.changed
    rng = np.random.default_rng(2)
    whole = {"input": rng.uniform(-1, 1, (3, 576)).astype(np.float32), "state": np.zeros((2, 3, 128), np.float32)}
    out, state = run_ort(result.model, whole)
    for j in range(3):
        out_j, state_j = run_ort(result.model, {"input": whole["input"][j:j + 1], "state": whole["state"][:, j:j + 1]})
        np.testing.assert_allclose(out[j:j + 1], out_j, atol=1e-6)
        np.testing.assert_allclose(state[:, j:j + 1], state_j, atol=1e-6)
