"""dynamic-batch: differential tests on ONNX Runtime CPU.

Each repaired model is checked twice: at batch 1 the rewritten model gives the original outputs
(bit-exact, with a leading 1 added where a merged batch became its own axis), and at batch 4 every
frame is independent: running a frame alone equals its slice of the batched run (atol 1e-5), and
changing one frame leaves the others' outputs unchanged.
"""

import io

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from onnxfit.errors import OnnxfitError
from onnxfit.optimizer import PassContext, get_passes, run_passes
from onnxfit.optimizer.passes.dynamic_batch import _batch_slot
from tests.conftest import make_model, op_count, run_ort, tensor_info

BATCH = 4


def _run(model, opset=17):
    return run_passes(model, get_passes(["dynamic-batch"]), PassContext(opset=opset))


def _dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def _weight(name, shape, seed):
    values = np.random.default_rng(seed).standard_normal(shape).astype(np.float32) * 0.3
    return numpy_helper.from_array(values, name)


def _assert_batch_1_unchanged(original, rewritten, frame_shape, seed=0):
    """At batch 1 the outputs are the original ones, with a leading 1 where the rank grew."""
    x = np.random.default_rng(seed).standard_normal((1, *frame_shape)).astype(np.float32)
    name = original.graph.input[0].name
    for old, new in zip(run_ort(original, {name: x}), run_ort(rewritten, {name: x})):
        assert new.shape in (old.shape, (1, *old.shape))
        assert np.array_equal(new.reshape(old.shape), old)


def _assert_frames_independent(model, frame_shape, seed=1):
    """At batch 4, each frame's outputs depend on that frame only."""
    name = model.graph.input[0].name
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((BATCH, *frame_shape)).astype(np.float32)
    batched = run_ort(model, {name: x})
    for j in range(BATCH):
        alone = run_ort(model, {name: x[j:j + 1]})
        for whole, single in zip(batched, alone):
            assert whole.shape[0] == BATCH
            np.testing.assert_allclose(whole[j:j + 1], single, atol=1e-5, rtol=0)
    changed = x.copy()
    changed[2] += rng.standard_normal(frame_shape).astype(np.float32)  # not uniform: Softmax ignores shifts
    others = [0, 1, 3]
    after = run_ort(model, {name: changed})
    for whole, moved in zip(batched, after):
        np.testing.assert_allclose(moved[others], whole[others], atol=1e-5, rtol=0)
    assert any(not np.allclose(moved[2], whole[2]) for whole, moved in zip(batched, after))


# ---------------------------------------------------------------------------- torch SCRFD-like head

class _TinyScrfd(torch.nn.Module):
    """Two strides, each with score/bbox/keypoint heads flattened the SCRFD way (2 anchors)."""

    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.down = torch.nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.heads = torch.nn.ModuleList(
            torch.nn.ModuleList([torch.nn.Conv2d(8, 2 * k, 1) for k in (1, 4, 10)]) for _ in range(2))

    def forward(self, x):
        outputs = []
        feature = torch.relu(self.stem(x))
        for stride, (score, bbox, kps) in enumerate(self.heads):
            if stride:
                feature = torch.relu(self.down(feature))
            outputs.append(torch.sigmoid(score(feature).permute(0, 2, 3, 1).reshape(-1, 1)))
            outputs.append(bbox(feature).permute(0, 2, 3, 1).reshape(-1, 4))
            outputs.append(kps(feature).permute(0, 2, 3, 1).reshape(-1, 10))
        return tuple(outputs)


def _scrfd_model():
    torch.manual_seed(0)
    buffer = io.BytesIO()
    names = [f"{kind}_{s}" for s in (8, 16) for kind in ("score", "bbox", "kps")]
    torch.onnx.export(_TinyScrfd().eval(), (torch.zeros(1, 3, 16, 16),), buffer, dynamo=False, opset_version=17,
                      input_names=["input.1"], output_names=names)
    return onnx.load_from_string(buffer.getvalue())


def test_scrfd_head_outputs_gain_a_batch_axis_and_frames_stay_independent():
    original = _scrfd_model()
    result = _run(original)
    rewritten = result.model
    onnx.checker.check_model(rewritten)
    assert _dims(rewritten.graph.input[0]) == ["batch", 3, 16, 16]
    # [N*H*W*2, 1] became [N, H*W*2, 1]: the graph outputs gained the batch as a new leading axis.
    assert [_dims(o) for o in rewritten.graph.output] == [
        ["batch", 128, 1], ["batch", 128, 4], ["batch", 128, 10], ["batch", 32, 1], ["batch", 32, 4], ["batch", 32, 10]]
    assert result.reports[0].rewritten >= 6
    _assert_batch_1_unchanged(original, rewritten, (3, 16, 16))
    _assert_frames_independent(rewritten, (3, 16, 16))


def test_head_with_symbolic_batch_merged_into_its_output_gets_per_frame_outputs():
    # What torch's dynamo exporter writes for the SCRFD head: a symbolic batch, still flattened by
    # Reshape(-1, 2), with the output declared [32*batch, 2].
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="score_conv"),
             helper.make_node("Transpose", ["c"], ["t"], name="nhwc", perm=[0, 2, 3, 1]),
             helper.make_node("Reshape", ["t", "pairs"], ["y"], name="flatten_anchors")]
    original = make_model(nodes, [tensor_info("x", ["batch", 3, 4, 4])], [tensor_info("y", ["32*batch", 2])],
                          [_weight("w", [4, 3, 1, 1], 9), helper.make_tensor("pairs", TensorProto.INT64, [2], [-1, 2])],
                          value_info=[tensor_info("t", ["batch", 4, 4, 4])])
    rewritten = _run(original).model
    assert _dims(rewritten.graph.output[0]) == ["batch", 32, 2]
    _assert_batch_1_unchanged(original, rewritten, (3, 4, 4))
    _assert_frames_independent(rewritten, (3, 4, 4))


class _TinyClassifier(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.fc = torch.nn.Linear(4 * 6 * 6, 5)

    def forward(self, x):
        y = torch.relu(self.conv(x))
        return torch.softmax(self.fc(y.view(y.size(0), -1)), dim=1)


def _classifier_export(**kwargs):
    torch.manual_seed(0)
    buffer = io.BytesIO()
    torch.onnx.export(_TinyClassifier().eval(), (torch.zeros(1, 3, 8, 8),), buffer, dynamo=False, opset_version=13,
                      input_names=["x"], output_names=["y"], **kwargs)
    return onnx.load_from_string(buffer.getvalue())


@pytest.mark.parametrize("folding", [True, False])
def test_torch_classifier_view_exported_at_batch_1_is_repaired(folding):
    # Folded, the view's shape is a Constant [1, 144]; unfolded, a Constant -> Unsqueeze -> Concat chain.
    original = _classifier_export(do_constant_folding=folding)
    rewritten = _run(original, opset=13).model
    assert _dims(rewritten.graph.output[0]) == ["batch", 5]
    _assert_batch_1_unchanged(original, rewritten, (3, 8, 8))
    _assert_frames_independent(rewritten, (3, 8, 8))


def test_torch_classifier_exported_with_dynamic_batch_is_left_alone():
    original = _classifier_export(dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    result = _run(original, opset=13)
    assert not result.changed and result.model is original
    _assert_frames_independent(original, (3, 8, 8))


# ---------------------------------------------------------------------------- onnx.helper models

def _classifier(shape_init):
    """Conv -> Relu -> Reshape to [1, C*H*W] -> Gemm: a batch-1 classifier export."""
    inits = [_weight("w", [4, 3, 3, 3], 0), _weight("fc", [4 * 6 * 6, 5], 1), shape_init]
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("Reshape", ["r", "shape"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "fc"], ["y"], name="fc"),
    ]
    value_info = [tensor_info("c", [1, 4, 6, 6]), tensor_info("flat", [1, 144])]
    return make_model(nodes, [tensor_info("x", [1, 3, 8, 8])], [tensor_info("y", [1, 5])], inits,
                      value_info=value_info)


def test_reshape_with_hardcoded_batch_1_keeps_the_batch():
    original = _classifier(helper.make_tensor("shape", TensorProto.INT64, [2], [1, 144]))
    rewritten = _run(original).model
    reshape = next(n for n in rewritten.graph.node if n.op_type == "Reshape")
    shape = {t.name: numpy_helper.to_array(t) for t in rewritten.graph.initializer}[reshape.input[1]]
    assert shape.tolist() == [-1, 144]
    assert _dims(rewritten.graph.output[0]) == ["batch", 5]
    # value_info no longer pins intermediates to batch 1.
    assert {vi.name: _dims(vi) for vi in rewritten.graph.value_info}["c"] == ["batch", 4, 6, 6]
    _assert_batch_1_unchanged(original, rewritten, (3, 8, 8))
    _assert_frames_independent(rewritten, (3, 8, 8))


def test_constant_of_shape_with_batch_1_takes_the_batch_from_the_input():
    shape = helper.make_tensor("shape", TensorProto.INT64, [4], [1, 1, 4, 4])
    nodes = [
        helper.make_node("ConstantOfShape", ["shape"], ["pad"], name="zeros",
                         value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.5])),
        helper.make_node("Concat", ["x", "pad"], ["cat"], name="cat", axis=1),
        helper.make_node("Conv", ["cat", "w"], ["y"], name="conv", pads=[1, 1, 1, 1]),
    ]
    original = make_model(nodes, [tensor_info("x", [1, 2, 4, 4])], [tensor_info("y", [1, 3, 4, 4])],
                          [shape, _weight("w", [3, 3, 3, 3], 2)])
    rewritten = _run(original).model
    assert op_count(rewritten, "Shape") == 1 and op_count(rewritten, "Expand") == 0
    _assert_batch_1_unchanged(original, rewritten, (2, 4, 4))
    _assert_frames_independent(rewritten, (2, 4, 4))


def test_expanded_class_token_with_batch_1_takes_the_batch_from_the_input():
    nodes = [
        helper.make_node("Expand", ["cls", "cls_shape"], ["cls_wide"], name="cls_expand"),
        helper.make_node("Concat", ["cls_wide", "x"], ["tokens"], name="cat", axis=1),
        helper.make_node("MatMul", ["tokens", "proj"], ["m"], name="proj"),
        helper.make_node("Softmax", ["m"], ["y"], name="softmax", axis=1),
    ]
    inits = [_weight("cls", [1, 1, 6], 3), helper.make_tensor("cls_shape", TensorProto.INT64, [3], [1, 1, 6]),
             _weight("proj", [6, 6], 4)]
    original = make_model(nodes, [tensor_info("x", [1, 5, 6])], [tensor_info("y", [1, 6, 6])], inits)
    rewritten = _run(original).model
    expand = next(n for n in rewritten.graph.node if n.op_type == "Expand")
    assert expand.input[1] != "cls_shape"
    _assert_batch_1_unchanged(original, rewritten, (5, 6))
    _assert_frames_independent(rewritten, (5, 6))


def test_concat_with_a_batch_1_initializer_gets_an_expand():
    nodes = [helper.make_node("Concat", ["x", "bias_map"], ["cat"], name="cat", axis=1),
             helper.make_node("Conv", ["cat", "w"], ["y"], name="conv")]
    original = make_model(nodes, [tensor_info("x", [1, 2, 4, 4])], [tensor_info("y", [1, 2, 4, 4])],
                          [_weight("bias_map", [1, 1, 4, 4], 5), _weight("w", [2, 3, 1, 1], 6)])
    result = _run(original)
    assert op_count(result.model, "Expand") == 1
    _assert_batch_1_unchanged(original, result.model, (2, 4, 4))
    _assert_frames_independent(result.model, (2, 4, 4))


def test_resize_sizes_with_batch_1_are_computed_from_the_input():
    nodes = [helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], name="up", mode="linear")]
    original = make_model(nodes, [tensor_info("x", [1, 2, 4, 4])], [tensor_info("y", [1, 2, 8, 8])],
                          [helper.make_tensor("sizes", TensorProto.INT64, [4], [1, 2, 8, 8])])
    rewritten = _run(original).model
    resize = next(n for n in rewritten.graph.node if n.op_type == "Resize")
    assert resize.input[3] != "sizes" and op_count(rewritten, "Shape") == 1
    _assert_batch_1_unchanged(original, rewritten, (2, 4, 4))
    _assert_frames_independent(rewritten, (2, 4, 4))


def test_merged_batch_feeding_softmax_becomes_per_frame_softmax_over_the_shifted_axis():
    # [1, 4, 3, 3] -> [4, 9] -> Softmax(axis=1): after the repair [N, 4, 9] with Softmax(axis=2).
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["flat"], name="merge"),
             helper.make_node("Softmax", ["flat"], ["y"], name="softmax", axis=1)]
    original = make_model(nodes, [tensor_info("x", [1, 4, 3, 3])], [tensor_info("y", [4, 9])],
                          [helper.make_tensor("shape", TensorProto.INT64, [2], [4, 9])])
    rewritten = _run(original).model
    softmax = next(n for n in rewritten.graph.node if n.op_type == "Softmax")
    assert helper.get_attribute_value(softmax.attribute[0]) == 2
    assert _dims(rewritten.graph.output[0]) == ["batch", 4, 9]
    _assert_batch_1_unchanged(original, rewritten, (4, 3, 3))
    _assert_frames_independent(rewritten, (4, 3, 3))


def test_merged_heads_concatenated_along_the_merged_axis_concat_within_each_frame():
    # Two Reshape(-1, 2) heads joined by Concat(axis=0): after the repair Concat(axis=1) of [N, 18, 2].
    nodes = [helper.make_node("Transpose", ["x"], ["t"], name="nhwc", perm=[0, 2, 3, 1]),
             helper.make_node("Reshape", ["t", "pairs"], ["a"], name="head_a"),
             helper.make_node("Neg", ["t"], ["n"], name="neg"),
             helper.make_node("Reshape", ["n", "pairs"], ["b"], name="head_b"),
             helper.make_node("Concat", ["a", "b"], ["c"], name="cat", axis=0),
             helper.make_node("Softmax", ["c"], ["y"], name="softmax", axis=-1)]
    original = make_model(nodes, [tensor_info("x", [1, 4, 3, 3])], [tensor_info("y", [36, 2])],
                          [helper.make_tensor("pairs", TensorProto.INT64, [2], [-1, 2])])
    rewritten = _run(original).model
    concat = next(n for n in rewritten.graph.node if n.op_type == "Concat")
    assert helper.get_attribute_value(concat.attribute[0]) == 1
    assert _dims(rewritten.graph.output[0]) == ["batch", 36, 2]
    _assert_batch_1_unchanged(original, rewritten, (4, 3, 3))
    _assert_frames_independent(rewritten, (4, 3, 3))


@pytest.mark.parametrize(("node", "message"), [
    (helper.make_node("Softmax", ["x"], ["y"], name="softmax_3", axis=0),
     "node 'softmax_3' (Softmax over axis 0) mixes frames; the batch cannot be made dynamic"),
    (helper.make_node("ReduceMean", ["x"], ["y"], name="mean_0", axes=[0], keepdims=1),
     "node 'mean_0' (ReduceMean over axis 0) mixes frames; the batch cannot be made dynamic"),
])
def test_op_over_the_batch_axis_raises_naming_the_node(node, message):
    model = make_model([node], [tensor_info("x", [1, 5])], [tensor_info("y", None)], opset=17)
    with pytest.raises(OnnxfitError) as info:
        _run(model)
    assert str(info.value) == message


def test_transpose_moving_the_batch_then_a_reduction_over_it_raises():
    nodes = [helper.make_node("Transpose", ["x"], ["t"], name="swap", perm=[1, 0, 2]),
             helper.make_node("ReduceSum", ["t", "axes"], ["y"], name="sum_frames", keepdims=0)]
    model = make_model(nodes, [tensor_info("x", [1, 3, 4])], [tensor_info("y", [3, 4])],
                       [helper.make_tensor("axes", TensorProto.INT64, [1], [1])])
    with pytest.raises(OnnxfitError, match=r"node 'sum_frames' \(ReduceSum over axis 1\) mixes frames"):
        _run(model)


def test_reshape_merging_a_batch_that_is_not_leading_raises():
    nodes = [helper.make_node("Transpose", ["x"], ["t"], name="swap", perm=[1, 0, 2, 3]),
             helper.make_node("Reshape", ["t", "shape"], ["y"], name="merge")]
    model = make_model(nodes, [tensor_info("x", [1, 3, 2, 2])], [tensor_info("y", [3, 4])],
                       [helper.make_tensor("shape", TensorProto.INT64, [2], [3, 4])])
    with pytest.raises(OnnxfitError, match=r"node 'merge' \(Reshape\) merges the batch \(axis 1"):
        _run(model)


def test_clean_conv_net_with_symbolic_batch_is_left_alone():
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["p"], name="pool"),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten", axis=1),
        helper.make_node("Gemm", ["f", "fc"], ["y"], name="fc"),
    ]
    model = make_model(nodes, [tensor_info("x", ["N", 3, 8, 8])], [tensor_info("y", ["N", 5])],
                       [_weight("w", [4, 3, 3, 3], 7), _weight("fc", [4, 5], 8)])
    result = _run(model)
    assert not result.changed
    assert result.model is model
    assert "nothing to do" in result.reports[0].notes[-1]


def test_fixed_batch_above_1_becomes_symbolic_when_frames_stay_independent():
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], [tensor_info("x", [8, 3])],
                       [tensor_info("y", [8, 3])])
    rewritten = _run(model).model
    assert _dims(rewritten.graph.input[0]) == ["batch", 3] and _dims(rewritten.graph.output[0]) == ["batch", 3]
    _assert_frames_independent(rewritten, (3,))


@pytest.mark.parametrize(("in_shape", "b", "out_shape", "slot"), [
    ((1, 512, 20, 20), 0, (1, 512, 400), 0),     # flatten inside a frame keeps the batch in front
    ((1, 512, 20, 20), 0, (512, 400), None),     # the batch axis disappears: merged
    ((1, 20, 20, 4), 0, (800, 2), None),         # SCRFD head: Reshape(-1, 2) merges the batch
    ((4, 5, 1, 3), 2, (20, 1, 3), 1),            # a batch after other axes stays between them
    ((3, 1, 2, 2), 1, (3, 4), None),             # batch between axes, merged: frames interleave
])
def test_batch_slot_decoding(in_shape, b, out_shape, slot):
    assert _batch_slot(in_shape, b, out_shape) == slot
