"""Inputs for verification: read the model's input signature, bind symbolic dims, make data.

Data is deterministic (one seed) so that two runs of ``onnxfit verify`` see the same numbers.
Generated values follow what vision models are fed:

1. floating point: uniform in [-1, 1] (normalized image range; also fine for [0, 1] models);
2. integers: uniform in [0, 4) (small non-negative: safe as indices into any axis of size >= 4);
3. bool: fair coin.

Scalar settings (rank-0 inputs) and recurrent state tensors cannot be guessed: they must come
from ``--inputs data.npz`` (keyed by input name). An .npz may also give only some inputs.

Each input's batch axis comes from its dim names (``onnxfit.batch_axes``), overridden by
``--batch-axis NAME=AXIS``: ``state: [2, batch, 128]`` is batched on axis 1, not 0. A dim_value
<= 0 (Paddle writes -1), an empty dim and a missing shape are all symbolic.
"""

from __future__ import annotations

import logging
import os
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import helper

from onnxfit.batch_axes import BATCH_NAME, UNKNOWN, input_batch_axes, parse_batch_axes
from onnxfit.errors import OnnxfitError, first_line
from onnxfit.shapes import dims_text, proto_shape

__all__ = [
    "InputSpec",
    "model_inputs",
    "load_npz",
    "resolve_shapes",
    "generate_inputs",
    "make_inputs",
    "DEFAULT_DIM",
    "BatchAxes",
    "batch_axes",
    "parse_batch_axes",
    "known_batch_axes",
    "unknown_axis_message",
    "unknown_batch_axes",
    "frame",
    "take_frames",
    "as_text",
]

log = logging.getLogger(__name__)

# A symbolic dim that is not the batch gets this value (e.g. image height/width): small enough to
# be fast on the slow reference runtimes, large enough for strided convs and pooling.
DEFAULT_DIM = 64
INT_HIGH = 4

Dim = int | str | None  # fixed value, symbolic name, or unknown

# Inputs with these names carry a recurrent state; random data would not be a valid state.
_STATE_NAME = re.compile(r"(^|[_.\-/])(state|states|past|cache|hidden|memory|h0|c0)($|[_.\-/\d])", re.IGNORECASE)
BatchAxes = dict[str, int | None]  # input name -> batch axis, None: no batch axis


@dataclass(frozen=True)
class InputSpec:
    """One graph input as the model declares it: ``dims`` is None when the rank is unknown."""

    name: str
    dtype: np.dtype
    dims: tuple[Dim, ...] | None
    state: bool = False  # a recurrent state: named like one, and the graph returns a tensor of its kind

    @property
    def needs_data(self) -> bool:
        """Scalar settings and state tensors: values the user must provide."""
        return self.dims == () or self.state

    def describe(self) -> str:
        dims = "?" if self.dims is None else "x".join("?" if d is None else str(d) for d in self.dims)
        return f"{self.name} {self.dtype} [{dims}]"


def batch_axes(specs: list[InputSpec], overrides: BatchAxes | None = None) -> dict[str, int | None]:
    """Each input's batch axis from its dim names, then ``--batch-axis`` overrides (may hold UNKNOWN)."""
    axes = input_batch_axes({s.name: s.dims for s in specs})
    by_name = {s.name: s for s in specs}
    for name, axis in (overrides or {}).items():
        if name not in by_name:
            raise OnnxfitError(f"--batch-axis {name}=...: '{name}' is not a model input (inputs: {', '.join(by_name)})")
        rank = None if by_name[name].dims is None else len(by_name[name].dims)
        if axis is not None and (axis < 0 or (rank is not None and axis >= rank)):
            raise OnnxfitError(f"--batch-axis {name}={axis}: input '{name}' has rank {rank}")
        axes[name] = axis
    return axes


def known_batch_axes(specs: list[InputSpec], axes: dict[str, int | None]) -> BatchAxes:
    """``axes`` with every UNKNOWN resolved, or an OnnxfitError naming the input and the fix."""
    unknown = unknown_batch_axes(specs, axes)
    if unknown:
        raise OnnxfitError(unknown_axis_message(unknown[0]))
    return dict(axes)


def unknown_batch_axes(specs: list[InputSpec], axes: dict[str, int | None]) -> list[InputSpec]:
    """The inputs whose batch axis their dim names do not tell (``--batch-axis`` gives it)."""
    return [s for s in specs if axes.get(s.name) == UNKNOWN]


def unknown_axis_message(spec: InputSpec) -> str:
    return (
        f"input '{spec.name}' {dims_text(spec.dims)}: its dim names do not say which axis carries the batch; "
        f"pass --batch-axis {spec.name}=AXIS (e.g. --batch-axis {spec.name}={_guess_axis(spec)}), "
        f"or --batch-axis {spec.name}=none if it has none"
    )


def _guess_axis(spec: InputSpec) -> int:
    """The example axis for the error message: the first symbolic dim after the leading one."""
    return next((i for i, d in enumerate(spec.dims or ()) if i and not isinstance(d, int)), 1)


def frame(array: np.ndarray, axis: int, index: int) -> np.ndarray:
    """Frame ``index`` of ``array`` along its batch ``axis``, keeping that axis (size 1)."""
    return np.take(array, [index], axis=axis)


def take_frames(array: np.ndarray, axis: int, n: int) -> np.ndarray:
    """``array`` cycled to ``n`` frames along ``axis`` (an .npz at batch 1 feeds a batch-4 test)."""
    return np.take(array, np.arange(n) % array.shape[axis], axis=axis)


def model_inputs(model: onnx.ModelProto) -> list[InputSpec]:
    """The real inputs (initializers listed as inputs by old exporters are not inputs)."""
    initializers = {t.name for t in model.graph.initializer}
    outputs = [(o.type.tensor_type.elem_type, proto_shape(o)) for o in model.graph.output if o.type.HasField("tensor_type")]
    specs = []
    for vi in model.graph.input:
        if vi.name in initializers:
            continue
        if not vi.type.HasField("tensor_type"):
            raise OnnxfitError(f"input '{vi.name}' is not a tensor (sequence/map inputs are not supported by verify)")
        elem, dims = vi.type.tensor_type.elem_type, proto_shape(vi)  # a dim_value <= 0 (Paddle's -1) is symbolic
        state = bool(_STATE_NAME.search(vi.name)) and any(t == elem and _same_kind(dims, d) for t, d in outputs)
        specs.append(InputSpec(vi.name, np.dtype(helper.tensor_dtype_to_np_dtype(elem)), dims, state))
    return specs


def _same_kind(dims: tuple[Dim, ...] | None, out: tuple[Dim, ...] | None) -> bool:
    """An output that can carry this input's state to the next call: same rank, the same fixed dims
    (unknown shapes cannot tell otherwise). A name alone is a guess: ``memory [1, 64, S, 96]`` feeding
    a decoder is a feature map, not a state, when nothing of its shape comes back out."""
    if dims is None or out is None:
        return True
    return len(dims) == len(out) and all(
        not (isinstance(a, int) and isinstance(b, int) and a > 0 and b > 0) or a == b for a, b in zip(dims, out))


def load_npz(path: str | os.PathLike, specs: list[InputSpec]) -> dict[str, np.ndarray]:
    """Read ``--inputs``; check names, dtypes, ranks and fixed dims against the model."""
    path = Path(path)
    if not path.is_file():
        raise OnnxfitError(f"{path}: no such file")
    by_name = {s.name: s for s in specs}
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: _entry(path, data, name, by_name) for name in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise OnnxfitError(f"{path}: not a readable .npz file ({first_line(exc)})") from None
    unknown = [n for n in arrays if n not in by_name]
    if unknown:
        verb = "is not a model input" if len(unknown) == 1 else "are not model inputs"
        raise OnnxfitError(f"{path}: {', '.join(repr(n) for n in unknown)} {verb} (inputs: {', '.join(by_name)})")
    for name, array in arrays.items():
        check_array(name, array, by_name[name], source=str(path))
    return arrays


def _entry(path: Path, data, name: str, by_name: dict[str, InputSpec]) -> np.ndarray:
    """One array of an .npz. Text comes as str arrays: object arrays need pickle, which could run
    code from the file, so they are refused with the way to save text instead."""
    try:
        array = data[name]
    except ValueError as exc:
        if "allow_pickle" not in str(exc):
            raise
        raise OnnxfitError(
            f"{path}: '{name}' is an object array, which .npz stores with pickle (not loaded: it can run code); "
            f"save text as a str array: np.savez(path, {name}=np.array([...], dtype=str))"
        ) from None
    spec = by_name.get(name)
    return as_text(array) if spec is not None and spec.dtype == object else array


def as_text(array: np.ndarray) -> np.ndarray:
    """str/bytes arrays as the object arrays of Python str that ONNX Runtime takes for string tensors."""
    if array.dtype.kind == "S":
        return np.vectorize(lambda b: b.decode("utf-8"), otypes=[object])(array) if array.size else array.astype(object)
    return array.astype(object) if array.dtype.kind == "U" else array


def check_array(name: str, array: np.ndarray, spec: InputSpec, source: str) -> None:
    if spec.dtype == object and array.dtype.kind in "OUS":
        pass  # text: any str, bytes or object array of str
    elif array.dtype != spec.dtype:
        raise OnnxfitError(f"{source}: input '{name}' is {array.dtype}, the model wants {spec.dtype}")
    if spec.dims is None:
        return
    if array.ndim != len(spec.dims):
        raise OnnxfitError(
            f"{source}: input '{name}' has shape {list(array.shape)} (rank {array.ndim}), the model wants rank "
            f"{len(spec.dims)} {dims_text(spec.dims)}"
        )
    for value, dim in zip(array.shape, spec.dims):
        if isinstance(dim, int) and dim != value:
            raise OnnxfitError(
                f"{source}: input '{name}' has shape {list(array.shape)}, the model wants {dims_text(spec.dims)}"
            )


# Dim names exporters write for "unknown" (Paddle's ``?``, tf2onnx's ``unk__12``, TF's
# ``DynamicDimension.3``, ``-1``): they bind no size across dims or inputs.
_PLACEHOLDER_DIM = re.compile(r"^(\?|-1|unk__\d+|DynamicDimension(\.\d+)?|None)$")


def _binds(dim) -> bool:
    """A dim name that stands for one size wherever it appears."""
    return isinstance(dim, str) and bool(dim) and not _PLACEHOLDER_DIM.match(dim)


def resolve_shapes(
    specs: list[InputSpec],
    batch: int | None = None,
    input_shapes: dict[str, tuple[int, ...]] | None = None,
    provided: dict[str, np.ndarray] | None = None,
    axes: dict[str, int | None] | None = None,
) -> tuple[dict[str, tuple[int, ...]], list[str]]:
    """Concrete shapes for every input, and notes saying which symbolic dims got a default.

    Precedence: arrays from ``provided`` > ``input_shapes`` > ``batch`` for a symbolic batch axis
    (``axes``, default: from the dim names) > a value already bound to the same symbol > 1 for
    batch-like names > ``DEFAULT_DIM``.
    """
    input_shapes = dict(input_shapes or {})
    provided = provided or {}
    axes = batch_axes(specs) if axes is None else axes
    bound: dict[str, int] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    notes: list[str] = []
    # Explicit shapes first so that their symbols bind before any default is picked.
    for spec in specs:
        explicit = provided[spec.name].shape if spec.name in provided else input_shapes.get(spec.name)
        if explicit is None:
            continue
        shapes[spec.name] = tuple(int(v) for v in explicit)
        for dim, value in zip(spec.dims or (), explicit):
            if _binds(dim):
                if bound.setdefault(dim, int(value)) != value:
                    raise OnnxfitError(
                        f"input '{spec.name}' sets dim '{dim}' to {value}, but another input set it to {bound[dim]}"
                    )
    for spec in specs:
        if spec.name in shapes:
            continue
        if spec.dims is None:
            raise OnnxfitError(
                f"input '{spec.name}' has no declared shape: give it with --input-shape {spec.name}=1x3x64x64 "
                f"or --inputs data.npz"
            )
        shape = []
        for axis, dim in enumerate(spec.dims):
            if isinstance(dim, int):
                shape.append(dim)
                continue
            label = dim if dim else f"#{axis}"
            if _binds(dim) and dim in bound:
                value = bound[dim]
            elif axis == axes.get(spec.name) and batch is not None:
                value = batch
            elif axis == axes.get(spec.name) or BATCH_NAME.match(label):
                value = 1
                notes.append(f"dim '{label}' of input '{spec.name}' set to 1 (batch; --batch N changes it)")
            else:
                value = DEFAULT_DIM
                notes.append(f"dim '{label}' of input '{spec.name}' set to {DEFAULT_DIM} (--input-shape changes it)")
            if _binds(dim):
                bound[dim] = value
            shape.append(value)
        shapes[spec.name] = tuple(shape)
    return shapes, notes


def generate_inputs(specs: list[InputSpec], shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, np.ndarray]:
    """Deterministic data for every input in ``shapes`` (see the module docstring for ranges)."""
    feeds = {}
    for spec in specs:
        if spec.name not in shapes:
            continue
        # One generator per input name: adding an input (or an .npz entry) leaves the others' data alone.
        rng = np.random.default_rng([seed, zlib.crc32(spec.name.encode())])
        shape = shapes[spec.name]
        if spec.dtype == np.bool_:
            feeds[spec.name] = rng.random(shape) < 0.5
        elif np.issubdtype(spec.dtype, np.integer):
            feeds[spec.name] = rng.integers(0, INT_HIGH, size=shape).astype(spec.dtype)
        elif np.issubdtype(spec.dtype, np.floating) or spec.dtype.kind == "V":
            feeds[spec.name] = rng.uniform(-1.0, 1.0, size=shape).astype(spec.dtype)
        elif spec.dtype == object:
            raise OnnxfitError(
                f"input '{spec.name}' is a string tensor: give its values with --inputs data.npz "
                f"(text as a str array: np.savez('data.npz', {spec.name}=np.array([...], dtype=str)))"
            )
        else:
            raise OnnxfitError(f"input '{spec.name}' has type {spec.dtype}: give its values with --inputs data.npz")
    return feeds


def make_inputs(
    specs: list[InputSpec],
    batch: int | None = None,
    input_shapes: dict[str, tuple[int, ...]] | None = None,
    provided: dict[str, np.ndarray] | None = None,
    seed: int = 0,
    axes: dict[str, int | None] | None = None,
) -> tuple[dict[str, np.ndarray], list[str]]:
    """Provided arrays plus generated data for the rest; refuses to invent scalar settings. A state
    tensor nobody gave starts at zeros, the start of a stream (random states are no state a
    streaming model ever sees: they overflow FacePhys's decays)."""
    provided = dict(provided or {})
    axes = batch_axes(specs) if axes is None else axes
    missing = [s for s in specs if s.needs_data and s.name not in provided]
    scalars = [s for s in missing if s.dims == ()]
    if scalars:
        what = ", ".join(f"'{s.name}' (scalar setting)" for s in scalars)
        raise OnnxfitError(f"input {what} cannot be generated: give its values with --inputs data.npz")
    states = [s for s in missing if s.dims is not None]
    unknown = [s for s in missing if s.dims is None]
    if unknown:
        what = ", ".join(f"'{s.name}' (state tensor of unknown shape)" for s in unknown)
        raise OnnxfitError(f"input {what} cannot be generated: give its values with --inputs data.npz")
    dims = [s.dims[axes[s.name]] for s in specs if s.dims and axes.get(s.name) not in (None, UNKNOWN)]
    if batch is not None and all(isinstance(d, int) for d in dims) and any(d != batch for d in dims):
        raise OnnxfitError(
            f"--batch {batch}: no input has a dynamic batch dim ({', '.join(s.describe() for s in specs)})"
        )
    shapes, notes = resolve_shapes(specs, batch, input_shapes, provided, axes)
    feeds = generate_inputs([s for s in specs if s.name not in provided and s not in states], shapes, seed)
    for state in states:
        feeds[state.name] = np.zeros(shapes[state.name], dtype=state.dtype)
    if states:
        names = ", ".join(s.name for s in states[:4]) + (f" and {len(states) - 4} more" if len(states) > 4 else "")
        notes.append(f"state input(s) {names} start at zeros, the start of a stream: give --inputs for other states")
    feeds.update(provided)
    return {s.name: feeds[s.name] for s in specs}, notes
