"""Reports: JSON/Markdown/HTML from the same data; the HTML is self-contained."""

from __future__ import annotations

import json
import re
from collections import Counter
from html.parser import HTMLParser

import pytest

from onnxfit.errors import CheckFailed
from onnxfit.verification import Check, VerifyReport, verify, write_report
from onnxfit.verification.report import to_html, to_markdown
from tests.models import conv_net, softmax_mixing_net


class Page(HTMLParser):
    """A parsed report: tag counts, attribute values, headings, tables (rows of cell text) under
    the heading they follow, the style sheet and the visible text, entities decoded."""

    def __init__(self, markup: str):
        super().__init__(convert_charrefs=True)
        self.tags: Counter[str] = Counter()
        self.attribute_values: list[str] = []
        self.headings: list[str] = []
        self.tables: list[tuple[str, list[list[str]]]] = []
        self.style = ""
        self._text: list[str] = []
        self._open: list[str] = []
        self._heading: list[str] | None = None
        self._cell: list[str] | None = None
        self.feed(markup)
        self.close()

    @property
    def text(self) -> str:
        return " ".join("".join(self._text).split())

    def tables_under(self, heading: str) -> list[list[list[str]]]:
        """The tables between ``heading`` and the next heading, each as rows of cell text."""
        return [rows for under, rows in self.tables if under == heading]

    def handle_starttag(self, tag, attrs):
        self.tags[tag] += 1
        self.attribute_values += [value for _, value in attrs if value]
        if tag in ("meta", "br"):
            return  # void elements: no end tag follows
        self._open.append(tag)
        if tag in ("h1", "h2", "h3"):
            self._heading = []
        elif tag == "table":
            self.tables.append((self.headings[-1] if self.headings else "", []))
        elif tag == "tr":
            self.tables[-1][1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        assert self._open and self._open[-1] == tag, f"</{tag}> closes {self._open[-1:]}"
        self._open.pop()
        if tag in ("h1", "h2", "h3"):
            self.headings.append("".join(self._heading).strip())
            self._heading = None
        elif tag in ("td", "th"):
            self.tables[-1][1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._open and self._open[-1] == "style":
            self.style += data
            return
        if "title" not in self._open:
            self._text.append(data)
        for parts in (self._heading, self._cell):
            if parts is not None:
                parts.append(data)


def test_write_report_writes_json_markdown_and_self_contained_html(tmp_path):
    report = verify(softmax_mixing_net())
    paths = write_report(report, tmp_path / "out")
    assert sorted(p.name for p in paths) == ["report.html", "report.json", "report.md"]
    document = json.loads((tmp_path / "out" / "report.json").read_text())
    assert document["ok"] is False and [c["name"] for c in document["checks"]] == ["parity", "contamination"]
    page = Page((tmp_path / "out" / "report.html").read_text())
    # Self-contained: one inline style sheet, no scripts, no linked or fetched resources.
    assert (page.tags["style"], page.tags["script"], page.tags["link"], page.tags["img"]) == (1, 0, 0, 0)
    assert not [v for v in page.attribute_values if re.search(r"https?://|^//", v)] and "url(" not in page.style
    assert page.tags["svg"] >= 3  # an error histogram, the influence heatmap, the frame-alone heatmap
    assert page.headings[0] == "onnxfit verify: FAIL" and "contamination: FAIL" in page.headings
    flow, outputs = page.tables_under("batch flow (static analysis)")
    assert flow[0] == ["node", "op", "kind", "what"]
    assert ["softmax", "Softmax", "mixes"] == flow[-1][:3]
    assert "takes a softmax over the batch axis 0" in flow[-1][3]
    assert outputs == [["output", "batch"], ["y", "batch on axis 0"]]
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert markdown.startswith("# onnxfit verify: FAIL")
    assert "| output | shape | dtype | max abs |" in markdown and "| softmax | Softmax | mixes |" in markdown


def test_html_shows_a_row_per_output_with_its_errors():
    page = Page(to_html(verify(conv_net(), conv_net())))
    heading = "model vs reference model on ort-cpu-noopt: PASS"
    assert heading in page.headings
    ((header, *rows),) = page.tables_under(heading)
    assert header[:4] == ["output", "shape", "dtype", "max abs"] and header[-1] == "status"
    assert [row[:3] + row[-1:] for row in rows] == [["y", "1x2", "float32", "ok"]]


def test_a_check_this_module_does_not_know_renders_its_details():
    report = VerifyReport("m.onnx", runtimes=["ort-cpu"], checks=[
        Check("partitions", False, "3 partitions on CoreML", {"partitions": 3, "notes": ["Pad(reflect) falls back to CPU"]}),
    ])
    page = Page(to_html(report))
    assert "partitions: FAIL" in page.headings
    assert '"partitions": 3' in page.text and "Pad(reflect) falls back to CPU" in page.text
    assert '"partitions": 3' in to_markdown(report)
    assert report.to_dict()["checks"][0] == {
        "name": "partitions", "ok": False, "ran": True, "summary": "3 partitions on CoreML",
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
