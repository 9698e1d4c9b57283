"""Options shared by the verbs, each declared once (as Polygraphy's argument groups): a verb takes
the ones it needs as typed parameters, and ``model_inputs`` / ``ort_release`` parse them into the one
value the API takes. Parsing imports what it needs when a verb runs, so ``--help`` stays fast."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from onnxfit.targets import target_names

if TYPE_CHECKING:
    from onnxfit.model_inputs import ModelInputs
    from onnxfit.versions import OrtRelease

__all__ = ["BatchAxes", "CacheDir", "FixedInputs", "InputShapes", "Json", "KeepInputs", "OrtVersion", "Target",
           "model_inputs", "ort_release"]

InputShapes = Annotated[list[str], typer.Option(
    "--input-shape", help="Fix an input's shape: NAME=1x3x640x640, or 1x3x640x640 for the only input (repeatable).")]
BatchAxes = Annotated[list[str], typer.Option(
    "--batch-axis", help="NAME=AXIS (or NAME=none): an input's batch axis where its dim names do not tell "
                         "(repeatable).")]
FixedInputs = Annotated[list[str], typer.Option(
    "--fix-input", help="NAME=VALUE (sr=16000, scale=0.5,0.5, mask=@mask.npy): the input becomes a constant and "
                        "leaves the graph inputs; verify feeds it to --reference (default: what optimize recorded) "
                        "(repeatable).")]
KeepInputs = Annotated[list[str], typer.Option(
    "--keep-input", help="NAME of a weight listed among the graph inputs that stays overridable; initializer-inputs "
                         "makes the others constants (repeatable).")]
Target = Annotated[str, typer.Option("--target", "-t", help=f"Target EP: {', '.join(target_names())}.")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of tables.")]
CacheDir = Annotated[Optional[Path], typer.Option(
    "--cache-dir", help="Cache directory (default: $ONNXFIT_CACHE_DIR or the user cache directory).")]
OrtVersion = Annotated[Optional[str], typer.Option(
    "--ort-version", help="The onnxruntime release the model will run on (e.g. 1.25): rewrites its EP does not need "
                          "are skipped, partitions are estimated for it. Default: every release / the installed one.")]


def model_inputs(input_shape: list[str] = (), batch_axis: list[str] = (), fix_input: list[str] = (),
                 keep_input: list[str] = ()) -> ModelInputs:
    """The verb's input options as the one value the API passes on."""
    from onnxfit.model_inputs import ModelInputs

    return ModelInputs.parse(input_shape, batch_axis, fix_input, keep_input)


def ort_release(text: str | None) -> OrtRelease | None:
    from onnxfit.versions import OrtRelease

    return OrtRelease.parse(text, "--ort-version")
