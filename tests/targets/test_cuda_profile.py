"""The `cuda` estimate: CUDA kernel lookup plus ORT's CPU-preferred shape math, without a GPU.

Built models check each rule of onnxfit/targets/cuda.py; zoo models are compared node by node
with the real CUDA placement reports/cuda_gpu.py recorded (onnxruntime-gpu 1.30, H200) in
reports/cuda.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxfit.errors import node_label
from onnxfit.app.optimize import optimize
from onnxfit.targets.partitions import count_partitions, estimate_partitions, prepare_graph
from onnxfit.versions import installed_ort_version
from tests.conftest import make_model, tensor_info
from tests.targets import corpus

RECORDED = Path(__file__).resolve().parents[2] / "reports" / "cuda.json"


def _on_cpu(model) -> dict[str, str]:
    report = count_partitions(model, "cuda")
    assert report.source == "estimated" and report.profile == "CUDA"
    return {u.name: u.reason for u in report.unsupported}


def _reshape_by_own_shape(shape_dtype=TensorProto.FLOAT, table=None):
    """Conv -> Shape -> Gather(2) -> Unsqueeze -> Concat(-1) -> Reshape(conv, [h, -1]) -> Relu, H and W symbolic.

    (Gather(2) to the first place: ORT's level-1 ReshapeFusion cannot turn it into a 0.)
    """
    initializers = [corpus._weight("w", [4, 3, 3, 3]), numpy_helper.from_array(np.array(2, np.int64), "zero"),
                    numpy_helper.from_array(np.array([0], np.int64), "axes0"),
                    numpy_helper.from_array(np.array([-1], np.int64), "minus1")]
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Shape", ["c"], ["s"], name="shape"),
        helper.make_node("Gather", ["s" if table is None else "t", "zero"], ["n"], name="gather", axis=0),
        helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"], name="unsqueeze"),
        helper.make_node("Concat", ["n1", "minus1"], ["shape2"], name="concat", axis=0),
        helper.make_node("Reshape", ["c", "shape2"], ["r"], name="reshape"),
        helper.make_node("Relu", ["r"], ["y"], name="relu"),
    ]
    if table is not None:  # the Gather reads a big table at an index from Shape instead
        nodes[2] = helper.make_node("Gather", ["t", "s0"], ["n"], name="gather", axis=0)
        nodes.insert(2, helper.make_node("Gather", ["s", "zero"], ["s0"], name="pick"))
        initializers.append(numpy_helper.from_array(np.arange(table, dtype=np.int64), "t"))
    return make_model(nodes, [tensor_info("x", ["n", 3, "h", "w"], shape_dtype)], [tensor_info("y", None)],
                      initializers)


def test_shape_math_over_symbolic_dims_runs_on_the_cpu_and_reshape_stays_on_cuda():
    on_cpu = _on_cpu(_reshape_by_own_shape())
    assert set(on_cpu) == {"gather", "unsqueeze", "concat"}
    assert all("CPU tensors" in reason for reason in on_cpu.values())
    report = count_partitions(_reshape_by_own_shape(), "cuda")
    assert (report.nodes_on_ep, report.total_nodes) == (4, 7)


def test_a_big_initializer_keeps_its_gather_on_cuda():
    on_cpu = _on_cpu(_reshape_by_own_shape(table=101))  # over 100 elements: not a small initializer
    assert "gather" not in on_cpu and "pick" in on_cpu
    assert "gather" in _on_cpu(_reshape_by_own_shape(table=100))


def test_input_shape_and_fold_shapes_give_one_cuda_partition(tmp_path):
    source = tmp_path / "m.onnx"
    import onnx

    onnx.save(_reshape_by_own_shape(), source)
    before = count_partitions(source, "cuda")
    after = count_partitions(optimize(source, tmp_path / "o.onnx", target="cuda",
                                      input_shapes={"x": (1, 3, 8, 8)}).output, "cuda")
    assert before.partitions == 2 and after.partitions == 1 and after.unsupported == []


def test_float16_keeps_shape_math_on_cuda():
    nodes = [
        helper.make_node("Shape", ["x"], ["s"], name="shape"),
        helper.make_node("Cast", ["s"], ["sh"], name="cast", to=TensorProto.FLOAT16),
        helper.make_node("Concat", ["sh", "two"], ["y"], name="concat", axis=0),
    ]
    model = make_model(nodes, [tensor_info("x", ["n", 3])], [tensor_info("y", [3], TensorProto.FLOAT16)],
                       [numpy_helper.from_array(np.array([2], np.float16), "two")])
    on_cpu = _on_cpu(model)
    assert "cast" in on_cpu and "concat" not in on_cpu  # a float16 input: GetCpuPreferredNodes stops there


def test_no_cuda_kernel_leaves_dynamic_quantization_to_the_cpu():
    nodes = [
        helper.make_node("DynamicQuantizeLinear", ["x"], ["q", "scale", "zp"], name="dql"),
        helper.make_node("ConvInteger", ["q", "w", "zp"], ["c"], name="convint"),
        helper.make_node("Cast", ["c"], ["y"], name="cast", to=TensorProto.FLOAT),
    ]
    w = numpy_helper.from_array(np.ones([2, 3, 1, 1], np.uint8), "w")
    model = make_model(nodes, [tensor_info("x", [1, 3, 4, 4])], [tensor_info("y", [1, 2, 4, 4])], [w])
    on_cpu = _on_cpu(model)
    assert "no kernel for DynamicQuantizeLinear" in on_cpu["dql"]
    assert "no kernel for ConvInteger" in on_cpu["convint"]
    # Only consumers of Shape/Size outputs start the CPU-preferred walk: the Cast stays on CUDA.
    assert "cast" not in on_cpu


def test_conv_transpose_with_asymmetric_pads_falls_back_to_the_cpu():
    def model(pads):
        nodes = [helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="deconv", pads=pads, strides=[2, 2])]
        return make_model(nodes, [tensor_info("x", [1, 2, 4, 4])], [tensor_info("y", None)],
                          [corpus._weight("w", [2, 2, 3, 3])])

    assert "asymmetric pads" in _on_cpu(model([0, 0, 1, 1]))["deconv"]
    assert _on_cpu(model([1, 1, 1, 1])) == {}


def test_gru_without_linear_before_reset_falls_back_to_the_cpu():
    def model(linear_before_reset):
        nodes = [helper.make_node("GRU", ["x", "w", "r"], ["y"], name="gru", hidden_size=2,
                                  linear_before_reset=linear_before_reset)]
        return make_model(nodes, [tensor_info("x", [3, 1, 2])], [tensor_info("y", None)],
                          [corpus._weight("w", [1, 6, 2]), corpus._weight("r", [1, 6, 2], 1)])

    assert "linear_before_reset" in _on_cpu(model(0))["gru"]
    assert _on_cpu(model(1)) == {}


def _recorded():
    return json.loads(RECORDED.read_text())["placement"] if RECORDED.exists() else {}


@pytest.mark.parametrize("name", ["yolov8n_nudenet", "silero_vad_half", "ppocr_v4_rec", "crnn_ddddocr_quantized",
                                  "basic_pitch", "slanet_table"])
def test_estimate_places_zoo_nodes_as_the_real_cuda_ep_did(zoo_model, name, tmp_path):
    recorded = _recorded()[name]["published"]
    path = zoo_model(name)
    import onnx

    # The recorded run named nameless nodes by their label first; do the same.
    model = onnx.load(str(path))
    for node in model.graph.node:
        node.name = node.name or node_label(node)
    named = tmp_path / "named.onnx"
    onnx.save(model, named)
    estimate = estimate_partitions(named, "cuda", installed_ort_version())
    labels = [node_label(n) for n in prepare_graph(named).nodes]
    assert {u.name for u in estimate.unsupported} == set(recorded["real"]["cpu_nodes"])
    assert (estimate.partitions, estimate.nodes_on_ep, len(labels)) == (
        recorded["real"]["partitions"], recorded["real"]["on_cuda"], recorded["nodes"])
