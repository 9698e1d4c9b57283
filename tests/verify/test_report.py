"""Reports: JSON/Markdown/HTML from the same data; the HTML is self-contained."""

from __future__ import annotations

import json
import re

import pytest

from onnxfit.errors import CheckFailed
from onnxfit.verify import Check, VerifyReport, verify, write_report
from onnxfit.verify.report import to_html, to_markdown
from tests.verify.test_contamination import conv_net, softmax_mixing_net


def test_write_report_writes_json_markdown_and_self_contained_html(tmp_path):
    report = verify(softmax_mixing_net())
    paths = write_report(report, tmp_path / "out")
    assert sorted(p.name for p in paths) == ["report.html", "report.json", "report.md"]
    document = json.loads((tmp_path / "out" / "report.json").read_text())
    assert document["ok"] is False and [c["name"] for c in document["checks"]] == ["parity", "contamination"]
    html = (tmp_path / "out" / "report.html").read_text()
    assert not re.search(r"https?://", html)
    assert "<script" not in html and "<link" not in html and "<style>" in html
    assert html.count("<svg") >= 3  # an error histogram, the influence heatmap, the frame-alone heatmap
    assert "Softmax" in html and "takes a softmax over the batch axis 0" in html
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert markdown.startswith("# onnxfit verify: FAIL")
    assert "| output | shape | dtype | max abs |" in markdown and "| softmax | Softmax | mixes |" in markdown


def test_html_shows_a_row_per_output_with_its_errors():
    html = to_html(verify(conv_net(), conv_net()))
    assert "<td>y</td><td>1x2</td><td>float32</td>" in html
    assert "model vs reference model on ort-cpu-noopt" in html


def test_a_check_this_module_does_not_know_renders_its_details():
    report = VerifyReport("m.onnx", runtimes=["ort-cpu"], checks=[
        Check("partitions", False, "3 partitions on CoreML", {"partitions": 3, "notes": ["Pad(reflect) falls back to CPU"]}),
    ])
    assert "&quot;partitions&quot;: 3" in to_html(report) and "Pad(reflect) falls back" in to_html(report)
    assert '"partitions": 3' in to_markdown(report)
    assert report.to_dict()["checks"][0] == {
        "name": "partitions", "ok": False, "summary": "3 partitions on CoreML",
        "details": {"partitions": 3, "notes": ["Pad(reflect) falls back to CPU"]},
    }


def test_raise_if_failed_turns_a_failed_check_into_exit_code_1():
    report = VerifyReport("m.onnx", checks=[Check("parity", True, "fine"), Check("contamination", False, "mixed")])
    with pytest.raises(CheckFailed, match="m.onnx: contamination check failed: mixed") as info:
        report.raise_if_failed()
    assert info.value.exit_code == 1
    VerifyReport("m.onnx", checks=[Check("parity", True, "fine")]).raise_if_failed()


def test_report_directory_that_is_a_file_is_a_clear_error(tmp_path):
    from onnxfit.errors import OnnxfitError

    target = tmp_path / "taken"
    target.write_text("x")
    with pytest.raises(OnnxfitError, match="--report wants a directory"):
        write_report(VerifyReport("m.onnx"), target)
