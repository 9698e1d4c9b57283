"""One optimize run as data (``OptimizeJob``) and the one flow every caller runs it through.

The CLI (``onnxfit optimize``), the Python API (``optimize``, ``optimize_model``, ``prepare``),
the exporters and the benchmark scripts all build an ``OptimizeJob``: options are parsed and
checked once, in ``OptimizeJob.create``, and a parameter can be followed from the flag or argument
to the pass that reads it. ``run_job`` then runs

    rewrite (into the output file, or through the per-machine cache)
    -> partitions before/after on the target -> advice where some are left -> verify

and returns a ``JobResult`` whose ``to_dict()`` is the JSON ``onnxfit optimize --json`` prints
for a model. A job is a frozen dataclass of plain values: ``--jobs N`` sends it to worker processes.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from onnxfit.batch_axes import parse_batch_axes
from onnxfit.errors import OnnxfitError
from onnxfit.fixed_inputs import parse_fixed_inputs
from onnxfit.model import parse_input_shapes
from onnxfit.versions import Version, format_version, installed_ort_version, parse_version

if TYPE_CHECKING:
    from onnxfit.advice import Advice
    from onnxfit.optimizer.cache import PrepareResult
    from onnxfit.optimizer.optimize import OptimizeResult
    from onnxfit.verify.partitions import PartitionReport
    from onnxfit.verify.report import VerifyReport

__all__ = ["OptimizeJob", "JobResult", "run_job", "model_bytes"]

# Counting partitions opens an ONNX Runtime session on the model before and after (seconds and
# the model's size in memory for a 500 MB generator, more than the rewrite itself): by default
# only below this size; --partitions / --no-partitions decide explicitly.
_AUTO_PARTITIONS_MAX_BYTES = 256 * 10**6


@dataclass(frozen=True)
class OptimizeJob:
    """Everything one optimize run of one model needs, parsed and checked (build with ``create``)."""

    model: Path | None  # the source file; None for a model the caller holds in memory (optimize_model)
    output: Path | None = None  # where the result is written; None: nowhere (or only the cache)
    target: str = "coreml"  # a target name; "auto" is resolved by create() (with the cache)
    passes: tuple[str, ...] | None = None  # replaces the target's passes
    input_shapes: dict[str | None, tuple[int, ...]] = field(default_factory=dict)  # None: the only input
    fixed_inputs: dict[str, np.ndarray] = field(default_factory=dict)  # inputs that become constants
    dynamic_batch: bool = False
    batch_axes: dict[str, int | None] = field(default_factory=dict)  # for dynamic-batch
    keep_inputs: tuple[str, ...] = ()  # initializer-inputs keeps these overridable
    simplify: bool = False  # onnxsim first
    exact: bool = False  # only bit-exact passes (select_passes drops those that change rounding)
    # The onnxruntime the model will run on: passes skip what its EP does natively, partitions are
    # estimated for it. None: any release. Through the cache the rewrite is for the installed one
    # (it is part of the cache key); this then only picks the release partitions are counted for.
    ort_version: Version | None = None
    check_each: bool = False  # the onnx checker after every pass
    external_data: bool | None = None  # save_model's choice when None
    cache: bool = False  # build or reuse the per-machine cache entry (prepare)
    cache_dir: Path | None = None
    partitions: bool | None = False  # count before/after; None: for models up to 256 MB
    advice: bool = False  # where partitions are left, the flags predicted to cut them
    verify: bool = False  # the result against the original

    @classmethod
    def create(
        cls,
        model: str | os.PathLike | None,
        output: str | os.PathLike | None = None,
        *,
        target: str = "coreml",
        passes: Iterable[str] | None = None,
        input_shapes: Mapping[str | None, Sequence[int]] | Iterable[str] | None = None,
        fixed_inputs: Mapping[str, object] | Iterable[str] | None = None,
        dynamic_batch: bool = False,
        batch_axes: Mapping[str, int | None] | Iterable[str] | None = None,
        keep_inputs: Iterable[str] | None = None,
        simplify: bool = False,
        exact: bool = False,
        ort_version: str | Version | None = None,
        check_each: bool = False,
        external_data: bool | None = None,
        cache: bool = False,
        cache_dir: str | os.PathLike | None = None,
        partitions: bool | None = False,
        advice: bool = False,
        verify: bool = False,
    ) -> OptimizeJob:
        """Parse API or CLI forms (``{"x": (1, 3, 64, 64)}`` or ``["x=1x3x64x64"]``, ``"1.25"`` or
        ``(1, 25)``, ...) and check them: a bad option fails here, before any model is loaded."""
        if target == "auto":
            if not cache:
                raise OnnxfitError("--target auto picks the EP of this machine and needs --cache; name a target instead")
            from onnxfit.optimizer.cache import auto_target

            target = auto_target()
        from onnxfit.optimizer.optimize import select_passes
        from onnxfit.optimizer.pipeline import get_passes
        from onnxfit.targets import get_target

        get_target(target)
        if isinstance(ort_version, str):
            ort_version = parse_version(ort_version, "--ort-version")
        passes = tuple(passes) if passes else None
        get_passes(select_passes(target, list(passes) if passes else None, dynamic_batch, simplify=simplify,
                                 exact=exact))
        return cls(
            model=Path(model) if model is not None else None,
            output=Path(output) if output is not None else None,
            target=target,
            passes=passes,
            input_shapes=_input_shapes(input_shapes),
            fixed_inputs=_fixed_inputs(fixed_inputs),
            dynamic_batch=dynamic_batch,
            batch_axes=parse_batch_axes(list(batch_axes) if _is_list(batch_axes) else batch_axes),
            keep_inputs=tuple(keep_inputs or ()),
            simplify=simplify,
            exact=exact,
            ort_version=tuple(ort_version) if ort_version is not None else None,
            check_each=check_each,
            external_data=external_data,
            cache=cache,
            cache_dir=Path(cache_dir) if cache_dir is not None else None,
            partitions=partitions,
            advice=advice,
            verify=verify,
        )

    @property
    def rewrite_ort_version(self) -> Version | None:
        """The onnxruntime the passes rewrite for: the installed one through the cache."""
        return installed_ort_version() if self.cache else self.ort_version

    def pass_names(self) -> list[str]:
        """The passes this job runs, in order (the target's, or ``passes``, plus dynamic-batch/simplify)."""
        from onnxfit.optimizer.optimize import select_passes

        return select_passes(self.target, list(self.passes) if self.passes else None, self.dynamic_batch,
                             self.rewrite_ort_version, simplify=self.simplify, exact=self.exact)

    def counts_partitions(self) -> bool:
        if self.partitions is not None:
            return self.partitions
        return model_bytes(self.model) <= _AUTO_PARTITIONS_MAX_BYTES


def _is_list(value) -> bool:
    return value is not None and not isinstance(value, Mapping)


def _input_shapes(shapes) -> dict[str | None, tuple[int, ...]]:
    if not shapes:
        return {}
    if _is_list(shapes):
        return parse_input_shapes(list(shapes))
    return {name: tuple(dims) for name, dims in shapes.items()}


def _fixed_inputs(values) -> dict[str, np.ndarray]:
    if not values:
        return {}
    if _is_list(values):
        return parse_fixed_inputs(list(values))
    return {str(name): np.asarray(value) for name, value in values.items()}


def model_bytes(path: Path) -> int:
    """The model file plus external data files next to it named after it (model.onnx.data, ...)."""
    return path.stat().st_size + sum(p.stat().st_size for p in path.parent.glob(f"{path.name}.*") if p.is_file())


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
        if job.advice and not job.input_shapes and not job.fixed_inputs:
            result.advice = _advise(job, result)
    elif job.partitions is None:
        result.partitions_note = (f"model over {_AUTO_PARTITIONS_MAX_BYTES // 10**6} MB: counting loads it "
                                  "into two ONNX Runtime sessions; pass --partitions to count")
    if job.verify:
        _verify(job, result)
    return result


def _optimize(job: OptimizeJob) -> JobResult:
    from onnxfit.model import keeps_weights_outside, load_model, save_model
    from onnxfit.optimizer.optimize import OptimizeResult, rewrite_model

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
    from onnxfit.optimizer.cache import prepare_job

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
    from onnxfit.verify.partitions import count_partitions

    version = format_version(job.ort_version) if job.ort_version else None
    try:
        before = count_partitions(job.model, job.target, version)
        after = before if result.path == job.model else count_partitions(result.path, job.target, version)
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
    """Flags predicted to cut the partitions left (see onnxfit.advice); only where some are left."""
    from onnxfit.advice import advise
    from onnxfit.model import load_model

    after = result.partitions[1].partitions if result.partitions is not None else None
    if after is None or after == 1:
        return []
    version = format_version(job.ort_version) if job.ort_version else None
    return advise(load_model(job.model), job.target, version, partitions_now=after)


def _verify(job: OptimizeJob, result: JobResult) -> None:
    """The optimized model against the original, per frame when the batch became dynamic."""
    from onnxfit.verify import verify

    if result.path == job.model:
        result.verify_note = "nothing was rewritten: the original is used"
        return
    result.verify = verify(result.path, reference=job.model, input_shapes=job.input_shapes or None,
                           fixed_inputs=job.fixed_inputs or None)
