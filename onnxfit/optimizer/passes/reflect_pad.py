"""reflect-pad: Pad(mode=reflect|edge|wrap) -> Slice + Concat along each padded axis.

The CoreML EP before ONNX Runtime 1.26, and CoreML's NeuralNetwork format in every version,
reject Pad(reflect); neither accepts Pad(edge) or Pad(wrap) at all. Generators and restoration
models (ReflectionPad2d in ResNet/U-Net generators, circular padding) then fall back to the CPU
and split the graph. Slice and Concat run everywhere. Rules:

1. pads come from the ``pads`` attribute (opsets 4-10) or the ``pads`` input (opset >= 11) when
   it is constant: an initializer, a Constant node, or any chain no graph input reaches (torch's
   F.pad export: Constant/Shape -> ConstantOfShape/Concat -> Reshape -> Slice -> Transpose ->
   Reshape -> Cast), at top level or inside If branches. Pads computed at run time are skipped and reported with the reason. Models below
   opset 4 are skipped: ONNX Runtime has no kernel for Concat-1 (nor for Pad-1);
2. any axis is padded, not only H/W, with asymmetric begin/end amounts; the ``axes`` input
   (opset >= 18, negative axes included) selects the axes the pads apply to;
3. modes ``reflect``, ``edge`` and ``wrap`` (opset >= 19). Mode ``constant`` is left alone;
4. negative pads crop, as in ONNX Runtime: one Slice removes them first, and the positive pads
   then reflect/repeat/wrap the cropped tensor;
5. each padded axis becomes one Concat of [begin rows, tensor, end rows]. The rows are Slices with
   indices relative to the axis ends (``[1:2]``, ``[-2:-1]``, ``[-1:INT64_MAX]``), so the rewrite
   is exact for every axis size ONNX Runtime accepts, known or symbolic;
6. reflect rows run backwards. Up to ``_MAX_ROW_SLICES`` rows (the usual 1-3 of vision models)
   are one step-1 Slice per row, concatenated in reverse order, which every EP accepts; more rows
   are one Slice with step -1 (opset >= 10; CoreML's Slice builder accepts negative steps);
7. a pad the axis cannot supply is skipped with the reason, never rewritten: reflect needs
   ``pad < size`` (ONNX Runtime rejects larger ones), edge needs a non-empty axis, and wrap larger
   than the axis repeats the whole axis, which needs the size to be known (wrap of one row does not).

8. a Pad the target EP runs itself at ``--ort-version`` is left as it is: the target's support
   profile decides, as for the partition estimate (CoreML MLProgram takes reflect on the last two
   axes from 1.26, PR #28073).

Exact: every output element is a copy of the input element the Pad would read.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from onnxfit.optimizer import nodes
from onnxfit.optimizer.constants import constant_value
from onnxfit.optimizer.pipeline import register_pass
from onnxfit.optimizer.rewrite import DEFAULT_DOMAINS, MatchContext, RewriteRule, Skip, is_omitted

__all__ = ["ReflectPadPass", "Pads", "Skip", "pad_mode"]

log = logging.getLogger(__name__)

_MODES = ("reflect", "edge", "wrap")
_MAX_ROW_SLICES = 4  # reflect pads up to this many rows use step-1 Slices only
_TO_END = np.iinfo(np.int64).max  # Slice end meaning "through the last row" for any size


@dataclass(frozen=True)
class Pads:
    """A decoded Pad: per padded axis, rows added before (begin) and after (end); negative crops.

    ``axes`` are non-negative when the data rank is known; ``sizes`` holds each axis's length, or
    None where it is symbolic.
    """

    mode: str
    axes: tuple[int, ...]
    begin: tuple[int, ...]
    end: tuple[int, ...]
    sizes: tuple[int | None, ...]


@register_pass
class ReflectPadPass(RewriteRule):
    name = "reflect-pad"
    version = 3
    op = "Pad"
    kept_when_target_takes = "Pad"

    def match(self, node: gs.Node, ctx: MatchContext) -> Pads | Skip | None:
        return _matches(node, ctx.opset)

    def rewrite(self, graph: gs.Graph, node: gs.Node, plan: Pads, ctx: MatchContext) -> None:
        _rewrite(graph, node, plan, ctx.opset)


def _matches(node: gs.Node, opset: int) -> Pads | Skip | None:
    """Decode every opset form of Pad. None: not this pass's job (mode constant, other domain)."""
    if node.op != "Pad" or node.domain not in DEFAULT_DOMAINS:
        return None
    mode = pad_mode(node)
    if mode not in _MODES:
        return None
    if opset < 4:
        return Skip(f"opset {opset}: ONNX Runtime runs Concat from opset 4 only")
    if mode == "wrap" and opset < 19:
        return Skip(f"mode 'wrap' needs opset >= 19, the model has {opset}")

    pads = _pads_value(node, opset)
    if pads is None:
        return Skip("pads are computed at run time")
    if pads.size % 2:
        return Skip(f"pads has odd length {pads.size}")
    shape = node.inputs[0].shape
    rank = len(shape) if shape is not None else None
    n = pads.size // 2

    axes = _axes_value(node, opset)
    if isinstance(axes, Skip):
        return axes
    if axes is None:
        if rank is not None and rank != n:
            return Skip(f"{pads.size} pads for a rank-{rank} input")
        axes = list(range(n))
    elif len(axes) != n:
        return Skip(f"{pads.size} pads for {len(axes)} axes")
    if rank is not None:
        if any(not -rank <= a < rank for a in axes):
            return Skip(f"axes {list(axes)} out of range for rank {rank}")
        axes = [a % rank for a in axes]
    elif min(axes, default=0) < 0 <= max(axes, default=0):
        # The same axis could be named twice (-1 and 3); only the rank tells, and it is unknown.
        return Skip(f"axes {list(axes)} mix signs on an input of unknown rank")
    if len(set(axes)) != len(axes):
        return Skip(f"axes {list(axes)} repeat an axis")

    sizes = tuple(_dim(shape, a) for a in axes)
    decoded = Pads(mode, tuple(axes), tuple(int(p) for p in pads[:n]), tuple(int(p) for p in pads[n:]), sizes)
    problem = _size_problem(decoded)
    return Skip(problem) if problem else decoded


def pad_mode(node: gs.Node) -> str:
    mode = node.attrs.get("mode", "constant")
    return mode.decode() if isinstance(mode, bytes) else mode


def _pads_value(node: gs.Node, opset: int) -> np.ndarray | None:
    if opset < 11:
        value = node.attrs.get("pads")
        return None if value is None else np.asarray(value, dtype=np.int64).ravel()
    value = constant_value(node.inputs[1], opset) if len(node.inputs) > 1 else None
    # ORT also accepts pads of shape [1, 2 * n]; the values are what matters.
    return None if value is None else value.astype(np.int64).ravel()


def _axes_value(node: gs.Node, opset: int) -> list[int] | Skip | None:
    """The ``axes`` input (opset >= 18) as a list, None when absent."""
    if opset < 18 or len(node.inputs) < 4 or is_omitted(node.inputs[3]):
        return None
    value = constant_value(node.inputs[3], opset)
    if value is None:
        return Skip("axes are computed at run time")
    return [int(a) for a in value.ravel()]


def _dim(shape, axis: int) -> int | None:
    if shape is None or axis < 0:
        return None
    d = shape[axis]
    return int(d) if isinstance(d, (int, np.integer)) and d >= 0 else None


def _size_problem(pads: Pads) -> str | None:
    """Why the axis sizes cannot supply the pads, or None when the rewrite is exact."""
    for axis, b, e, size in zip(pads.axes, pads.begin, pads.end, pads.sizes):
        grow = max(b, 0), max(e, 0)
        if not any(grow):
            continue
        # Positive pads read the tensor left after negative pads cropped it (ONNX Runtime's order).
        left = None if size is None else size - max(-b, 0) - max(-e, 0)
        if pads.mode == "reflect" and left is not None and max(grow) >= left:
            return f"reflect pads {grow} on axis {axis} of size {left}: reflect needs pad < size"
        if left is not None and left <= 0:
            return f"{pads.mode} pads {grow} on axis {axis}, which is empty"
        if pads.mode == "wrap" and left is None and max(grow) > 1:
            return f"wrap pads {grow} on axis {axis} of unknown size: rows repeat when size < pad"
    return None


def _rewrite(graph: gs.Graph, node: gs.Node, pads: Pads, opset: int) -> None:
    base = node.name or "pad"
    x, y = node.inputs[0], node.outputs[0]
    # Detach the Pad; its pads/axes tensors stay for other users and cleanup drops the rest.
    node.inputs.clear()
    node.outputs.clear()

    crops = [(a, -min(b, 0), -min(e, 0)) for a, b, e in zip(pads.axes, pads.begin, pads.end) if b < 0 or e < 0]
    cropped = {a: cb + ce for a, cb, ce in crops}
    grows = [(a, max(b, 0), max(e, 0), None if size is None else size - cropped.get(a, 0))
             for a, b, e, size in zip(pads.axes, pads.begin, pads.end, pads.sizes) if b > 0 or e > 0]
    if crops:
        x = nodes.slice_(graph, x, [cb for _, cb, _ in crops], [-ce if ce else _TO_END for _, _, ce in crops],
                         [a for a, _, _ in crops], opset, f"{base}_crop", output=None if grows else y)
    for i, (axis, b, e, size) in enumerate(grows):
        here = f"{base}_axis{axis}"
        pieces = [*_begin_rows(graph, x, axis, b, size, pads.mode, opset, here), x,
                  *_end_rows(graph, x, axis, e, size, pads.mode, opset, here)]
        x = nodes.concat(graph, pieces, axis, f"{here}_concat", output=y if i == len(grows) - 1 else None)
    if not crops and not grows:
        # All pads zero: the Pad copies its input.
        nodes.add_node(graph, "Identity", base, [x], outputs=[y])


def _begin_rows(graph, x, axis, count, size, mode, opset, base) -> list[gs.Tensor]:
    """The rows placed before ``x`` along ``axis``, in output order."""
    if count == 0:
        return []

    def rows(start, end, steps=None):
        return nodes.slice_(graph, x, [start], [end], [axis], opset, f"{base}_begin", steps=steps)

    if mode == "edge":
        return [rows(0, 1)] * count
    if mode == "wrap":
        # The last rows come first; a pad longer than the axis repeats the whole axis first.
        repeats, rest = divmod(count, size) if size else (0, count)
        return ([rows(-rest, _TO_END)] if rest else []) + [x] * repeats
    # Reflect: rows count..1, mirrored about row 0, which is not repeated.
    if count <= _MAX_ROW_SLICES or opset < 10:
        return [rows(k, k + 1) for k in range(count, 0, -1)]
    return [rows(count, 0, steps=[-1])]


def _end_rows(graph, x, axis, count, size, mode, opset, base) -> list[gs.Tensor]:
    """The rows placed after ``x`` along ``axis``, in output order."""
    if count == 0:
        return []

    def rows(start, end, steps=None):
        return nodes.slice_(graph, x, [start], [end], [axis], opset, f"{base}_end", steps=steps)

    if mode == "edge":
        return [rows(-1, _TO_END)] * count
    if mode == "wrap":
        repeats, rest = divmod(count, size) if size else (0, count)
        return [x] * repeats + ([rows(0, rest)] if rest else [])
    # Reflect: rows size-2 down to size-1-count; the Slice end excludes the last row, which
    # reflect does not repeat. Negative indices keep this exact for symbolic sizes.
    if count <= _MAX_ROW_SLICES or opset < 10:
        return [rows(-k - 1, -k) for k in range(1, count + 1)]
    return [rows(-2, -2 - count, steps=[-1])]
