"""dense-conv-to-gemm: a 1x1 Conv over a batch of 1x1 images (tf2onnx's Dense on every pixel) becomes
a Gemm on the ``[N, C]`` rows, checked against ONNX Runtime on random inputs."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxfit.app.optimize import optimize_model
from onnxfit.optimizer.selection import select_passes
from tests.conftest import assert_same_outputs, make_model, op_count, random_feeds, run_ort, tensor_info

RULE = ["dense-conv-to-gemm"]
RNG = np.random.default_rng(7)


def weights(name, shape, dtype=np.float32):
    return numpy_helper.from_array((RNG.standard_normal(shape) * 0.2).astype(dtype), name)


def pixel_dense(pixels=1296, channels=32, out=64, bias=True, attrs=None, dtype=np.float32, w_shape=None):
    """tf2onnx's per-pixel Dense: NHWC [1, H, W, C] -> Reshape [H*W, C, 1, 1] -> Conv 1x1 -> Clip -> Reshape."""
    side = int(round(pixels ** 0.5))
    elem = TensorProto.FLOAT16 if dtype == np.float16 else TensorProto.FLOAT
    conv_inputs = ["rows", "w", "b"] if bias else ["rows", "w"]
    graph_nodes = [
        helper.make_node("Reshape", ["x", "to_rows"], ["rows"]),
        helper.make_node("Conv", conv_inputs, ["conv"], name="Conv__12705", **(attrs or {})),
        helper.make_node("Relu", ["conv"], ["act"]),
        helper.make_node("Reshape", ["act", "to_image"], ["y"]),
    ]
    inits = [numpy_helper.from_array(np.array([pixels, channels, 1, 1], np.int64), "to_rows"),
             numpy_helper.from_array(np.array([1, side, side, out], np.int64), "to_image"),
             weights("w", w_shape or (out, channels, 1, 1), dtype)]
    if bias:
        inits.append(weights("b", (out,), dtype))
    return make_model(graph_nodes, [tensor_info("x", [1, side, side, channels], elem)],
                      [tensor_info("y", [1, side, side, out], elem)], inits)


def rule(model, target="cpu"):
    return optimize_model(model, target=target, passes=RULE)


def test_facephys_pixel_dense_becomes_one_gemm_bit_exact_on_the_cpu_ep():
    model = pixel_dense()
    result = rule(model)
    assert op_count(result.model, "Conv") == 0 and op_count(result.model, "Gemm") == 1
    gemm = next(n for n in result.model.graph.node if n.op_type == "Gemm")
    assert [a.name for a in gemm.attribute] == ["transB"]
    feeds = random_feeds(model)
    assert_same_outputs(model, result.model, feeds, exact=False, atol=1e-5, rtol=1e-5)
    # With its default optimizations (the blocked-channel NCHWc Conv) ONNX Runtime's CPU EP sums
    # the 32 channels in the Gemm's order: bit for bit, as FacePhys's 300 streamed frames show.
    for expected, actual in zip(run_ort(model, feeds, optimize=True), run_ort(result.model, feeds, optimize=True)):
        assert np.array_equal(expected, actual)
    report = next(r for r in result.reports if r.name == "dense-conv-to-gemm")
    assert report.rewritten == 1


@pytest.mark.parametrize(("pixels", "channels", "out", "bias"), [(324, 32, 32, False), (81, 64, 8, True), (25, 256, 64, True)])
def test_other_batches_and_widths_match_onnx_runtime(pixels, channels, out, bias):
    model = pixel_dense(pixels, channels, out, bias)
    result = rule(model)
    assert op_count(result.model, "Gemm") == 1
    assert_same_outputs(model, result.model, random_feeds(model), exact=False, atol=1e-5, rtol=1e-5)


def test_with_the_default_rules_the_reshapes_merge_with_the_exporters():
    model = pixel_dense()
    result = optimize_model(model, target="cpu")
    # Reshape -> Gemm -> Relu -> Reshape: the rows Reshape merged into the exporter's, the
    # Reshape back to images dropped across the Relu by reshape-chains (rule 5).
    assert [n.op_type for n in result.model.graph.node] == ["Reshape", "Gemm", "Relu", "Reshape"]
    assert_same_outputs(model, result.model, random_feeds(model), exact=False, atol=1e-5, rtol=1e-5)


def test_float16_matches_within_its_precision():
    model = pixel_dense(81, 32, 16, dtype=np.float16)
    result = rule(model)
    assert op_count(result.model, "Gemm") == 1
    assert_same_outputs(model, result.model, random_feeds(model), exact=False, atol=1e-2, rtol=1e-2)


@pytest.mark.parametrize("case", ["one image", "few channels", "padded", "grouped", "3x3 kernel", "weights computed",
                                  "images from a conv"])
def test_convs_that_are_no_dense_layer_over_many_images_stay(case):
    if case == "one image":
        model = pixel_dense(pixels=1)
    elif case == "few channels":  # FacePhys's first layer (C = 3): another summation order on the CPU EP
        model = pixel_dense(channels=3)
    elif case == "padded":  # each 1x1 image becomes 3x3: no longer one row per image
        model = pixel_dense(pixels=4, attrs={"pads": [1, 1, 1, 1]})
        model.graph.node[-1].input[1] = "to_padded"
        model.graph.initializer.append(numpy_helper.from_array(np.array([1, 6, 6, 64], np.int64), "to_padded"))
        model.graph.output[0].type.tensor_type.shape.dim[1].dim_value = 6
        model.graph.output[0].type.tensor_type.shape.dim[2].dim_value = 6
    elif case == "grouped":
        model = pixel_dense(channels=32, out=32, attrs={"group": 2}, w_shape=(32, 16, 1, 1))
    elif case == "3x3 kernel":
        model = pixel_dense(attrs={"pads": [1, 1, 1, 1]}, w_shape=(64, 32, 3, 3))
    elif case == "images from a conv":  # centerface's last stage: a batch of 1x1 feature maps, no Reshape
        model = make_model([helper.make_node("Conv", ["x", "w0"], ["rows"]),
                            helper.make_node("Conv", ["rows", "w"], ["y"], name="Conv__12705")],
                           [tensor_info("x", [10, 32, 1, 1])], [tensor_info("y", [10, 64, 1, 1])],
                           [weights("w0", (32, 32, 1, 1)), weights("w", (64, 32, 1, 1))])
    else:
        model = pixel_dense()
        model.graph.initializer[2].name = "w_half"
        model.graph.node.insert(0, helper.make_node("Add", ["w_half", "w_half"], ["w"]))
    result = rule(model)
    assert any(n.op_type == "Conv" and n.name == "Conv__12705" for n in result.model.graph.node)
    assert op_count(result.model, "Gemm") == 0
    assert_same_outputs(model, result.model, random_feeds(model), exact=False, atol=1e-5, rtol=1e-5)


def test_mobile_targets_and_exact_leave_it_out():
    assert "dense-conv-to-gemm" in select_passes("cpu") and "dense-conv-to-gemm" in select_passes("cuda")
    assert "dense-conv-to-gemm" not in select_passes("cpu", exact=True)
    for target in ("coreml", "nnapi"):
        assert "dense-conv-to-gemm" not in select_passes(target)
    model = pixel_dense()
    assert op_count(optimize_model(model, target="cpu", exact=True).model, "Conv") == 1


@pytest.mark.parametrize("spatial", [1, 3])
def test_conv1d_and_conv3d_over_one_pixel_become_gemm(spatial):
    # torch's Conv1d/Conv3d with kernel 1 over rows reshaped to [N, C, 1] or [N, C, 1, 1, 1].
    ones = [1] * spatial
    model = make_model([
        helper.make_node("Reshape", ["x", "to_rows"], ["rows"]),
        helper.make_node("Conv", ["rows", "w", "b"], ["y"]),
    ], [tensor_info("x", [4, 50, 16])], [tensor_info("y", [200, 24, *ones])],
        [numpy_helper.from_array(np.array([200, 16, *ones], np.int64), "to_rows"),
         weights("w", (24, 16, *ones)), weights("b", (24,))])
    result = rule(model)
    assert op_count(result.model, "Conv") == 0 and op_count(result.model, "Gemm") == 1
    assert_same_outputs(model, result.model, random_feeds(model), exact=False, atol=1e-5, rtol=1e-5)
