"""`onnxfit optimize`: rewrite models for a target EP and print what changed."""

from __future__ import annotations

import traceback
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from onnxfit.cli.common import app, console, handle_errors, print_json
from onnxfit.cli.options import (BatchAxes, FixedInputs, InputShapes, Json, KeepInputs, OrtVersion, Target, model_inputs,
                                 ort_release)
from onnxfit.errors import OnnxfitError, first_line

if TYPE_CHECKING:
    from onnxfit.app.job import OptimizeJob


def collect_models(paths: list[Path]) -> list[Path]:
    """Files as given; directories contribute their *.onnx files (sorted)."""
    models: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.glob("*.onnx") if p.is_file())
            if not found:
                raise OnnxfitError(f"{path}: directory holds no .onnx files")
            models.extend(found)
        else:
            models.append(path)
    return models


def output_paths(models: list[Path], output: Path) -> list[Path]:
    """One model and a non-directory -o: that file. Otherwise -o is a directory (created)."""
    if len(models) == 1 and not output.is_dir() and output.suffix:
        return [output]
    if output.exists() and not output.is_dir():
        raise OnnxfitError(f"{output}: several models need an output directory, not a file")
    output.mkdir(parents=True, exist_ok=True)
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise OnnxfitError("several input models share a file name; optimize them into separate directories")
    return [output / m.name for m in models]


def _optimize_one(job: OptimizeJob) -> dict:
    """Worker entry (also used in-process): returns the JSON-able result or the error line.

    A bug on one model is that model's error line (its traceback in the JSON): a directory of
    models is not taken down by one of them."""
    from onnxfit.app.flow import run_job  # a verb imports what it runs when it runs: --help stays fast

    try:
        return run_job(job).to_dict()
    except OnnxfitError as exc:
        return {"model": str(job.model), "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - reported per model, with the traceback to report it
        return {"model": str(job.model), "traceback": traceback.format_exc(),
                "error": f"{job.model}: onnxfit failed ({type(exc).__name__}: {first_line(exc)}); this is an onnxfit "
                         "bug: please report it with the model"}


@app.command("optimize")
@handle_errors
def optimize_command(
    models: list[Path] = typer.Argument(..., help="ONNX files or directories of them."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Output file (one model) or directory."),
    target: Target = "coreml",
    passes: str | None = typer.Option(None, "--passes", help="Comma-separated passes, replacing the target's."),
    input_shape: InputShapes = [],
    dynamic_batch: bool = typer.Option(False, "--dynamic-batch", help="Make the batch axis symbolic and repair Reshapes."),
    batch_axis: BatchAxes = [],
    fix_input: FixedInputs = [],
    keep_input: KeepInputs = [],
    simplify: bool = typer.Option(False, "--simplify", help="Run onnxsim first (after --dynamic-batch): folds "
                                  "constants, fuses Conv+BatchNormalization, drops Identity chains. Needs "
                                  "the simplify extra (onnxsim)."),
    exact: bool = typer.Option(False, "--exact", help="Only bit-exact rewrites: leave out those that change "
                               "float rounding within a stated tolerance (folds into Conv/Gemm weights, "
                               "constant chains, native exp/sin for hand-written approximations)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Allow -o to name the input model itself (it is "
                                   "replaced atomically once the result is checked)."),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="Models processed in parallel."),
    as_json: Json = False,
    cache: bool = typer.Option(False, "--cache", help="Use the per-machine cache (what onnxfit.prepare() uses)."),
    verify: bool = typer.Option(False, "--verify", help="Verify each result against its original; exit 1 on a mismatch."),
    ort_version: OrtVersion = None,
    check_each: bool = typer.Option(False, "--check-each", help="Run the onnx checker after every pass (finds "
                                    "the pass that broke a model)."),
    partitions: bool | None = typer.Option(None, "--partitions/--no-partitions", show_default=False,
                                           help="Report partitions on the target before and after (default: for "
                                           "models up to 256 MB)."),
    advice: bool = typer.Option(True, "--advice/--no-advice", help="Where partitions are left, try the flags that "
                                "could cut them (--input-shape, --fix-input) in memory and print the predicted result."),
) -> None:
    """Rewrite MODEL(s) so the target EP takes every node; numerically identical output."""
    from onnxfit.app.job import OptimizeJob  # a verb imports what it runs when it runs: --help stays fast

    # Every option parsed and checked once, before any model is read; one job per model from it.
    options = OptimizeJob.create(None, target=target, passes=passes.split(",") if passes else None,
                                 inputs=model_inputs(input_shape, batch_axis, fix_input, keep_input),
                                 dynamic_batch=dynamic_batch, simplify=simplify, exact=exact,
                                 ort_version=ort_release(ort_version), check_each=check_each, cache=cache,
                                 partitions=partitions, advice=advice, verify=verify)
    model_paths = collect_models(models)
    for path in model_paths:
        if not path.exists():
            raise OnnxfitError(f"{path}: no such file")
    if output is None and not cache:
        raise OnnxfitError("give an output with -o OUT (a file, or a directory for several models), or use --cache")
    outputs = output_paths(model_paths, output) if output is not None else [None] * len(model_paths)
    overwritten = [m for m, o in zip(model_paths, outputs) if o is not None and o.exists() and o.samefile(m)]
    if overwritten and not overwrite:
        raise OnnxfitError(f"{overwritten[0]}: -o would overwrite the input model; write elsewhere, or pass "
                           "--overwrite to replace it")
    job_list = [replace(options, model=m, output=o) for m, o in zip(model_paths, outputs)]
    results = _run_jobs(job_list, jobs, show_progress=not as_json)
    errors = [r for r in results if "error" in r]
    failed = [r for r in results if not r.get("verify", {"ok": True})["ok"]]
    if as_json:
        print_json({"ok": not errors and not failed, "target": options.target, "models": results})
    else:
        for result in results:
            if "cached" in result:
                state = "hit" if result["hit"] else "built"
                console.print(f"{result['model']}: cache {state} -> {result['cached']}"
                              + ("" if result["changed"] else " (nothing to rewrite: the original is used)"))
            elif "error" not in result:
                _render(result)
            if "partitions" in result:
                _render_partitions(result)
            for item in result.get("advice", []):
                console.print(f"  advice: {item['text']}", soft_wrap=True)
            if "verify" in result:
                _render_verify(result)
    if errors:
        if len(results) == 1:
            raise OnnxfitError(errors[0]["error"])
        for err in errors:
            console.print(f"[red]error:[/red] {escape(err['error'])}", soft_wrap=True)
        raise typer.Exit(2)
    if failed:
        raise typer.Exit(1)


def _run_jobs(job_list: list[OptimizeJob], jobs: int, show_progress: bool) -> list[dict]:
    from rich.progress import Progress

    with Progress(console=console, transient=True, disable=not show_progress) as progress:
        task = progress.add_task("optimizing", total=len(job_list))
        if jobs == 1 or len(job_list) == 1:
            results = []
            for job in job_list:
                progress.update(task, description=f"optimizing {job.model.name}")
                results.append(_optimize_one(job))
                progress.advance(task)
            return results
        with ProcessPoolExecutor(max_workers=min(jobs, len(job_list))) as pool:
            futures = [pool.submit(_optimize_one, job) for job in job_list]
            results = []
            for future in futures:
                results.append(future.result())
                progress.advance(task)
            return results


def _render(result: dict) -> None:
    """Two lines per model: what each pass changed and the node count; the tables with `onnxfit -v`."""
    if _verbose():
        _render_tables(result)
        return
    changed = [f"{r['name']} ({r['rewritten'] or r['folded'] or r['removed'] or r['added']})"
               for r in result["passes"] if r["changed"]]
    console.print(f"{result['model']} -> {result['output']}  (target {result['target']}): "
                  f"{result['nodes_before']} -> {result['nodes_after']} nodes", soft_wrap=True)
    console.print(f"  changed: {', '.join(changed) or 'nothing'}", soft_wrap=True)


def _verbose() -> bool:
    # The root's --verbose/-v (`onnxfit -v optimize ...`), read here so no verb re-declares it.
    try:
        from click import get_current_context
    except ModuleNotFoundError:  # typer from 0.20 vendors click
        from typer._click.globals import get_current_context
    ctx = get_current_context(silent=True)
    return bool(ctx and ctx.find_root().params.get("verbose"))


def _render_tables(result: dict) -> None:
    table = Table(title=f"{result['model']} -> {result['output']}  (target {result['target']})", title_justify="left")
    for column in ("pass", "rewritten", "added", "removed", "folded", "notes"):
        table.add_column(column, justify="right" if column not in ("pass", "notes") else "left")
    for report in result["passes"]:
        notes = "; ".join(report["skipped"] + report["notes"]) or ("-" if report["changed"] else "nothing to do")
        table.add_row(report["name"], str(report["rewritten"]), str(report["added"]), str(report["removed"]),
                      str(report["folded"]), notes)
    console.print(table)
    before, after = result["ops_before"], result["ops_after"]
    changed = sorted(op for op in set(before) | set(after) if before.get(op, 0) != after.get(op, 0))
    ops = Table(title="op counts (changed ops)", title_justify="left")
    ops.add_column("op")
    ops.add_column("before", justify="right")
    ops.add_column("after", justify="right")
    for op in changed:
        ops.add_row(op, str(before.get(op, 0)), str(after.get(op, 0)))
    ops.add_row("[bold]all nodes[/bold]", str(result["nodes_before"]), str(result["nodes_after"]))
    console.print(ops)


def _render_verify(result: dict) -> None:
    report = result["verify"]
    if report.get("note"):
        console.print(f"verify: {report['note']}")
        return
    for check in report["checks"]:
        mark = ("[yellow]not run[/yellow]" if not check.get("ran", True)
                else "[green]ok[/green]" if check["ok"] else "[red]FAILED[/red]")
        console.print(f"verify {check['name']}: {mark}  {check.get('summary', '')}", soft_wrap=True)


def _render_partitions(result: dict) -> None:
    parts = result["partitions"]
    if "note" in parts:
        console.print(f"partitions: not counted ({parts['note']})", soft_wrap=True)
        return
    before, after = parts["before"], parts["after"]
    console.print(f"partitions on {result['target']} ({after['source']}, onnxruntime {after['ort_version']}): "
                  f"[bold]{before['partitions']} -> {after['partitions']}[/bold]  "
                  f"(nodes on {after['ep']}: {before['nodes_on_ep']}/{before['total_nodes']} -> "
                  f"{after['nodes_on_ep']}/{after['total_nodes']})", soft_wrap=True)
    if "why_more" in parts:
        console.print(f"  more partitions than the original: {parts['why_more']}", soft_wrap=True)
    for node in after["unsupported"][:5]:
        console.print(f"  still on CPU: {node['name']} ({node['op']}): {node['reason']}", soft_wrap=True)
