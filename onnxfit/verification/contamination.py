"""Cross-frame contamination: does frame i of a batch depend only on frame i of the inputs?

The frames lie on each input's batch axis, read from its dim names (``onnxfit.batch_axes``)
or given with ``--batch-axis NAME=AXIS``: axis 0 of ``x: [N, 3, H, W]``, axis 1 of a state
``[2, batch, 128]``. Two views of the same question:

1. A dynamic test on one runtime:
   a. every frame run alone equals its slice of the batched run (parity tolerances);
   b. changing frame j leaves every other frame's outputs unchanged (each j in turn: an N x N
      influence matrix whose off-diagonal must be zero);
   c. every output holds its frames on one axis: comparing output shapes at batch 1 and
      batch N shows which dim scales; anything else is "batch axis lost in output X".
   A symbolic batch runs all three at batch N (default 4); a batch fixed to N > 1 runs b at N
   (frames cannot run alone, and need not). A model without a batch axis (time-major:
   ``[sequence_length, 576]``) has no frames to keep apart and passes with a note.
2. A static batch-flow analysis (``onnxfit.verification.batch_flow``), also for fixed-batch models:
   onnx shape inference at two batch sizes tells which axis of every tensor scales with the
   batch; the batch-op table that ``dynamic-batch`` rewrites with (``onnxfit.batch_ops``,
   re-exported here as ``BATCH_RULES``) then names the first node that merges, moves, reduces or
   mixes the batch axis. For a model whose batch is fixed to 1 these nodes are what blocks
   ``--dynamic-batch``.

The dynamic test lives in ``onnxfit.verification.frame_test``; this module decides which test a model
gets and turns the results into one ``Check``.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import onnx

from onnxfit.batch_axes import TIME_NAME
from onnxfit.errors import first_line
from onnxfit.batch_ops import BATCH_OPS as BATCH_RULES
from onnxfit.verification.batch_flow import BatchFlow, Finding, batch_flow, with_dim
from onnxfit.verification.frame_test import FrameTest, fixed_batch_test, frame_test
from onnxfit.verification.inputs import (
    InputSpec,
    batch_axes,
    generate_inputs,
    make_inputs,
    take_frames,
    unknown_axis_message,
    unknown_batch_axes,
)
from onnxfit.verification.report import Check
from onnxfit.verification.runtimes import Runtime

__all__ = [
    "BATCH_RULES",
    "DEFAULT_BATCH",
    "BatchFlow",
    "Finding",
    "FrameTest",
    "batch_flow",
    "contamination_check",
    "fixed_batch_test",
    "frame_test",
]

DEFAULT_BATCH = 4


def contamination_check(
    model: onnx.ModelProto,
    runtime: Runtime,
    specs: list[InputSpec],
    shapes: dict[str, tuple[int, ...]],
    input_shapes: dict[str, tuple[int, ...]] | None = None,
    provided: dict[str, np.ndarray] | None = None,
    batch: int | None = None,
    seed: int = 0,
    atol: float | None = None,
    rtol: float | None = None,
    axes: dict[str, int | None] | None = None,
    given_axes: Collection[str] = (),
) -> Check:
    """Static batch flow for every model; the frame test where the model has frames to test.

    ``shapes``: the concrete input shapes parity used (the static analysis reuses their
    non-batch dims). ``provided``: arrays from ``--inputs``; batched ones are cycled to N frames.
    ``axes``: input -> batch axis (default: from the dim names). An UNKNOWN axis leaves the frame
    test not run (``Check.ran`` False), saying which ``--batch-axis`` runs it: parity needs no axis.
    ``given_axes``: the inputs whose axis the user gave (``--batch-axis``); the others are guesses
    from dim names, listed as such. A failure found along a guessed axis other than 0 that the
    static analysis does not confirm either (``[1, N, 16]``: N is a sequence the model attends
    over) is no verdict: the check is not run, naming the ``--batch-axis`` that tests it.
    Which test runs:

    1. no input has a batch axis (time-major: ``[sequence_length, 576]`` with its LSTM state):
       nothing to test, a note says so;
    2. a symbolic batch: the full frame test at batch N (default 4);
    3. a batch fixed to N > 1: the perturbation test at N (``fixed_batch_test``);
    4. a batch fixed to 1: only the static analysis, naming what blocks batching and whether
       ``optimize --dynamic-batch`` repairs it (the pass run in memory, the flow followed again);
    5. fixed dims that differ across inputs (a frame [1, 257] with a cache [2, 1, 16]): no batch
       to test, a note names ``--batch-axis``.
    """
    axes = batch_axes(specs) if axes is None else axes
    unknown = unknown_batch_axes(specs, axes)
    if unknown:
        return _not_run(unknown[0])
    batched = {s.name: axes[s.name] for s in specs if s.dims and axes.get(s.name) is not None}
    if not batched:
        return _no_batch_axis(specs)
    dims = {name: next(s.dims[axis] for s in specs if s.name == name) for name, axis in batched.items()}
    dynamic = {k: v for k, v in batched.items() if not isinstance(dims[k], int)}
    if not dynamic and len(set(dims.values())) > 1:
        return _fixed_batch_disagrees(dims, batched)
    # Beside a symbolic batch, an input whose batch dim is fixed (dt: [1] next to input: [batch, ...])
    # cannot take a batch: one value shared by all frames, and no frames of its own to follow.
    shared = [k for k in batched if k not in dynamic] if dynamic else []
    flow = batch_flow(model, shapes, {k: v for k, v in batched.items() if k not in shared})
    details: dict = {"static": flow.to_dict(), "notes": list(flow.notes), "batch_axes": batched}
    guesses = {k: _guess(specs, k, axis) for k, axis in batched.items() if k not in given_axes}
    if guesses:
        details["guessed_axes"] = guesses
        details["notes"].append("batch axes guessed from dim names (--batch-axis NAME=AXIS sets them): "
                                + "; ".join(f"{k} {v}" for k, v in guesses.items()))
    if shared:
        beside = next(iter(dynamic))
        details["notes"].insert(0, "; ".join(
            f"input '{k}' has a fixed batch dim of {dims[k]} next to the symbolic batch of '{beside}': one value "
            f"shared by all frames (--batch-axis {k}=none says so)" for k in shared))
    culprit = next((f.message for f in flow.findings if f.blocking), None) or next(iter(flow.lost.values()), None)
    if dynamic:
        batched, n, test_fn = dynamic, batch or DEFAULT_BATCH, frame_test
    else:
        n = max(dims.values())
        batched, test_fn = {k: v for k, v in batched.items() if dims[k] == n}, fixed_batch_test
        if n == 1:
            return _fixed_batch_one(model, shapes, batched, flow, details)
    given = dict(provided or {})
    # Batched arrays from --inputs are cycled to N frames; the rest is generated at batch N.
    provided = {k: take_frames(v, batched[k], n) if k in batched else v for k, v in given.items()}
    # --input-shape fixes the other dims; the batch dim of batched inputs is the test's N.
    input_shapes = {k: with_dim(v, batched[k], n) if k in batched else v for k, v in (input_shapes or {}).items()}
    inputs, _ = make_inputs(specs, n, input_shapes, provided, seed, axes)
    changed = _changed_frames(specs, inputs, batched, given, n, seed, details["notes"])
    test = test_fn(runtime, inputs, batched, changed, atol, rtol)
    details.update(dynamic=bool(dynamic), batch=n, runtime=runtime.name, frames=test.to_dict())
    details["notes"] += test.notes
    if not dynamic:
        details["notes"].insert(0, f"batch fixed to {n}: frames tested by changing one frame at a time at batch {n}")
    unconfirmed = [k for k, axis in batched.items() if k in guesses and axis != 0]
    if not test.ok and unconfirmed and flow.problems:
        return _unconfirmed_guess(specs, unconfirmed[0], batched[unconfirmed[0]], guesses, culprit, test, details)
    if not dynamic and not test.ok and not test.output_axes and all(k in guesses for k in batched):
        return _not_a_fixed_batch(batched, guesses, n, test, details)
    ok = test.ok
    if ok and flow.problems:
        details["notes"].append(
            f"static analysis flags {len(flow.problems)} issue(s) the run at batch {n} did not show: "
            + "; ".join(flow.problems)
        )
    if ok:
        summary = f"frames independent at {'' if dynamic else 'fixed '}batch {n} on {runtime.name}"
    else:
        summary = test.failures[0]
        if culprit is not None:
            summary += f"; static analysis: {culprit}"
    details["failures"] = test.failures
    return Check("contamination", ok, summary, details)


def _guess(specs: list[InputSpec], name: str, axis: int) -> str:
    dim = next(s.dims[axis] for s in specs if s.name == name)
    return f"axis {axis} (dim '{dim}')" if isinstance(dim, str) and dim else f"axis {axis} (leading)"


def _unconfirmed_guess(
    specs: list[InputSpec], name: str, axis: int, guesses: dict[str, str], culprit: str | None, test: FrameTest,
    details: dict,
) -> Check:
    """The frames mix along an axis guessed from a dim name, and the graph does not treat it as a
    batch either: the name more likely means something else (a sequence, a channel count)."""
    details.update(unconfirmed_failures=test.failures, failures=[])
    details["notes"].append(
        f"frames mix along the guessed batch {guesses[name]} of input '{name}' "
        f"({test.failures[0]}; static analysis: {culprit}): taken as no verdict, since the graph does not keep "
        f"frames apart on that axis; --batch-axis {name}={axis} tests it as the batch, {name}=none if it has none")
    summary = (f"not run: the batch axis of input '{name}' is a guess ({guesses[name]}) that the graph does not "
               f"confirm (--batch-axis {name}=AXIS runs it)")
    return Check("contamination", True, summary, details, ran=False)


def _not_a_fixed_batch(batched: dict[str, int], guesses: dict[str, str], n: int, test: FrameTest,
                       details: dict) -> Check:
    """A fixed leading dim taken as the batch, and no output has an axis of that size: the guess is
    wrong (a list of 4 words filtered to 3), not the model."""
    name = next(iter(batched))
    details.update(unconfirmed_failures=test.failures, failures=[])
    details["notes"].append(f"no output has an axis of size {n}, the guessed fixed batch ({guesses[name]} of input "
                            f"'{name}'): that dim is not a batch; --batch-axis {name}={batched[name]} tests it as one")
    summary = (f"not run: no output keeps the guessed fixed batch {n} of input '{name}' "
               f"(--batch-axis {name}=AXIS runs it)")
    return Check("contamination", True, summary, details, ran=False)


def _changed_frames(
    specs: list[InputSpec], inputs: dict[str, np.ndarray], batched: dict[str, int], given: dict[str, np.ndarray],
    n: int, seed: int, notes: list[str],
) -> list[dict[str, np.ndarray]]:
    """A replacement for frame j of every batched input (batch axis dropped), j = 0..n-1.

    Float inputs get fresh random data. Integers, bools and text given with ``--inputs`` are
    indices, ids and masks whose valid range only the caller knows: frame j takes another given
    frame that differs from it, else the values the input holds in the given arrays, drawn anew
    (token-type ids stay 0/1 where an embedding has 2 rows). Nothing outside what was given."""
    kept = {k for k in batched if k in given and given[k].dtype.kind not in "fcV"}
    fresh = [s for s in specs if s.name in batched and s.name not in kept]
    shapes = {s.name: inputs[s.name].shape for s in fresh}
    changed = [{k: np.take(v, j, axis=batched[k]) for k, v in generate_inputs(fresh, shapes, seed + 1 + j).items()}
               for j in range(n)]
    rng = np.random.default_rng(seed)
    for k in kept:
        axis, source = batched[k], given[k]
        frames = [np.take(source, i, axis=axis) for i in range(source.shape[axis])]
        values = np.unique(source) if source.size else source.ravel()
        for j in range(n):
            own = np.take(inputs[k], j, axis=axis)
            other = next((f for f in frames if not np.array_equal(f, own)), None)
            changed[j][k] = other if other is not None else rng.choice(values, size=own.shape).astype(source.dtype)
        if len(values) < 2:
            notes.append(f"input '{k}' holds one value in --inputs: changing a frame leaves it as it is")
    return changed


def _not_run(spec: InputSpec) -> Check:
    """Which axis of ``spec`` holds the batch is unknown: the frame test waits for ``--batch-axis``."""
    summary = f"not run: the batch axis of input '{spec.name}' is unknown (--batch-axis {spec.name}=AXIS runs it)"
    details = {"dynamic": False, "notes": [unknown_axis_message(spec)], "batch_axes": {}}
    return Check("contamination", True, summary, details, ran=False)


def _no_batch_axis(specs: list[InputSpec]) -> Check:
    """Time-major models (and models without any batch) have no frames to keep apart: not a failure."""
    time_major = [s for s in specs if s.dims and isinstance(s.dims[0], str) and TIME_NAME.search(s.dims[0])]
    if time_major:
        summary = "no batch axis: time-major"
        spec = time_major[0]
        note = (f"input '{spec.name}' {list(spec.dims)} leads with time: its steps feed one another (recurrent state) "
                f"by design, so there are no frames to keep apart")
    else:
        summary = "no batch axis"
        note = "no input has a batch axis (--batch-axis NAME=AXIS names one)"
    return Check("contamination", True, summary, {"dynamic": False, "notes": [note], "batch_axes": {}})


def _fixed_batch_disagrees(dims: dict[str, int], batched: dict[str, int]) -> Check:
    """Static inputs whose guessed batch dims differ (data [1, 257], cache [2, 1, 16]): some of
    those dims are layers or directions, not frames, so there is no batch to test frames on."""
    listed = ", ".join(f"{name}: {dims[name]} (axis {axis})" for name, axis in batched.items())
    note = (f"inputs disagree on a fixed batch dim ({listed}): some of these dims are not a batch, so frames "
            f"are not tested (--batch-axis NAME=AXIS or NAME=none says where each input's batch is)")
    return Check("contamination", True, "fixed batch dims disagree: frames not tested",
                 {"dynamic": False, "notes": [note], "batch_axes": batched})


def _fixed_batch_one(
    model: onnx.ModelProto, shapes: dict[str, tuple[int, ...]], batched: dict[str, int], flow: BatchFlow, details: dict
) -> Check:
    blockers = flow.problems
    fixed_text = ", ".join(f"{k}: 1" for k in batched)
    details["dynamic"] = False
    details["notes"].insert(0, f"batch fixed ({fixed_text}): the model cannot be batched as is")
    summary = "fixed batch 1: cannot be batched"
    if blockers:
        details["notes"].append("nodes that block batching: " + "; ".join(blockers))
        left, refused = _left_after_repair(model, shapes, batched)
        details["repair"] = {"command": "onnxfit optimize MODEL -o OUT --dynamic-batch", "left": left,
                             "refused": refused}
        if refused is not None:
            summary += f"; {len(blockers)} node(s) block batching, and --dynamic-batch refuses it: {refused}"
        elif not left:
            summary += (f"; the {len(blockers)} node(s) that block batching are repaired by "
                        f"`onnxfit optimize MODEL -o OUT --dynamic-batch`")
        else:
            summary += (f"; {len(blockers)} node(s) block batching, {len(left)} of them beyond what "
                        f"`optimize --dynamic-batch` repairs")
            details["notes"].append("left after --dynamic-batch: " + "; ".join(left))
    elif flow.batched_inputs:
        details["notes"].append("no node blocks --dynamic-batch: making the input batch dim symbolic should work")
    return Check("contamination", True, summary, details)


def _left_after_repair(
    model: onnx.ModelProto, shapes: dict[str, tuple[int, ...]], batched: dict[str, int]
) -> tuple[list[str], str | None]:
    """What still blocks batching after the dynamic-batch pass, run in memory, or why the pass
    refused the model: a blocker the repair removes is no reason to give up on batching."""
    from onnxfit.errors import OnnxfitError
    from onnxfit.graphs import default_opset
    from onnxfit.optimizer.pipeline import PassContext, get_passes, run_passes

    ctx = PassContext(opset=default_opset(model), dynamic_batch=True, batch_axes=dict(batched))
    try:
        repaired = run_passes(model, get_passes(["dynamic-batch"]), ctx).model
    except OnnxfitError as exc:
        return [], first_line(exc)
    return batch_flow(repaired, shapes, batched).problems, None
