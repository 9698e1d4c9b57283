"""`onnxfit.optimize`: load a model, run the target's passes, save atomically (the rewrite step of a job)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from onnxfit.fixed_inputs import resolve_fixed_inputs
from onnxfit.graphs import default_opset, imports_default_opset
from onnxfit.model import resolve_input_shapes
from onnxfit.optimizer.job import OptimizeJob, run_job
from onnxfit.optimizer.pipeline import PassContext, PipelineResult, get_passes, run_passes
from onnxfit.targets import get_target

__all__ = ["optimize", "optimize_model", "rewrite_model", "OptimizeResult", "select_passes"]


@dataclass
class OptimizeResult:
    source: Path | None
    output: Path | None
    target: str
    pipeline: PipelineResult

    @property
    def model(self) -> onnx.ModelProto:
        return self.pipeline.model

    def to_dict(self) -> dict:
        return {
            "model": str(self.source) if self.source else None,
            "output": str(self.output) if self.output else None,
            "target": self.target,
            "changed": self.pipeline.changed,
            "passes": [r.to_dict() for r in self.pipeline.reports],
            "ops_before": dict(sorted(self.pipeline.ops_before.items())),
            "ops_after": dict(sorted(self.pipeline.ops_after.items())),
            "nodes_before": sum(self.pipeline.ops_before.values()),
            "nodes_after": sum(self.pipeline.ops_after.values()),
        }


def select_passes(target: str, passes: list[str] | None = None, dynamic_batch: bool = False,
                  ort_version: tuple[int, int] | None = None, simplify: bool = False,
                  exact: bool = False) -> list[str]:
    """The pass names a run uses: ``passes`` if given, else the target's, plus dynamic-batch and simplify.

    ``exact``: the target's passes that change float rounding (``exact = False``: folds into
    weights, native functions) are left out; passes named in ``passes`` are run as asked.

    ``ort_version`` (the onnxruntime the model will run on) does not change the list: passes ask
    the target's profile about each node they would rewrite (``MatchContext.target_takes``).
    """
    preset = get_target(target)
    names = list(passes) if passes else list(preset.passes)
    if exact and not passes:
        from onnxfit.optimizer.pipeline import is_exact

        names = [n for n in names if is_exact(n)]
    if simplify and "simplify" not in names:
        # simplify before the EP passes, after dynamic-batch (inserted next): onnxsim then keeps
        # the batch symbolic instead of folding batch 1 into constants dynamic-batch must repair.
        names.insert(0, "simplify")
    if dynamic_batch and "dynamic-batch" not in names:
        # dynamic-batch first: shape folding must then keep the batch symbolic.
        names.insert(0, "dynamic-batch")
    return names


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
) -> PipelineResult:
    """Run the passes on an in-memory model (not modified); returns the pipeline result.

    ``ort_version``: the onnxruntime the model will run on, when known (``prepare`` passes the
    installed one). Unknown means "any version": every Pad the oldest EP release rejects is rewritten.
    """
    job = OptimizeJob.create(None, target=target, passes=passes, input_shapes=input_shapes,
                             dynamic_batch=dynamic_batch, ort_version=ort_version, check_each=check_each,
                             batch_axes=batch_axes, fixed_inputs=fixed_inputs, simplify=simplify,
                             keep_inputs=keep_inputs, exact=exact)
    return rewrite_model(model, job)


def rewrite_model(model: onnx.ModelProto, job: OptimizeJob) -> PipelineResult:
    """The rewrite step of every job: its passes on ``model`` (not modified), with its context."""
    # A model of ai.onnx.ml or training ops only has no node a pass rewrites: it goes through as
    # it is (its fixed inputs, if any, still become constants).
    names = job.pass_names() if imports_default_opset(model) else []
    version = job.rewrite_ort_version
    ctx = PassContext(opset=default_opset(model) if names else 0, input_shapes=resolve_input_shapes(model, job.input_shapes),
                      target=job.target, ort_version=version,
                      dynamic_batch="dynamic-batch" in names, batch_axes=dict(job.batch_axes),
                      fixed_inputs=resolve_fixed_inputs(model, job.fixed_inputs),
                      overridable_inputs=frozenset(job.keep_inputs))
    return run_passes(model, get_passes(names), ctx, check_each=job.check_each)


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
) -> OptimizeResult:
    """Optimize the model at ``model_path`` for ``target`` and write it to ``output`` (if given).

    ``input_shapes``: ``{"images": (1, 3, 640, 640)}``, ``{None: (1, 3, 640, 640)}`` for the only
    input, or CLI-style strings ``["images=1x3x640x640"]``. ``batch_axes``: ``{"state": 1}`` or
    ``["state=1"]`` for inputs whose dim names do not say where the batch is (dynamic-batch).
    ``fixed_inputs``: ``{"sr": 16000}`` or ``["sr=16000"]``: those inputs become constants.
    ``keep_inputs``: initializers listed as graph inputs that stay overridable (initializer-inputs).
    ``exact``: only bit-exact rewrites (no folds into weights, no native functions).
    """
    job = OptimizeJob.create(model_path, output, target=target, passes=passes, input_shapes=input_shapes,
                             dynamic_batch=dynamic_batch, external_data=external_data, ort_version=ort_version,
                             check_each=check_each, batch_axes=batch_axes, fixed_inputs=fixed_inputs,
                             simplify=simplify, keep_inputs=keep_inputs, exact=exact)
    return run_job(job).optimized
