"""`onnxfit session-plan MODEL`: the providers, EP options and CUDA graph choice `onnxfit.session()` makes."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from onnxfit.cli.common import app, console, handle_errors, print_json
from onnxfit.cli.options import BatchAxes, CacheDir, FixedInputs, InputShapes, Json, KeepInputs, model_inputs
from onnxfit.errors import OnnxfitError

__all__ = ["session_plan_command"]


@app.command("session-plan")
@handle_errors
def session_plan_command(
    model: Path = typer.Argument(..., help="The model (.onnx); it is prepared through the cache first."),
    target: str = typer.Option("auto", "--target", "-t",
                               help="auto (this machine's best EP), coreml, coreml-nn, nnapi, openvino, cuda, "
                                    "tensorrt, cpu."),
    input_shape: InputShapes = [],
    fix_input: FixedInputs = [],
    batch_axis: BatchAxes = [],
    keep_input: KeepInputs = [],
    dynamic_batch: bool = typer.Option(False, "--dynamic-batch", help="Prepare with a symbolic batch dim."),
    option: list[str] = typer.Option([], "--option", help="KEY=VALUE for the target's EP; wins over the plan "
                                                          "(repeatable), e.g. --option MLComputeUnits=CPUOnly."),
    provider: list[str] = typer.Option([], "--provider", help="Plan as if onnxruntime had these providers "
                                                              "(repeatable), e.g. CUDAExecutionProvider."),
    cache_dir: CacheDir = None,
    as_json: Json = False,
) -> None:
    """Plan the session `onnxfit.session()` would open, and say why; exit 2 for bad input."""
    from onnxfit.app.session import session_plan

    plan = session_plan(model, target, model_inputs=model_inputs(input_shape, batch_axis, fix_input, keep_input),
                        dynamic_batch=dynamic_batch,
                        provider_options=_options(option), available_providers=provider or None, cache_dir=cache_dir)
    if as_json:
        print_json(plan.to_dict())
        return
    console.print(f"{plan.source} on {plan.target} [{plan.ep}], onnxruntime {plan.onnxruntime}", markup=False,
                  soft_wrap=True)
    console.print(f"loads: {plan.model}" + (" (rewritten)" if plan.prepared and plan.prepared["rewritten"] else ""),
                  markup=False, soft_wrap=True)
    for name, options in zip(plan.providers, plan.provider_options):
        shown = ", ".join(f"{k}={v}" for k, v in options.items())
        console.print(f"  {name}" + (f": {shown}" if shown else ""), markup=False, soft_wrap=True)
    console.print(f"cuda graph: {'yes' if plan.cuda_graph else 'no'}   static inputs: "
                  f"{'yes' if plan.static_inputs else 'no'}", markup=False)
    if plan.placement:
        p = plan.placement
        console.print(f"CUDA placement ({p['source']}): {p['nodes'] - len(p['on_cpu'])}/{p['nodes']} nodes on CUDA, "
                      f"{len(p['device_copies'])} device copies", markup=False)
    for reason in plan.reasons:
        console.print(f"  - {escape(reason)}", soft_wrap=True)


def _options(specs: list[str]) -> dict[str, str]:
    options = {}
    for spec in specs:
        key, sep, value = spec.partition("=")
        if not sep or not key:
            raise OnnxfitError(f"--option '{spec}': expected KEY=VALUE, e.g. --option enable_cuda_graph=0")
        options[key] = value
    return options
