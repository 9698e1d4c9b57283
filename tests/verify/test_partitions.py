"""count_partitions API, the placement-log parser, and `onnxfit partitions` (JSON, exit codes)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from onnxfit.cli import app
from onnxfit.errors import OnnxfitError
from onnxfit.targets.presets import get_target
from onnxfit.targets.partitions import count_partitions, parse_placement_log
from tests.targets import corpus

runner = CliRunner()


def test_estimate_lists_every_unsupported_node_with_its_reason():
    report = count_partitions(corpus.reflect_pad("reflect"), "coreml", ort_version="1.25")
    assert report.source == "estimated" and report.profile == "CoreML MLProgram"
    assert (report.partitions, report.nodes_on_ep, report.total_nodes) == (2, 3, 4)
    assert [(u.name, u.op) for u in report.unsupported] == [("pad1", "Pad")]
    assert "reflect" in report.unsupported[0].reason


def test_ort_version_decides_the_reflect_pad_figure():
    model = corpus.reflect_pad("reflect")
    assert count_partitions(model, "coreml", ort_version="1.25").partitions == 2
    assert count_partitions(model, "coreml", ort_version="1.26").partitions == 1
    assert count_partitions(model, "coreml-nn", ort_version="1.26").partitions == 2


def test_path_and_model_give_the_same_report(tmp_model_path):
    model = corpus.unsupported_in_chain()
    from_path = count_partitions(tmp_model_path(model), "nnapi").to_dict()
    from_model = count_partitions(model, "nnapi").to_dict()
    from_path.pop("model"), from_model.pop("model")
    assert from_path == from_model
    assert from_model["partitions"] == 2 and from_model["unsupported"][0]["name"] == "cut"


def test_to_dict_is_json_serialisable():
    document = json.loads(json.dumps(count_partitions(corpus.conv_chain(), "coreml").to_dict()))
    assert document["partitions"] == 1 and document["source"] == "estimated" and document["unsupported"] == []


def test_cpu_target_is_real_and_counts_the_cpu_ep_like_any_kernel_ep():
    report = count_partitions(corpus.conv_chain(), "cpu")
    assert report.is_real and report.ep == "CPUExecutionProvider"
    assert (report.partitions, report.nodes_on_ep, report.total_nodes, report.partition_sizes) == (1, 4, 4, [4])
    assert report.unsupported == []


def test_forced_cpu_ep_reads_the_real_session_log():
    report = count_partitions(corpus.conv_chain(), "coreml", ep="CPUExecutionProvider")
    assert report.source == "real" and report.ep == "CPUExecutionProvider"


def test_unavailable_ep_is_a_user_error():
    with pytest.raises(OnnxfitError, match="not available here"):
        count_partitions(corpus.conv_chain(), "coreml", ep="NoSuchExecutionProvider")


def test_every_target_but_cpu_has_an_estimate_and_cpu_is_real():
    import onnxruntime as ort

    from onnxfit.targets.presets import target_names

    for target in target_names():
        report = count_partitions(corpus.conv_chain(), target)
        real = target == "cpu" or get_target(target).ep in ort.get_available_providers()
        assert report.is_real == real and report.partitions == 1, target


def test_missing_model_file_is_a_user_error(tmp_path):
    with pytest.raises(OnnxfitError, match="no such file"):
        count_partitions(tmp_path / "missing.onnx", "coreml")


LOG = """\
2026-11-23 07:32:43.5 [V:onnxruntime:, session_state.cc:1313 VerifyEachNodeIsAssignedToAnEp]  Node(s) placed on [OpenVINOExecutionProvider]. Number of nodes: 2
2026-11-23 07:32:43.5 [V:onnxruntime:, session_state.cc:1315 VerifyEachNodeIsAssignedToAnEp]   OpenVINO-EP-subgraph_1 (OpenVINOExecutionProvider_OpenVINO-EP-subgraph_1_0)
2026-11-23 07:32:43.5 [V:onnxruntime:, session_state.cc:1315 VerifyEachNodeIsAssignedToAnEp]   OpenVINO-EP-subgraph_2 (OpenVINOExecutionProvider_OpenVINO-EP-subgraph_2_1)
2026-11-23 07:32:43.5 [V:onnxruntime:, session_state.cc:1313 VerifyEachNodeIsAssignedToAnEp]  Node(s) placed on [CPUExecutionProvider]. Number of nodes: 1
2026-11-23 07:32:43.5 [V:onnxruntime:, session_state.cc:1315 VerifyEachNodeIsAssignedToAnEp]   Det (cut)
2026-11-23 07:32:43.5 [I:onnxruntime:, allocation_planner.cc:2658 CreateGraphPartitioner] Use DeviceBasedPartition
"""


def test_placement_log_parser_reads_eps_and_node_names():
    placement = parse_placement_log(LOG)
    assert [name for _, name in placement["OpenVINOExecutionProvider"]] == [
        "OpenVINOExecutionProvider_OpenVINO-EP-subgraph_1_0", "OpenVINOExecutionProvider_OpenVINO-EP-subgraph_2_1"]
    assert placement["CPUExecutionProvider"] == [("Det", "cut")]


def test_placement_log_parser_reads_all_nodes_line():
    line = "[V:onnxruntime:, session_state.cc:1300 VerifyEachNodeIsAssignedToAnEp] All nodes placed on [X]. Number of nodes: 1"
    assert parse_placement_log(line) == {"X": [("", "")]}


def test_placement_log_parser_fails_loudly_on_a_changed_format():
    with pytest.raises(OnnxfitError, match="no node placement lines"):
        parse_placement_log("nothing here\n")
    truncated = "\n".join(LOG.splitlines()[:2])
    with pytest.raises(OnnxfitError, match="lists 1 nodes"):
        parse_placement_log(truncated)


# --------------------------------------------------------------------------------------- CLI


def test_cli_json_reports_partitions(tmp_model_path):
    path = tmp_model_path(corpus.reflect_pad("reflect"))
    result = runner.invoke(app, ["partitions", str(path), "--target", "coreml", "--ort-version", "1.25", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["partitions"] == 2 and document["source"] == "estimated"
    assert document["unsupported"][0]["op"] == "Pad"


def test_cli_table_says_estimated_and_lists_reasons(tmp_model_path):
    path = tmp_model_path(corpus.unsupported_in_chain())
    result = runner.invoke(app, ["partitions", str(path), "--target", "coreml-nn"])
    assert result.exit_code == 0, result.output
    assert "estimated" in result.stdout and "partitions: 2" in result.stdout and "Det" in result.stdout


def test_cli_unknown_target_exits_2_listing_valid_targets(tmp_model_path):
    path = tmp_model_path(corpus.conv_chain())
    result = runner.invoke(app, ["partitions", str(path), "--target", "bogus"])
    assert result.exit_code == 2
    assert "unknown target 'bogus'" in result.output and "coreml, coreml-nn, nnapi, openvino" in result.output


def test_cli_bad_ort_version_and_missing_file_exit_2(tmp_model_path, tmp_path):
    path = tmp_model_path(corpus.conv_chain())
    assert runner.invoke(app, ["partitions", str(path), "--ort-version", "new"]).exit_code == 2
    assert runner.invoke(app, ["partitions", str(tmp_path / "none.onnx")]).exit_code == 2


def test_cli_not_an_onnx_file_exits_2(tmp_path):
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"not a model")
    result = runner.invoke(app, ["partitions", str(path)])
    assert result.exit_code == 2 and "junk.onnx: not a valid ONNX model" in result.output
