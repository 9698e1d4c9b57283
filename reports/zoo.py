"""The "tested on" table: what onnxfit does to every real zoo model, measured.

    python reports/zoo.py            # writes reports/ZOO.md, reports/zoo.json and the table in docs/zoo.md

For each ONNX model of tests/zoo/manifest.py (fetched once into the zoo cache) and each estimated
target (CoreML MLProgram, NNAPI, OpenVINO): partitions before -> after ``optimize --target T``
(with the manifest's ``--input-shape`` where the model has symbolic dims, as a user deploying it
would run it), what the passes changed, and the largest output difference between the optimized
and the original model on ONNX Runtime CPU. A cell reads "partitions before → after (nodes on the EP
/ all nodes, before → after)": 0 partitions means no node runs on the EP at all.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import onnxfit  # noqa: E402
from onnxfit.errors import OnnxfitError, first_line  # noqa: E402
from onnxfit.app.flow import run_job  # noqa: E402
from onnxfit.app.job import OptimizeJob  # noqa: E402
from onnxfit.text import markdown_table  # noqa: E402
from onnxfit.versions import format_version, installed_ort_version  # noqa: E402
from tests.conftest import run_ort  # noqa: E402
from tests.zoo.fetch import fetch  # noqa: E402
from tests.zoo.manifest import MODELS  # noqa: E402
from tests.zoo.test_zoo import feeds_for  # noqa: E402

TARGETS = {"coreml": "CoreML", "nnapi": "NNAPI", "openvino": "OpenVINO"}
START, END = "<!-- zoo-table:start -->", "<!-- zoo-table:end -->"


def _changes(result) -> str:
    parts = []
    for report in result.pipeline.reports:
        if report.changed:
            n = report.rewritten or report.folded or report.removed or report.added
            parts.append(f"{report.name} ({n})")
    return ", ".join(parts) or "nothing"


def _opset(model: onnx.ModelProto) -> str:
    """The default-domain opset, or the domains a model imports instead (ai.onnx.ml only)."""
    versions = {o.domain or "ai.onnx": o.version for o in model.opset_import}
    return str(versions.get("ai.onnx") or ", ".join(f"{d} {v}" for d, v in versions.items()))


def measure(entry, path: Path, workdir: Path) -> dict:
    model = onnx.load(path, load_external_data=False)
    row = {"model": entry.name, "package": f"{entry.archive.package} {entry.archive.version}",
           "file": entry.filename, "exporter": entry.exporter, "task": entry.task,
           "opset": _opset(model),
           "ir": model.ir_version, "input_shape": {k: list(v) for k, v in entry.input_shape.items()},
           "fixed_inputs": dict(entry.fixed_inputs),
           "targets": {}}
    feeds = feeds_for(entry, model)
    expected = run_ort(path, feeds)
    for target in TARGETS:
        out = workdir / f"{entry.name}.{target}.onnx"
        cell = {}
        try:
            job = OptimizeJob.create(path, out, target=target, input_shapes=dict(entry.input_shape),
                                     fixed_inputs=dict(entry.fixed_inputs), partitions=True)
            result = run_job(job)
            if result.partitions is None:
                raise OnnxfitError(result.partitions_note)
            before, after = result.partitions
            cell["before"], cell["after"] = before.partitions, after.partitions
            cell["nodes_before"] = f"{before.nodes_on_ep}/{before.total_nodes}"
            cell["nodes_after"] = f"{after.nodes_on_ep}/{after.total_nodes}"
            cell["changed"] = _changes(result.optimized)
            actual = run_ort(out, {k: v for k, v in feeds.items() if k not in entry.fixed_inputs})
            cell["max_abs_diff"] = max(_max_abs_diff(e, a) for e, a in zip(expected, actual))
        except OnnxfitError as exc:
            cell["error"] = first_line(exc)
        row["targets"][target] = cell
    return row


def _max_abs_diff(expected, actual) -> float:
    expected, actual = np.asarray(expected), np.asarray(actual)
    if expected.dtype == object:  # strings: equal or not
        return 0.0 if np.array_equal(expected, actual) else float("inf")
    return float(np.max(np.abs(expected.astype(np.float64) - actual))) if expected.size else 0.0


def _cell(cell: dict) -> str:
    if "error" in cell:
        return f"error: {cell['error']}"
    return f"{cell['before']} → {cell['after']} ({cell['nodes_before']} → {cell['nodes_after']})"


def markdown(rows: list[dict]) -> str:
    header = ["model", "from (PyPI)", "exporter, opset/IR", "onnxfit changed (coreml)", *TARGETS.values(),
              "max abs diff (ORT CPU)"]
    cells = []
    for row in rows:
        shape = " ".join([*(f"`--input-shape {k}={'x'.join(map(str, v))}`" for k, v in row["input_shape"].items()),
                          *(f"`--fix-input {k}={v}`" for k, v in row.get("fixed_inputs", {}).items())])
        diffs = [c.get("max_abs_diff", 0.0) for c in row["targets"].values()]
        cells.append([f"{row['model']} ({row['task']}) {shape}", row["package"], f"{row['exporter']}, {row['opset']}/{row['ir']}",
                      row["targets"]["coreml"].get("changed", ""), *(_cell(c) for c in row["targets"].values()),
                      f"{max(diffs):.1e}"])
    return "\n".join(markdown_table(header, cells))


def main() -> None:
    onnx_models = [m for m in MODELS if m.kind == "onnx"]
    paths = fetch(onnx_models)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for entry in onnx_models:
            print(f"{entry.name} ...", file=sys.stderr)
            rows.append(measure(entry, paths[entry.name], Path(tmp)))
    document = {"onnxfit": onnxfit.__version__, "onnxruntime": ort.__version__, "models": rows}
    (ROOT / "reports" / "zoo.json").write_text(json.dumps(document, indent=2) + "\n")
    table = markdown(rows)
    estimates = ("Cells: partitions before → after `optimize --target T` (nodes on the EP / all nodes); "
                 "0 partitions means nothing runs on the EP. ")
    estimates += f"Partitions estimated by onnxfit's EP profiles for onnxruntime {format_version(installed_ort_version())}."
    (ROOT / "reports" / "ZOO.md").write_text(f"# Real-model zoo\n\n{estimates} Made by `python reports/zoo.py`.\n\n{table}\n")
    page = (ROOT / "docs" / "zoo.md").read_text()
    if START in page and END in page:
        before, rest = page.split(START, 1)
        _, after = rest.split(END, 1)
        (ROOT / "docs" / "zoo.md").write_text(f"{before}{START}\n{table}\n{END}{after}")
    print(table)


if __name__ == "__main__":
    main()
