"""The real OpenVINO EP failing to compile valid models is reported as a finding (runs in .venv-openvino).

silero_vad's If nodes have outputs of dynamic rank; the OpenVINO EP claims them and then throws
while compiling (onnxruntime#23757). The CPU EP runs the same models.
"""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import pytest

from onnxfit.targets.partitions import count_partitions, estimate_partitions
from onnxfit.verification.partitions_check import partitions_check
from onnxfit.versions import installed_ort_version
from tests.targets.corpus import unsupported_in_chain

pytestmark = pytest.mark.openvino_ep

# Zoo model -> the If node whose dynamic-rank output OpenVINO names.
IF_FAILURES = {
    "silero_vad": "If_0_else_branch__Inline_0__/decoder/If",
    "silero_vad_16k_op15": "/model/decoder/If",
    "silero_vad_half": "/decoder/If",
}


@pytest.mark.parametrize("name", sorted(IF_FAILURES))
def test_openvino_failing_on_a_dynamic_rank_if_is_a_compile_error_naming_the_node(zoo_model, name):
    report = count_partitions(zoo_model(name), "openvino")
    assert report.is_real and not report.compiled
    assert (report.partitions, report.nodes_on_ep) == (0, 0)
    node = IF_FAILURES[name]
    assert report.compile_error == (
        f"OpenVINOExecutionProvider failed to compile the model at node '{node}' (If, output '{node}_output_0'): "
        "CPU plug-in doesn't support Parameter operation with dynamic rank (onnxruntime#23757: the OpenVINO EP "
        "cannot compile If nodes whose outputs have a dynamic rank)"
    )


def _cli(*args: str) -> subprocess.CompletedProcess:
    code = "import sys; from onnxfit.cli import main; sys.argv[0] = 'onnxfit'; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)


def test_cli_exits_1_with_one_line_and_no_ort_log(zoo_model):
    result = _cli("partitions", str(zoo_model("silero_vad_half")), "--target", "openvino")
    assert result.returncode == 1
    assert result.stderr == ""  # ORT's colored multi-line log and the C++ dump stay off the terminal
    lines = result.stdout.splitlines()
    assert lines[-1].startswith("compile failed: OpenVINOExecutionProvider failed to compile the model at node "
                                "'/decoder/If'")
    assert len(lines) == 2


def test_cli_json_carries_the_compile_error_and_exits_1(zoo_model):
    result = _cli("partitions", str(zoo_model("silero_vad_16k_op15")), "--target", "openvino", "--json")
    assert result.returncode == 1 and result.stderr == ""
    document = json.loads(result.stdout)
    assert document["partitions"] == 0 and document["source"] == "real"
    assert "at node '/model/decoder/If' (If" in document["compile_error"]


def test_verify_partitions_check_fails_on_the_compile_error(zoo_model):
    path = zoo_model("silero_vad_half")
    check = partitions_check("openvino")(SimpleNamespace(source=path, reference_source=None))
    assert not check.ok
    assert check.summary.startswith("OpenVINOExecutionProvider failed to compile the model at node '/decoder/If'")
    assert check.details["model"]["compile_error"] == check.summary


def test_a_model_that_compiles_has_no_compile_error(zoo_model):
    report = count_partitions(zoo_model("silero_vad_op18_ifless"), "openvino")
    assert report.compiled and report.compile_error is None and report.partitions == 1


def test_real_and_estimate_name_a_nameless_cpu_node_alike():
    model = unsupported_in_chain(cut_name="")
    real = count_partitions(model, "openvino")
    assert real.is_real
    assert [(u.name, u.op) for u in real.unsupported] == [("Det -> d", "Det")]


@pytest.mark.parametrize("name", sorted(IF_FAILURES))
def test_estimate_predicts_the_compile_failure_at_the_node_the_real_ep_names(zoo_model, name):
    real = count_partitions(zoo_model(name), "openvino")
    estimate = estimate_partitions(zoo_model(name), "openvino", installed_ort_version())
    assert not real.compiled and not estimate.compiled
    assert (estimate.partitions, estimate.nodes_on_ep) == (real.partitions, real.nodes_on_ep) == (0, 0)
    where = real.compile_error.split(": ")[0].replace("failed to compile", "would fail to compile")
    assert estimate.compile_error.startswith(where + ": the output has a dynamic rank")


@pytest.mark.parametrize("name", ["silero_vad_op18_ifless", "silero_vad_openvino_16k", "silero_vad_16k_sequence"])
def test_estimate_predicts_no_failure_where_the_real_ep_compiles(zoo_model, name):
    real = count_partitions(zoo_model(name), "openvino")
    estimate = estimate_partitions(zoo_model(name), "openvino", installed_ort_version())
    assert real.compiled and estimate.compiled
    assert estimate.partitions == real.partitions


@pytest.mark.parametrize("rank_known", [False, True])
def test_estimate_and_real_ep_agree_on_a_built_if(rank_known):
    from tests.targets.test_openvino_compile_prediction import _if_model

    real = count_partitions(_if_model(rank_known), "openvino")
    estimate = estimate_partitions(_if_model(rank_known), "openvino", installed_ort_version())
    assert real.is_real and real.compiled == estimate.compiled == rank_known
    assert real.partitions == estimate.partitions


@pytest.mark.parametrize("axis", [0, 1])
def test_if_whose_condition_static_dims_fix_compiles_as_estimated(axis):
    from tests.targets.test_openvino_compile_prediction import _if_on_a_dim

    model = _if_on_a_dim(axis)
    real = count_partitions(model, "openvino")
    assert real.is_real and real.compiled == (axis == 0)
    assert estimate_partitions(model, "openvino", installed_ort_version()).compiled == real.compiled
