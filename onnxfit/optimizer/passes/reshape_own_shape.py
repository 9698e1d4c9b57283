"""reshape-own-shape: a Reshape whose target is assembled from its own input's Shape gets a constant
target, ``0`` where it copies a dim.

Why: Paddle2ONNX writes ``flatten`` and torch writes ``x.view(x.size(0), -1)`` as
``Reshape(x, Concat(Slice(Shape(x), 0, 1), [-1]))``: three nodes of shape math, and a run-time
shape the CoreML and NNAPI builders refuse. ``Reshape``'s own ``0`` means "copy this dim of the
input" (``allowzero`` 0), which is exactly what the Shape slice does. Rules:

1. The target is a Concat (or a single tensor) whose pieces are constants without 0 entries, or
   ``Slice``/``Gather`` of ``Shape(x)`` for the Reshape's own data ``x`` (constant indices, step 1,
   no ``start``/``end`` attributes on the Shape), or torch's ``Unsqueeze(Gather(Shape(x), i), 0)``.
2. A piece taken from ``Shape(x)`` must copy dim ``i`` of ``x`` to position ``i`` of the target:
   it becomes ``0``. Any other position (a dim moved) leaves the Reshape alone.
3. Only with ``allowzero`` 0 (the default). Casts of the shape values to int32 or int64 on the way
   (Paddle2ONNX's int64 -> int32 -> int64) are looked through: a dim fits int32 in any tensor an
   exporter writes such a round trip for.
   The target itself may come through such Casts too (jax2tf casts the Concat).
The shape math goes when nothing else reads it. Exact: the target it computes is the same.
(A target known but for one entry from another tensor's Shape is fold-shapes' rule 3d.)
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from onnxfit.optimizer import nodes
from onnxfit.optimizer.edits import producer, set_input, slice_params, small_constant
from onnxfit.optimizer.pipeline import register_pass
from onnxfit.optimizer.rewrite import MatchContext, RewriteRule

__all__ = ["ReshapeOwnShapePass"]


@register_pass
class ReshapeOwnShapePass(RewriteRule):
    name = "reshape-own-shape"
    version = 3
    op = "Reshape"
    min_opset = 5
    fixpoint = True

    def match(self, node: gs.Node, ctx: MatchContext) -> list[int] | None:
        if node.attrs.get("allowzero", 0) or len(node.inputs) < 2 or isinstance(node.inputs[1], gs.Constant):
            return None
        x, target = node.inputs[0], node.inputs[1]
        concat = _through_integer_casts(producer(target))
        pieces = list(concat.inputs) if concat is not None and concat.op == "Concat" else [target]
        dims: list[int] = []
        for piece in pieces:
            values = _piece(piece, x, len(dims), ctx.opset)
            if values is None:
                return None
            dims += values
        return dims if 0 in dims else None

    def rewrite(self, graph: gs.Graph, node: gs.Node, plan: list[int], ctx: MatchContext) -> None:
        set_input(node, 1, nodes.int64_constant(graph, f"{node.name or 'reshape'}_shape", plan))


def _piece(piece: gs.Tensor, x: gs.Tensor, position: int, opset: int) -> list[int] | None:
    """Rule 1-2: the piece's entries (0 for a copied dim), or None."""
    value = small_constant(piece)
    if value is not None:
        flat = [int(v) for v in value.reshape(-1)]
        return flat if 0 not in flat else None
    node = _through_integer_casts(producer(piece))
    scalar_index = None
    if node is not None and node.op == "Unsqueeze" and _unsqueeze_axes(node, opset) == [0]:
        # torch: Unsqueeze(Gather(Shape(x), i)), a scalar made one entry
        node = _through_integer_casts(producer(node.inputs[0]))
        scalar_index = small_constant(node.inputs[1]) if node is not None and node.op == "Gather" else None
        if scalar_index is None or scalar_index.ndim != 0:
            return None
    if node is None:
        return None
    shape = _through_integer_casts(producer(node.inputs[0])) if node.inputs else None
    if shape is None or shape.op != "Shape" or shape.inputs[0] is not x or shape.attrs.get("start") or \
            shape.attrs.get("end") is not None:
        return None
    indices = [int(scalar_index)] if scalar_index is not None else _indices(node, opset)
    if indices is None or indices != list(range(position, position + len(indices))):
        return None
    return [0] * len(indices)


def _unsqueeze_axes(node: gs.Node, opset: int) -> list[int] | None:
    axes = node.attrs.get("axes") if opset < 13 else (small_constant(node.inputs[1]) if len(node.inputs) > 1 else None)
    return None if axes is None else [int(a) for a in np.asarray(axes).reshape(-1)]


_INTEGER_CASTS = (6, 7)  # int32, int64


def _through_integer_casts(node: gs.Node | None) -> gs.Node | None:
    """Skip Casts of shape values to int32/int64 (Paddle2ONNX's int64 -> int32 -> int64 round trip)."""
    while node is not None and node.op == "Cast" and int(node.attrs.get("to", 0)) in _INTEGER_CASTS:
        node = producer(node.inputs[0])
    return node


def _indices(node: gs.Node, opset: int) -> list[int] | None:
    """The dims of Shape(x) a Slice or Gather takes, when constant and non-negative."""
    if node.op == "Gather" and len(node.inputs) == 2:
        index = small_constant(node.inputs[1])
        if index is None or index.ndim != 1 or np.any(index < 0):
            return None  # a scalar index gives a scalar, no Concat piece
        return [int(i) for i in index]
    if node.op == "Slice":
        params = slice_params(node, opset, 1)
        if params is None or params[0].size != 1 or int(params[3][0]) != 1:
            return None
        start, end = int(params[0][0]), int(params[1][0])
        if start < 0 or end < start or end > 64:
            return None
        return list(range(start, end))
    return None
