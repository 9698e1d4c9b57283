"""`onnxfit partitions MODEL --target T`: how many pieces the target EP cuts the model into."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from onnxfit.cli.common import app, console, handle_errors, print_json
from onnxfit.cli.options import Json, OrtVersion, Target, ort_release


@app.command("partitions")
@handle_errors
def partitions(
    model: Path = typer.Argument(..., help="ONNX model file."),
    target: Target = "coreml",
    ort_version: OrtVersion = None,
    ep: str = typer.Option(None, "--ep", help="Force a real placement with this execution provider."),
    as_json: Json = False,
) -> None:
    """Partitions, nodes on the EP, and every node left to the CPU with the reason.

    Exit 1 when the EP fails to compile the model (a finding about the EP), 2 for bad input.
    """
    from onnxfit.targets.partitions import count_partitions  # a verb imports what it runs when it runs: --help stays fast

    report = count_partitions(model, target, ort_version=ort_release(ort_version), ep=ep)
    if as_json:
        print_json(report.to_dict())
    else:
        _render(report)
    if not report.compiled:
        raise typer.Exit(1)


def _render(report) -> None:
    kind = "real" if report.is_real else f"estimated ({report.profile}, ONNX Runtime {report.ort_version})"
    console.print(f"{report.model} on {report.target} [{report.ep}]: {kind}", markup=False, soft_wrap=True)
    if not report.compiled:
        console.print(f"[red]compile failed:[/red] {escape(report.compile_error)}", soft_wrap=True)
        return
    console.print(
        f"partitions: {report.partitions}   nodes on EP: {report.nodes_on_ep}/{report.total_nodes}"
        + (f"   partition sizes: {report.partition_sizes}" if report.partition_sizes else ""),
        markup=False,
    )
    if report.unsupported:
        table = Table("node", "op", "reason", title="nodes not on the EP")
        for node in report.unsupported:
            table.add_row(escape(node.name), escape(node.op), escape(node.reason))
        console.print(table)
