"""The dynamic frame test: run frames alone and change one frame at a time on one runtime.

Frame i of a batch must equal frame i run alone, and changing frame j must leave every other
frame's outputs unchanged (an N x N influence matrix whose off-diagonal is zero). A model with a
batch fixed to N > 1 cannot run a frame alone, so it gets only the second test, at N.

A difference beyond the tolerance is judged against the runtime's own noise floor, measured only
then, on the same inputs: run-to-run (the batch run again) and batch-to-batch (frame 0 alone
against a batch of N copies of it: a runtime may pick other kernels per batch size, as cuDNN does
with TF32 on). A difference within ``NOISE_FACTOR`` times that floor is the runtime's, not the
model's: a note, not a failure. A floor above ``NOISE_CAP`` of an output's magnitude is no noise
(a model that scales by its batch size shows a large one) and excuses nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from onnxfit.errors import first_line
from onnxfit.verification.parity import compare_arrays, frame_axis, split_frames
from onnxfit.verification.runtimes import Runtime

__all__ = ["FrameTest", "NOISE_CAP", "NOISE_FACTOR", "fixed_batch_test", "frame_test"]

NOISE_FACTOR = 4.0  # a difference up to this many times the measured floor is the runtime's
NOISE_CAP = 1e-2  # a floor above this fraction of an output's largest magnitude is not noise


@dataclass
class FrameTest:
    """Results of running frames alone and changing one frame at a time, at batch ``batch``."""

    batch: int
    failures: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    alone: dict[str, list[float]] = field(default_factory=dict)  # output -> max |alone - slice| per frame
    influence: list[list[float]] = field(default_factory=list)  # [changed j][observed i] max |diff| over outputs
    output_axes: dict[str, int] = field(default_factory=dict)  # output -> the axis holding its frames
    noise: dict[str, float] = field(default_factory=dict)  # output -> the runtime's floor, where measured
    scale: dict[str, float] = field(default_factory=dict)  # output -> its largest finite magnitude
    excused: dict[str, float] = field(default_factory=dict)  # output -> largest difference within its floor
    _floors: dict[str, dict[str, float]] = field(default_factory=dict, repr=False)  # measured once per kind

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        return {**{k: v for k, v in asdict(self).items() if not k.startswith("_")}, "ok": self.ok}

    @property
    def notes(self) -> list[str]:
        return [f"output '{name}': frames differ by up to {value:.3g} between runs alone and in the batch, or when "
                f"another frame changes, within {NOISE_FACTOR:g}x the runtime's own noise floor "
                f"({self.noise[name]:.3g}: the same frames rerun, alone and in a batch of copies): the runtime's "
                f"numerics, not the model" for name, value in self.excused.items()]

    def measure_scale(self, outputs: dict[str, np.ndarray]) -> None:
        for name, value in outputs.items():
            finite = np.abs(value[np.isfinite(value)]) if value.dtype.kind == "f" else None
            self.scale[name] = float(finite.max()) if finite is not None and finite.size else 0.0


def frame_test(
    runtime: Runtime, inputs: dict[str, np.ndarray], axes: dict[str, int], changed: list[dict[str, np.ndarray]],
    atol: float | None = None, rtol: float | None = None,
) -> FrameTest:
    """Run the three dynamic tests. ``axes``: batched input -> its batch axis; ``changed[j]``: a
    replacement for the batched inputs' frame j (the batch axis dropped)."""
    first = next(iter(axes))
    n = inputs[first].shape[axes[first]]
    test = FrameTest(n)
    suspects: list[tuple[str, float, int, int, int]] = []
    full = _run(runtime, inputs, f"batch {n}", test)
    if full is not None:
        test.measure_scale(full)
    frames = [_run(runtime, frame, "batch 1", test) for frame in split_frames(inputs, axes, n)]
    if full is None or any(f is None for f in frames):
        return test
    for name, value in full.items():
        one = frames[0][name].shape
        axis = frame_axis(value.shape, one, n)
        if axis is None:
            test.lost.append(name)
            test.failures.append(
                f"batch axis lost in output '{name}': shape {list(one)} at batch 1, {list(value.shape)} at batch {n}"
            )
            continue
        test.output_axes[name] = axis
        test.alone[name] = []
        for i, frame in enumerate(frames):
            comparison = compare_arrays(name, frame[name], np.take(value, [i], axis=axis), atol=atol, rtol=rtol)
            test.alone[name].append(comparison.max_abs or 0.0)
            if not comparison.ok:
                suspects.append((name, comparison.max_abs, comparison.mismatches, comparison.size, i))
    if suspects:
        floor = _noise_floor(runtime, inputs, axes, full, frames[0], test, batch_floor=True)
        for name, max_abs, mismatches, size, i in suspects:
            if not _within_noise(test, name, max_abs, floor):
                test.failures.append(f"output '{name}': frame {i} run alone differs from its slice of the batch-{n} "
                                     f"run (max abs error {max_abs:.3g}, {mismatches} of {size} elements)")
    _perturb(runtime, inputs, axes, changed, full, test, atol, rtol)
    return test


def fixed_batch_test(
    runtime: Runtime, inputs: dict[str, np.ndarray], axes: dict[str, int], changed: list[dict[str, np.ndarray]],
    atol: float | None = None, rtol: float | None = None,
) -> FrameTest:
    """A model exported at a fixed batch N > 1 cannot run a frame alone, but changing frame j with
    the others unchanged still proves that frames are independent: no re-batching needed.

    An output holds its frames on axis 0 when that is N, else on its first axis of size N."""
    first = next(iter(axes))
    n = inputs[first].shape[axes[first]]
    test = FrameTest(n)
    full = _run(runtime, inputs, f"its fixed batch {n}", test)
    if full is None:
        return test
    test.measure_scale(full)
    for name, value in full.items():
        axis = next((a for a, d in enumerate(value.shape) if d == n), None)
        if axis is None:
            test.lost.append(name)
            test.failures.append(f"batch axis lost in output '{name}': shape {list(value.shape)} has no axis of size {n}")
        else:
            test.output_axes[name] = axis
    _perturb(runtime, inputs, axes, changed, full, test, atol, rtol)
    return test


def _perturb(
    runtime: Runtime, inputs: dict[str, np.ndarray], axes: dict[str, int], changed: list[dict[str, np.ndarray]],
    full: dict[str, np.ndarray], test: FrameTest, atol: float | None, rtol: float | None,
) -> None:
    """Change frame j of every batched input, each j in turn: no other frame of any output may move."""
    n = test.batch
    for j in range(n):
        perturbed = {k: v.copy() if k in axes else v for k, v in inputs.items()}
        for k, axis in axes.items():
            index = [slice(None)] * perturbed[k].ndim
            index[axis] = j
            perturbed[k][tuple(index)] = changed[j][k]
        out = _run(runtime, perturbed, f"batch {n} with frame {j} changed", test)
        if out is None:
            return
        row = [0.0] * n
        for name, axis in test.output_axes.items():
            for i in range(n):
                comparison = compare_arrays(
                    name, np.take(out[name], [i], axis=axis), np.take(full[name], [i], axis=axis), atol=atol, rtol=rtol
                )
                row[i] = max(row[i], comparison.max_abs or 0.0)
                if i != j and not comparison.ok:
                    # Same batch size, same kernels: only the run-to-run floor can excuse it.
                    floor = _noise_floor(runtime, inputs, axes, full, None, test, batch_floor=False)
                    if not _within_noise(test, name, comparison.max_abs, floor):
                        test.failures.append(f"output '{name}': changing frame {j} changes frame {i} "
                                             f"(max abs {comparison.max_abs:.3g})")
        test.influence.append(row)


def _noise_floor(
    runtime: Runtime, inputs: dict[str, np.ndarray], axes: dict[str, int], full: dict[str, np.ndarray],
    alone: dict[str, np.ndarray] | None, test: FrameTest, batch_floor: bool,
) -> dict[str, float]:
    """Per output: how far the runtime moves from itself on the same frames: the batch run again,
    and (``batch_floor``) frame 0 alone against every slice of a batch of N copies of it. Measured
    once per test and kept in ``test.noise``; a runtime that cannot rerun has no floor."""
    key = "batch" if batch_floor else "run"
    if key in test._floors:
        return test._floors[key]
    try:
        again = runtime.run(inputs)
        floor = {name: _max_abs(again[name], value) for name, value in full.items()}
        if batch_floor and alone is not None:
            n = test.batch
            copies = runtime.run({k: np.repeat(np.take(v, [0], axis=axes[k]), n, axis=axes[k]) if k in axes else v
                                  for k, v in inputs.items()})
            for name, axis in test.output_axes.items():
                floor[name] = max(floor[name], max(_max_abs(np.take(copies[name], [i], axis=axis), alone[name])
                                                   for i in range(n)))
    except Exception:  # noqa: BLE001 - the run itself passed moments ago; without a floor nothing is excused
        floor = {}
    test._floors[key] = floor
    for name, value in floor.items():
        test.noise[name] = max(test.noise.get(name, 0.0), value)
    return floor


def _within_noise(test: FrameTest, name: str, max_abs: float | None, floor: dict[str, float]) -> bool:
    """Within ``NOISE_FACTOR`` times the runtime's floor (itself small beside the output): a note."""
    level = floor.get(name, 0.0)
    scale = test.scale.get(name, 0.0)
    if max_abs is None or not level or level > NOISE_CAP * scale or max_abs > NOISE_FACTOR * level:
        return False
    test.excused[name] = max(test.excused.get(name, 0.0), max_abs)
    return True


def _max_abs(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape or a.dtype.kind not in "fiu":
        return float("inf") if a.shape != b.shape or not np.array_equal(a, b) else 0.0
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
    return float(np.nanmax(diff)) if diff.size else 0.0


def _run(runtime: Runtime, inputs: dict[str, np.ndarray], what: str, test: FrameTest) -> dict[str, np.ndarray] | None:
    try:
        return runtime.run(inputs)
    except Exception as exc:  # noqa: BLE001 - a model that cannot run at batch N fails the check; say why
        message = first_line(exc)
        test.failures.append(f"the model fails at {what} on {runtime.name}: {message}")
        return None
