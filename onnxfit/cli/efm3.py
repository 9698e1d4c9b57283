"""`onnxfit efm3 verify|inspect` and `onnxfit export efm3`: FaceX MobileFaceNet weight files."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from onnxfit.cli.options import Json
from onnxfit.cli.common import app, console, export_app, handle_errors, print_json
from onnxfit.errors import OnnxfitError
from onnxfit.exporters.mobilefacenet_arch import ARCHS

efm3_app = typer.Typer(help="Inspect and verify EFM3 .bin files (FaceX MobileFaceNet weights).", no_args_is_help=True)
app.add_typer(efm3_app, name="efm3")


@efm3_app.command("verify")
@handle_errors
def verify_command(
    file: Path = typer.Argument(..., help="EFM3 .bin file."),
    onnx: Path | None = typer.Option(None, "--onnx", help="Compare with this ONNX twin on ONNX Runtime."),
    torch_reference: bool = typer.Option(False, "--torch", help="Compare with torch (the default without --onnx)."),
    batch: int = typer.Option(4, "--batch", min=1, help="Images per run."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random face-like inputs."),
    as_json: Json = False,
) -> None:
    """Run FILE with the numpy engine and a reference; exit 0 if max abs error <= 1e-5, else 1."""
    if onnx is not None and torch_reference:
        raise OnnxfitError("--onnx and --torch pick the reference: give one of them")
    from onnxfit.exporters.efm3 import TOLERANCE, verify_efm3  # a verb imports what it runs when it runs: --help stays fast

    result = verify_efm3(file, onnx, batch=batch, seed=seed, tolerance=TOLERANCE)
    if as_json:
        print_json(result.to_dict())
    else:
        verdict = "[green]PASS[/green]" if result.passed else "[red]FAIL[/red]"
        console.print(
            f"{verdict} {result.file} ({result.arch}) vs {result.reference}: max abs error "
            f"{result.max_abs_err:.3g} (tolerance {result.tolerance:g}), min cosine {result.min_cosine:.7f}, "
            f"batch {result.batch}, seed {result.seed}"
        )
    if not result.passed:
        raise typer.Exit(1)


@efm3_app.command("inspect")
@handle_errors
def inspect_command(
    file: Path = typer.Argument(..., help="EFM3 .bin file."),
    as_json: Json = False,
) -> None:
    """Validate FILE and show its arch header, JSON copy, tensor count, layer shapes and size."""
    from onnxfit.exporters.efm3 import inspect_efm3  # a verb imports what it runs when it runs: --help stays fast

    info = inspect_efm3(file)
    if as_json:
        print_json(info)
        return
    header = info["header"]
    stages = " ".join(f"({s['t']},{s['n']},{s['s']})" for s in header["stages"])
    console.print(f"{info['file']}: EFM{info['version']}, {info['file_size']} bytes, "
                  f"{info['n_tensors']} tensors, {info['parameters']} parameters")
    console.print(f"arch {info['json']['name']} width {info['json']['width_mult']}: stem {header['stem_channels']}, "
                  f"blocks {header['block_channels']}, final {header['final_channels']}, "
                  f"embedding {header['embedding_dim']}, GDConv {header['gdc_kernel']}, stages (t,n,s) {stages}")
    table = Table("layer", "conv weight", "stride", "groups", "prelu")
    for layer in info["layers"]:
        table.add_row(layer["name"], "x".join(map(str, layer["conv"])), str(layer["stride"]), str(layer["groups"]),
                      "yes" if layer["prelu"] else "")
    console.print(table)


@export_app.command("efm3")
@handle_errors
def export_efm3_command(
    source: Path = typer.Argument(..., help="ONNX MobileFaceNet (.onnx) or torch checkpoint (.pt/.pth)."),
    output: Path = typer.Option(..., "--output", "-o", help="EFM3 .bin to write."),
    arch: str | None = typer.Option(None, "--arch", help=f"{', '.join(ARCHS)}; inferred from weights if omitted."),
    as_json: Json = False,
) -> None:
    """Write an EFM3 weight file from an ONNX MobileFaceNet or a torch state_dict/module."""
    from onnxfit.exporters.efm3 import export_efm3  # a verb imports what it runs when it runs: --help stays fast

    written = export_efm3(source, output, arch)
    summary = {"source": str(source), "output": str(output), "arch": written.arch.name,
               "n_tensors": len(written.tensors), "file_size": written.file_size}
    if as_json:
        print_json(summary)
    else:
        console.print(f"wrote {output}: {written.arch.name}, {len(written.tensors)} tensors, {written.file_size} bytes")
