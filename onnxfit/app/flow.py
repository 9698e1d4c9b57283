"""The flow every job runs: rewrite -> partitions before/after -> advice -> verify.

``run_job`` returns a ``JobResult`` whose ``to_dict()`` is the JSON ``onnxfit optimize --json``
prints for a model.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from onnxfit.app.advice import Advice, advise
from onnxfit.app.cache import PrepareResult
from onnxfit.app.prepare import prepare_job
from onnxfit.app.job import AUTO_PARTITIONS_MAX_BYTES, OptimizeJob
from onnxfit.app.rewrite import OptimizeResult, rewrite_model
from onnxfit.errors import OnnxfitError
from onnxfit.model import keeps_weights_outside, load_model, save_model
from onnxfit.targets.partitions import PartitionReport, count_partitions
from onnxfit.verification import verify
from onnxfit.verification.report import VerifyReport

__all__ = ["JobResult", "run_job"]


@dataclass
class JobResult:
    """What ``run_job`` did; ``to_dict()`` is the per-model JSON of ``onnxfit optimize --json``."""

    job: OptimizeJob
    optimized: OptimizeResult | None = None  # the rewrite, without the cache
    prepared: PrepareResult | None = None  # the cache entry, with it
    output: Path | None = None  # the file written for -o
    partitions: tuple[PartitionReport, PartitionReport] | None = None  # before, after
    partitions_note: str | None = None  # why partitions were not counted
    advice: list[Advice] | None = None  # None: not asked for
    verify: VerifyReport | None = None
    verify_note: str | None = None  # verify asked for, nothing to compare

    @property
    def path(self) -> Path:
        """The model to load: the cache entry (or the source it points back to), else the output."""
        return self.prepared.path if self.prepared is not None else self.output

    def to_dict(self) -> dict:
        if self.prepared is not None:
            entry = self.prepared
            result = {"model": str(self.job.model), "output": str(self.output) if self.output else None,
                      "target": self.job.target, "cached": str(entry.path), "hit": entry.hit,
                      "changed": entry.rewritten, "key": entry.key, "passes": entry.meta.get("passes", [])}
        else:
            result = self.optimized.to_dict()
        if self.partitions is not None:
            before, after = self.partitions
            result["partitions"] = {"before": before.to_dict(), "after": after.to_dict()}
            if after.partitions > before.partitions > 0:  # from 0, any partition is the EP taking nodes
                result["partitions"]["why_more"] = _why_more_partitions(before, after)
        elif self.partitions_note is not None:
            result["partitions"] = {"note": self.partitions_note}
        if self.advice is not None:
            result["advice"] = [a.to_dict() | {"text": str(a)} for a in self.advice]
        if self.verify is not None:
            result["verify"] = self.verify.to_dict()
        elif self.verify_note is not None:
            result["verify"] = {"ok": True, "checks": [], "note": self.verify_note}
        return result


def run_job(job: OptimizeJob) -> JobResult:
    """Rewrite -> partitions -> advice -> verify, each step only where the job asks for it."""
    result = _prepare(job) if job.cache else _optimize(job)
    if job.counts_partitions():
        _count_partitions(job, result)
        if job.advice and not job.inputs.given():
            result.advice = _advise(job, result)
    elif job.partitions is None:
        result.partitions_note = (f"model over {AUTO_PARTITIONS_MAX_BYTES // 10**6} MB: counting loads it "
                                  "into two ONNX Runtime sessions; pass --partitions to count")
    if job.verify:
        _verify(job, result)
    return result


def _optimize(job: OptimizeJob) -> JobResult:
    source = load_model(job.model, lazy_weights=True)
    pipeline = rewrite_model(source, job)
    output = None
    if job.output is not None:
        # Weights stay outside where the source kept them outside (model.onnx + model.onnx.data).
        outside = job.external_data if job.external_data is not None else keeps_weights_outside(source, job.model) or None
        output = save_model(pipeline.model, job.output, external_data=outside)
    return JobResult(job, optimized=OptimizeResult(job.model, output, job.target, pipeline), output=output)


def _prepare(job: OptimizeJob) -> JobResult:
    """Build or reuse the cached model; copy it to the output when one was given."""
    entry = prepare_job(job)
    output = None
    if job.output is not None:
        tmp = job.output.with_name(f".{job.output.name}.tmp")
        shutil.copyfile(entry.path, tmp)
        tmp.replace(job.output)
        output = job.output
    return JobResult(job, prepared=entry, output=output)


def _count_partitions(job: OptimizeJob, result: JobResult) -> None:
    """Partition counts on the target for the original and the result (real or estimated)."""
    try:
        before = count_partitions(job.model, job.target, job.ort_version)
        after = before if result.path == job.model else count_partitions(result.path, job.target, job.ort_version)
    except OnnxfitError as exc:  # e.g. cuda without the CUDA EP: no profile to estimate with
        result.partitions_note = str(exc)
        return
    result.partitions = (before, after)


def _why_more_partitions(before: PartitionReport, after: PartitionReport) -> str:
    """A result split into more partitions than its original is never shown without a reason."""
    if after.nodes_on_ep > before.nodes_on_ep:
        return (f"{after.nodes_on_ep - before.nodes_on_ep} more node(s) run on the EP, in partitions between nodes "
                "it still refuses (listed as still on CPU); fewer partitions need those nodes taken by the EP too")
    return ("no more nodes run on the EP, yet they are split into more partitions: this is an onnxfit bug, please "
            "report it with the model")


def _advise(job: OptimizeJob, result: JobResult) -> list[Advice]:
    """Flags predicted to cut the partitions left (see onnxfit.app.advice); only where some are left."""
    after = result.partitions[1].partitions if result.partitions is not None else None
    if after is None or after == 1:
        return []
    return advise(load_model(job.model), job.target, job.ort_version, partitions_now=after)


def _verify(job: OptimizeJob, result: JobResult) -> None:
    """The optimized model against the original, per frame when the batch became dynamic."""
    if result.path == job.model:
        result.verify_note = "nothing was rewritten: the original is used"
        return
    result.verify = verify(result.path, reference=job.model, model_inputs=job.inputs)
