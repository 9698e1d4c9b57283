"""``onnxfit.prepare()``: the model to load on this machine, rewritten once and kept in the cache.

A hit is what an application pays at every start, in a fresh process: it reads JSON and ``stat``s
and imports neither onnx nor graph-surgeon nor onnxruntime (pass versions come from the pass
catalog, the onnxruntime release from its package metadata); only a miss imports the engine."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import time
from pathlib import Path

from onnxfit import __version__
from onnxfit.app.cache import ARTEFACT, Cache, PrepareResult, array_digest, file_digest_of_strings
from onnxfit.app.job import OptimizeJob
from onnxfit.errors import OnnxfitError
from onnxfit.model_inputs import ModelInputs
from onnxfit.optimizer.catalog import pass_labels
from onnxfit.versions import installed_ort_text

__all__ = ["prepare", "prepare_entry", "prepare_job"]


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
    return prepare_job(job)


def prepare_job(job: OptimizeJob) -> PrepareResult:
    """The cache step of ``run_job``: the entry for the job's key, built with its rewrite on a miss."""
    if not job.model.is_file():
        raise OnnxfitError(f"{job.model}: no such file")
    names = job.pass_names()
    cache = Cache(job.cache_dir)
    cache.ensure()
    key_parts = {
        "source_digest": cache.source_digest(job.model),
        "passes": pass_labels(names),
        "target": job.target,
        "onnxruntime": installed_ort_text(),
        "input_shapes": {str(k): list(v) for k, v in job.inputs.shapes.items()},
        "dynamic_batch": job.dynamic_batch,
        "fixed_inputs": {k: [str(v.dtype), list(v.shape), array_digest(v)] for k, v in sorted(job.inputs.fixed.items())},
        "keep_inputs": sorted(set(job.inputs.keep)),
        "onnxfit": __version__,
        "os": platform.system(),
        "machine": platform.machine(),
    }
    if job.inputs.batch_axes:  # only when given: the keys of every other entry stay as they were
        key_parts["batch_axes"] = dict(sorted(job.inputs.batch_axes.items()))
    if "simplify" in names:
        # onnxsim's rewrites change between its releases: a new one builds a new entry.
        key_parts["onnxsim"] = importlib.metadata.version("onnxsim")
    key = file_digest_of_strings([json.dumps(key_parts, sort_keys=True)])

    meta = cache.lookup(key)
    hit = meta is not None
    if meta is None:
        def builder(tmp_dir: Path) -> dict:
            # Deferred: only a miss loads and rewrites the model; a hit reads JSON and stats.
            from onnxfit.app.rewrite import rewrite_model
            from onnxfit.model import load_model, save_model

            result = rewrite_model(load_model(job.model, lazy_weights=True), job)
            meta = {"source": str(job.model.resolve()), "key": key_parts, "created": time.time(),
                    "unchanged": not result.changed, "passes": [r.to_dict() for r in result.reports]}
            if result.changed:
                save_model(result.model, tmp_dir / ARTEFACT)
            return meta

        meta = cache.build(key, builder)
        hit = meta.pop("_hit")
    cache.touch(key)
    if meta.get("unchanged"):
        return PrepareResult(job.model, hit, key, rewritten=False, meta=meta)
    return PrepareResult(cache.entries_dir / key / ARTEFACT, hit, key, rewritten=True, meta=meta)
