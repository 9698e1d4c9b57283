"""`onnxfit verify` through typer's CliRunner: exit codes 0/1/2, --json, --report, one-line errors."""

from __future__ import annotations

import json
import re

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from onnxfit.cli import app
from tests.models import W, conv_net, naive_rows_net


@pytest.fixture
def cli():
    def invoke(*args):
        return CliRunner().invoke(app, ["verify", *map(str, args)])

    return invoke


@pytest.fixture
def saved(tmp_path):
    def save(model, name):
        path = tmp_path / name
        onnx.save(model, path)
        return path

    return save


def test_clean_model_exits_0_and_prints_each_check(cli, saved):
    result = cli(saved(conv_net(), "clean.onnx"))
    assert result.exit_code == 0, result.output
    assert "PASS parity" in result.stdout and "PASS contamination: frames independent at batch 4" in result.stdout


def test_json_prints_one_document_with_ok_model_and_checks(cli, saved):
    path = saved(conv_net(), "clean.onnx")
    result = cli(path, "--json")
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["ok"] is True and document["model"] == str(path)
    assert [c["name"] for c in document["checks"]] == ["parity", "contamination"]
    for check in document["checks"]:
        assert set(check) == {"name", "ok", "ran", "summary", "details"} and check["ok"] is check["ran"] is True
    output = document["checks"][0]["details"]["comparisons"][0]["outputs"][0]
    assert {"max_abs", "max_rel", "cosine", "mismatches", "atol", "rtol"} <= set(output)


def test_perturbed_weights_exit_1(cli, saved):
    result = cli(saved(conv_net(weight=W + 1e-2), "perturbed.onnx"), "--reference", saved(conv_net(), "ref.onnx"), "--json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["ok"] is False and document["checks"][0]["ok"] is False


def test_naive_batch_reexport_exits_1_and_names_the_reshape(cli, saved):
    result = cli(saved(naive_rows_net(), "naive.onnx"))
    assert result.exit_code == 1
    text = " ".join(result.stdout.split())  # rich wraps long lines
    assert "FAIL contamination: batch axis lost in output 'y'" in text and "Reshape 'flatten_rows'" in text


def test_looser_tolerance_makes_the_perturbed_model_pass(cli, saved):
    args = (saved(conv_net(weight=W + 1e-2), "p.onnx"), "--reference", saved(conv_net(), "r.onnx"))
    assert cli(*args, "--atol", "0.5").exit_code == 0


def _one_line_error(result, pattern):
    assert result.exit_code == 2
    assert "Traceback" not in result.output and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(pattern, lines[0]), result.stderr


def test_missing_model_file_exits_2_with_one_line(cli, tmp_path):
    _one_line_error(cli(tmp_path / "nope.onnx"), r"^error: .*nope.onnx: no such file$")


def test_bad_npz_names_exit_2_with_one_line(cli, saved, tmp_path):
    npz = tmp_path / "in.npz"
    np.savez(npz, image=np.zeros((1, 3, 16, 16), np.float32))
    _one_line_error(cli(saved(conv_net(), "m.onnx"), "--inputs", npz), r"'image' is not a model input \(inputs: x\)")


def test_unknown_runtime_exits_2_listing_available(cli, saved):
    result = cli(saved(conv_net(), "m.onnx"), "--runtime", "bogus")
    _one_line_error(result, r"unknown runtime 'bogus' \(available: ort-cpu-noopt, ort-cpu")


def test_bad_input_shape_exits_2(cli, saved):
    _one_line_error(cli(saved(conv_net(), "m.onnx"), "--input-shape", "x=1x3x16"), r"input 'x' has rank 4")


def test_report_writes_three_files_without_network_urls(cli, saved, tmp_path):
    out = tmp_path / "report"
    result = cli(saved(conv_net(), "m.onnx"), "--report", out, "--runtime", "ort-cpu", "--batch", "2")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.json", "report.md"]
    assert not re.search(r"https?://", (out / "report.html").read_text())
    document = json.loads((out / "report.json").read_text())
    assert document["runtimes"] == ["ort-cpu-noopt", "ort-cpu"]
    assert document["checks"][0]["details"]["inputs"]["x"]["shape"] == [2, 3, 16, 16]
    assert document["checks"][1]["details"]["batch"] == 2


def test_bad_input_leaves_no_report_behind(cli, tmp_path):
    out = tmp_path / "report"
    assert cli(tmp_path / "missing.onnx", "--report", out).exit_code == 2
    assert not out.exists()
