"""CLI contract: exit codes (0 ok, 1 check failed, 2 bad input), one-line errors, no partial files."""

import json
import subprocess
import sys

import onnx
import pytest
from onnx import TensorProto, helper

from tests.conftest import make_model, tensor_info
from tests.models import scalar_gather_model


def onnxfit(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "onnxfit", *map(str, args)], capture_output=True, text=True, cwd=cwd)


@pytest.fixture
def gather_model(tmp_path):
    path = tmp_path / "gather.onnx"
    onnx.save(scalar_gather_model(batch=2), path)
    return path


def _assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result.stderr + result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    text = " ".join(result.stderr.split())
    for fragment in fragments:
        assert fragment in text, text


def test_optimize_writes_model_and_prints_a_short_summary(gather_model, tmp_path):
    out = tmp_path / "out.onnx"
    result = onnxfit("optimize", gather_model, "-o", out, "--target", "coreml", "--ort-version", "1.25",
                     "--passes", "scalar-gather,flatten-to-reshape")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines() == [
        f"{gather_model} -> {out}  (target coreml): 1 -> 2 nodes",
        "  changed: scalar-gather (1)",
        "partitions on coreml (estimated, onnxruntime 1.25): 0 -> 1  "
        "(nodes on CoreMLExecutionProvider: 0/1 -> 2/2)",
    ]
    assert any(n.op_type == "Squeeze" for n in onnx.load(out).graph.node)


def test_optimize_verbose_prints_each_pass_and_the_op_counts_as_tables(gather_model, tmp_path):
    result = onnxfit("-v", "optimize", gather_model, "-o", tmp_path / "out.onnx", "--target", "coreml",
                     "--passes", "scalar-gather,flatten-to-reshape", "--no-partitions")
    assert result.returncode == 0, result.stderr
    rows = {cells[0]: cells[1:] for cells in (
        [c.strip() for c in line.strip("│").split("│")] for line in result.stdout.splitlines() if line.startswith("│"))}
    assert rows["scalar-gather"] == ["1", "1", "0", "0", "-"]
    assert rows["flatten-to-reshape"] == ["0", "0", "0", "0", "nothing to do"]
    assert rows["Squeeze"] == ["0", "1"] and rows["all nodes"] == ["1", "2"]


def test_optimize_json_is_one_document(gather_model, tmp_path):
    result = onnxfit("optimize", gather_model, "-o", tmp_path / "o.onnx", "--passes", "scalar-gather", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    (model,) = doc["models"]
    assert doc["ok"] and model["passes"][0]["name"] == "scalar-gather" and model["passes"][0]["rewritten"] == 1
    assert model["ops_after"]["Squeeze"] == 1


@pytest.mark.parametrize(
    "name, content, fragments",
    [
        ("missing.onnx", None, ["missing.onnx", "no such file"]),
        ("empty.onnx", b"", ["empty.onnx", "empty file"]),
        ("junk.onnx", b"not a model at all" * 9, ["junk.onnx", "not"]),
    ],
)
def test_optimize_bad_input_exit_2_one_line_no_output(tmp_path, name, content, fragments):
    source = tmp_path / name
    if content is not None:
        source.write_bytes(content)
    out = tmp_path / "out.onnx"
    result = onnxfit("optimize", source, "-o", out)
    _assert_one_line_error(result, *fragments)
    assert not out.exists()


def _truncated(path):
    data = path.read_bytes()
    return data[: len(data) // 2]


def _cyclic():
    nodes = [helper.make_node("Add", ["x", "b"], ["a"], name="first"), helper.make_node("Relu", ["a"], ["b"], name="second")]
    return make_model(nodes, [tensor_info("x", [1])], [tensor_info("a", [1])]).SerializeToString()


def _future_opset():
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], [tensor_info("x", [1])], [tensor_info("y", [1])])
    model.opset_import[0].version = 500
    return model.SerializeToString()


def _escaping_external_data():
    weights = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4], data_location=TensorProto.EXTERNAL)
    for key, value in (("location", "../../etc/passwd"), ("offset", "0"), ("length", "16")):
        weights.external_data.add(key=key, value=value)
    return make_model([helper.make_node("Add", ["x", "w"], ["y"])], [tensor_info("x", [4])], [tensor_info("y", [4])],
                      [weights]).SerializeToString()


@pytest.mark.parametrize(
    "name, make_content, fragments",
    [
        ("cut.onnx", "truncated", ["cut.onnx", "not"]),
        ("cycle.onnx", _cyclic, ["cycle.onnx", "cycle"]),
        ("future.onnx", _future_opset, ["future.onnx", "opset 500"]),
        ("escape.onnx", _escaping_external_data, ["escape.onnx", "outside the model directory"]),
    ],
)
@pytest.mark.parametrize("verb", ["optimize", "inspect", "verify", "partitions"])
def test_every_verb_refuses_bad_models_with_exit_2(tmp_path, gather_model, name, make_content, fragments, verb):
    source = tmp_path / name
    source.write_bytes(_truncated(gather_model) if make_content == "truncated" else make_content())
    out = tmp_path / "out.onnx"
    args = [verb, source] + (["-o", out] if verb == "optimize" else [])
    _assert_one_line_error(onnxfit(*args), *fragments)
    assert not out.exists()


def test_optimize_missing_output_directory(gather_model, tmp_path):
    out = tmp_path / "no" / "such" / "dir.onnx"
    _assert_one_line_error(onnxfit("optimize", gather_model, "-o", out, "--passes", "scalar-gather"), "does not exist")
    assert not (tmp_path / "no").exists()


def test_optimize_unknown_pass_and_target(gather_model, tmp_path):
    _assert_one_line_error(onnxfit("optimize", gather_model, "-o", tmp_path / "o.onnx", "--passes", "bogus"),
                           "unknown pass 'bogus'", "reflect-pad")
    _assert_one_line_error(onnxfit("optimize", gather_model, "-o", tmp_path / "o.onnx", "--target", "gpu9000"),
                           "unknown target 'gpu9000'", "coreml")
    assert not (tmp_path / "o.onnx").exists()


def test_optimize_directory_of_models_in_parallel(gather_model, tmp_path):
    second = tmp_path / "second.onnx"
    second.write_bytes(gather_model.read_bytes())
    out_dir = tmp_path / "out"
    result = onnxfit("optimize", tmp_path, "-o", out_dir, "--passes", "scalar-gather", "--jobs", "2", "--json")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out_dir.iterdir()) == ["gather.onnx", "second.onnx"]
    assert len(json.loads(result.stdout)["models"]) == 2


def test_inspect_reports_findings_by_node_name(gather_model):
    result = onnxfit("inspect", gather_model, "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["opset"] == 17 and doc["inputs"][0]["shape"] == [2, 3]
    assert doc["findings"]["scalar_gathers"] == [{"node": "pick", "pass": "scalar-gather"}]
    table = onnxfit("inspect", gather_model)
    assert "pick" in table.stdout and "scalar-gather" in table.stdout


def test_inspect_missing_file_exit_2(tmp_path):
    _assert_one_line_error(onnxfit("inspect", tmp_path / "x.onnx"), "x.onnx", "no such file")


def test_python_dash_m_and_usage_error_exit_2():
    result = onnxfit("optimize")
    assert result.returncode == 2


def test_partition_report_is_automatic_below_the_size_limit_and_forced_by_flag(gather_model, monkeypatch):
    from dataclasses import replace

    from onnxfit.app import job as job_module

    job = job_module.OptimizeJob.create(gather_model, target="coreml", partitions=None)
    assert job.counts_partitions()
    monkeypatch.setattr(job_module, "AUTO_PARTITIONS_MAX_BYTES", 10)
    assert not job.counts_partitions()
    assert replace(job, partitions=True).counts_partitions()
    assert not replace(job, partitions=False).counts_partitions()


def test_optimize_prints_partitions_before_and_after(gather_model, tmp_path):
    result = onnxfit("optimize", gather_model, "-o", tmp_path / "o.onnx", "--target", "coreml", "--ort-version", "1.25",
                     "--json")
    doc = json.loads(result.stdout)["models"][0]["partitions"]
    assert doc["before"]["source"] == "estimated" and doc["before"]["ort_version"] == "1.25"
    assert doc["before"]["partitions"] == 0 and doc["before"]["unsupported"][0]["name"] == "pick"
    assert doc["after"]["partitions"] == 1 and doc["after"]["unsupported"] == []


def test_optimize_refuses_to_overwrite_its_input_without_the_flag(gather_model):
    before = gather_model.read_bytes()
    result = onnxfit("optimize", gather_model, "-o", gather_model, "--passes", "scalar-gather")
    _assert_one_line_error(result, "would overwrite the input model", "--overwrite")
    assert gather_model.read_bytes() == before
    result = onnxfit("optimize", gather_model, "-o", gather_model, "--passes", "scalar-gather", "--overwrite")
    assert result.returncode == 0, result.stderr
    assert any(n.op_type == "Squeeze" for n in onnx.load(gather_model).graph.node)
