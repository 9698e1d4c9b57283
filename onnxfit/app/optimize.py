"""`onnxfit.optimize` and `onnxfit.optimize_model`: one job each, run through the flow every caller uses."""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np
import onnx

from onnxfit.app.flow import run_job
from onnxfit.app.job import OptimizeJob
from onnxfit.app.rewrite import OptimizeResult, rewrite_model
from onnxfit.model_inputs import ModelInputs
from onnxfit.optimizer.pipeline import PipelineResult

__all__ = ["optimize", "optimize_model", "rewrite_model", "OptimizeResult"]


def optimize_model(
    model: onnx.ModelProto,
    target: str = "coreml",
    passes: list[str] | None = None,
    input_shapes: dict[str, tuple[int, ...]] | None = None,
    dynamic_batch: bool = False,
    ort_version: tuple[int, int] | None = None,
    check_each: bool = False,
    batch_axes: dict[str, int | None] | None = None,
    fixed_inputs: dict[str, np.ndarray] | None = None,
    simplify: bool = False,
    keep_inputs: Iterable[str] | None = None,
    exact: bool = False,
    model_inputs: ModelInputs | None = None,
) -> PipelineResult:
    """Run the passes on an in-memory model (not modified); returns the pipeline result.

    ``ort_version``: the onnxruntime the model will run on, when known (``prepare`` passes the
    installed one). Unknown means "any version": every Pad the oldest EP release rejects is rewritten.
    ``model_inputs``: a ``ModelInputs`` in place of the four input keywords.
    """
    job = OptimizeJob.create(None, target=target, passes=passes, input_shapes=input_shapes,
                             dynamic_batch=dynamic_batch, ort_version=ort_version, check_each=check_each,
                             batch_axes=batch_axes, fixed_inputs=fixed_inputs, simplify=simplify,
                             keep_inputs=keep_inputs, exact=exact, inputs=model_inputs)
    return rewrite_model(model, job)


def optimize(
    model_path: str | os.PathLike,
    output: str | os.PathLike | None = None,
    target: str = "coreml",
    passes: list[str] | None = None,
    input_shapes: dict[str | None, tuple[int, ...]] | list[str] | None = None,
    dynamic_batch: bool = False,
    external_data: bool | None = None,
    ort_version: tuple[int, int] | None = None,
    check_each: bool = False,
    batch_axes: dict[str, int | None] | list[str] | None = None,
    fixed_inputs: dict[str, object] | list[str] | None = None,
    simplify: bool = False,
    keep_inputs: Iterable[str] | None = None,
    exact: bool = False,
    model_inputs: ModelInputs | None = None,
) -> OptimizeResult:
    """Optimize the model at ``model_path`` for ``target`` and write it to ``output`` (if given).

    ``input_shapes``: ``{"images": (1, 3, 640, 640)}``, ``{None: (1, 3, 640, 640)}`` for the only
    input, or CLI-style strings ``["images=1x3x640x640"]``. ``batch_axes``: ``{"state": 1}`` or
    ``["state=1"]`` for inputs whose dim names do not say where the batch is (dynamic-batch).
    ``fixed_inputs``: ``{"sr": 16000}`` or ``["sr=16000"]``: those inputs become constants.
    ``keep_inputs``: initializers listed as graph inputs that stay overridable (initializer-inputs).
    ``exact``: only bit-exact rewrites (no folds into weights, no native functions).
    ``model_inputs``: a ``ModelInputs`` in place of the four input keywords (built once, passed on).
    """
    job = OptimizeJob.create(model_path, output, target=target, passes=passes, input_shapes=input_shapes,
                             dynamic_batch=dynamic_batch, external_data=external_data, ort_version=ort_version,
                             check_each=check_each, batch_axes=batch_axes, fixed_inputs=fixed_inputs,
                             simplify=simplify, keep_inputs=keep_inputs, exact=exact, inputs=model_inputs)
    return run_job(job).optimized
