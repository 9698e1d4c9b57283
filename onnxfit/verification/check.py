"""``verify()``: load, make inputs, run the checks, return a ``VerifyReport``.

Checks run in order: parity, contamination, then any ``checks=`` callables (each takes the
``VerifyContext`` and returns a ``Check``; this is how ``partitions`` plugs in). Bad input
(files, names, options, a model ONNX Runtime cannot load) raises ``OnnxfitError``; a failed
check does not raise: the report says so (``report.raise_if_failed()`` turns it into exit 1).

Against ``reference``, contamination judges what the rewrite did: mixing the reference already
has is a note, and the model fails only for mixing it added.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from onnxfit.errors import OnnxfitError, first_line
from onnxfit.fixed_inputs import parse_fixed_inputs, read_fixed_inputs, resolve_fixed_inputs
from onnxfit.model import load_model, parse_input_shapes, resolve_input_shapes
from onnxfit.model_inputs import ModelInputs
from onnxfit.verification.contamination import DEFAULT_BATCH, contamination_check
from onnxfit.verification.inputs import (
    BatchAxes,
    InputSpec,
    as_text,
    batch_axes,
    check_array,
    load_npz,
    make_inputs,
    model_inputs,
)
from onnxfit.verification.parity import chunk_frames, compare_outputs, match_outputs, split_chunks, stack_frames
from onnxfit.verification.partitions_check import partitions_check
from onnxfit.verification.report import Check, VerifyReport
from onnxfit.verification.runtimes import (
    REFERENCE,
    ModelSource,
    Runtime,
    SessionOpener,
    TooCostly,
    default_runtimes,
    make_runtime,
    planned_targets,
    reference_evaluator_gaps,
)
from onnxfit.versions import OrtRelease

__all__ = ["verify", "verify_models", "VerifyContext"]

log = logging.getLogger(__name__)

# verify()'s keywords model_inputs and batch_axes shadow these inside it.
_input_specs = model_inputs
_batch_axes = batch_axes


@dataclass
class VerifyContext:
    """What every check may use: the loaded model(s), the inputs parity used, the runtimes."""

    model: onnx.ModelProto
    source: ModelSource  # a path when verify got one (ORT then reads external data itself)
    label: str
    reference: onnx.ModelProto | None
    reference_source: ModelSource | None
    specs: list[InputSpec]
    inputs: dict[str, np.ndarray]
    runtimes: list[Runtime]  # runtimes[0] is the reference runtime
    atol: float | None = None
    rtol: float | None = None
    seed: int = 0
    batch: int | None = None
    input_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    provided: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    axes: dict[str, int | None] = field(default_factory=dict)  # input -> batch axis (may hold UNKNOWN)
    # Reference inputs the model fixed (--fix-input): fed to the reference, never generated.
    reference_fixed: dict[str, np.ndarray] = field(default_factory=dict)

    def reference_specs(self) -> list[InputSpec]:
        return [s for s in model_inputs(self.reference) if s.name not in self.reference_fixed]

    def reference_runtime(self) -> Runtime:
        return _FixedFeeds(make_runtime(REFERENCE, self.reference_source), self.reference_fixed)


class _FixedFeeds:
    """A runtime that adds the inputs the model under test fixed to every feed."""

    def __init__(self, runtime: Runtime, fixed: dict[str, np.ndarray]):
        self.runtime, self.fixed, self.name = runtime, fixed, runtime.name

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.runtime.run({**self.fixed, **inputs})


def verify(
    model: ModelSource,
    reference: ModelSource | None = None,
    *,
    batch: int | None = None,
    input_shapes: dict[str | None, tuple[int, ...]] | Sequence[str] | None = None,
    runtimes: Sequence[str | Runtime] | None = None,
    inputs: str | os.PathLike | dict[str, np.ndarray] | None = None,
    atol: float | None = None,
    rtol: float | None = None,
    seed: int = 0,
    checks: Sequence[Callable[[VerifyContext], Check]] = (),
    target: str | None = None,
    ort_version: OrtRelease | str | None = None,
    batch_axes: BatchAxes | Sequence[str] | None = None,
    fixed_inputs: dict[str, object] | Sequence[str] | None = None,
    open_planned: SessionOpener | None = None,
    model_inputs: ModelInputs | None = None,
    batch_axis: BatchAxes | Sequence[str] | None = None,
) -> VerifyReport:
    """Verify ``model`` (a path or ModelProto): parity against ``reference`` and across
    ``runtimes`` (names from ``available_runtimes()`` or ``Runtime`` objects such as
    ``TorchRuntime``), cross-frame contamination, then ``checks``.

    ``input_shapes``: ``{"x": (1, 3, 64, 96)}`` or ``["x=1x3x64x96"]``. ``inputs``: an .npz path
    or a dict of arrays keyed by input name. ``batch``: the leading symbolic dim for parity and
    the contamination test (default 1 for parity, 4 for contamination). ``batch_axes``:
    ``{"state": 1}`` or ``["state=1"]``, an input's batch axis where its dim names do not tell
    (``none``: it has no batch axis). ``fixed_inputs``: ``{"sr": 16000}`` or ``["sr=16000"]``,
    values the model fixed that the reference still takes as inputs (by default what the model's
    metadata recorded when onnxfit fixed them). ``open_planned``: opens the ``planned-<target>``
    sessions (``onnxfit.verify`` hands over ``onnxfit.session()``'s; without it there are none).
    ``model_inputs``: a ``ModelInputs`` for the shapes, batch axes and fixed inputs (the one
    ``optimize --verify`` optimized with). ``batch_axis``: the old spelling of ``batch_axes``.
    """
    if batch_axis is not None:
        warnings.warn("verify(batch_axis=...) is spelled batch_axes=... now", DeprecationWarning, stacklevel=2)
        batch_axes = batch_axis if batch_axes is None else batch_axes
    described = ModelInputs.of(model_inputs, input_shapes=input_shapes, batch_axes=batch_axes,
                               fixed_inputs=fixed_inputs)
    if batch is not None and batch < 1:
        raise OnnxfitError(f"--batch {batch}: must be a positive integer")
    proto, source, label = _load(model)
    ref_proto, ref_source, ref_label = _load(reference) if reference is not None else (None, None, None)
    specs = _input_specs(proto)
    ref_fixed = _reference_fixed(proto, ref_proto, specs, described.fixed)
    overrides = dict(described.batch_axes)
    axes = _batch_axes(specs, overrides)
    shapes = _input_shapes(proto, described.shapes)
    provided = _provided(inputs, specs)
    selected = _runtimes(proto, source, runtimes, open_planned)
    if target is not None and open_planned is not None:
        selected += _planned_runtime(target, source, selected, open_planned)

    ref_specs = [s for s in _input_specs(ref_proto) if s.name not in ref_fixed] if ref_proto is not None else []
    per_frame = ref_proto is not None and _per_frame(specs, ref_specs, axes)
    if ref_proto is not None:
        shapes = {**_shapes_from_reference(specs, ref_specs, batch, axes), **shapes}
    # Against a batch-1 reference, the batched model is compared frame by frame: do it at a real batch.
    parity_batch = batch if batch is not None else (DEFAULT_BATCH if per_frame else None)
    feeds, notes = make_inputs(specs, parity_batch, shapes, provided, seed, axes)
    if runtimes is None and reference_evaluator_gaps(proto):
        notes.append("onnx-reference not run: " + "; ".join(reference_evaluator_gaps(proto)))

    ctx = VerifyContext(
        proto, source, label, ref_proto, ref_source, specs, feeds, selected, atol, rtol, seed, batch, shapes, provided,
        notes, axes, ref_fixed,
    )
    report = VerifyReport(label, ref_label, [r.name for r in selected])
    report.checks.append(parity_check(ctx, per_frame, explicit=runtimes is not None))
    resolved = {k: tuple(v.shape) for k, v in feeds.items()}
    contamination = contamination_check(
        proto, selected[0], specs, resolved, shapes, provided, batch, seed, atol, rtol, axes, set(overrides)
    )
    if ref_proto is not None and not contamination.ok:
        contamination = _judge_against_reference(ctx, contamination, resolved, overrides)
    report.checks.append(contamination)
    if target is not None:
        checks = [*checks, partitions_check(target, ort_version)]
    for extra in checks:
        report.checks.append(extra(ctx))
    return report


# Named for `optimize --verify`, which hands over an in-memory model and its source file.
verify_models = verify


def parity_check(ctx: VerifyContext, per_frame: bool, explicit: bool) -> Check:
    """MODEL vs REF on the reference runtime, then every other runtime vs the reference runtime
    (judged, with REF, against that runtime's own deviation on REF: ``_judge_by_runtime_floor``).
    A runtime whose run would cost out of proportion (``TooCostly``) is skipped with its reason."""
    reference_rt = ctx.runtimes[0]
    base = _run_or_raise(reference_rt, ctx.inputs, ctx.label)
    comparisons: list[dict] = []
    notes: list[str] = []
    if ctx.reference is not None:
        comparisons.append(_against_reference(ctx, base, per_frame))
    for runtime in ctx.runtimes[1:]:
        entry = {"label": f"{runtime.name} vs {reference_rt.name}", "runtime": runtime.name, "against": reference_rt.name}
        try:
            outputs = runtime.run(ctx.inputs)
        except TooCostly as exc:  # estimated before it ran: skipped whoever asked for it
            comparisons.append({**entry, "ok": True, "skipped": str(exc), "outputs": []})
            continue
        except Exception as exc:  # noqa: BLE001 - a runtime that cannot run the model is a finding; keep its reason
            reason = f"{runtime.name} cannot run the model: {first_line(exc)}"
            # onnx.reference lacks some ops; added without being asked for, its gaps are no failure.
            if runtime.name == "onnx-reference" and not explicit:
                comparisons.append({**entry, "ok": True, "skipped": reason, "outputs": []})
            else:
                comparisons.append({**entry, "ok": False, "error": reason, "outputs": []})
            continue
        results = compare_outputs(outputs, base, ctx.atol, ctx.rtol)
        comparison = {**entry, "ok": all(r.ok for r in results), "outputs": [r.to_dict() for r in results]}
        if not comparison["ok"] and ctx.reference is not None:
            _judge_by_runtime_floor(ctx, runtime, base, comparison, notes, per_frame)
        comparisons.append(comparison)
    details = {
        "reference_runtime": reference_rt.name,
        "inputs": {
            k: {"shape": list(v.shape), "dtype": str(v.dtype), "source": "--inputs" if k in ctx.provided else "generated"}
            for k, v in ctx.inputs.items()
        },
        "notes": [*ctx.notes, *notes],
        "comparisons": comparisons,
    }
    ok = all(c["ok"] for c in comparisons)
    return Check("parity", ok, _parity_summary(comparisons, reference_rt.name), details)


def _judge_by_runtime_floor(
    ctx: VerifyContext, runtime: Runtime, base: dict[str, np.ndarray], comparison: dict, notes: list[str],
    per_frame: bool = False,
) -> None:
    """The model on ``runtime`` is off the reference runtime: measure how far the reference model is
    off on that runtime too (TF32 on CUDA, another kernel). An output within NOISE_FACTOR times that
    deviation, itself small beside the output, differs by the runtime's numerics, not the model's.
    ``per_frame``: the reference takes one frame (a batch-1 export), so its deviation is measured on
    the first frame."""
    from onnxfit.verification.frame_test import NOISE_CAP, NOISE_FACTOR
    from onnxfit.verification.runtimes import available_runtimes

    # The same runtime on the reference model: named runtimes are made again, others say how (for_model).
    if hasattr(runtime, "for_model"):
        same_kind = runtime.for_model(ctx.reference_source)
    elif runtime.name in available_runtimes():
        same_kind = make_runtime(runtime.name, ctx.reference_source)
    else:
        return
    ref_names = [s.name for s in ctx.reference_specs()]
    pairs = [(m, r) for m, r in match_outputs([s.name for s in ctx.specs], ref_names) if m and r]
    # A batch-1 reference (per frame) is measured on the first frame.
    feeds = {r: np.take(ctx.inputs[m], [0], axis=ctx.axes[m]) if per_frame and ctx.axes.get(m) is not None
             else ctx.inputs[m] for m, r in pairs}
    try:
        theirs = _FixedFeeds(same_kind, ctx.reference_fixed).run(feeds)
        expected = ctx.reference_runtime().run(feeds)
    except Exception as exc:  # noqa: BLE001 - without the floor the failure stands; say why
        notes.append(f"{runtime.name}'s own deviation on the reference model could not be measured: {first_line(exc)}")
        return
    floors = {r.name: r.max_abs for r in compare_outputs(theirs, expected, ctx.atol, ctx.rtol)}
    ours_to_ref = {m: r for m, r in match_outputs(list(base), list(expected)) if m and r}
    excused = []
    for output in comparison["outputs"]:
        floor = floors.get(ours_to_ref.get(output["name"], ""))
        finite = np.abs(base[output["name"]][np.isfinite(base[output["name"]])]) if output["name"] in base else None
        scale = float(finite.max()) if finite is not None and finite.size else 0.0
        if (not output["ok"] and not output.get("note") and floor and floor <= NOISE_CAP * scale
                and output["max_abs"] is not None and output["max_abs"] <= NOISE_FACTOR * floor):
            output.update(ok=True, noise_floor=floor)
            excused.append(f"'{output['name']}' {output['max_abs']:.3g} (reference model: {floor:.3g})")
    if excused and all(o["ok"] for o in comparison["outputs"]):
        comparison["ok"] = True
        notes.append(f"{comparison['label']}: within {NOISE_FACTOR:g}x the deviation {runtime.name} shows on the "
                     f"reference model itself: " + ", ".join(excused) + "; the runtime's numerics, not the model")


def _against_reference(ctx: VerifyContext, base: dict[str, np.ndarray], per_frame: bool) -> dict:
    ref_specs = ctx.reference_specs()
    pairs = [(m, r) for m, r in match_outputs([s.name for s in ctx.specs], [s.name for s in ref_specs]) if m and r]
    ref_rt = ctx.reference_runtime()
    ref_feeds = {r: ctx.inputs[m] for m, r in pairs}
    entry = {"label": f"model vs reference model on {ref_rt.name}", "runtime": ref_rt.name, "against": "reference model"}
    if per_frame:
        by_ref = {s.name: s for s in ref_specs}
        batched = {r: ctx.axes[m] for m, r in pairs if _frame_pair(_spec(ctx.specs, m), by_ref[r], ctx.axes.get(m))}
        first = next(iter(batched))
        n = ref_feeds[first].shape[batched[first]]
        size = by_ref[first].dims[batched[first]]  # the reference's fixed batch
        frames = []
        for feeds, count in split_chunks(ref_feeds, batched, n, size):
            frames += chunk_frames(_run_or_raise(ref_rt, feeds, "the reference model"), count, size)
        expected, problems = stack_frames(base, frames)
        results = compare_outputs(base, expected, ctx.atol, ctx.rtol)
        for result in results:
            if result.name in problems:
                result.note = problems[result.name]
        if size == 1:
            entry["mode"] = f"per frame: the reference run on each of {n} frames, the model at batch {n}"
        else:
            chunks = -(-n // size)
            entry["mode"] = (f"per frame: the reference run at its fixed batch {size} on {chunks} chunk(s) of the "
                             f"{n} frames{' (the last padded)' if n % size else ''}, the model at batch {n}")
    else:
        expected = _run_or_raise(ref_rt, ref_feeds, "the reference model")
        results = compare_outputs(base, expected, ctx.atol, ctx.rtol)
        entry["mode"] = "same inputs"
    entry.update(ok=all(r.ok for r in results), outputs=[r.to_dict() for r in results])
    return entry


def _parity_summary(comparisons: list[dict], reference: str) -> str:
    failed = [c for c in comparisons if not c["ok"]]
    if not comparisons:
        return f"only the reference runtime {reference} ran: nothing to compare"
    if not failed:
        return f"{len(comparisons)} comparison(s) within tolerance"
    first = failed[0]
    if first.get("error"):
        return first["error"]
    bad = next(o for o in first["outputs"] if not o["ok"])
    if bad.get("note"):
        return f"{first['label']}: output '{bad['name']}': {bad['note']}"
    return (
        f"{first['label']}: output '{bad['name']}' max abs error {bad['max_abs']:.3g}, {bad['mismatches']} of "
        f"{bad['size']} elements beyond atol {bad['atol']:g} + rtol {bad['rtol']:g}*|ref|"
    )


# ---------------------------------------------------------------------------------- helpers


def _load(model: ModelSource) -> tuple[onnx.ModelProto, ModelSource, str]:
    if isinstance(model, onnx.ModelProto):
        return model, model, model.graph.name or "<in-memory model>"
    path = Path(model)
    return load_model(path), path, str(path)


def _input_shapes(proto: onnx.ModelProto, input_shapes) -> dict[str, tuple[int, ...]]:
    if not input_shapes:
        return {}
    if not isinstance(input_shapes, dict):
        input_shapes = parse_input_shapes(input_shapes)
    return resolve_input_shapes(proto, input_shapes)


def _provided(inputs, specs: list[InputSpec]) -> dict[str, np.ndarray]:
    if inputs is None:
        return {}
    if isinstance(inputs, dict):
        by_name = {s.name: s for s in specs}
        for name, array in inputs.items():
            if name not in by_name:
                raise OnnxfitError(f"inputs: '{name}' is not a model input (inputs: {', '.join(by_name)})")
            check_array(name, np.asarray(array), by_name[name], source="inputs")
        return {k: as_text(np.asarray(v)) if by_name[k].dtype == object else np.asarray(v) for k, v in inputs.items()}
    return load_npz(inputs, specs)


def _runtimes(proto: onnx.ModelProto, source: ModelSource, wanted: Sequence[str | Runtime] | None,
              open_planned: SessionOpener | None = None) -> list[Runtime]:
    """The reference runtime first (always), then the others, each once."""
    names = default_runtimes(proto) if wanted is None else [REFERENCE, *wanted]
    selected: list[Runtime] = []
    seen: set[str] = set()
    for item in names:
        runtime = make_runtime(item, source, open_planned) if isinstance(item, str) else item
        if runtime.name not in seen:
            seen.add(runtime.name)
            selected.append(runtime)
    return selected


def _planned_runtime(target: str, source: ModelSource, selected: list[Runtime],
                     open_planned: SessionOpener) -> list[Runtime]:
    """``--target`` where its EP is here: parity of the session onnxfit.session() opens (EP options,
    CUDA graph replay). The CPU plan is ONNX Runtime's defaults, which ``ort-cpu`` runs already."""
    name = f"planned-{target}"
    if target == "cpu" or target not in planned_targets() or any(r.name == name for r in selected):
        return []
    return [make_runtime(name, source, open_planned)]


def _per_frame(specs: list[InputSpec], ref_specs: list[InputSpec], axes: dict[str, int | None]) -> bool:
    """A dynamic-batch model against a reference with a fixed batch (``optimize --dynamic-batch``)."""
    by_ref = {s.name: s for s in ref_specs}
    pairs = match_outputs([s.name for s in specs], [s.name for s in ref_specs])
    return any(m and r and _frame_pair(_spec(specs, m), by_ref[r], axes.get(m)) for m, r in pairs)


def _frame_pair(spec: InputSpec, ref: InputSpec, axis: int | None) -> bool:
    """The model's batch dim is symbolic where the reference fixed it (to 1, or to the batch it was
    exported at: the reference then runs in chunks of that batch). UNKNOWN/None axes: no pair."""
    if axis is None or axis < 0 or not spec.dims or not ref.dims or len(ref.dims) != len(spec.dims):
        return False
    return not isinstance(spec.dims[axis], int) and isinstance(ref.dims[axis], int) and ref.dims[axis] >= 1


def _judge_against_reference(
    ctx: VerifyContext, check: Check, shapes: dict[str, tuple[int, ...]], overrides: BatchAxes
) -> Check:
    """The model mixes frames: fail only for mixing the reference does not have too."""
    ref_specs = ctx.reference_specs()
    pairs = {m: r for m, r in match_outputs([s.name for s in ctx.specs], [s.name for s in ref_specs]) if m and r}
    ref_overrides = {pairs[k]: v for k, v in overrides.items() if k in pairs}
    ref_shapes = {pairs[k]: v for k, v in shapes.items() if k in pairs}
    ref_provided = {pairs[k]: v for k, v in ctx.provided.items() if k in pairs}
    try:
        ref_check = contamination_check(
            ctx.reference, ctx.reference_runtime(), ref_specs, ref_shapes, {}, ref_provided,
            ctx.batch, ctx.seed, ctx.atol, ctx.rtol, batch_axes(ref_specs, ref_overrides), set(ref_overrides),
        )
    except OnnxfitError as exc:
        check.details["notes"].append(f"the reference's own contamination could not be tested: {first_line(exc)}")
        return check
    known = {_failure_key(f) for f in ref_check.details.get("failures", [])}
    added = [f for f in check.details.get("failures", []) if _failure_key(f) not in known]
    details = dict(check.details, reference_failures=ref_check.details.get("failures", []), failures=added)
    if added:
        details["notes"] = [*check.details["notes"], "the reference mixes frames too; the failures listed are new"]
        return Check("contamination", False, added[0], details)
    details["notes"] = [
        *check.details["notes"],
        f"frames mix as in the reference (not added by this model): {check.summary}",
    ]
    return Check("contamination", True, "frames mix as they do in the reference: no mixing added", details)


def _reference_fixed(model: onnx.ModelProto, reference: onnx.ModelProto | None, specs: list[InputSpec],
                     given: dict[str, object] | Sequence[str] | None) -> dict[str, np.ndarray]:
    """Values for the reference inputs the model no longer has: given, else the model's metadata."""
    if reference is None:
        if given:
            raise OnnxfitError("--fix-input is for the reference model's inputs; give one with --reference")
        return {}
    values = parse_fixed_inputs(given) if isinstance(given, (list, tuple)) else dict(given or {})
    values = resolve_fixed_inputs(reference, values) if values else read_fixed_inputs(model)
    own = {s.name for s in specs}
    ref_inputs = {s.name for s in model_inputs(reference)}
    return {name: v for name, v in values.items() if name in ref_inputs and name not in own}


def _failure_key(failure: str) -> str:
    """A failure line without its numbers in parentheses: the same mixing at another magnitude."""
    return re.sub(r"\s*\((max abs|frame).*?\)", "", failure.split("; static analysis:")[0])


def _shapes_from_reference(
    specs: list[InputSpec], ref_specs: list[InputSpec], batch: int | None, axes: dict[str, int | None]
) -> dict[str, tuple[int, ...]]:
    """Symbolic dims of the model take the reference's fixed values (the batch axis takes ``batch``)."""
    if len(ref_specs) != len(specs):
        raise OnnxfitError(
            f"the reference has {len(ref_specs)} inputs ({', '.join(s.name for s in ref_specs)}), the model "
            f"{len(specs)} ({', '.join(s.name for s in specs)})"
        )
    by_ref = {s.name: s for s in ref_specs}
    shapes = {}
    for m, r in match_outputs([s.name for s in specs], [s.name for s in ref_specs]):
        spec, ref = _spec(specs, m), by_ref[r]
        if not spec.dims or not ref.dims or len(ref.dims) != len(spec.dims) or not all(isinstance(d, int) for d in ref.dims):
            continue
        # The model's own fixed dims win: a mismatch then shows as the reference failing to run.
        dims = [d if isinstance(d, int) else r for d, r in zip(spec.dims, ref.dims)]
        axis = axes.get(m)
        if axis is not None and axis >= 0 and not isinstance(spec.dims[axis], int):
            dims[axis] = batch if batch is not None else (DEFAULT_BATCH if ref.dims[axis] == 1 else ref.dims[axis])
        if all(isinstance(d, int) for d in spec.dims):
            continue
        shapes[m] = tuple(dims)
    return shapes


def _spec(specs: list[InputSpec], name: str) -> InputSpec:
    return next(s for s in specs if s.name == name)


def _run_or_raise(runtime: Runtime, inputs: dict[str, np.ndarray], what: str) -> dict[str, np.ndarray]:
    try:
        return runtime.run(inputs)
    except Exception as exc:  # noqa: BLE001 - ORT raises several unrelated types for a model it cannot run
        raise OnnxfitError(f"{what}: {runtime.name} cannot run it: {first_line(exc)}") from None
