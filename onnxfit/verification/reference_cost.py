"""What one run of onnx.reference would allocate, estimated before it runs.

onnx.reference is a numpy interpreter: it keeps every intermediate tensor of a run, and its Conv
is an im2col that copies each input position once per kernel tap, with the kernel dilated by
zero-insertion first (a 3x3 kernel at dilation 16 has 33x33 taps) and two int64 index arrays of the
same size. A 1.8 MB dilated-conv U-Net at 64x64, batch 4, asks it for 5.35 GiB in one Conv, and
the run grows until the kernel kills it. verify estimates a run from the model's inferred shapes
at the inputs it is about to feed and skips the runtime, with the reason, above a budget.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import onnx
from onnx import helper

from onnxfit.graphs import iter_graphs
from onnxfit.shapes import infer_shapes

__all__ = ["Cost", "memory_budget", "reference_cost"]

_BUDGET = 2 * 2**30  # at most this, and at most a quarter of the machine's memory
_INDEX_BYTES = 8  # im2col's index arrays are int64


@dataclass(frozen=True)
class Cost:
    """Estimated peak bytes of one run: every tensor it keeps plus the largest Conv temporary."""

    kept: int
    temporary: int
    what: str  # the node behind ``temporary``

    @property
    def peak(self) -> int:
        return self.kept + self.temporary


def memory_budget() -> int:
    """What onnx.reference may take for one run on this machine."""
    try:
        physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not on every platform: keep the fixed budget
        return _BUDGET
    return min(_BUDGET, physical // 4)


def reference_cost(model: onnx.ModelProto, input_shapes: dict[str, tuple[int, ...]]) -> Cost:
    """The estimate for a run fed inputs of ``input_shapes`` (tensors whose shape inference cannot
    tell count as nothing: an estimate, not a bound)."""
    shapes = infer_shapes(model, input_shapes)
    weights = {t.name: tuple(t.dims) for g in iter_graphs(model.graph) for t in g.initializer}
    kept = sum(_size(s) * 4 for name, s in shapes.items() if name not in weights and _known(s))
    temporary, what = 0, ""
    for graph in iter_graphs(model.graph):
        for node in graph.node:
            if node.op_type != "Conv" or node.domain not in ("", "ai.onnx"):
                continue
            x, w = shapes.get(node.input[0]), weights.get(node.input[1]) or shapes.get(node.input[1])
            if _known(x) and _known(w) and len(x) == len(w) and len(x) >= 3:
                cost = _im2col_bytes(node, x, w)
                if cost > temporary:
                    temporary, what = cost, f"Conv '{node.name or node.output[0]}'"
    return Cost(kept, temporary, what)


def _im2col_bytes(node: onnx.NodeProto, x: tuple[int, ...], w: tuple[int, ...]) -> int:
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    rank = len(x) - 2
    kernel = list(attrs.get("kernel_shape") or w[2:])
    dilations = list(attrs.get("dilations") or [1] * rank)
    strides = list(attrs.get("strides") or [1] * rank)
    pads = list(attrs.get("pads") or [0] * 2 * rank)
    taps = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", b"VALID", "NOTSET", "VALID"):
        out = [math.ceil(s / st) for s, st in zip(x[2:], strides)]
    else:
        out = [(s + pads[i] + pads[i + rank] - t) // st + 1 for i, (s, t, st) in enumerate(zip(x[2:], taps, strides))]
    columns = x[1] * math.prod(taps) * math.prod(max(o, 0) for o in out)
    # The gathered columns and their transposed copy (float32), and one index array per spatial axis.
    return x[0] * columns * 4 * 2 + columns * _INDEX_BYTES * rank


def _known(shape) -> bool:
    return shape is not None and all(isinstance(d, int) and d >= 0 for d in shape)


def _size(shape: tuple[int, ...]) -> int:
    return math.prod(shape)
