"""Which axis of a graph input carries the frames, read from the dims the exporter wrote.

Exporters name dims, and the names are the only record of intent: ``state: [2, batch, 128]``
(silero-vad) carries the batch on axis 1; ``input: [sequence_length, 576]`` is time-major and has
no batch axis at all; ``x: [-1, 3, ?, ?]`` (Paddle) and ``images: [N, 64, 64, 3]`` (keras) carry
it on axis 0. The rules, in order:

1. a dim named like a batch (``batch``, ``N``, ``bs``, ``batch_size``...) is the batch axis;
2. a symbolic dim whose name another input's batch axis uses is the batch axis;
3. a leading dim named like time (``sequence``, ``seq_len``, ``length``, ``time``, ``frames``...)
   means no batch axis (the input is time-major);
4. beside a time-major input, an input with only fixed dims has no batch axis either (the LSTM
   state ``h: [1, 1, 128]`` of a streaming model);
5. otherwise the leading axis, unless it is a fixed number above 1 and a later dim is symbolic
   without a name that tells (``[2, ?, 128]``): then the axis cannot be known (``UNKNOWN``).

A dim_value <= 0, an empty dim and a missing dim all count as symbolic without a name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from onnxfit.errors import OnnxfitError

__all__ = ["BATCH_NAME", "TIME_NAME", "UNKNOWN", "input_batch_axes", "is_symbolic", "parse_batch_axes"]

BATCH_NAME = re.compile(r"^(n|b|bs|batch|batches|batch_size|batchsize|num_batches|nbatch|batch_dim|"
                        r"dynamicdimension\.0|p2o\.dynamicdimension\.0)$", re.IGNORECASE)
TIME_NAME = re.compile(r"(^|[_.])(seq|sequence|seq_len|sequence_length|length|len|time|times|t|frames|"
                       r"num_frames|steps|timesteps)($|[_.])", re.IGNORECASE)
UNKNOWN = -1  # the input is batched somewhere, but its dims do not say where

Dim = int | str | None
BatchAxes = dict[str, int | None]


def is_symbolic(dim: Dim) -> bool:
    """A dim without a usable size: a name, unknown, or a dim_value <= 0 (Paddle writes -1)."""
    return not isinstance(dim, int) or dim <= 0


def _name(dim: Dim) -> str:
    return dim if isinstance(dim, str) else ""


def input_batch_axes(inputs: Mapping[str, Sequence[Dim] | None]) -> dict[str, int | None]:
    """Input name -> batch axis, None (no batch axis: scalars, time-major inputs) or ``UNKNOWN``."""
    batch_names = {_name(d) for dims in inputs.values() if dims for d in dims
                   if _name(d) and BATCH_NAME.match(_name(d))}
    axes = {name: _batch_axis(dims, batch_names) for name, dims in inputs.items()}
    time_major = any(dims and axes[name] is None for name, dims in inputs.items())
    if time_major:
        for name, dims in inputs.items():
            if dims and not any(is_symbolic(d) for d in dims):
                axes[name] = None
    return axes


def _batch_axis(dims: Sequence[Dim] | None, batch_names: set[str]) -> int | None:
    if not dims:
        return None
    for axis, dim in enumerate(dims):
        if _name(dim) in batch_names:
            return axis
    if TIME_NAME.search(_name(dims[0])):
        return None
    if not is_symbolic(dims[0]) and dims[0] > 1 and any(is_symbolic(d) and not _name(d) for d in dims[1:]):
        return UNKNOWN
    return 0


def parse_batch_axes(items: list[str] | dict | None) -> BatchAxes:
    """``["state=1", "sr=none"]`` -> ``{"state": 1, "sr": None}`` (``--batch-axis``)."""
    if not items:
        return {}
    if isinstance(items, dict):
        return dict(items)
    axes: BatchAxes = {}
    for item in items:
        name, sep, value = item.rpartition("=")
        if not sep or not name:
            raise OnnxfitError(f"--batch-axis {item}: expected NAME=AXIS (an integer, or none)")
        if value.lower() == "none":
            axes[name] = None
        elif value.isdigit():
            axes[name] = int(value)
        else:
            raise OnnxfitError(f"--batch-axis {item}: the axis must be a non-negative integer or none")
    return axes
