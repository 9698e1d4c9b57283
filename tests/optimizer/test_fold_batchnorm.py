"""fold-batchnorm against ONNX Runtime: BN folded into Conv / ConvTranspose / Gemm, or Mul + Add.

Not bit-exact (the pass rounds ``x * a + b``, ONNX Runtime its BN kernel): float32 outputs are
compared at rtol/atol 1e-5, float16 at 1e-2 (its resolution), float64 at 1e-12.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxfit.optimizer import PassContext, get_passes, run_passes
from onnxfit.optimizer.passes.fold_batchnorm import Affine, Skip, _matches
from tests.conftest import assert_same_outputs, make_model, op_count, random_feeds, run_ort, tensor_info

RNG = np.random.default_rng(0)


def _array(shape, dtype=np.float32, low=-1.0, high=1.0):
    return RNG.uniform(low, high, size=shape).astype(dtype)


def _bn_stats(channels, prefix="bn", dtypes=(np.float32, np.float32), shape=None):
    """scale, bias, mean, var initializers (var > 0); ``dtypes``: (scale/bias, mean/var)."""
    shape = shape or [channels]
    scale_t, stat_t = dtypes
    return [numpy_helper.from_array(_array(shape, scale_t, 0.5, 2.0), f"{prefix}_scale"),
            numpy_helper.from_array(_array(shape, scale_t), f"{prefix}_bias"),
            numpy_helper.from_array(_array(shape, stat_t), f"{prefix}_mean"),
            numpy_helper.from_array(_array(shape, stat_t, 0.1, 2.0), f"{prefix}_var")]


def _bn_node(x, y, prefix="bn", **attrs):
    return helper.make_node("BatchNormalization", [x, f"{prefix}_scale", f"{prefix}_bias", f"{prefix}_mean",
                                                   f"{prefix}_var"], [y], name=prefix, **attrs)


def _run(model, opset, target="coreml"):
    """CoreML's MLProgram has no BN builder: rule 3 applies there (the CPU EP runs any BN)."""
    return run_passes(model, get_passes(["fold-batchnorm"]), PassContext(opset=opset, target=target))


def _assert_close(model, result, atol=1e-5, rtol=1e-5):
    onnx.checker.check_model(result.model)
    assert_same_outputs(model, result.model, random_feeds(model), exact=False, atol=atol, rtol=rtol)


# ------------------------------------------------------------------------------------ Conv

def _conv_bn_model(opset, group=1, bias=True, epsilon=1e-5, second_consumer=False):
    cin, cout = 4, 6
    inits = [numpy_helper.from_array(_array([cout, cin // group, 3, 3]), "W")] + _bn_stats(cout)
    conv_inputs = ["x", "W"]
    if bias:
        inits.append(numpy_helper.from_array(_array([cout]), "B"))
        conv_inputs.append("B")
    nodes = [helper.make_node("Conv", conv_inputs, ["c"], name="conv", pads=[1, 1, 1, 1], group=group),
             _bn_node("c", "y", epsilon=epsilon)]
    outputs = [tensor_info("y", [1, cout, 5, 5])]
    if second_consumer:
        nodes.append(helper.make_node("Relu", ["c"], ["r"], name="relu"))
        outputs.append(tensor_info("r", [1, cout, 5, 5]))
    return make_model(nodes, [tensor_info("x", [1, cin, 5, 5])], outputs, inits, opset=opset)


@pytest.mark.parametrize("opset", [9, 14, 15])
@pytest.mark.parametrize("group", [1, 2])
@pytest.mark.parametrize("bias", [True, False])
def test_bn_after_conv_folds_into_weights_and_bias(opset, group, bias):
    model = _conv_bn_model(opset, group=group, bias=bias, epsilon=1e-3)
    result = _run(model, opset)
    assert op_count(result.model, "BatchNormalization") == 0
    assert op_count(result.model, "Mul") == 0 and op_count(result.model, "Conv") == 1
    conv = next(n for n in result.model.graph.node if n.op_type == "Conv")
    assert len(conv.input) == 3 and conv.output[0] == "y"
    report = result.reports[0]
    assert (report.rewritten, report.removed, report.added) == (1, 1, 0)
    _assert_close(model, result)


def test_a_bn_with_nothing_to_fold_into_stays_where_the_target_runs_it():
    model = _conv_bn_model(14, second_consumer=True)
    result = _run(model, 14, target="cpu")
    assert op_count(result.model, "BatchNormalization") == 1 and op_count(result.model, "Mul") == 0
    assert any("the target EP runs it" in note for note in result.reports[0].notes)


def test_bn_whose_conv_output_has_a_second_consumer_is_not_folded_into_the_conv():
    model = _conv_bn_model(14, second_consumer=True)
    result = _run(model, 14)
    weights = {t.name: t for t in result.model.graph.initializer}
    # The Relu still reads the Conv's own output: the weights must stay as they were.
    assert "W" in weights and np.array_equal(numpy_helper.to_array(weights["W"]),
                                             numpy_helper.to_array(model.graph.initializer[0]))
    assert op_count(result.model, "BatchNormalization") == 0
    assert op_count(result.model, "Mul") == 1 and op_count(result.model, "Add") == 1
    _assert_close(model, result)


def test_conv_bn_bn_chain_folds_both_into_the_conv():
    model = _conv_bn_model(14)
    model.graph.node[1].output[0] = "mid"
    model.graph.node.append(_bn_node("mid", "y", prefix="bn2"))
    model.graph.initializer.extend(_bn_stats(6, prefix="bn2"))
    result = _run(model, 14)
    assert [n.op_type for n in result.model.graph.node] == ["Conv"]
    _assert_close(model, result)


# --------------------------------------------------------------------------- ConvTranspose

@pytest.mark.parametrize("group", [1, 2, 4])
@pytest.mark.parametrize("bias", [True, False])
def test_bn_after_conv_transpose_scales_the_output_channels_of_each_group(group, bias):
    cin, cout = 4, 8
    inits = [numpy_helper.from_array(_array([cin, cout // group, 3, 3]), "W")] + _bn_stats(cout)
    inputs = ["x", "W"]
    if bias:
        inits.append(numpy_helper.from_array(_array([cout]), "B"))
        inputs.append("B")
    nodes = [helper.make_node("ConvTranspose", inputs, ["c"], name="deconv", strides=[2, 2], group=group),
             _bn_node("c", "y")]
    model = make_model(nodes, [tensor_info("x", [1, cin, 4, 4])], [tensor_info("y", [1, cout, 9, 9])], inits, opset=14)
    result = _run(model, 14)
    assert [n.op_type for n in result.model.graph.node] == ["ConvTranspose"]
    _assert_close(model, result)


# ------------------------------------------------------------------------------------- Gemm

@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize("c_shape", [None, [5], [1], [3, 5], [3, 1]])
def test_bn_after_gemm_scales_the_output_features_of_b_and_c(trans_b, c_shape):
    k, m = 4, 5
    inits = [numpy_helper.from_array(_array([m, k] if trans_b else [k, m]), "B")] + _bn_stats(m)
    inputs = ["a", "B"]
    if c_shape is not None:
        inits.append(numpy_helper.from_array(_array(c_shape), "C"))
        inputs.append("C")
    nodes = [helper.make_node("Gemm", inputs, ["g"], name="gemm", transB=trans_b, alpha=0.5, beta=1.5),
             _bn_node("g", "y")]
    model = make_model(nodes, [tensor_info("a", [3, k])], [tensor_info("y", [3, m])], inits, opset=13)
    result = _run(model, 13)
    assert [n.op_type for n in result.model.graph.node] == ["Gemm"]
    gemm = result.model.graph.node[0]
    assert {a.name: helper.get_attribute_value(a) for a in gemm.attribute}["beta"] == 1.0
    _assert_close(model, result)


def test_bn_after_gemm_at_opset_9_where_c_is_required():
    inits = [numpy_helper.from_array(_array([4, 5]), "B"), numpy_helper.from_array(_array([5]), "C")] + _bn_stats(5)
    nodes = [helper.make_node("Gemm", ["a", "B", "C"], ["g"], name="gemm"), _bn_node("g", "y")]
    model = make_model(nodes, [tensor_info("a", [3, 4])], [tensor_info("y", [3, 5])], inits, opset=9)
    result = _run(model, 9)
    assert [n.op_type for n in result.model.graph.node] == ["Gemm"]
    _assert_close(model, result)


# ------------------------------------------------------------------------------ standalone BN

@pytest.mark.parametrize("shape", [[2, 3], [2, 3, 7], [2, 3, 4, 5], [1, 3, 2, 4, 3]])
@pytest.mark.parametrize("opset", [9, 14, 15])
def test_standalone_bn_becomes_mul_add_broadcast_on_axis_1(shape, opset):
    model = make_model([_bn_node("x", "y")], [tensor_info("x", shape)], [tensor_info("y", shape)],
                       _bn_stats(shape[1]), opset=opset)
    result = _run(model, opset)
    assert [n.op_type for n in result.model.graph.node] == ["Mul", "Add"]
    assert result.model.graph.node[-1].output[0] == "y"
    mul, add = result.model.graph.node
    constants = {t.name: t for t in result.model.graph.initializer}
    for name in (mul.input[1], add.input[1]):
        assert list(constants[name].dims) == [shape[1]] + [1] * (len(shape) - 2)
    _assert_close(model, result)


def test_standalone_bn_on_symbolic_dims_keeps_them_symbolic():
    model = make_model([_bn_node("x", "y")], [tensor_info("x", ["n", 3, "h", "w"])], [tensor_info("y", ["n", 3, "h", "w"])],
                       _bn_stats(3), opset=14)
    result = _run(model, 14)
    feeds = {"x": _array([2, 3, 6, 5])}
    np.testing.assert_allclose(run_ort(result.model, feeds)[0], run_ort(model, feeds)[0], rtol=1e-5, atol=1e-5)


def test_bn_after_add_becomes_mul_add():
    inits = [numpy_helper.from_array(_array([1, 3, 1, 1]), "offset")] + _bn_stats(3)
    nodes = [helper.make_node("Add", ["x", "offset"], ["s"], name="add"), _bn_node("s", "y")]
    model = make_model(nodes, [tensor_info("x", [1, 3, 4, 4])], [tensor_info("y", [1, 3, 4, 4])], inits, opset=14)
    result = _run(model, 14)
    assert [n.op_type for n in result.model.graph.node] == ["Add", "Mul", "Add"]
    _assert_close(model, result)


@pytest.mark.parametrize("x_type, stats_types, tolerance", [
    (np.float16, (np.float32, np.float32), 1e-2),
    (np.float32, (np.float16, np.float16), 1e-5),
    (np.float16, (np.float16, np.float16), 1e-2),
    (np.float64, (np.float64, np.float64), 1e-12),
])
def test_opset_15_input_and_statistics_types_may_differ(x_type, stats_types, tolerance):
    onnx_type = helper.np_dtype_to_tensor_dtype(np.dtype(x_type))
    model = make_model([_bn_node("x", "y")], [tensor_info("x", [2, 3, 4], onnx_type)],
                       [tensor_info("y", [2, 3, 4], onnx_type)], _bn_stats(3, dtypes=stats_types), opset=15)
    result = _run(model, 15)
    assert [n.op_type for n in result.model.graph.node] == ["Mul", "Add"]
    constants = {t.name: t for t in result.model.graph.initializer}
    assert all(constants[node.input[1]].data_type == onnx_type for node in result.model.graph.node)
    _assert_close(model, result, atol=tolerance, rtol=tolerance)


def test_opset_7_spatial_0_keeps_per_activation_statistics():
    model = make_model([_bn_node("x", "y", spatial=0)], [tensor_info("x", [2, 3, 4, 4])],
                       [tensor_info("y", [2, 3, 4, 4])], _bn_stats(3, shape=[3, 4, 4]), opset=7, ir_version=4)
    result = _run(model, 7)
    assert [n.op_type for n in result.model.graph.node] == ["Mul", "Add"]
    _assert_close(model, result)


def test_bn_inside_an_if_branch_is_rewritten():
    branch = helper.make_graph([_bn_node("x", "yb")], "then", [], [tensor_info("yb", [1, 3, 4])])
    other = helper.make_graph([helper.make_node("Identity", ["x"], ["yo"])], "else", [], [tensor_info("yo", [1, 3, 4])])
    nodes = [helper.make_node("If", ["cond"], ["y"], then_branch=branch, else_branch=other)]
    model = make_model(nodes, [tensor_info("x", [1, 3, 4]), tensor_info("cond", [], TensorProto.BOOL)],
                       [tensor_info("y", [1, 3, 4])], _bn_stats(3), opset=14)
    result = _run(model, 14)
    assert op_count(result.model, "BatchNormalization") == 0 and op_count(result.model, "Mul") == 1
    for cond in (True, False):
        feeds = {"x": _array([1, 3, 4]), "cond": np.array(cond)}
        np.testing.assert_allclose(run_ort(result.model, feeds)[0], run_ort(model, feeds)[0], rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------------- left alone

def _decode(model, opset):
    import onnx_graphsurgeon as gs

    graph = gs.import_onnx(model)
    node = next(n for n in graph.nodes if n.op == "BatchNormalization")
    return _matches(node, opset, {id(t) for t in graph.outputs})


def test_training_mode_bn_is_left_alone():
    model = make_model([_bn_node("x", "y", training_mode=1)], [tensor_info("x", [2, 3, 4])],
                       [tensor_info("y", [2, 3, 4])], _bn_stats(3), opset=14)
    assert _decode(model, 14) == Skip("training_mode=1 normalizes with the batch's own statistics")
    result = _run(model, 14)
    assert result.model is model and "training_mode=1" in result.reports[0].skipped[0]


def test_bn_whose_running_mean_output_is_used_is_left_alone():
    node = helper.make_node("BatchNormalization", ["x", "bn_scale", "bn_bias", "bn_mean", "bn_var"],
                            ["y", "running_mean", "running_var"], name="bn", training_mode=0)
    model = make_model([node], [tensor_info("x", [2, 3, 4])],
                       [tensor_info("y", [2, 3, 4]), tensor_info("running_mean", [3])], _bn_stats(3), opset=14)
    assert isinstance(_decode(model, 14), Skip)
    assert op_count(_run(model, 14).model, "BatchNormalization") == 1


def test_bn_with_statistics_fed_at_run_time_is_left_alone():
    inits = _bn_stats(3)[1:]
    model = make_model([_bn_node("x", "y")], [tensor_info("x", [2, 3, 4]), tensor_info("bn_scale", [3])],
                       [tensor_info("y", [2, 3, 4])], inits, opset=14)
    assert _decode(model, 14) == Skip("scale 'bn_scale' is not a constant")


def test_decoded_affine_is_scale_over_std_and_shifted_mean():
    stats = _bn_stats(3)
    model = make_model([_bn_node("x", "y", epsilon=0.25)], [tensor_info("x", [2, 3])], [tensor_info("y", [2, 3])],
                       stats, opset=9)
    affine = _decode(model, 9)
    scale, bias, mean, var = (numpy_helper.to_array(t).astype(np.float64) for t in stats)
    assert isinstance(affine, Affine) and affine.per_channel and affine.dtype == np.float32
    np.testing.assert_allclose(affine.scale, scale / np.sqrt(var + np.float32(0.25)), rtol=1e-15)
    np.testing.assert_allclose(affine.shift, bias - mean * affine.scale, rtol=1e-15)


# -------------------------------------------------------------------------- files and verify

def test_large_conv_weights_left_on_disk_are_read_for_folding(tmp_path):
    """A weight over lazy_io's threshold stays in the source file while the passes run."""
    from onnxfit.app.optimize import optimize

    cin, cout = 256, 128
    inits = [numpy_helper.from_array(_array([cout, cin, 3, 3]), "W")] + _bn_stats(cout)  # 1.2 MB: left on disk
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], name="conv", pads=[1, 1, 1, 1]), _bn_node("c", "y")]
    model = make_model(nodes, [tensor_info("x", [1, cin, 6, 6])], [tensor_info("y", [1, cout, 6, 6])], inits, opset=14)
    source = tmp_path / "model.onnx"
    onnx.save(model, source)
    result = optimize(source, tmp_path / "out.onnx", target="cpu", passes=["fold-batchnorm"])
    optimized = onnx.load(result.output)
    assert [n.op_type for n in optimized.graph.node] == ["Conv"]
    assert_same_outputs(model, optimized, random_feeds(model), exact=False, atol=1e-4, rtol=1e-5)


def test_onnxfit_verify_accepts_the_folded_model(tmp_path):
    from onnxfit.verification import verify

    model = _conv_bn_model(14, group=2)
    model.graph.node.append(_bn_node("y", "z", prefix="bn2"))
    model.graph.initializer.extend(_bn_stats(6, prefix="bn2"))
    model.graph.output[0].name = "z"
    source, folded = tmp_path / "model.onnx", tmp_path / "folded.onnx"
    onnx.save(model, source)
    onnx.save(_run(model, 14).model, folded)
    report = verify(folded, reference=source)
    assert report.ok, [c.summary for c in report.checks]


# -------------------------------------------------------------------------------------- zoo

def test_ppocr_v4_det_bn_after_add_leaves_coreml_mlprogram_whole(zoo_model):
    """PP-OCRv4's detector (Paddle2ONNX, opset 12): ONNX Runtime fuses its two BNs after Conv, the
    one after an Add stays and MLProgram has no builder for it. Measured: 2 CoreML partitions
    (327/328 nodes on the EP) before; 1 partition, every node, after the coreml target's passes."""
    from onnxfit.app.optimize import optimize_model
    from onnxfit.targets.partitions import estimate_partitions
    from onnxfit.versions import installed_ort_version

    model = onnx.load(zoo_model("ppocr_v4_det"))
    version = installed_ort_version()
    before = estimate_partitions(model, "coreml", version)
    result = optimize_model(model, "coreml")
    after = estimate_partitions(result.model, "coreml", version)
    report = next(r for r in result.reports if r.name == "fold-batchnorm")
    assert report.rewritten == 3 and report.skipped == []
    assert any(u.op == "BatchNormalization" for u in before.unsupported)
    assert before.partitions == 2 and after.partitions == 1 and after.nodes_on_ep == after.total_nodes
    for shape in ([1, 3, 64, 96], [2, 3, 96, 64]):
        feeds = random_feeds(model, shapes={"x": shape})
        assert_same_outputs(model, result.model, feeds, exact=False, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", ["shufflenet_ir3", "pplcnet_orientation", "ppocr_mobile_v2_cls", "picodet_layout_cdla"])
def test_zoo_bns_all_fold_within_tolerance(zoo_model, name):
    """Paddle2ONNX writes weights as Constant nodes, Caffe2's light models make them with
    ConstantOfShape (folded by fold-constants first, as in every target's order)."""
    from onnxfit.app.optimize import optimize_model

    model = onnx.load(zoo_model(name))
    result = optimize_model(model, "cpu", ["initializer-inputs", "fold-shapes", "fold-constants", "fold-batchnorm"])
    assert op_count(model, "BatchNormalization") > 0 and op_count(result.model, "BatchNormalization") == 0
    shapes = {vi.name: [d.dim_value if d.dim_value > 0 else 64 for d in vi.type.tensor_type.shape.dim]
              for vi in model.graph.input}
    feeds = random_feeds(model, shapes=shapes)
    assert_same_outputs(model, result.model, feeds, exact=False, atol=1e-4, rtol=1e-4)
