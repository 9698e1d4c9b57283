"""split-reshapes: a Split of a value that a Squeeze/Unsqueeze/Reshape only renamed splits the value
itself, and each piece's readers reshape it to their own shapes.

Why: tf2onnx writes ``Squeeze(axes=[2, 3])`` of a conv output ``[1, 384, 1, 1] -> [1, 384]``, then
``Split(axis=-1)`` into three ``[1, 128]``, and reshapes every piece again (``[1, 32, 4, 1]``,
``[1, 1, 1, 128]``): the Squeeze only moves data the readers move back (FacePhys: 10 Squeezes).
Split on axis 1 of ``[1, 384, 1, 1]`` gives the same elements in the same order. Rules:

1. Matched at the Split; its data input is written by a Reshape, Squeeze, Unsqueeze or Flatten
   (other inputs constant) that nothing else reads and no graph returns, with static input and
   output shapes that have the same dims other than 1s in the same order (only 1s come or go).
2. The split axis (negative resolved) has a size above 1; it is the k-th such dim of the output,
   and the Split moves to the k-th such dim of the input. Its sizes, in whatever form the opset
   gives them (attribute, input, ``num_outputs``, equal), stay: that axis has the same length.
3. Every output of the Split has a static shape, no graph returns it, and each of its readers is a
   Reshape, Squeeze, Unsqueeze or Flatten (other inputs constant) with a static output shape.
4. The Split reads the input of the node before it; its outputs take the shapes of the pieces of
   that input; each reader becomes a ``Reshape`` to its own output shape (its output tensor stays).
   The node before the Split is left unread, for the dead-node sweep.
Exact: no element changes or moves; only dims of size 1 come and go.
"""

from __future__ import annotations

import onnx_graphsurgeon as gs

from onnxfit.optimizer import nodes
from onnxfit.optimizer.edits import is_reshape, producer, set_input, set_inputs, small_constant
from onnxfit.optimizer.pipeline import register_pass
from onnxfit.optimizer.rewrite import MatchContext, RewriteRule, Skip, is_omitted

__all__ = ["SplitReshapesPass"]

@register_pass
class SplitReshapesPass(RewriteRule):
    name = "split-reshapes"
    version = 1
    op = "Split"
    min_opset = 5  # Reshape takes its shape as an input
    fixpoint = True

    def match(self, node: gs.Node, ctx: MatchContext) -> tuple | Skip | None:
        data = node.inputs[0]
        before = producer(data)
        if before is None or not _reshape_like(before):
            return None
        if len(data.outputs) != 1 or id(data) in ctx.graph_outputs:
            return None  # rule 1: another reader would still need the renamed value
        source, shape = before.inputs[0], ctx.static_shape(data)
        source_shape = ctx.static_shape(source)
        if shape is None or source_shape is None or _non_unit(shape) != _non_unit(source_shape):
            return None
        axis = int(node.attrs.get("axis", 0))
        if not -len(shape) <= axis < len(shape) or shape[axis % len(shape)] == 1:
            return None  # rule 2
        axis %= len(shape)
        k = sum(1 for d in shape[:axis] if d != 1)
        source_axis = [i for i, d in enumerate(source_shape) if d != 1][k]
        pieces, readers = [], []
        for out in node.outputs:
            if id(out) in ctx.graph_outputs:
                return None  # rule 3: its shape changes
            out_shape = ctx.static_shape(out)
            if out_shape is None or len(out_shape) != len(shape):
                return Skip(f"Split output '{out.name}' has no static shape of rank {len(shape)}")
            for reader in out.outputs:
                target = ctx.static_shape(reader.outputs[0]) if reader.outputs else None
                if not _reshape_like(reader) or reader.inputs[0] is not out or target is None:
                    return None
                readers.append((reader, target))
            piece = list(source_shape)
            piece[source_axis] = out_shape[axis]
            pieces.append(piece)
        return source, source_axis, pieces, readers

    def rewrite(self, graph: gs.Graph, node: gs.Node, plan: tuple, ctx: MatchContext) -> None:
        source, source_axis, pieces, readers = plan
        set_input(node, 0, source)
        node.attrs["axis"] = source_axis
        for out, piece in zip(node.outputs, pieces):
            out.shape = piece
        for reader, target in readers:
            shape = nodes.int64_constant(graph, f"{reader.name or 'reshape'}_shape", target)
            reader.op = "Reshape"
            reader.attrs.clear()
            set_inputs(reader, [reader.inputs[0], shape])


def _reshape_like(node: gs.Node) -> bool:
    """A Reshape, Squeeze, Unsqueeze or Flatten whose inputs past the data are constants (or left out)."""
    if not is_reshape(node) or len(node.outputs) != 1:
        return False
    if not node.inputs or is_omitted(node.inputs[0]):
        return False
    return all(is_omitted(t) or small_constant(t) is not None for t in node.inputs[1:])


def _non_unit(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(d for d in shape if d != 1)
