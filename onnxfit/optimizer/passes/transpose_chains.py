"""transpose-chains: Transpose of a Transpose becomes one Transpose, or none.

Why: layout conversions come in pairs: tf2onnx wraps every Conv in NHWC -> NCHW -> NHWC
Transposes, and two neighbouring layers leave ``Transpose(perm=[0,2,3,1]) -> Transpose(perm=[0,3,1,2])``
back to back. ONNX Runtime's transpose optimizer cancels some at load time; the EP builders and
the node count see all of them. Rules:

1. Matched at the second Transpose, whose input the first writes; both perms known (an omitted
   perm reverses the dims: the rank must be known).
2. The two become one Transpose of the first's input with the composed perm
   (``perm[i] = first[second[i]]``); an identity composition is no node at all (the second node's
   readers read the first's input, its name kept when it is a graph output).
The first Transpose goes when nothing else reads it. Exact: elements only move.
"""

from __future__ import annotations

import onnx_graphsurgeon as gs

from onnxfit.optimizer.edits import bypass, bypass_blocked, producer, set_input
from onnxfit.optimizer.pipeline import register_pass
from onnxfit.optimizer.rewrite import MatchContext, RewriteRule, Skip

__all__ = ["TransposeChainsPass"]


@register_pass
class TransposeChainsPass(RewriteRule):
    name = "transpose-chains"
    version = 1
    op = "Transpose"
    fixpoint = True

    def match(self, node: gs.Node, ctx: MatchContext) -> tuple[gs.Tensor, list[int]] | Skip | None:
        first = producer(node.inputs[0])
        if first is None or first.op != "Transpose" or first.domain not in (None, "", "ai.onnx"):
            return None
        inner, outer = _perm(first), _perm(node)
        if inner is None or outer is None or len(inner) != len(outer):
            return None
        perm = [inner[i] for i in outer]
        source = first.inputs[0]
        if perm == list(range(len(perm))):
            blocked = bypass_blocked(ctx.graph, node, source, ctx.graph_outputs)
            if blocked is not None:
                return blocked
        return source, perm

    def rewrite(self, graph: gs.Graph, node: gs.Node, plan: tuple[gs.Tensor, list[int]], ctx: MatchContext) -> None:
        source, perm = plan
        if perm == list(range(len(perm))):
            bypass(graph, node, source, ctx.graph_outputs)
            return
        set_input(node, 0, source)
        node.attrs["perm"] = perm


def _perm(node: gs.Node) -> list[int] | None:
    perm = node.attrs.get("perm")
    if perm is not None:
        return [int(p) for p in perm]
    shape = node.inputs[0].shape
    return list(reversed(range(len(shape)))) if shape is not None else None
