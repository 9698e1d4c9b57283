"""The conservative `tensorrt` estimate: TensorRT 10 ONNX parser limits and ORT's default exclusions."""

from __future__ import annotations

from onnx import TensorProto, helper

from onnxfit.targets.partitions import count_partitions
from tests.conftest import make_model, tensor_info
from tests.targets import corpus


def _cut_by(op_node, inputs, outputs, initializers=()):
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="relu1"), op_node,
             helper.make_node("Sigmoid", [op_node.output[0]], ["y"], name="sigmoid1")]
    return make_model(nodes, inputs, outputs, initializers)


def test_a_parser_without_importer_cuts_the_graph():
    model = corpus.unsupported_in_chain()  # Det in the middle
    report = count_partitions(model, "tensorrt")
    assert report.source == "estimated" and (report.partitions, report.nodes_on_ep) == (2, 6)
    assert "no importer for Det" in report.unsupported[0].reason


def test_nonzero_is_left_to_cuda_by_default():
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="relu1"), helper.make_node("NonZero", ["a"], ["nz"], name="nz"),
             helper.make_node("Neg", ["nz"], ["y"], name="neg")]
    model = make_model(nodes, [tensor_info("x", [2, 3])], [tensor_info("y", None, TensorProto.INT64)])
    report = count_partitions(model, "tensorrt")
    assert [(u.name, u.op) for u in report.unsupported] == [("nz", "NonZero")]
    assert "trt_op_types_to_exclude" in report.unsupported[0].reason


def test_float64_is_counted_unsupported():
    model = _cut_by(helper.make_node("Cast", ["a"], ["d"], name="to_double", to=TensorProto.DOUBLE),
                    [tensor_info("x", [2, 3])], [tensor_info("y", [2, 3], TensorProto.DOUBLE)])
    on_cpu = {u.name for u in count_partitions(model, "tensorrt").unsupported}
    assert on_cpu == {"to_double", "sigmoid1"}


def test_samples_run_whole_on_tensorrt():
    for path in corpus.sample_paths():
        report = count_partitions(path, "tensorrt")
        assert report.partitions == 1 and report.unsupported == [], path
