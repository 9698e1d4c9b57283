"""`onnxfit verify MODEL`: parity, cross-frame contamination; exit 0 pass, 1 a check failed, 2 bad input."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich.markup import escape
from rich.table import Table

from onnxfit.cli.common import app, console, handle_errors, print_json
from onnxfit.cli.options import BatchAxes, FixedInputs, InputShapes, Json, OrtVersion, model_inputs, ort_release

if TYPE_CHECKING:
    from onnxfit.verification import VerifyReport

__all__ = ["verify_command"]

_MAX_LINES = 5  # further failure lines per check; the JSON and the reports keep them all


@app.command("verify")
@handle_errors
def verify_command(
    model: Path = typer.Argument(..., help="The model to verify (.onnx)."),
    reference: Optional[Path] = typer.Option(
        None, "--reference", help="Compare against this model (e.g. the original before optimize)."
    ),
    batch: Optional[int] = typer.Option(
        None, "--batch", help="Batch dim when symbolic; default 1 for parity, 4 for the contamination test."
    ),
    input_shape: InputShapes = [],
    runtime: list[str] = typer.Option(
        [], "--runtime", help="Runtimes to compare with the reference (repeatable): ort-cpu-noopt (the reference), ort-cpu, "
             "onnx-reference, ort-<ep> for each EP of this onnxruntime, planned-<target> for the session "
             "onnxfit.session() opens."
    ),
    inputs: Optional[Path] = typer.Option(
        None, "--inputs", help=".npz of input arrays keyed by input name (needed for scalars and states)."
    ),
    atol: Optional[float] = typer.Option(None, "--atol", help="Absolute tolerance (default by dtype: fp32 1e-4)."),
    rtol: Optional[float] = typer.Option(None, "--rtol", help="Relative tolerance (default by dtype: fp32 1e-3)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the generated inputs."),
    json_output: Json = False,
    report: Optional[Path] = typer.Option(
        None, "--report", help="Write report.json, report.md and report.html into this directory."
    ),
    target: Optional[str] = typer.Option(
        None, "--target",
        help="Also check partitions on this target (fails above 1, or above the reference); where its EP is here, "
             "parity of the session onnxfit.session() opens (EP options, CUDA graph) too.",
    ),
    ort_version: OrtVersion = None,
    batch_axis: BatchAxes = [],
    fix_input: FixedInputs = [],
) -> None:
    """Check that MODEL computes what REF (and every runtime) computes, frame by frame."""
    from onnxfit.app.verify import verify  # a verb imports what it runs when it runs: --help stays fast
    from onnxfit.verification import write_report

    result = verify(
        model,
        reference,
        batch=batch,
        model_inputs=model_inputs(input_shape, batch_axis, fix_input),
        runtimes=runtime or None,
        inputs=inputs,
        atol=atol,
        rtol=rtol,
        seed=seed,
        target=target,
        ort_version=ort_release(ort_version),
    )
    if report is not None:
        write_report(result, report)
    if json_output:
        print_json(result.to_dict())
    else:
        _render(result, report)
    if not result.ok:
        raise typer.Exit(1)


def _render(result: VerifyReport, report_dir: Optional[Path]) -> None:
    console.print(f"[bold]{result.model}[/bold]" + (f" vs {result.reference}" if result.reference else ""))
    console.print(f"runtimes: {', '.join(result.runtimes)}")
    for check in result.checks:
        mark = {"pass": "[green]PASS[/green]", "FAIL": "[red]FAIL[/red]", "not run": "[yellow]NOT RUN[/yellow]"}[check.verdict]
        console.print(f"{mark} {check.name}: {escape(check.summary)}")
        for note in check.details.get("notes", []):
            console.print(f"     note: {escape(note)}", style="dim")
        for comparison in check.details.get("comparisons", []):
            if comparison["outputs"]:
                console.print(_comparison_table(comparison))
            elif comparison.get("skipped"):
                console.print(f"     skipped: {escape(comparison['skipped'])}", style="dim")
        failures = check.details.get("failures", [])[1:]
        for failure in failures[:_MAX_LINES]:
            console.print(f"     {escape(failure)}")
        if len(failures) > _MAX_LINES:
            console.print(f"     ... and {len(failures) - _MAX_LINES} more (--json or --report show all)")
    if report_dir is not None:
        console.print(f"report: {report_dir / 'report.html'}")
    not_run = [c.name for c in result.checks if not c.ran]
    if not result.ok:
        console.print("[red]verification failed[/red]")
    elif not_run:
        console.print(f"[green]all checks that ran passed[/green] (not run: {', '.join(not_run)})")
    else:
        console.print("[green]all checks passed[/green]")


def _comparison_table(comparison: dict) -> Table:
    table = Table(title=comparison["label"], title_justify="left", show_edge=False, pad_edge=False)
    for column in ("output", "shape", "max abs", "max rel", "cosine", "mismatches", ""):
        table.add_column(column, justify="left" if column in ("output", "shape", "") else "right")
    for o in comparison["outputs"]:
        table.add_row(
            o["name"],
            "x".join(map(str, o["shape"])),
            _num(o["max_abs"]),
            _num(o["max_rel"]),
            "-" if o["cosine"] is None else f"{o['cosine']:.6f}",
            "-" if o["mismatches"] is None else f"{o['mismatches']}/{o['size']}",
            "[green]ok[/green]" if o["ok"] else f"[red]{o.get('note') or 'FAIL'}[/red]",
        )
    return table


def _num(value) -> str:
    return "-" if value is None else ("0" if value == 0 else f"{value:.3g}")
