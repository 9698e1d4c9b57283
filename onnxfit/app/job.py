"""One optimize run as data (``OptimizeJob``) and the one flow every caller runs it through.

The CLI (``onnxfit optimize``), the Python API (``optimize``, ``optimize_model``, ``prepare``),
the exporters and the benchmark scripts all build an ``OptimizeJob``: options are parsed and
checked once, in ``OptimizeJob.create``, and a parameter can be followed from the flag or argument
to the pass that reads it. ``rewrite_model`` (``onnxfit.app.rewrite``) is a job's rewrite step:
it hands the engine a model and a ``PassContext``, never the job; ``run_job``
(``onnxfit.app.flow``) runs the rest. Building a job imports no engine: a cache hit runs on it.
A job is a frozen dataclass of plain values: ``--jobs N`` sends it to worker processes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from onnxfit.app.cache import Cache
from onnxfit.errors import OnnxfitError
from onnxfit.model_inputs import ModelInputs
from onnxfit.optimizer.catalog import check_names
from onnxfit.optimizer.selection import select_passes
from onnxfit.targets import auto_target, get_target
from onnxfit.versions import OrtRelease, installed_ort_version

__all__ = ["OptimizeJob", "model_bytes"]

# Counting partitions opens an ONNX Runtime session on the model before and after (seconds and
# the model's size in memory for a 500 MB generator, more than the rewrite itself): by default
# only below this size; --partitions / --no-partitions decide explicitly.
AUTO_PARTITIONS_MAX_BYTES = 256 * 10**6


@dataclass(frozen=True)
class OptimizeJob:
    """Everything one optimize run of one model needs, parsed and checked (build with ``create``)."""

    model: Path | None  # the source file; None for a model the caller holds in memory (optimize_model)
    output: Path | None = None  # where the result is written; None: nowhere (or only the cache)
    target: str = "coreml"  # a target name; "auto" is resolved by create() (with the cache)
    passes: tuple[str, ...] | None = None  # replaces the target's passes
    inputs: ModelInputs = field(default_factory=ModelInputs)  # shapes, batch axes, fixed and kept inputs
    dynamic_batch: bool = False
    simplify: bool = False  # onnxsim first
    exact: bool = False  # only bit-exact passes (select_passes drops those that change rounding)
    # The onnxruntime the model will run on: passes skip what its EP does natively, partitions are
    # estimated for it. None: any release. Through the cache the rewrite is for the installed one
    # (it is part of the cache key); this then only picks the release partitions are counted for.
    ort_version: OrtRelease | None = None
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
        ort_version: str | tuple[int, int] | OrtRelease | None = None,
        check_each: bool = False,
        external_data: bool | None = None,
        cache: bool = False,
        cache_dir: str | os.PathLike | None = None,
        partitions: bool | None = False,
        advice: bool = False,
        verify: bool = False,
        inputs: ModelInputs | None = None,
    ) -> OptimizeJob:
        """Parse API or CLI forms (``{"x": (1, 3, 64, 64)}`` or ``["x=1x3x64x64"]``, ``"1.25"`` or
        ``(1, 25)``, ...) and check them: a bad option fails here, before any model is loaded.
        ``inputs`` (a ``ModelInputs``) stands for the four input keywords."""
        if target == "auto":
            if not cache:
                raise OnnxfitError("--target auto picks the EP of this machine and needs --cache; name a target instead")
            target = auto_target(Cache(cache_dir).providers())
        get_target(target)
        ort_version = OrtRelease.parse(ort_version, "--ort-version")
        passes = tuple(passes) if passes else None
        check_names(select_passes(target, list(passes) if passes else None, dynamic_batch, simplify=simplify,
                                  exact=exact))
        return cls(
            model=Path(model) if model is not None else None,
            output=Path(output) if output is not None else None,
            target=target,
            passes=passes,
            inputs=ModelInputs.of(inputs, input_shapes=input_shapes, batch_axes=batch_axes,
                                  fixed_inputs=fixed_inputs, keep_inputs=keep_inputs),
            dynamic_batch=dynamic_batch,
            simplify=simplify,
            exact=exact,
            ort_version=ort_version,
            check_each=check_each,
            external_data=external_data,
            cache=cache,
            cache_dir=Path(cache_dir) if cache_dir is not None else None,
            partitions=partitions,
            advice=advice,
            verify=verify,
        )

    @property
    def rewrite_ort_version(self) -> OrtRelease | None:
        """The onnxruntime the passes rewrite for: the installed one through the cache."""
        return installed_ort_version() if self.cache else self.ort_version

    def pass_names(self) -> list[str]:
        """The passes this job runs, in order (the target's, or ``passes``, plus dynamic-batch/simplify)."""
        return select_passes(self.target, list(self.passes) if self.passes else None, self.dynamic_batch,
                             simplify=self.simplify, exact=self.exact)

    def counts_partitions(self) -> bool:
        if self.partitions is not None:
            return self.partitions
        return model_bytes(self.model) <= AUTO_PARTITIONS_MAX_BYTES


def model_bytes(path: Path) -> int:
    """The model file plus external data files next to it named after it (model.onnx.data, ...)."""
    return path.stat().st_size + sum(p.stat().st_size for p in path.parent.glob(f"{path.name}.*") if p.is_file())
