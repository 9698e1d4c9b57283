"""How `partitions` reports an EP that fails to compile, ORT's own failures, and nameless nodes.

The real compile failure (OpenVINO EP on If nodes, onnxruntime#23757) runs in .venv-openvino
(tests/targets/test_openvino_failures.py); here the message it produces is turned into the one
line, from the exact text the EP raises, and everything else runs real ONNX Runtime sessions.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from onnxfit.targets.partitions import compile_failure, count_partitions
from tests.conftest import make_model, tensor_info

# str(exc) of onnxruntime-openvino 1.24.1 creating a session on silero_vad_half.onnx.
OPENVINO_IF_FAILURE = (
    "[ONNXRuntimeError] : 1 : FAIL : Exception during initialization: /onnxruntime/onnxruntime/core/providers/"
    "openvino/backends/basic_backend.cc:136 onnxruntime::openvino_ep::BasicBackend::BasicBackend(std::unique_ptr"
    "<onnx::ModelProto>&, onnxruntime::openvino_ep::SessionContext&, const onnxruntime::openvino_ep::"
    "SubGraphContext&, onnxruntime::openvino_ep::SharedContext&, onnxruntime::openvino_ep::ptr_stream_t&) "
    "/onnxruntime/onnxruntime/core/providers/openvino/ov_interface.cc:28 auto onnxruntime::openvino_ep::"
    "OvExceptionBoundary(Func&&, std::format_string<Args ...>&&, Args&& ...) [with bool typed = false] "
    "[OpenVINO-EP] Exception while Loading Network for graph OpenVINOExecutionProvider_OpenVINO-EP-subgraph_1_0: "
    "Exception from src/inference/src/cpp/core.cpp:114:\n"
    "Exception from src/inference/src/dev/plugin.cpp:53:\n"
    "Check '!shape.rank().is_dynamic()' failed at src/plugins/intel_cpu/src/node.cpp:106:\n"
    "Unexpected: CPU plug-in doesn't support Parameter operation with dynamic rank. Operation name: "
    "{name}\n\n\n\n\n"
)


def _branch(value: float, out: str):
    const = helper.make_node("Constant", [], [out], value=numpy_helper.from_array(np.array([value], np.float32)))
    return helper.make_graph([const], f"branch_{out}", [], [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)])


def _if_model(if_name: str = ""):
    """x -> ReduceSum > 0 -> If (output of unknown rank) -> Relu: the silero_vad decoder shape."""
    nodes = [
        helper.make_node("ReduceSum", ["x"], ["total"], name="sum", keepdims=0),
        helper.make_node("Greater", ["total", "zero"], ["cond"], name="positive"),
        helper.make_node("If", ["cond"], ["branch_out"], name=if_name,
                         then_branch=_branch(1.0, "then_out"), else_branch=_branch(-1.0, "else_out")),
        helper.make_node("Relu", ["branch_out"], ["y"], name="relu"),
    ]
    zero = numpy_helper.from_array(np.array(0.0, np.float32), "zero")
    return make_model(nodes, [tensor_info("x", [1, 4])], [tensor_info("y", [1])], [zero])


def test_compile_failure_is_one_line_naming_the_nameless_if_node_by_its_output():
    message = OPENVINO_IF_FAILURE.format(name="branch_out")
    line = compile_failure("OpenVINOExecutionProvider", message, _if_model(if_name=""))
    assert line == (
        "OpenVINOExecutionProvider failed to compile the model at node 'If -> branch_out' (If, output "
        "'branch_out'): CPU plug-in doesn't support Parameter operation with dynamic rank (onnxruntime#23757: "
        "the OpenVINO EP cannot compile If nodes whose outputs have a dynamic rank)"
    )


def test_compile_failure_finds_the_node_inside_an_if_branch():
    model = _if_model(if_name="outer")
    line = compile_failure("OpenVINOExecutionProvider", OPENVINO_IF_FAILURE.format(name="else_out"), model)
    assert "at node 'Constant -> else_out' (Constant, output 'else_out')" in line
    assert "onnxruntime#23757" not in line  # the known If bug is only named for If nodes


def test_compile_failure_keeps_an_unknown_operation_name_and_the_ep_text():
    line = compile_failure("OpenVINOExecutionProvider", OPENVINO_IF_FAILURE.format(name="gone"), _if_model())
    assert line.startswith("OpenVINOExecutionProvider failed to compile the model at 'gone': CPU plug-in")
    one_line = "[ONNXRuntimeError] : 1 : FAIL : /src/ep.cc:12 Ep::Compile(int) [Some-EP] no kernel for Foo"
    assert compile_failure("SomeExecutionProvider", one_line) == (
        "SomeExecutionProvider failed to compile the model: no kernel for Foo"
    )


def test_estimate_names_a_nameless_unsupported_node_by_its_first_output():
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="relu"), helper.make_node("Det", ["a"], ["det_out"]),
             helper.make_node("Relu", ["det_out"], ["y"], name="relu2")]
    model = make_model(nodes, [tensor_info("x", [2, 3, 3])], [tensor_info("y", [2])])
    for target in ("coreml", "nnapi", "openvino"):
        report = count_partitions(model, target, ort_version="1.24")
        # (OpenVINO also drops the one-node Relu piece before the cut; it is named as it is.)
        assert ("Det -> det_out", "Det") in [(u.name, u.op) for u in report.unsupported], target
        assert all(u.name for u in report.unsupported), target


def test_real_placement_names_nameless_nodes_by_their_first_output():
    # The Azure EP takes nothing: ORT logs "All nodes placed on [CPUExecutionProvider]" with no names.
    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Det", ["a"], ["d"]),
             helper.make_node("Relu", ["d"], ["y"], name="named")]
    model = make_model(nodes, [tensor_info("x", [2, 3, 3])], [tensor_info("y", [2])])
    report = count_partitions(model, "coreml", ep="AzureExecutionProvider")
    assert report.is_real and report.compiled and report.partitions == 0
    assert [(u.name, u.op) for u in report.unsupported] == [
        ("Relu -> a", "Relu"), ("Det -> d", "Det"), ("named", "Relu")
    ]


def test_nnapi_reason_shows_unknown_dims_as_question_marks_and_unknown_rank_in_words():
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="relu"), helper.make_node("Det", ["a"], ["d"], name="det"),
             helper.make_node("Relu", ["d"], ["y"], name="after_det")]
    model = make_model(nodes, [tensor_info("x", ["n", 3, 3])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    reasons = {u.name: u.reason for u in count_partitions(model, "nnapi").unsupported}
    assert reasons["relu"] == "input 'x' has a dynamic shape [?, 3, 3] (NNAPI needs fixed shapes)"
    assert "None" not in " ".join(reasons.values())


def _cli(*args: str) -> subprocess.CompletedProcess:
    code = "import sys; from onnxfit.cli import main; sys.argv[0] = 'onnxfit'; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)


def test_model_onnx_runtime_cannot_initialise_is_one_error_line_without_ort_log_lines(tmp_path):
    # A Resize mode the CPU kernel rejects: ORT logs a colored "[E:onnxruntime:...]" line at
    # severity ERROR besides raising; only onnxfit's own line may reach the terminal.
    nodes = [helper.make_node("Resize", ["x", "", "scales"], ["y"], name="resize", mode="foo")]
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    path = tmp_path / "bad_resize.onnx"
    onnx.save(make_model(nodes, [tensor_info("x", [1, 1, 2, 2])], [tensor_info("y", [1, 1, 4, 4])], [scales]), path)
    result = _cli("partitions", str(path), "--target", "coreml")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: {path}: ONNX Runtime cannot load the model: [ONNXRuntimeError] : 1 : FAIL : Exception during "
        "initialization: mode attribute is foo. It can only be nearest(default) or linear or cubic."
    ]
