"""`onnxfit export torch`: a torch module from a factory -> verified ONNX with a dynamic batch."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from onnxfit.cli.options import Json
from onnxfit.cli.common import console, export_app, handle_errors, print_json
from onnxfit.errors import OnnxfitError


@export_app.command("torch")
@handle_errors
def export_torch_command(
    factory: str = typer.Argument(..., metavar="MODULE:FACTORY",
                                  help="A module (dotted name or path to a .py file) and a function in it that returns "
                                       "the nn.Module, e.g. models/scrfd.py:build"),
    input_shape: list[str] = typer.Option(..., "--input-shape", "-s",
                                          help="Example input shape, e.g. 1x3x320x320; once per forward argument, in order."),
    output: Path = typer.Option(..., "--output", "-o", help="The .onnx file to write."),
    exporter: str = typer.Option("dynamo", "--exporter", help="dynamo (torch.export) or torchscript (the tracer)."),
    opset: int = typer.Option(17, "--opset", help="ONNX opset to export to."),
    dynamic_batch: bool = typer.Option(True, "--dynamic-batch/--no-dynamic-batch",
                                       help="Make axis 0 of every input a symbolic batch (default) or keep it fixed."),
    as_json: Json = False,
) -> None:
    """Export MODULE:FACTORY() to ONNX, repair its batch, verify it against torch, and save it."""
    import torch

    from onnxfit.exporters.torch_onnx import EXPORTERS, build_module, export_torch

    if exporter not in EXPORTERS:
        raise OnnxfitError(f"--exporter {exporter}: choose from {', '.join(EXPORTERS)}")
    from onnxfit.model_inputs import parse_shape

    shapes = [parse_shape(s) for s in input_shape]
    module = build_module(factory)
    # Zeros are enough: the exporters trace shapes, and verification draws its own random inputs.
    example = tuple(torch.zeros(shape) for shape in shapes)
    result = export_torch(module, example, output, dynamic_batch=dynamic_batch, opset=opset, exporter=exporter)
    if as_json:
        print_json(result.to_dict())
        return
    table = Table(title=escape(f"{factory} -> {result.path}"), title_justify="left")
    table.add_column("what")
    table.add_column("result")
    rows = [("exporter", f"{result.exporter}, opset {result.opset}, IR {result.ir_version}")]
    from onnxfit.shapes import dims_text

    rows += [(f"{kind} {t.name}", f"{t.dtype} {dims_text(t.shape)}")
             for kind, tensors in (("input", result.inputs), ("output", result.outputs)) for t in tensors.values()]
    rows += [(f"pass {r.name}", f"{r.rewritten} rewritten, {r.folded} folded" if r.changed else "nothing to do")
             for r in result.passes]
    rows += [(check.name, check.summary) for check in result.verify.checks]
    rows += [("note", note) for note in result.notes]
    for what, text in rows:
        # Shapes, node names and exporter messages carry [brackets] that rich would take for markup.
        table.add_row(escape(what), escape(text))
    console.print(table)


