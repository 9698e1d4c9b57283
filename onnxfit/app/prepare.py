"""``onnxfit.prepare()``: the model to load on this machine, rewritten once and kept in the cache."""

from __future__ import annotations

import os
from pathlib import Path

from onnxfit.app.cache import PrepareResult
from onnxfit.app.flow import run_job
from onnxfit.app.job import OptimizeJob
from onnxfit.model_inputs import ModelInputs

__all__ = ["prepare", "prepare_entry"]


def prepare(
    model_path: str | os.PathLike,
    target: str = "auto",
    input_shapes: dict | None = None,
    dynamic_batch: bool = False,
    cache_dir: str | os.PathLike | None = None,
    fixed_inputs: dict | None = None,
    simplify: bool = False,
    keep_inputs: list[str] | None = None,
    batch_axes: dict[str, int | None] | list[str] | None = None,
    model_inputs: ModelInputs | None = None,
) -> Path:
    """The path of the model to load on this machine, building the optimized model on a miss.

    Returns the source path itself when no pass changes the model for this target.
    ``fixed_inputs``: ``{"sr": 16000}``: those inputs become constants (and part of the key).
    ``simplify``: run onnxsim first (the ``simplify`` pass and the onnxsim version join the key).
    ``keep_inputs``: initializers listed as graph inputs that stay overridable (part of the key).
    ``batch_axes``: ``{"state": 1}`` for dynamic-batch where dim names do not say (part of the key).
    ``model_inputs``: a ``ModelInputs`` in place of the four input keywords. The rewrite is for the
    installed onnxruntime (part of the key), so there is no ``ort_version`` to give.
    """
    return prepare_entry(model_path, target, input_shapes, dynamic_batch, cache_dir, fixed_inputs=fixed_inputs,
                         simplify=simplify, keep_inputs=keep_inputs, batch_axes=batch_axes,
                         model_inputs=model_inputs).path


def prepare_entry(
    model_path: str | os.PathLike,
    target: str = "auto",
    input_shapes: dict | None = None,
    dynamic_batch: bool = False,
    cache_dir: str | os.PathLike | None = None,
    passes: list[str] | None = None,
    fixed_inputs: dict | list[str] | None = None,
    simplify: bool = False,
    keep_inputs: list[str] | None = None,
    batch_axes: dict[str, int | None] | list[str] | None = None,
    model_inputs: ModelInputs | None = None,
) -> PrepareResult:
    """``prepare`` with the details: the cache key and whether it was a hit."""
    job = OptimizeJob.create(model_path, target=target, passes=passes, input_shapes=input_shapes,
                             fixed_inputs=fixed_inputs, dynamic_batch=dynamic_batch, simplify=simplify,
                             keep_inputs=keep_inputs, batch_axes=batch_axes, cache=True, cache_dir=cache_dir,
                             inputs=model_inputs)
    return run_job(job).prepared
