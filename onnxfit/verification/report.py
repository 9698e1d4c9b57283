"""The verify report as data (``Check``, ``VerifyReport``) and its renderings.

``write_report(report, directory)`` writes report.json, report.md and report.html. The HTML is
self-contained: inline CSS, inline SVG plots drawn here (error histograms per output, per-frame
difference heatmaps for the contamination test), no scripts, no network resources.

A check this module does not know (e.g. ``partitions``) renders as its summary plus its details
as JSON; a richer section can be added to ``SECTIONS``.
"""

from __future__ import annotations

import html
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from onnxfit.errors import CheckFailed, OnnxfitError
from onnxfit.files import write_atomic
from onnxfit.text import json_default, markdown_table
from onnxfit.verification.parity import ERROR_DECADES

__all__ = ["Check", "VerifyReport", "to_markdown", "to_html", "write_report", "SECTIONS"]


@dataclass
class Check:
    """One verification: ``name`` (parity, contamination, partitions, ...), pass/fail, a one-line
    ``summary`` for the terminal, and ``details`` (JSON-serializable) for reports."""

    name: str
    ok: bool
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    ran: bool = True  # False: not run (an option the user did not give); ok stays True, the summary says why

    @property
    def verdict(self) -> str:
        return "not run" if not self.ran else ("pass" if self.ok else "FAIL")

    def to_dict(self) -> dict:
        return {"name": self.name, "ok": self.ok, "ran": self.ran, "summary": self.summary, "details": self.details}


@dataclass
class VerifyReport:
    model: str
    reference: str | None = None
    runtimes: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def raise_if_failed(self) -> None:
        """For callers such as ``optimize --verify``: turn a failed check into exit code 1."""
        if not self.ok:
            first = self.failures[0]
            raise CheckFailed(f"{self.model}: {first.name} check failed: {first.summary}")

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "model": self.model,
            "reference": self.reference,
            "runtimes": self.runtimes,
            "checks": [c.to_dict() for c in self.checks],
        }


# ---------------------------------------------------------------------------------- writing


def write_report(report: VerifyReport, directory: str | os.PathLike) -> list[Path]:
    """Write report.json, report.md, report.html into ``directory`` (created if missing)."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise OnnxfitError(f"{directory}: --report wants a directory, this is a file")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OnnxfitError(f"{directory}: cannot create the report directory ({exc.strerror or exc})") from None
    documents = {
        "report.json": json.dumps(report.to_dict(), indent=2, default=json_default) + "\n",
        "report.md": to_markdown(report),
        "report.html": to_html(report),
    }
    return [write_atomic(directory / name, text) for name, text in documents.items()]


# --------------------------------------------------------------------------------- markdown


def to_markdown(report: VerifyReport) -> str:
    lines = [
        f"# onnxfit verify: {'PASS' if report.ok else 'FAIL'}",
        "",
        f"- model: `{report.model}`",
    ]
    if report.reference:
        lines.append(f"- reference: `{report.reference}`")
    lines.append(f"- runtimes: {', '.join(report.runtimes)}")
    for check in report.checks:
        lines += ["", f"## {check.name}: {check.verdict}", "", check.summary, ""]
        markdown, _ = SECTIONS.get(check.name, (_generic_md, _generic_html))
        lines += markdown(check)
    return "\n".join(lines).rstrip() + "\n"


def _notes_md(details: dict) -> list[str]:
    return [f"- note: {n}" for n in details.get("notes", [])]


def _parity_md(check: Check) -> list[str]:
    lines = _notes_md(check.details)
    for comparison in check.details.get("comparisons", []):
        lines += ["", f"### {comparison['label']}: {_status(comparison)}", ""]
        if comparison.get("error") or comparison.get("skipped"):
            lines.append(comparison.get("error") or comparison.get("skipped"))
            continue
        lines += markdown_table(
            ["output", "shape", "dtype", "max abs", "max rel", "cosine", "mismatches", "atol / rtol", "ok"],
            [[o["name"], _shape(o["shape"]), o["dtype"], _num(o["max_abs"]), _num(o["max_rel"]), _cos(o["cosine"]),
              _mismatches(o), f"{o['atol']:g} / {o['rtol']:g}", "yes" if o["ok"] else "NO"]
             for o in comparison["outputs"]])
        lines += [f"- {o['name']}: {o['note']}" for o in comparison["outputs"] if o.get("note")]
    return lines


def _contamination_md(check: Check) -> list[str]:
    details = check.details
    lines = _notes_md(details)
    lines += [f"- failure: {f}" for f in details.get("failures", [])]
    static = details.get("static", {})
    if static.get("findings"):
        lines += ["", "### batch flow (static)", ""]
        lines += markdown_table(["node", "op", "kind", "what"],
                                [[f["node"], f["op"], f["kind"], f["message"]] for f in static["findings"]])
    if static.get("outputs"):
        lines += [""] + markdown_table(["output", "batch"], static["outputs"].items())
    frames = details.get("frames") or {}
    if frames.get("influence"):
        n = frames["batch"]
        lines += ["", f"### frame influence at batch {n} (row: changed frame, column: max abs change per frame)", ""]
        lines += markdown_table(["changed", *(f"frame {i}" for i in range(n))],
                                [[j, *(_num(v) for v in row)] for j, row in enumerate(frames["influence"])])
    return lines


def _generic_md(check: Check) -> list[str]:
    return ["```json", json.dumps(check.details, indent=2, default=json_default), "```"]


# ------------------------------------------------------------------------------------- html


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;
color:#1b1b1b;padding:0 1em}
h1 .pass,h2 .pass,h3 .pass{color:#1a7f37}h1 .fail,h2 .fail,h3 .fail{color:#cf222e}h2 .skip{color:#9a6700}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #d0d7de;padding:.25em .6em;text-align:right}
th{background:#f6f8fa}td:first-child,th:first-child{text-align:left}tr.bad td{background:#ffebe9}
code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}pre{background:#f6f8fa;padding:.8em;overflow:auto}
.plots{display:flex;flex-wrap:wrap;gap:1em}.plot{border:1px solid #d0d7de;padding:.4em}.plot p{margin:0 0 .3em;font-size:12px}
ul.notes li{color:#57606a}svg text{font:10px system-ui,sans-serif}
"""


def to_html(report: VerifyReport) -> str:
    e = html.escape
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>onnxfit verify: {e(report.model)}</title><style>{_CSS}</style></head><body>",
        f"<h1>onnxfit verify: {_badge(report.ok)}</h1>",
        f"<p>model: <code>{e(report.model)}</code>",
    ]
    if report.reference:
        parts.append(f"<br>reference: <code>{e(report.reference)}</code>")
    parts.append(f"<br>runtimes: {e(', '.join(report.runtimes))}</p>")
    for check in report.checks:
        parts.append(f"<h2>{e(check.name)}: {_badge(check.ok, check.ran)}</h2><p>{e(check.summary)}</p>")
        _, render = SECTIONS.get(check.name, (_generic_md, _generic_html))
        parts.append(render(check))
    parts.append("</body></html>\n")
    return "".join(parts)


def _badge(ok: bool, ran: bool = True) -> str:
    if not ran:
        return "<span class='skip'>NOT RUN</span>"
    return "<span class='pass'>PASS</span>" if ok else "<span class='fail'>FAIL</span>"


def _notes_html(details: dict) -> str:
    notes = details.get("notes", [])
    return "<ul class='notes'>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>" if notes else ""


def _table(headers: list[str], rows: list[tuple[list[str], bool]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        f"<tr{'' if ok else ' class=bad'}>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>"
        for cells, ok in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _parity_html(check: Check) -> str:
    e = html.escape
    parts = [_notes_html(check.details)]
    inputs = check.details.get("inputs", {})
    if inputs:
        parts.append(_table(
            ["input", "shape", "dtype", "source"],
            [([k, _shape(v["shape"]), v["dtype"], v["source"]], True) for k, v in inputs.items()],
        ))
    for comparison in check.details.get("comparisons", []):
        status = "skipped" if comparison.get("skipped") else _badge(comparison["ok"])
        parts.append(f"<h3>{e(comparison['label'])}: {status}</h3>")
        if comparison.get("error") or comparison.get("skipped"):
            parts.append(f"<p>{e(comparison.get('error') or comparison.get('skipped'))}</p>")
            continue
        rows = [
            ([o["name"], _shape(o["shape"]), o["dtype"], _num(o["max_abs"]), _num(o["max_rel"]), _cos(o["cosine"]),
              _mismatches(o), f"{o['atol']:g} / {o['rtol']:g}", o.get("note") or ("ok" if o["ok"] else "FAIL")], o["ok"])
            for o in comparison["outputs"]
        ]
        parts.append(_table(
            ["output", "shape", "dtype", "max abs", "max rel", "cosine", "mismatches", "atol / rtol", "status"], rows
        ))
        plots = [
            f"<div class='plot'><p>{e(o['name'])}: |error| histogram "
            "(bins by decade, labelled by lower edge; log height)</p>"
            f"{_histogram_svg(o['histogram'])}</div>"
            for o in comparison["outputs"]
            if o.get("histogram") and any(o["histogram"][1:])
        ]
        if plots:
            parts.append("<div class='plots'>" + "".join(plots) + "</div>")
    return "".join(parts)


def _contamination_html(check: Check) -> str:
    e = html.escape
    details = check.details
    parts = [_notes_html(details)]
    if details.get("failures"):
        parts.append("<ul>" + "".join(f"<li class='fail'>{e(f)}</li>" for f in details["failures"]) + "</ul>")
    static = details.get("static", {})
    if static.get("findings"):
        parts.append("<h3>batch flow (static analysis)</h3>")
        parts.append(_table(
            ["node", "op", "kind", "what"],
            [([f["node"], f["op"], f["kind"], f["message"]], not f["blocking"]) for f in static["findings"]],
        ))
    if static.get("outputs"):
        lost = static.get("lost", {})
        parts.append(_table(["output", "batch"], [([k, v], k not in lost) for k, v in static["outputs"].items()]))
    frames = details.get("frames") or {}
    n = frames.get("batch", 0)
    plots = []
    if frames.get("influence"):
        heatmap = _heatmap_svg(frames["influence"], [f"changed {j}" for j in range(n)], [f"frame {i}" for i in range(n)])
        plots.append(
            f"<div class='plot'><p>max |change| of each frame (column) when one frame (row) changes at batch {n}; "
            f"off-diagonal must be 0</p>{heatmap}</div>"
        )
    if frames.get("alone"):
        names = list(frames["alone"])
        plots.append(
            f"<div class='plot'><p>max |frame run alone - its slice of the batch| per output</p>"
            f"{_heatmap_svg([frames['alone'][k] for k in names], names, [f'frame {i}' for i in range(n)])}</div>"
        )
    if plots:
        parts.append("<h3>frames</h3><div class='plots'>" + "".join(plots) + "</div>")
    return "".join(parts)


def _generic_html(check: Check) -> str:
    return _notes_html(check.details) + f"<pre>{html.escape(json.dumps(check.details, indent=2, default=json_default))}</pre>"


SECTIONS: dict[str, tuple[Callable[[Check], list[str]], Callable[[Check], str]]] = {
    "parity": (_parity_md, _parity_html),
    "contamination": (_contamination_md, _contamination_html),
}


# ------------------------------------------------------------------------------------- plots


def _histogram_labels() -> list[str]:
    return ["0", f"<1e{ERROR_DECADES[0]}"] + [f"1e{d}" for d in ERROR_DECADES[:-1]] + [f"≥1e{ERROR_DECADES[-1]}"]


def _histogram_svg(counts: list[int]) -> str:
    labels = _histogram_labels()
    width, height, left, bottom, bar = 380, 130, 8, 34, 24
    peak = math.log10(1 + max(counts)) or 1.0
    parts = [f"<svg width='{width}' height='{height}' viewBox='0 0 {width} {height}' role='img'>"]
    for i, (count, label) in enumerate(zip(counts, labels)):
        x = left + i * bar
        h = (height - bottom - 12) * math.log10(1 + count) / peak
        y = height - bottom - h
        color = "#1a7f37" if i == 0 else "#0969da"
        parts.append(
            f"<rect x='{x}' y='{y:.1f}' width='{bar - 3}' height='{h:.1f}' fill='{color}'>"
            f"<title>{html.escape(label)}: {count}</title></rect>"
        )
        if count:
            parts.append(f"<text x='{x + (bar - 3) / 2:.1f}' y='{y - 2:.1f}' text-anchor='middle'>{_short(count)}</text>")
        parts.append(
            f"<text transform='translate({x + bar / 2:.1f},{height - bottom + 6}) rotate(45)'>{html.escape(label)}</text>"
        )
    axis_y, axis_end = height - bottom, left + len(counts) * bar
    parts.append(f"<line x1='{left}' y1='{axis_y}' x2='{axis_end}' y2='{axis_y}' stroke='#57606a'/>")
    parts.append("</svg>")
    return "".join(parts)


def _heatmap_svg(matrix: list[list[float]], rows: list[str], columns: list[str]) -> str:
    cell_w, cell_h, label_w, top = 64, 22, 120, 18
    width, height = label_w + cell_w * len(columns), top + cell_h * len(rows)
    parts = [f"<svg width='{width}' height='{height}' viewBox='0 0 {width} {height}' role='img'>"]
    for i, name in enumerate(columns):
        parts.append(f"<text x='{label_w + i * cell_w + cell_w / 2}' y='12' text-anchor='middle'>{html.escape(name)}</text>")
    for r, (name, row) in enumerate(zip(rows, matrix)):
        y = top + r * cell_h
        parts.append(f"<text x='{label_w - 4}' y='{y + 15}' text-anchor='end'>{html.escape(_clip(name, 20))}</text>")
        for c, value in enumerate(row):
            x = label_w + c * cell_w
            parts.append(
                f"<rect x='{x}' y='{y}' width='{cell_w - 1}' height='{cell_h - 1}' fill='{_heat(value)}'>"
                f"<title>{html.escape(name)} / {html.escape(columns[c])}: {value:.3g}</title></rect>"
                f"<text x='{x + cell_w / 2}' y='{y + 15}' text-anchor='middle'>{_num(value)}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def _heat(value: float) -> str:
    """Exact zero is green; otherwise pale yellow (1e-10) to red (>= 1) on a log scale."""
    if value == 0:
        return "#dafbe1"
    t = min(max((math.log10(value) + 10) / 10, 0.0), 1.0) if math.isfinite(value) else 1.0
    r, g, b = 255, int(245 - 180 * t), int(200 - 170 * t)
    return f"#{r:02x}{g:02x}{b:02x}"


# ---------------------------------------------------------------------------------- helpers


def _status(comparison: dict) -> str:
    return "skipped" if comparison.get("skipped") else ("pass" if comparison["ok"] else "FAIL")


def _shape(shape) -> str:
    return "x".join(str(d) for d in shape) if shape else "scalar"


def _num(value) -> str:
    if value is None:
        return "-"
    return "0" if value == 0 else f"{value:.3g}"


def _cos(value) -> str:
    return "-" if value is None else f"{value:.6f}"


def _mismatches(o: dict) -> str:
    return "-" if o.get("mismatches") is None else f"{o['mismatches']} / {o['size']}"


def _short(count: int) -> str:
    return f"{count / 1e6:.1f}M" if count >= 1e6 else f"{count / 1e3:.0f}k" if count >= 1e4 else str(count)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
