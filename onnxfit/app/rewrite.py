"""A job's rewrite step: the engine's passes on a model, with the pass context built from the job."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import onnx

from onnxfit.app.job import OptimizeJob
from onnxfit.fixed_inputs import resolve_fixed_inputs
from onnxfit.graphs import default_opset, imports_default_opset
from onnxfit.model import resolve_input_shapes
from onnxfit.optimizer.pipeline import PassContext, PipelineResult, get_passes, run_passes

__all__ = ["OptimizeResult", "rewrite_model"]


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


def rewrite_model(model: onnx.ModelProto, job: OptimizeJob) -> PipelineResult:
    """The rewrite step of every job: its passes on ``model`` (not modified), with its context."""
    # A model of ai.onnx.ml or training ops only has no node a pass rewrites: it goes through as
    # it is (its fixed inputs, if any, still become constants).
    names = job.pass_names() if imports_default_opset(model) else []
    version = job.rewrite_ort_version
    inputs = job.inputs
    ctx = PassContext(opset=default_opset(model) if names else 0, input_shapes=resolve_input_shapes(model, inputs.shapes),
                      target=job.target, ort_version=version,
                      dynamic_batch="dynamic-batch" in names, batch_axes=dict(inputs.batch_axes),
                      fixed_inputs=resolve_fixed_inputs(model, inputs.fixed),
                      overridable_inputs=frozenset(inputs.keep))
    return run_passes(model, get_passes(names), ctx, check_each=job.check_each)
