"""gather-flat-indices: a Gather with constant indices of shape ``[K, W]``, read only by
Reshapes, gathers the indices flattened to ``[K * W]``: its output has the data's rank.

Why: CoreML's builders take rank <= 5, NNAPI's rank <= 4 (``Profile.max_rank``). torch's
``unfold`` (sliding windows) is exported as ``Gather(data, windows [K, W], axis)``: from a rank-5
input the output is rank 6, and the Reshape after it (the Transpose between them moves a unit
axis only, and becomes a Reshape merged into it) takes it back to rank 4. gtcrn_simple writes 7 such
values, each a CPU island between CoreML partitions. Rules:

1. Only for targets whose support profile has a rank limit (``max_rank``).
2. A Gather of the default domain whose ``indices`` are a constant of rank >= 2 and whose output
   rank (data rank - 1 + indices rank) is above the limit.
3. The output is no graph output, and every reader is a Reshape that reads it as its data, with a
   constant target without 0 entries (a 0 copies a dim of the input, whose dims change here).
4. The flattened Gather's output rank (the data's) is within the limit. Where 3 or 4 fails the
   node is left, with the reason.
5. The Gather reads ``indices.reshape(-1)`` (same dtype); its output's shape becomes the data's
   with the gathered axis sized ``K * W``, and the Reshapes read it as they are.
Exact: Gather writes its output in row-major order of (data dims before the axis, index
positions, data dims after it), and the index positions of ``[K, W]`` in row-major order are
those of ``[K * W]``: the same elements in the same order, which is all a Reshape reads. Checked
bit for bit on ONNX Runtime's CPU kernels (gtcrn_simple's 7 included: 10 -> 3 CoreML partitions
at ONNX Runtime 1.32).
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from onnxfit.optimizer import nodes
from onnxfit.optimizer.constants import constant_value
from onnxfit.optimizer.edits import consumers, set_input
from onnxfit.optimizer.pipeline import register_pass
from onnxfit.optimizer.rewrite import DEFAULT_DOMAINS, MatchContext, RewriteRule, Skip
from onnxfit.targets.profiles import profile_for

__all__ = ["GatherFlatIndicesPass"]


@register_pass
class GatherFlatIndicesPass(RewriteRule):
    name = "gather-flat-indices"
    version = 1
    op = "Gather"
    exact = True

    def match(self, node: gs.Node, ctx: MatchContext) -> np.ndarray | Skip | None:
        profile = profile_for(ctx.pass_ctx.target)
        max_rank = profile.max_rank if profile is not None else None
        if max_rank is None:
            return None
        data, indices = node.inputs[:2]
        values = constant_value(indices, ctx.opset)
        rank = _rank(data, ctx)
        if values is None or values.ndim < 2 or rank is None or rank - 1 + values.ndim <= max_rank:
            return None
        output = node.outputs[0]
        if id(output) in ctx.graph_outputs:
            return Skip("its output is a graph output, whose shape must stay")
        readers = consumers(output)
        if not readers:
            return None
        for reader in readers:
            reason = _not_a_plain_reshape(reader, output, ctx.opset)
            if reason:
                return Skip(reason)
        if rank > max_rank:
            return Skip(f"the data is rank {rank} too, above the limit of {max_rank}")
        return values.reshape(-1)

    def rewrite(self, graph: gs.Graph, node: gs.Node, plan: np.ndarray, ctx: MatchContext) -> None:
        data = node.inputs[0]
        base = node.name or "gather"
        set_input(node, 1, gs.Constant(nodes.unique_name(graph, f"{base}_indices_flat"), plan))
        output = node.outputs[0]
        if data.shape is None:
            output.shape = None  # shape inference redoes it
            return
        axis = node.attrs.get("axis", 0) % len(data.shape)
        output.shape = [*data.shape[:axis], plan.size, *data.shape[axis + 1:]]

    def label(self, node: gs.Node) -> str:
        return f"Gather '{node.name}'"


def _rank(tensor: gs.Tensor, ctx: MatchContext) -> int | None:
    """The tensor's rank, declared (symbolic dims too) or inferred; None when unknown."""
    if tensor.shape is not None:
        return len(tensor.shape)
    shape = ctx.static_shape(tensor)
    return None if shape is None else len(shape)


def _not_a_plain_reshape(reader: gs.Node, value: gs.Tensor, opset: int) -> str | None:
    """Why ``reader`` may see a difference when ``value`` loses a dim (rule 3); None if it can't."""
    if reader.op != "Reshape" or reader.domain not in DEFAULT_DOMAINS:
        return f"{reader.op} '{reader.name}' reads the output, not only Reshapes"
    if reader.inputs[0] is not value or any(t is value for t in reader.inputs[1:]):
        return f"Reshape '{reader.name}' reads the output as its shape"
    target = constant_value(reader.inputs[1], opset) if len(reader.inputs) > 1 else reader.attrs.get("shape")
    if target is None:
        return f"Reshape '{reader.name}' has no constant target"
    if np.any(np.asarray(target) == 0):
        return f"Reshape '{reader.name}' copies input dims (0 in its target)"
    return None
