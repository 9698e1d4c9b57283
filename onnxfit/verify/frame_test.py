"""The dynamic frame test: run frames alone and change one frame at a time on one runtime.

Frame i of a batch must equal frame i run alone, and changing frame j must leave every other
frame's outputs unchanged (an N x N influence matrix whose off-diagonal is zero). A model with a
batch fixed to N > 1 cannot run a frame alone, so it gets only the second test, at N.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from onnxfit.errors import first_line
from onnxfit.verify.parity import compare_arrays, frame_axis, split_frames
from onnxfit.verify.runtimes import Runtime

__all__ = ["FrameTest", "fixed_batch_test", "frame_test"]


@dataclass
class FrameTest:
    """Results of running frames alone and changing one frame at a time, at batch ``batch``."""

    batch: int
    failures: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    alone: dict[str, list[float]] = field(default_factory=dict)  # output -> max |alone - slice| per frame
    influence: list[list[float]] = field(default_factory=list)  # [changed j][observed i] max |diff| over outputs
    output_axes: dict[str, int] = field(default_factory=dict)  # output -> the axis holding its frames

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def frame_test(
    runtime: Runtime, inputs: dict[str, np.ndarray], axes: dict[str, int], changed: list[dict[str, np.ndarray]],
    atol: float | None = None, rtol: float | None = None,
) -> FrameTest:
    """Run the three dynamic tests. ``axes``: batched input -> its batch axis; ``changed[j]``: a
    replacement for the batched inputs' frame j (the batch axis dropped)."""
    first = next(iter(axes))
    n = inputs[first].shape[axes[first]]
    test = FrameTest(n)
    full = _run(runtime, inputs, f"batch {n}", test)
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
                test.failures.append(
                    f"output '{name}': frame {i} run alone differs from its slice of the batch-{n} run "
                    f"(max abs error {comparison.max_abs:.3g}, {comparison.mismatches} of {comparison.size} elements)"
                )
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
                    test.failures.append(
                        f"output '{name}': changing frame {j} changes frame {i} (max abs {comparison.max_abs:.3g})"
                    )
        test.influence.append(row)


def _run(runtime: Runtime, inputs: dict[str, np.ndarray], what: str, test: FrameTest) -> dict[str, np.ndarray] | None:
    try:
        return runtime.run(inputs)
    except Exception as exc:  # noqa: BLE001 - a model that cannot run at batch N fails the check; say why
        message = first_line(exc)
        test.failures.append(f"the model fails at {what} on {runtime.name}: {message}")
        return None
