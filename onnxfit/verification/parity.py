"""Parity: do two sets of outputs agree? Plain functions over ``{name: array}`` dicts.

Per output: max abs error, max rel error, cosine similarity, and the mismatch count, i.e.
elements with ``|actual - ref| > atol + rtol * |ref|`` (numpy's ``allclose`` rule). NaN equals
NaN at the same position; NaN against a number is a mismatch. The max rel error is taken over
elements with ``|ref| > atol`` only: next to zero a relative error says nothing.

Default tolerances by dtype (``--atol``/``--rtol`` override both numbers for every output):

=========  ======  ======  ==========================================================
dtype      atol    rtol    why
=========  ======  ======  ==========================================================
float64    1e-7    1e-6    accumulation order only
float32    1e-4    1e-3    fused kernels (Conv+BN, GEMM blocking) reorder fp32 sums
float16    1e-2    1e-2    fp16 has ~3 significant digits; sums lose one more
bfloat16   5e-2    5e-2    bf16 has ~2 significant digits
int/bool   0       0       integer results must be exact
string     -       -       text must be equal, element by element
=========  ======  ======  ==========================================================
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

__all__ = [
    "Tolerance",
    "chunk_frames",
    "split_chunks",
    "DEFAULT_TOLERANCES",
    "tolerance_for",
    "OutputComparison",
    "compare_arrays",
    "compare_outputs",
    "match_outputs",
    "stack_frames",
    "split_frames",
    "frame_axis",
    "ERROR_DECADES",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tolerance:
    atol: float
    rtol: float


DEFAULT_TOLERANCES: dict[str, Tolerance] = {
    "float64": Tolerance(1e-7, 1e-6),
    "float32": Tolerance(1e-4, 1e-3),
    "float16": Tolerance(1e-2, 1e-2),
    "bfloat16": Tolerance(5e-2, 5e-2),
}
EXACT = Tolerance(0.0, 0.0)

# Histogram of |error| by decade: bin 0 exact, bin 1 below 1e-10, then [1e-10, 1e-9) ... [1e1, 1e2),
# last bin >= 1e2 (inf and NaN mismatches included). Fixed edges keep reports comparable.
ERROR_DECADES = tuple(range(-10, 3))


def tolerance_for(dtype: np.dtype, atol: float | None = None, rtol: float | None = None) -> Tolerance:
    base = DEFAULT_TOLERANCES.get(np.dtype(dtype).name, EXACT if _is_exact(dtype) else DEFAULT_TOLERANCES["float32"])
    return Tolerance(base.atol if atol is None else atol, base.rtol if rtol is None else rtol)


def _is_exact(dtype: np.dtype) -> bool:
    return np.dtype(dtype).kind in "iubOUS"


@dataclass
class OutputComparison:
    """How one output compares with its reference; ``note`` says why it could not be compared."""

    name: str
    reference_name: str
    shape: list[int]
    reference_shape: list[int]
    dtype: str
    atol: float
    rtol: float
    max_abs: float | None = None
    max_rel: float | None = None
    cosine: float | None = None
    mismatches: int | None = None
    size: int = 0
    worst_index: list[int] | None = None
    histogram: list[int] = field(default_factory=list)
    note: str = ""

    @property
    def ok(self) -> bool:
        return not self.note and self.mismatches == 0

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def compare_arrays(
    name: str, actual: np.ndarray, expected: np.ndarray, reference_name: str | None = None,
    atol: float | None = None, rtol: float | None = None,
) -> OutputComparison:
    """Compare one output with its reference (same shape required)."""
    tol = tolerance_for(expected.dtype, atol, rtol)
    result = OutputComparison(
        name, reference_name or name, list(actual.shape), list(expected.shape), str(actual.dtype), tol.atol, tol.rtol,
        size=int(expected.size),
    )
    if actual.shape != expected.shape:
        result.note = f"shape {list(actual.shape)} differs from the reference's {list(expected.shape)}"
        return result
    text = actual.dtype.kind in "OUS" and expected.dtype.kind in "OUS"  # str or object arrays, runtime's choice
    if actual.dtype != expected.dtype and not text:
        result.note = f"dtype {actual.dtype} differs from the reference's {expected.dtype}"
        return result
    if expected.dtype.kind in "OUS":  # text: equal or not, element by element
        bad = actual != expected
        result.mismatches = int(np.count_nonzero(bad))
        result.max_abs = result.max_rel = float(result.mismatches > 0)  # 0: equal, 1: some element differs
        result.worst_index = [int(i) for i in np.argwhere(bad)[0]] if result.mismatches else None
        return result
    a = actual.astype(np.float64)
    e = expected.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        error = np.asarray(np.abs(a - e))  # a 0-d output gives a numpy scalar (PLCMOS's score)
        both_nan = np.isnan(a) & np.isnan(e)
        same_inf = np.isinf(a) & (a == e)
        error[both_nan | same_inf] = 0.0
        error[np.isnan(error)] = np.inf  # NaN against a number
        bad = error > tol.atol + tol.rtol * np.abs(np.nan_to_num(e))
    result.mismatches = int(np.count_nonzero(bad))
    if error.size:
        worst = int(np.argmax(error))
        result.max_abs = float(error.flat[worst])
        result.worst_index = [int(i) for i in np.unravel_index(worst, error.shape)]
        significant = np.abs(e) > tol.atol
        result.max_rel = float(np.max(error[significant] / np.abs(e[significant]))) if significant.any() else 0.0
        result.cosine = _cosine(a, e)
        result.histogram = _histogram(error)
    else:
        result.max_abs = result.max_rel = 0.0
        result.cosine = 1.0
    return result


def _cosine(a: np.ndarray, e: np.ndarray) -> float:
    finite = np.isfinite(a) & np.isfinite(e)
    a, e = a[finite], e[finite]
    norm = float(np.linalg.norm(a) * np.linalg.norm(e))
    if norm == 0.0:
        # Two all-zero tensors agree perfectly; zero against non-zero does not.
        return 1.0 if not a.any() and not e.any() else 0.0
    return float(np.dot(a.ravel(), e.ravel()) / norm)


def _histogram(error: np.ndarray) -> list[int]:
    exact = int(np.count_nonzero(error == 0))
    nonzero = error[error > 0]
    edges = [0.0] + [10.0**d for d in ERROR_DECADES] + [np.inf]
    counts, _ = np.histogram(nonzero[np.isfinite(nonzero)], bins=edges)
    counts[-1] += int(np.count_nonzero(~np.isfinite(nonzero)))
    return [exact] + [int(c) for c in counts]


def match_outputs(actual: Sequence[str], expected: Sequence[str]) -> list[tuple[str | None, str | None]]:
    """Pair outputs by name, then the rest by position; an unpaired side is None."""
    pairs: dict[str, str | None] = {e: (e if e in actual else None) for e in expected}
    rest_actual = [a for a in actual if a not in pairs]
    rest_expected = [e for e in expected if pairs[e] is None]
    for a, e in zip(rest_actual, rest_expected):
        pairs[e] = a
    result: list[tuple[str | None, str | None]] = [(pairs[e], e) for e in expected]
    paired = {a for a, _ in result if a}
    result += [(a, None) for a in actual if a not in paired]
    return result


def compare_outputs(
    actual: dict[str, np.ndarray], expected: dict[str, np.ndarray],
    atol: float | None = None, rtol: float | None = None,
) -> list[OutputComparison]:
    """Every reference output against its counterpart in ``actual`` (matched by name, then position).

    Unpaired outputs on either side fail with a note: a model that drops or adds outputs
    changed its interface.
    """
    results = []
    for a, e in match_outputs(list(actual), list(expected)):
        if a is None:
            results.append(_unpaired(e, expected[e], "missing: the model has no counterpart for this reference output"))
        elif e is None:
            results.append(_unpaired(a, actual[a], "extra output: the reference has no counterpart"))
        else:
            results.append(compare_arrays(a, actual[a], expected[e], e, atol, rtol))
    return results


def _unpaired(name: str, array: np.ndarray, note: str) -> OutputComparison:
    tol = tolerance_for(array.dtype)
    return OutputComparison(name, name, list(array.shape), list(array.shape), str(array.dtype), tol.atol, tol.rtol,
                            size=int(array.size), note=note)


def split_frames(inputs: dict[str, np.ndarray], axes: dict[str, int], frames: int) -> list[dict[str, np.ndarray]]:
    """One input dict per frame: inputs in ``axes`` sliced to frame i on their batch axis, the others shared."""
    return [
        {name: (np.take(value, [i], axis=axes[name]) if name in axes else value) for name, value in inputs.items()}
        for i in range(frames)
    ]


def split_chunks(
    inputs: dict[str, np.ndarray], axes: dict[str, int], frames: int, size: int
) -> list[tuple[dict[str, np.ndarray], int]]:
    """Feeds for a model whose batch is fixed to ``size``: ``frames`` frames cut into chunks of
    ``size``, the last one padded with copies of the last frame. Returns (feeds, real frames) per chunk."""
    chunks = []
    for start in range(0, frames, size):
        index = np.minimum(np.arange(start, start + size), frames - 1)
        feeds = {name: (np.take(value, index, axis=axes[name]) if name in axes else value)
                 for name, value in inputs.items()}
        chunks.append((feeds, min(size, frames - start)))
    return chunks


def chunk_frames(outputs: dict[str, np.ndarray], count: int, size: int) -> list[dict[str, np.ndarray]]:
    """The first ``count`` frames of one run at a fixed batch ``size``, one output dict per frame.
    An output holds its frames on axis 0 when that is ``size``, else on its first axis of that size;
    one without such an axis is kept whole (the comparison then says it does not split)."""
    if size == 1:
        return [outputs]
    axes = {name: next((a for a, d in enumerate(v.shape) if d == size), None) for name, v in outputs.items()}
    return [{name: (v if axes[name] is None else np.take(v, [i], axis=axes[name])) for name, v in outputs.items()}
            for i in range(count)]


def frame_axis(batched_shape: tuple[int, ...], frame_shape: tuple[int, ...], n: int) -> int | None:
    """The axis where an output holds its frames: size n at batch n, 1 for one frame, the rest equal.

    The leading axis wins a tie (``[n, n, ...]``); None when no axis fits.
    """
    if len(batched_shape) != len(frame_shape):
        return None
    for axis, (b, f) in enumerate(zip(batched_shape, frame_shape)):
        rest_equal = batched_shape[:axis] + batched_shape[axis + 1:] == frame_shape[:axis] + frame_shape[axis + 1:]
        if b == n and f == 1 and rest_equal:
            return axis
    return None


def stack_frames(
    batched: dict[str, np.ndarray], frames: list[dict[str, np.ndarray]]
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Lay per-frame reference outputs out like the batched model's outputs.

    For an output whose frames lie on one axis (``[N, C]`` per ``[1, C]``; a state ``[2, N, 128]``
    per ``[2, 1, 128]``) the frames are concatenated on it. Otherwise, for ``[N, *rest]``, frame i
    is reshaped to ``rest`` when the sizes agree: this covers a rank grown by the batch axis
    (``[H*W, 2]`` per frame -> ``[N, H*W, 2]``). Returns the stacked reference outputs keyed by the
    reference's names, and for outputs that cannot be mapped a reason keyed by the model's output name.
    """
    stacked: dict[str, np.ndarray] = {}
    problems: dict[str, str] = {}
    n = len(frames)
    for a, e in match_outputs(list(batched), list(frames[0])):
        if a is None or e is None:
            continue  # compare_outputs reports unpaired outputs
        model_out, pieces = batched[a], [f[e] for f in frames]
        axis = frame_axis(model_out.shape, pieces[0].shape, n)
        if axis is not None:
            stacked[e] = np.concatenate(pieces, axis=axis)
        elif model_out.ndim >= 1 and model_out.shape[0] == n and model_out[0:1].size == pieces[0].size:
            stacked[e] = np.stack([p.reshape(model_out.shape[1:]) for p in pieces])
        elif n == 1 and model_out.size == pieces[0].size:
            stacked[e] = pieces[0].reshape(model_out.shape)
        else:
            problems[a] = (
                f"shape {list(model_out.shape)} at batch {n} does not split into {n} frames of the reference's "
                f"{list(pieces[0].shape)}: no axis holds the batch"
            )
    return stacked, problems
