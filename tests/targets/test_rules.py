"""Each EP rule on the smallest model that shows it, and ORT's grouping on chains and branches."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxfit.errors import OnnxfitError
from onnxfit.targets.coreml import MLPROGRAM, NEURALNETWORK
from onnxfit.targets.nnapi import NNAPI
from onnxfit.targets.openvino import OPENVINO
from onnxfit.targets.support import GraphFacts, ort_partition_groups
from onnxfit.versions import parse_version
from tests.conftest import make_model, tensor_info


def _ints(name, values):
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def _judge(profile, node, inputs, initializers=(), version="1.26", outputs=None, opset=17):
    """Verdict on the single node `node` of a one-node model (shape-inferred, no ORT rewrites)."""
    model = make_model([node], inputs, outputs or [tensor_info(node.output[0], None)], initializers, opset=opset)
    graph = GraphFacts(onnx.shape_inference.infer_shapes(model))
    return profile.judge(graph.node_facts(0), parse_version(version))


def _pad(mode, pads=(0, 0, 1, 1, 0, 0, 1, 1), shape=(1, 3, 8, 8)):
    node = helper.make_node("Pad", ["x", "pads"], ["y"], name="pad", mode=mode)
    return node, [tensor_info("x", list(shape))], [_ints("pads", list(pads))]


# ------------------------------------------------------------------------------------- Pad


def test_pad_reflect_mlprogram_before_1_26_is_unsupported():
    verdict = _judge(MLPROGRAM, *_pad("reflect"), version="1.25")
    assert not verdict.supported and "reflect" in verdict.reason


def test_pad_reflect_mlprogram_from_1_26_is_supported():
    assert _judge(MLPROGRAM, *_pad("reflect"), version="1.26").supported
    assert _judge(MLPROGRAM, *_pad("reflect"), version="1.32").supported


@pytest.mark.parametrize("version", ["1.20", "1.26", "1.32"])
def test_pad_edge_is_never_supported_by_coreml(version):
    for profile in (MLPROGRAM, NEURALNETWORK):
        verdict = _judge(profile, *_pad("edge"), version=version)
        assert not verdict.supported and "edge" in verdict.reason


@pytest.mark.parametrize("version", ["1.20", "1.32"])
def test_pad_neuralnetwork_takes_constant_mode_only(version):
    node, inputs, inits = _pad("constant")
    node.input.append("cv")
    inits.append(numpy_helper.from_array(np.array(0.0, dtype=np.float32), "cv"))
    assert _judge(NEURALNETWORK, node, inputs, inits, version=version).supported
    assert "reflect" in _judge(NEURALNETWORK, *_pad("reflect"), version=version).reason


def test_pad_reflect_on_channel_axis_is_unsupported_in_mlprogram():
    verdict = _judge(MLPROGRAM, *_pad("reflect", pads=(0, 1, 0, 0, 0, 1, 0, 0)), version="1.26")
    assert "last two dims" in verdict.reason


def test_pad_reflect_amount_must_be_smaller_than_the_axis():
    verdict = _judge(MLPROGRAM, *_pad("reflect", pads=(0, 0, 4, 4, 0, 0, 4, 4), shape=(1, 3, 4, 4)), version="1.26")
    assert "reflect pad 4 >= size 4" in verdict.reason


def test_pad_with_runtime_pads_is_unsupported():
    node = helper.make_node("Pad", ["x", "pads"], ["y"], name="pad", mode="constant")
    verdict = _judge(MLPROGRAM, node, [tensor_info("x", [1, 3, 8, 8]), tensor_info("pads", [8], TensorProto.INT64)])
    assert "constant initializer" in verdict.reason


# ---------------------------------------------------------------------------------- Gather


@pytest.mark.parametrize("profile", [MLPROGRAM, NEURALNETWORK])
def test_gather_scalar_indices_rejected_by_coreml(profile):
    node = helper.make_node("Gather", ["x", "i"], ["y"], name="gather", axis=1)
    scalar = numpy_helper.from_array(np.array(1, dtype=np.int64), "i")
    verdict = _judge(profile, node, [tensor_info("x", [1, 3, 8])], [scalar])
    assert not verdict.supported and "scalar" in verdict.reason
    widened = numpy_helper.from_array(np.array([1], dtype=np.int64), "i")
    assert _judge(profile, node, [tensor_info("x", [1, 3, 8])], [widened]).supported


# ----------------------------------------------------------------------------------- Split


def test_split_with_runtime_sizes_is_unsupported_and_constant_sizes_are_supported():
    node = helper.make_node("Split", ["x", "s"], ["a", "b"], name="split", axis=1)
    runtime = _judge(MLPROGRAM, node, [tensor_info("x", [1, 4, 8]), tensor_info("s", [2], TensorProto.INT64)])
    assert "split" in runtime.reason
    assert _judge(MLPROGRAM, node, [tensor_info("x", [1, 4, 8])], [_ints("s", [1, 3])]).supported


def test_nnapi_equal_split_must_divide_the_axis():
    node = helper.make_node("Split", ["x"], ["a", "b"], name="split", axis=1)
    assert "evenly divide" in _judge(NNAPI, node, [tensor_info("x", [1, 3, 8])], opset=13).reason
    assert _judge(NNAPI, node, [tensor_info("x", [1, 4, 8])], opset=13).supported


# ---------------------------------------------------------------------------------- Resize


def _resize(coord="asymmetric", mode="nearest", scales=(1, 1, 2, 2)):
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], name="resize", mode=mode,
                            coordinate_transformation_mode=coord, nearest_mode="floor")
    inits = [numpy_helper.from_array(np.array(scales, dtype=np.float32), "scales")]
    return node, [tensor_info("x", [1, 3, 4, 4])], inits


def test_resize_rules_per_format():
    assert _judge(NEURALNETWORK, *_resize()).supported
    assert "half_pixel" in _judge(NEURALNETWORK, *_resize("half_pixel")).reason
    assert _judge(MLPROGRAM, *_resize("half_pixel")).supported
    assert "cubic" in _judge(MLPROGRAM, *_resize(mode="cubic")).reason
    assert "last two dims" in _judge(MLPROGRAM, *_resize(scales=(1, 2, 2, 2))).reason


def test_resize_with_runtime_scales_is_unsupported():
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], name="resize", mode="nearest",
                            coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    verdict = _judge(MLPROGRAM, node, [tensor_info("x", [1, 3, 4, 4]), tensor_info("scales", [4])])
    assert "constant initializer" in verdict.reason


# -------------------------------------------------- shape-dependent inputs are run-time values


@pytest.mark.parametrize("profile", [MLPROGRAM, NEURALNETWORK, NNAPI])
def test_reshape_with_a_shape_computed_at_run_time_is_unsupported(profile):
    nodes = [helper.make_node("Shape", ["x"], ["s"], name="shape"),
             helper.make_node("Reshape", ["x", "s"], ["y"], name="reshape")]
    model = make_model(nodes, [tensor_info("x", [1, 3, 4, 4])], [tensor_info("y", None)])
    graph = GraphFacts(onnx.shape_inference.infer_shapes(model))
    verdict = profile.judge(graph.node_facts(1), (1, 26))
    assert not verdict.supported and "'shape' must be a constant initializer" in verdict.reason


def test_slice_with_runtime_ends_is_unsupported():
    node = helper.make_node("Slice", ["x", "starts", "ends"], ["y"], name="slice")
    verdict = _judge(MLPROGRAM, node, [tensor_info("x", [4, 4]), tensor_info("ends", [1], TensorProto.INT64)],
                     [_ints("starts", [0])])
    assert "'ends' must be a constant initializer" in verdict.reason


# ------------------------------------------------------------------------- generic checks


def test_coreml_rejects_dims_above_16384_and_rank_above_5():
    relu = helper.make_node("Relu", ["x"], ["y"], name="relu")
    assert "16384" in _judge(MLPROGRAM, relu, [tensor_info("x", [1, 20000])]).reason
    assert "rank 6" in _judge(MLPROGRAM, relu, [tensor_info("x", [1] * 6)]).reason


def test_nnapi_rejects_dynamic_shapes_coreml_accepts_them():
    relu = helper.make_node("Relu", ["x"], ["y"], name="relu")
    assert "dynamic shape" in _judge(NNAPI, relu, [tensor_info("x", ["n", 3])]).reason
    assert _judge(MLPROGRAM, relu, [tensor_info("x", ["n", 3])]).supported


def test_openvino_rejects_float64_and_unknown_ops():
    relu = helper.make_node("Relu", ["x"], ["y"], name="relu")
    assert "double" in _judge(OPENVINO, relu, [tensor_info("x", [2], TensorProto.DOUBLE)]).reason
    det = helper.make_node("Det", ["x"], ["y"], name="det")
    assert "no builder for Det" in _judge(OPENVINO, det, [tensor_info("x", [2, 2])]).reason


def test_unknown_op_reason_names_the_profile():
    node = helper.make_node("Det", ["x"], ["y"], name="det")
    assert _judge(NEURALNETWORK, node, [tensor_info("x", [2, 2])]).reason == "CoreML NeuralNetwork has no builder for Det"


def test_bad_ort_version_is_a_user_error():
    with pytest.raises(OnnxfitError, match="expected X.Y"):
        parse_version("latest")
    assert parse_version("1.26.1") == (1, 26)


# -------------------------------------------------------------------------------- grouping


def _chain(supported_flags):
    nodes, previous = [], "x"
    for i, _ in enumerate(supported_flags):
        nodes.append(helper.make_node("Relu", [previous], [f"t{i}"], name=f"n{i}"))
        previous = f"t{i}"
    model = make_model(nodes, [tensor_info("x", [2])], [tensor_info(previous, [2])])
    return GraphFacts(model)


def test_chain_supported_unsupported_supported_gives_two_partitions():
    graph = _chain([True, False, True])
    assert ort_partition_groups(graph, [True, False, True]) == [[0], [2]]


def test_fully_supported_chain_is_one_partition_and_unsupported_only_is_none():
    assert ort_partition_groups(_chain([True] * 4), [True] * 4) == [[0, 1, 2, 3]]
    assert ort_partition_groups(_chain([False] * 3), [False] * 3) == []


def _diamond():
    """x -> a -> {b, c} -> d: a fork and a join."""
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="a"),
             helper.make_node("Relu", ["a"], ["b"], name="b"),
             helper.make_node("Sigmoid", ["a"], ["c"], name="c"),
             helper.make_node("Add", ["b", "c"], ["d"], name="d")]
    return GraphFacts(make_model(nodes, [tensor_info("x", [2])], [tensor_info("d", [2])]))


def test_unsupported_node_on_one_branch_splits_the_join_off():
    # b waits for the next wave; c joins the first group; d needs b, so it starts group two.
    assert ort_partition_groups(_diamond(), [True, False, True, True]) == [[0, 2], [3]]


def test_independent_branches_share_one_partition():
    # Nodes in one ORT group need not be connected: two parallel supported branches, one wave.
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="a"),
             helper.make_node("Relu", ["x"], ["b"], name="b")]
    graph = GraphFacts(make_model(nodes, [tensor_info("x", [2])], [tensor_info("a", [2]), tensor_info("b", [2])]))
    assert ort_partition_groups(graph, [True, True]) == [[0, 1]]


def test_openvino_grouping_splits_unconnected_pieces():
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="a"),
             helper.make_node("Relu", ["x"], ["b"], name="b"),
             helper.make_node("Sigmoid", ["a"], ["c"], name="c"),
             helper.make_node("Sigmoid", ["b"], ["d"], name="d")]
    graph = GraphFacts(make_model(nodes, [tensor_info("x", [2])], [tensor_info("c", [2]), tensor_info("d", [2])]))
    # One unsupported node anywhere switches OpenVINO to clustering: pieces are connected components.
    groups = OPENVINO.partitions(graph, [True, True, True, False])
    assert sorted(map(sorted, groups)) == [[0, 2]]


# --------------------------------------------------- rules that follow ONNX Runtime releases


@pytest.mark.parametrize(("version", "partitions"), [("1.20", 2), ("1.26", 2), ("1.27", 1), ("1.32", 1)])
def test_split11_and_scalar_gather_partitions_per_release(version, partitions):
    from onnxfit.targets.partitions import estimate_partitions
    from tests.targets.corpus import split11_scalar_gather

    report = estimate_partitions(split11_scalar_gather(), "coreml", parse_version(version))
    assert report.partitions == partitions
    refused = {u.name for u in report.unsupported}
    assert refused == ({"split", "gather"} if partitions == 2 else set())


def _split11(sizes=(1, 3), shape=(1, 4, 8), outputs=2):
    attrs = {"split": list(sizes)} if sizes is not None else {}
    node = helper.make_node("Split", ["x"], [f"o{i}" for i in range(outputs)], name="split", axis=1, **attrs)
    return node, [tensor_info("x", list(shape))]


@pytest.mark.parametrize("profile", [MLPROGRAM, NEURALNETWORK])
def test_split_attribute_form_is_taken_from_1_27(profile):
    verdict = _judge(profile, *_split11(), version="1.26", opset=11)
    assert "needs opset >= 13" in verdict.reason
    assert _judge(profile, *_split11(), version="1.27", opset=11).supported
    assert _judge(profile, *_split11(), version="1.32", opset=11).supported


def test_split_attribute_rules_from_1_27():
    assert "do not add up" in _judge(MLPROGRAM, *_split11((1, 2)), version="1.27", opset=11).reason
    assert "static size" in _judge(MLPROGRAM, *_split11(shape=(1, "c", 8)), version="1.27", opset=11).reason
    assert "positive" in _judge(MLPROGRAM, *_split11((0, 4)), version="1.27", opset=11).reason
    # No sizes: an equal split the axis must divide (CoreML's num_splits).
    assert _judge(MLPROGRAM, *_split11(None), version="1.27", opset=11).supported
    assert "divisible by 3" in _judge(MLPROGRAM, *_split11(None, outputs=3), version="1.27", opset=11).reason


def _scalar_gather(shape):
    node = helper.make_node("Gather", ["x", "i"], ["y"], name="gather", axis=1)
    return node, [tensor_info("x", list(shape))], [numpy_helper.from_array(np.array(1, dtype=np.int64), "i")]


@pytest.mark.parametrize("profile", [MLPROGRAM, NEURALNETWORK])
def test_scalar_gather_is_taken_from_1_27_on_static_data_up_to_rank_4(profile):
    assert "before ONNX Runtime 1.27" in _judge(profile, *_scalar_gather([1, 3, 8]), version="1.26").reason
    assert _judge(profile, *_scalar_gather([1, 3, 8]), version="1.27").supported
    assert _judge(profile, *_scalar_gather([1, 3, 8, 2]), version="1.32").supported
    assert "fully static" in _judge(profile, *_scalar_gather(["n", 3, 8]), version="1.27").reason
    assert "rank <= 4" in _judge(profile, *_scalar_gather([1, 3, 2, 2, 2]), version="1.27").reason


def test_gather_int32_data_is_refused():
    node = helper.make_node("Gather", ["x", "i"], ["y"], name="gather", axis=0)
    inputs = [tensor_info("x", [4, 2], TensorProto.INT32)]
    assert "int32" in _judge(MLPROGRAM, node, inputs, [_ints("i", [1])], version="1.32").reason


def _gather_nd(indices_const=True, batch_dims=0):
    node = helper.make_node("GatherND", ["x", "i"], ["y"], name="gnd", batch_dims=batch_dims)
    indices = [[0, 1], [1, 0]]
    if indices_const:
        return node, [tensor_info("x", [2, 2, 3])], [_ints("i", indices)]
    return node, [tensor_info("x", [2, 2, 3]), tensor_info("i", [2, 2], TensorProto.INT64)], []


def test_gather_nd_mlprogram_from_1_27_with_constant_indices_and_batch_dims_0():
    assert "only in ONNX Runtime >= 1.27" in _judge(MLPROGRAM, *_gather_nd(), version="1.26").reason
    assert _judge(MLPROGRAM, *_gather_nd(), version="1.27").supported
    assert "constant initializer" in _judge(MLPROGRAM, *_gather_nd(indices_const=False), version="1.27").reason
    assert "batch_dims" in _judge(MLPROGRAM, *_gather_nd(batch_dims=1), version="1.27").reason
    assert "no builder for GatherND" in _judge(NEURALNETWORK, *_gather_nd(), version="1.32").reason


def test_mlprogram_ops_added_after_1_20_follow_their_release():
    where = helper.make_node("Where", ["c", "x", "z"], ["y"], name="where")
    inputs = [tensor_info("c", [2], TensorProto.BOOL), tensor_info("x", [2]), tensor_info("z", [2])]
    assert ">= 1.28" in _judge(MLPROGRAM, where, inputs, version="1.27").reason
    assert _judge(MLPROGRAM, where, inputs, version="1.28").supported
    gelu = helper.make_node("Gelu", ["x"], ["y"], name="gelu")
    assert not _judge(MLPROGRAM, gelu, [tensor_info("x", [2])], version="1.20", opset=20).supported
    assert _judge(MLPROGRAM, gelu, [tensor_info("x", [2])], version="1.21", opset=20).supported


def test_nnapi_split_needs_opset_13_and_equal_sizes():
    assert "needs opset >= 13" in _judge(NNAPI, *_split11((2, 2)), opset=11).reason
    node = helper.make_node("Split", ["x", "s"], ["a", "b"], name="split", axis=1)
    assert "evenly" in _judge(NNAPI, node, [tensor_info("x", [1, 4, 8])], [_ints("s", [1, 3])], opset=13).reason
    assert _judge(NNAPI, node, [tensor_info("x", [1, 4, 8])], [_ints("s", [2, 2])], opset=13).supported


def test_nnapi_takes_scalar_gather_with_constant_indices():
    assert _judge(NNAPI, *_scalar_gather([1, 3, 8])).supported
    node = helper.make_node("Gather", ["x", "i"], ["y"], name="gather", axis=1)
    runtime = [tensor_info("x", [1, 3, 8]), tensor_info("i", [], TensorProto.INT64)]
    assert "constant" in _judge(NNAPI, node, runtime).reason
