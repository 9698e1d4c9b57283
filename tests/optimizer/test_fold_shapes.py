"""fold-shapes: differential tests on ONNX Runtime CPU.

Shape math folds exactly, so every comparison is bit-exact (``assert_same_outputs(exact=True)``),
the Resize sizes -> scales rewrite included: ORT derives the same float scales from sizes.
"""

import io
import warnings

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper

from onnxfit.optimizer import PassContext, get_passes, run_passes
from tests.conftest import assert_same_outputs, make_model, op_count, random_feeds, tensor_info

I64 = TensorProto.INT64


def _fold(model, opset, input_shapes=None):
    result = run_passes(model, get_passes(["fold-shapes"]), PassContext(opset=opset, input_shapes=input_shapes or {}))
    onnx.checker.check_model(result.model)
    return result.model, result.reports[0]


def _ints(name, values):
    return helper.make_tensor(name, I64, [len(values)], values)


def _scalar(name, value):
    return helper.make_tensor(name, I64, [], [value])


def _unsqueeze(opset, x, out):
    """Unsqueeze on axis 0 in the form ``opset`` wants (axes moved to an input at 13)."""
    if opset < 13:
        return [helper.make_node("Unsqueeze", [x], [out], axes=[0])], []
    return [helper.make_node("Unsqueeze", [x, "axis0"], [out])], [_ints("axis0", [0])]


def _dims(model, name):
    vi = next(i for i in model.graph.input if i.name == name)
    return [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]


def _initializer(model, name):
    return next((onnx.numpy_helper.to_array(t) for t in model.graph.initializer if t.name == name), None)


# ------------------------------------------------------------------------------- torch FPN export


class _FPN(torch.nn.Module):
    """An FPN top-down step: upsample the coarse level to the fine level's size, then add."""

    def __init__(self, mode):
        super().__init__()
        self.lateral = torch.nn.Conv2d(2, 2, 1)
        self.down = torch.nn.Conv2d(2, 2, 3, stride=2, padding=1)
        self.mode = mode

    def forward(self, x):
        fine = self.lateral(x)
        coarse = self.down(fine)
        extra = {} if self.mode == "nearest" else {"align_corners": False}
        return F.interpolate(coarse, size=fine.shape[2:], mode=self.mode, **extra) + fine


def _export_fpn(mode, opset, dynamic_batch):
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_FPN(mode).eval(), torch.randn(1, 2, 8, 8), buffer, dynamo=False, opset_version=opset,
                          input_names=["x"], output_names=["out"],
                          dynamic_axes={"x": {0: "batch"}, "out": {0: "batch"}} if dynamic_batch else None)
    return onnx.load_from_string(buffer.getvalue())


@pytest.mark.parametrize("opset", [11, 17])
@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_torch_fpn_with_fixed_shape_keeps_no_shape_op_and_is_bit_exact(mode, opset):
    model = _export_fpn(mode, opset, dynamic_batch=False)
    assert op_count(model, "Shape") >= 1
    folded, report = _fold(model, opset)
    assert op_count(folded, "Shape") == 0
    assert report.removed >= 3
    assert_same_outputs(model, folded, random_feeds(model), exact=True)


@pytest.mark.parametrize("opset", [11, 17])
@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_torch_fpn_with_dynamic_batch_resizes_by_constant_scales_at_batch_1_and_3(mode, opset):
    model = _export_fpn(mode, opset, dynamic_batch=True)
    assert op_count(model, "Shape") == 3
    folded, report = _fold(model, opset)
    assert op_count(folded, "Shape") == 0 and op_count(folded, "Gather") == 0
    resize = next(n for n in folded.graph.node if n.op_type == "Resize")
    assert len(resize.input) == 3
    np.testing.assert_array_equal(_initializer(folded, resize.input[2]), [1, 1, 2, 2])
    assert report.rewritten == 1
    assert _dims(folded, "x") == ["batch", 2, 8, 8]
    for batch in (1, 3):
        assert_same_outputs(model, folded, random_feeds(model, seed=batch, shapes={"x": (batch, 2, 8, 8)}))


# --------------------------------------------------------------------------- onnx.helper chains


def _flatten_model(opset, batch):
    """x[b, 4, 3, 2] -> Reshape to [b, 24], the shape computed from Shape(x) the way exporters do."""
    nodes = [helper.make_node("Shape", ["x"], ["s"])]
    inits = [_scalar("i0", 0), _scalar("i1", 1), _scalar("i2", 2), _scalar("i3", 3)]
    for i in range(4):
        nodes.append(helper.make_node("Gather", ["s", f"i{i}"], [f"d{i}"], axis=0))
    nodes += [helper.make_node("Mul", ["d1", "d2"], ["d12"]), helper.make_node("Mul", ["d12", "d3"], ["rest"])]
    for src, dst in (("d0", "u0"), ("rest", "u1")):
        unsq, unsq_inits = _unsqueeze(opset, src, dst)
        nodes += unsq
        inits += [t for t in unsq_inits if t.name not in {i.name for i in inits}]
    nodes += [helper.make_node("Concat", ["u0", "u1"], ["shape"], axis=0),
              helper.make_node("Reshape", ["x", "shape"], ["y"])]
    return make_model(nodes, [tensor_info("x", [batch, 4, 3, 2])], [tensor_info("y", [batch, 24])], inits, opset=opset)


@pytest.mark.parametrize("opset", [11, 13, 17])
def test_shape_gather_unsqueeze_concat_reshape_chain_folds_into_one_constant(opset):
    model = _flatten_model(opset, batch=2)
    folded, report = _fold(model, opset)
    assert [n.op_type for n in folded.graph.node] == ["Reshape"]
    np.testing.assert_array_equal(_initializer(folded, folded.graph.node[0].input[1]), [2, 24])
    assert report.folded == 1
    assert report.removed == 10  # Shape, 4 Gather, 2 Mul, 2 Unsqueeze, Concat
    assert_same_outputs(model, folded, random_feeds(model), exact=True)


@pytest.mark.parametrize("opset", [11, 13])
def test_a_batch_dependent_target_gets_minus_one_and_its_shape_math_goes_at_batch_2_and_5(opset):
    # Reshape(x, [Shape(x)[0], 4*3*2]): known but for the batch, which -1 computes (rule 3d)
    model = _flatten_model(opset, batch="N")
    folded, report = _fold(model, opset)
    assert [n.op_type for n in folded.graph.node] == ["Reshape"]
    np.testing.assert_array_equal(_initializer(folded, folded.graph.node[0].input[1]), [-1, 24])
    assert report.rewritten == 1 and not any("Shape op(s) stay" in note for note in report.notes)
    for batch in (2, 5):
        assert_same_outputs(model, folded, random_feeds(model, seed=batch, shapes={"x": (batch, 4, 3, 2)}))


def _resize_by_factor_model(opset, factor, shape, mode, transform, nearest_mode="floor"):
    """sizes = Concat(Shape(x)[:2], Cast(Mul(Cast(Shape(x)[2:], float), factor), int64)) -> Resize."""
    inits = [_ints("zero", [0]), _ints("two", [2]), _ints("four", [4]),
             helper.make_tensor("factor", TensorProto.FLOAT, [], [factor])]
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Slice", ["s", "zero", "two"], ["nc"]),
             helper.make_node("Slice", ["s", "two", "four"], ["hw"]),
             helper.make_node("Cast", ["hw"], ["hw_f"], to=TensorProto.FLOAT),
             helper.make_node("Mul", ["hw_f", "factor"], ["hw_scaled"]),
             helper.make_node("Cast", ["hw_scaled"], ["hw_new"], to=I64),
             helper.make_node("Concat", ["nc", "hw_new"], ["sizes"], axis=0)]
    roi = scales = ""
    if opset < 13:  # roi and scales are required inputs before 13: torch writes empty constants
        inits += [helper.make_tensor("roi", TensorProto.FLOAT, [0], []),
                  helper.make_tensor("no_scales", TensorProto.FLOAT, [0], [])]
        roi, scales = "roi", "no_scales"
    attrs = {"mode": mode, "coordinate_transformation_mode": transform}
    if mode == "nearest":
        attrs["nearest_mode"] = nearest_mode
    nodes.append(helper.make_node("Resize", ["x", roi, scales, "sizes"], ["y"], **attrs))
    return make_model(nodes, [tensor_info("x", shape)], [tensor_info("y", None)], inits, opset=opset)


_TORCH_RESIZE_MODES = [  # what torch exports for F.interpolate, plus the other ORT transforms
    ("nearest", "asymmetric", "floor"),
    ("nearest", "half_pixel", "round_prefer_floor"),
    ("nearest", "pytorch_half_pixel", "round_prefer_ceil"),
    ("nearest", "align_corners", "round_prefer_floor"),
    ("linear", "half_pixel", None),
    ("linear", "pytorch_half_pixel", None),
    ("linear", "align_corners", None),
    ("linear", "asymmetric", None),
    ("cubic", "half_pixel", None),
]


@pytest.mark.parametrize("opset", [11, 13, 18])
@pytest.mark.parametrize("factor", [2.0, 0.5, 1.5])
@pytest.mark.parametrize("mode,transform,nearest_mode", _TORCH_RESIZE_MODES)
def test_resize_sizes_from_shape_slice_cast_mul_cast_become_scales_bit_exact(mode, transform, nearest_mode, factor,
                                                                             opset):
    model = _resize_by_factor_model(opset, factor, [1, 2, 4, 6], mode, transform, nearest_mode or "floor")
    folded, report = _fold(model, opset)
    assert op_count(folded, "Shape") == 0 and op_count(folded, "Cast") == 0
    resize = folded.graph.node[0]
    assert [n.op_type for n in folded.graph.node] == ["Resize"] and len(resize.input) == 3
    np.testing.assert_array_equal(_initializer(folded, resize.input[2]), [1, 1, factor, factor])
    assert report.rewritten == 1
    assert_same_outputs(model, folded, random_feeds(model), exact=True)


def test_resize_with_inexact_ratio_keeps_sizes_but_as_a_constant():
    # 6 -> 4 is a ratio of 2/3, which float32 cannot hold: scales might round to a different size.
    model = _resize_by_factor_model(13, 2 / 3, [1, 2, 6, 6], "nearest", "asymmetric")
    folded, report = _fold(model, 13)
    resize = folded.graph.node[0]
    assert [n.op_type for n in folded.graph.node] == ["Resize"] and len(resize.input) == 4
    np.testing.assert_array_equal(_initializer(folded, resize.input[3]), [1, 2, 4, 4])
    assert any("not exact" in line for line in report.skipped)
    assert_same_outputs(model, folded, random_feeds(model), exact=True)


def _shape_consumer_model(consumer, shape):
    """Shape(x) feeding an op whose shape input CoreML wants constant, then added to x."""
    inits = [_scalar("zero", 0), _scalar("one", 1)]
    nodes = [helper.make_node("Shape", ["x"], ["s"])]
    if consumer == "ConstantOfShape":
        nodes.append(helper.make_node("ConstantOfShape", ["s"], ["c"],
                                      value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.5])))
    elif consumer == "Expand":
        inits.append(helper.make_tensor("half", TensorProto.FLOAT, [1], [0.5]))
        nodes.append(helper.make_node("Expand", ["half", "s"], ["c"]))
    else:  # Range over the last axis, broadcast against x
        nodes += [helper.make_node("Gather", ["s", "last"], ["n"], axis=0),
                  helper.make_node("Range", ["zero", "n", "one"], ["r"]),
                  helper.make_node("Cast", ["r"], ["c"], to=TensorProto.FLOAT)]
        inits.append(_scalar("last", len(shape) - 1))
    nodes.append(helper.make_node("Add", ["x", "c"], ["y"]))
    return make_model(nodes, [tensor_info("x", shape)], [tensor_info("y", shape)], inits, opset=13)


@pytest.mark.parametrize("consumer", ["ConstantOfShape", "Expand", "Range"])
def test_small_shape_consumers_fold_to_one_constant(consumer):
    model = _shape_consumer_model(consumer, [2, 3, 5])
    folded, report = _fold(model, 13)
    assert [n.op_type for n in folded.graph.node] == ["Add"]
    assert report.folded == 1
    assert_same_outputs(model, folded, random_feeds(model), exact=True)


def test_large_constant_of_shape_keeps_its_op_and_gets_a_constant_shape():
    # 1x3x160x160 floats is data, not a shape: the model must not grow by a 300 KB initializer.
    model = _shape_consumer_model("ConstantOfShape", [1, 3, 160, 160])
    folded, report = _fold(model, 13)
    assert op_count(folded, "Shape") == 0 and op_count(folded, "ConstantOfShape") == 1
    node = next(n for n in folded.graph.node if n.op_type == "ConstantOfShape")
    np.testing.assert_array_equal(_initializer(folded, node.input[0]), [1, 3, 160, 160])
    assert max(np.prod(t.dims) for t in folded.graph.initializer) == 4
    assert_same_outputs(model, folded, random_feeds(model), exact=True)


# ----------------------------------------------------------------------------------- input shapes


def test_input_shape_override_turns_a_fully_dynamic_model_static():
    model = _flatten_model(13, batch="N")
    model.graph.input[0].CopyFrom(tensor_info("x", ["N", 4, "H", "W"]))
    model.graph.output[0].CopyFrom(tensor_info("y", ["N", "HW4"]))
    folded, report = _fold(model, 13, input_shapes={"x": (3, 4, 3, 2)})
    assert _dims(folded, "x") == [3, 4, 3, 2]
    assert [n.op_type for n in folded.graph.node] == ["Reshape"]
    np.testing.assert_array_equal(_initializer(folded, folded.graph.node[0].input[1]), [3, 24])
    assert report.rewritten == 1 and any("input 'x'" in note for note in report.notes)
    assert_same_outputs(model, folded, random_feeds(folded), exact=True)


def test_input_shape_override_keeps_an_axis_0_named_batch_dim_symbolic_with_dynamic_batch():
    # The dynamic-batch pass runs first and names the batch axis ctx.batch_dim ("batch").
    model = _flatten_model(13, batch="batch")
    model.graph.input[0].CopyFrom(tensor_info("x", ["batch", 4, "H", "W"]))
    result = run_passes(model, get_passes(["fold-shapes"]),
                        PassContext(opset=13, input_shapes={"x": (1, 4, 3, 2)}, dynamic_batch=True))
    folded = result.model
    assert _dims(folded, "x") == ["batch", 4, 3, 2]
    # the batch stays a run-time entry of the target: -1 (rule 3d), not a folded 1
    assert op_count(folded, "Gather") == 0
    np.testing.assert_array_equal(_initializer(folded, folded.graph.node[0].input[1]), [-1, 24])
    for batch in (1, 4):
        assert_same_outputs(model, folded, random_feeds(model, shapes={"x": (batch, 4, 3, 2)}), exact=True)


def test_input_shape_fixes_an_exporter_named_batch_dim_and_refreshes_stale_value_info():
    # Without --dynamic-batch a dim the exporter named "batch" is fixed like any other, and the
    # exporter's symbolic value_info/output dims give way to the sizes inference now knows.
    model = _flatten_model(13, batch="batch")
    model.graph.input[0].CopyFrom(tensor_info("x", ["batch", 4, "height", "width"]))
    model.graph.output[0].CopyFrom(tensor_info("y", ["batch", "4*height*width"]))
    model.graph.value_info.append(tensor_info("rest", [], I64))
    model.graph.value_info.append(tensor_info("shape", ["floor(height/2 - 1/2) + 1"], I64))
    folded, report = _fold(model, 13, input_shapes={"x": (1, 4, 3, 2)})
    assert _dims(folded, "x") == [1, 4, 3, 2]
    assert [n.op_type for n in folded.graph.node] == ["Reshape"]
    np.testing.assert_array_equal(_initializer(folded, folded.graph.node[0].input[1]), [1, 24])
    assert [d.dim_value for d in folded.graph.output[0].type.tensor_type.shape.dim] == [1, 24]
    stale = [vi.name for vi in folded.graph.value_info for d in vi.type.tensor_type.shape.dim if d.dim_param]
    assert stale == []
    assert_same_outputs(model, folded, random_feeds(folded), exact=True)


# ---------------------------------------------------------------------------- subgraphs and weights


def test_chain_inside_if_branch_folds_and_both_branches_match():
    # then: x.reshape(x.shape[1], -1) -> [3, 8]; else: flatten -> [2, 12].
    then_nodes = [helper.make_node("Shape", ["x"], ["s"]),
                  helper.make_node("Gather", ["s", "i1"], ["c"], axis=0),
                  helper.make_node("Unsqueeze", ["c", "axis0"], ["cu"]),
                  helper.make_node("Concat", ["cu", "minus1"], ["shape"], axis=0),
                  helper.make_node("Reshape", ["x", "shape"], ["t"])]
    then_graph = helper.make_graph(then_nodes, "then", [], [tensor_info("t", ["a", "b"])],
                                   [_scalar("i1", 1), _ints("axis0", [0]), _ints("minus1", [-1])])
    else_graph = helper.make_graph([helper.make_node("Flatten", ["x"], ["e"], axis=1)], "else", [],
                                   [tensor_info("e", ["a", "b"])])
    nodes = [helper.make_node("If", ["cond"], ["y"], then_branch=then_graph, else_branch=else_graph)]
    model = make_model(nodes, [tensor_info("x", [2, 3, 4]), tensor_info("cond", [], TensorProto.BOOL)],
                       [tensor_info("y", ["a", "b"])], opset=13)
    folded, report = _fold(model, 13)
    assert op_count(folded, "Shape") == 0 and op_count(folded, "Gather") == 0 and op_count(folded, "Reshape") == 1
    assert report.folded == 1
    for cond in (True, False):
        feeds = {"x": np.random.default_rng(1).standard_normal((2, 3, 4)).astype(np.float32), "cond": np.array(cond)}
        assert_same_outputs(model, folded, feeds, exact=True)


def test_large_weights_are_not_copied_into_constants_and_shapes_flow_through_them():
    # MatMul with a 2000-element weight: shape inference sees it as an input of the same shape.
    weight = helper.make_tensor("w", TensorProto.FLOAT, [1000, 2],
                                np.random.default_rng(0).standard_normal(2000).astype(np.float32).tolist())
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]),
             helper.make_node("Shape", ["m"], ["s"]),
             helper.make_node("Reshape", ["m", "s"], ["y"])]
    model = make_model(nodes, [tensor_info("x", [3, 1000])], [tensor_info("y", [3, 2])], [weight], opset=13)
    folded, report = _fold(model, 13)
    assert [n.op_type for n in folded.graph.node] == ["MatMul", "Reshape"]
    assert report.folded == 1
    assert _initializer(folded, "w").tobytes() == onnx.numpy_helper.to_array(weight).tobytes()
    assert_same_outputs(model, folded, random_feeds(model), exact=True)


def test_model_without_shape_math_is_left_alone():
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], [tensor_info("x", [1, 3])], [tensor_info("y", [1, 3])])
    result = run_passes(model, get_passes(["fold-shapes"]), PassContext(opset=17))
    assert not result.changed and result.model is model


def test_reshape_then_shape_of_its_output_folds_in_a_second_round_at_opset_13():
    # onnx infers Reshape's output from a computed shape only from opset 14: r's shape is known
    # only once its shape input is a constant, so Shape(r) folds in the next round.
    inits = [_scalar("i0", 0), _scalar("i1", 1), _ints("axis0", [0]), _ints("minus1", [-1])]
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "i0"], ["b"], axis=0),
             helper.make_node("Unsqueeze", ["b", "axis0"], ["bu"]),
             helper.make_node("Concat", ["bu", "minus1"], ["shape1"], axis=0),
             helper.make_node("Reshape", ["x", "shape1"], ["r"]),  # [2, 12]
             helper.make_node("Shape", ["r"], ["s2"]),
             helper.make_node("Gather", ["s2", "i1"], ["c"], axis=0),
             helper.make_node("Unsqueeze", ["c", "axis0"], ["cu"]),
             helper.make_node("Concat", ["cu", "minus1"], ["shape2"], axis=0),
             helper.make_node("Reshape", ["r", "shape2"], ["y"])]  # [12, 2]
    model = make_model(nodes, [tensor_info("x", [2, 3, 4])], [tensor_info("y", [12, 2])], inits, opset=13)
    folded, report = _fold(model, 13)
    assert [n.op_type for n in folded.graph.node] == ["Reshape", "Reshape"]
    assert report.folded == 2
    assert_same_outputs(model, folded, random_feeds(model), exact=True)


def test_a_reshape_to_a_partly_known_target_tells_its_shape_downstream_at_opset_13():
    # silero-vad v4: Reshape(x, [1, 1, sequence]) -> Unsqueeze -> Pad -> Shape[1] == 1 decides an If;
    # before opset 14 onnx infers nothing after the Reshape, so the If stayed.
    inits = [_scalar("i0", 0), _scalar("i1", 1), _ints("axis0", [0]), _ints("axis1", [1]), _ints("one", [1]),
             _ints("pads", [0, 0, 0, 2, 0, 0, 0, 2])]
    then_branch = helper.make_graph([helper.make_node("Squeeze", ["p", "axis1"], ["t"])], "then", [],
                                    [tensor_info("t", None)])
    else_branch = helper.make_graph([helper.make_node("Identity", ["p"], ["e"])], "else", [], [tensor_info("e", None)])
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "i1"], ["n"], axis=0),
             helper.make_node("Unsqueeze", ["n", "axis0"], ["nu"]),
             helper.make_node("Concat", ["one", "one", "nu"], ["target"], axis=0),
             helper.make_node("Reshape", ["x", "target"], ["r"]),  # [1, 1, sequence]
             helper.make_node("Unsqueeze", ["r", "axis1"], ["u"]),  # [1, 1, 1, sequence]
             helper.make_node("Pad", ["u", "pads"], ["p"], mode="reflect"),
             helper.make_node("Shape", ["p"], ["ps"]),
             helper.make_node("Gather", ["ps", "i1"], ["d1"], axis=0),
             helper.make_node("Equal", ["d1", "i1"], ["cond"]),
             helper.make_node("If", ["cond"], ["y"], then_branch=then_branch, else_branch=else_branch)]
    model = make_model(nodes, [tensor_info("x", [1, "sequence"])], [tensor_info("y", None)], inits, opset=13)
    result = run_passes(model, get_passes(["fold-shapes", "inline-if"]), PassContext(opset=13, inline_if=True))
    assert op_count(result.model, "If") == 0 and op_count(result.model, "Equal") == 0
    for length in (8, 21):
        assert_same_outputs(model, result.model, random_feeds(model, shapes={"x": [1, length]}), exact=True)


def test_a_shape_compared_with_minus_one_is_decided_false_and_its_where_goes():
    # torch's x.expand(-1, c, -1): Where(Equal(shape, -1), 1, shape) -> Expand; dims are never -1
    inits = [_ints("minus1", [-1, -1, -1]), _ints("ones", [1, 1, 1]), _ints("c", [4])]
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Slice", ["s", "i0_1", "i1_1"], ["n"]),
             helper.make_node("Slice", ["s", "i2_1", "i3_1"], ["w"]),
             helper.make_node("Concat", ["n", "c", "w"], ["target"], axis=0),
             helper.make_node("Equal", ["target", "minus1"], ["is_minus1"]),
             helper.make_node("Where", ["is_minus1", "ones", "target"], ["shape"]),
             helper.make_node("Expand", ["x", "shape"], ["y"])]
    inits += [_ints("i0_1", [0]), _ints("i1_1", [1]), _ints("i2_1", [2]), _ints("i3_1", [3])]
    model = make_model(nodes, [tensor_info("x", ["N", 1, "W"])], [tensor_info("y", None)], inits, opset=13)
    result = run_passes(model, get_passes(["fold-shapes", "eliminate-noops"]), PassContext(opset=13))
    assert op_count(result.model, "Equal") == 0 and op_count(result.model, "Where") == 0
    for n, w in ((1, 5), (3, 2)):
        assert_same_outputs(model, result.model, random_feeds(model, shapes={"x": [n, 1, w]}), exact=True)


def test_loop_body_is_left_alone_and_its_growing_tensor_stays_correct():
    # v: [1] -> [2] -> [3] -> [4]: a shape inside a Loop body is not one value per run.
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Shape", ["v"], ["s"]),
         helper.make_node("Cast", ["s"], ["n"], to=TensorProto.FLOAT),
         helper.make_node("Concat", ["v", "n"], ["v_out"], axis=0)],
        "body", [tensor_info("i", [], I64), tensor_info("cond_in", [], TensorProto.BOOL), tensor_info("v", None)],
        [tensor_info("cond_out", [], TensorProto.BOOL), tensor_info("v_out", ["k2"])])
    nodes = [helper.make_node("Loop", ["trips", "", "v0"], ["y"], body=body)]
    inits = [_scalar("trips", 3), helper.make_tensor("v0", TensorProto.FLOAT, [1], [0.5])]
    model = make_model(nodes, [tensor_info("x", [1])], [tensor_info("y", ["k3"])], inits, opset=13)
    folded, report = _fold(model, 13)
    assert op_count(folded, "Shape") == 1 and not report.changed
    assert_same_outputs(model, folded, {"x": np.zeros(1, np.float32)}, exact=True)


def test_pure_constant_arithmetic_read_by_a_shape_input_folds_like_onnx_runtime():
    # ORT's level-1 folding folds Cast(Constant) too; the Reshape must read a constant shape.
    nodes = [helper.make_node("Constant", [], ["c"], value=_ints("v", [3, 8])),
             helper.make_node("Cast", ["c"], ["shape"], to=I64),
             helper.make_node("Reshape", ["x", "shape"], ["y"])]
    model = make_model(nodes, [tensor_info("x", [2, 3, 4])], [tensor_info("y", [3, 8])], opset=13)
    folded, report = _fold(model, 13)
    assert [n.op_type for n in folded.graph.node] == ["Reshape"]
    np.testing.assert_array_equal(_initializer(folded, folded.graph.node[0].input[1]), [3, 8])
    assert report.folded == 1
    assert_same_outputs(model, folded, random_feeds(model), exact=True)
