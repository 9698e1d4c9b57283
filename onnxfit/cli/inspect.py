"""`onnxfit inspect`: opset, I/O, op histogram and the findings the passes target."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from onnxfit.cli.common import app, console, handle_errors, print_json
from onnxfit.cli.options import Json, OrtVersion, ort_release

if TYPE_CHECKING:
    from onnxfit.versions import OrtRelease


@app.command("inspect")
@handle_errors
def inspect_command(
    model: Path = typer.Argument(..., help="ONNX model."),
    as_json: Json = False,
    target: str | None = typer.Option(None, "--target", "-t", help="Also count partitions on this target after "
                                      "optimize, and advise the flags that would cut them (predicted)."),
    ort_version: OrtVersion = None,
) -> None:
    """Describe MODEL and list what the passes would rewrite, by node name."""
    from onnxfit.app.inspection import inspect  # a verb imports what it runs when it runs: --help stays fast

    report = inspect(model)
    if target is not None:
        report["advice"] = _advice(model, target, ort_release(ort_version))
    if as_json:
        print_json(report)
        return
    console.print(f"[bold]{report['model']}[/bold]  IR {report['ir_version']}, opset {report['opset']}, "
                  f"{report['nodes']} nodes, {report['initializers']} initializers, producer {report['producer'] or '-'}")
    io = Table(title="inputs / outputs", title_justify="left")
    for column in ("kind", "name", "dtype", "shape"):
        io.add_column(column)
    for kind in ("inputs", "outputs"):
        for value in report[kind]:
            io.add_row(kind[:-1], value["name"], value["dtype"], _shape_text(value["shape"]))
    console.print(io)
    ops = Table(title="ops", title_justify="left")
    ops.add_column("op")
    ops.add_column("count", justify="right")
    for op, count in report["ops"].items():
        ops.add_row(op, str(count))
    console.print(ops)
    findings = Table(title="findings", title_justify="left")
    for column in ("kind", "node", "detail", "fixed by"):
        findings.add_column(column)
    for kind, items in report["findings"].items():
        for item in items:
            detail = ", ".join(f"{k}={v}" for k, v in item.items() if k not in ("node", "pass"))
            findings.add_row(kind, item["node"], detail, item["pass"])
    console.print(findings if findings.row_count else "no findings: nothing for the passes to rewrite")
    if "advice" in report:
        parts = report["advice"]
        console.print(f"partitions on {target} after optimize: {parts['partitions_after_optimize']}", soft_wrap=True)
        for item in parts["suggestions"]:
            console.print(f"  advice: {item['text']}", soft_wrap=True)


def _advice(model: Path, target: str, ort_version: OrtRelease | None) -> dict:
    """Partitions after a plain optimize, and the flags predicted to lower them."""
    from onnxfit.app.advice import advise
    from onnxfit.model import load_model
    from onnxfit.app.optimize import optimize_model
    from onnxfit.targets import get_target
    from onnxfit.targets.partitions import count_partitions

    get_target(target)
    proto = load_model(model)
    after = count_partitions(optimize_model(proto, target).model, target, ort_version).partitions
    suggestions = advise(proto, target, ort_version, partitions_now=after)
    return {"target": target, "partitions_after_optimize": after,
            "suggestions": [s.to_dict() | {"text": str(s)} for s in suggestions]}


def _shape_text(shape: list | None) -> str:
    if shape is None:
        return "? (rank unknown)"
    return "x".join(map(str, shape)) if shape else "scalar"
