"""neg-to-mul: ``Neg(x)`` becomes ``Mul(x, -1)`` where the target EP takes Mul but not Neg.

Why: CoreML's MLProgram format has no Neg builder; TF exports write ``Neg`` for every ``-x``
(basic_pitch: 9), each a CPU island between CoreML partitions. Rules:

1. A Neg of a float tensor (its dtype declared or inferred) the target EP does not take, where its profile takes a Mul of the same
   input and output at ``--ort-version``.
2. It becomes ``Mul(x, -1)`` with a scalar of ``x``'s dtype.
Exact: multiplying by -1 flips the sign bit, as Neg does (NaN payloads aside).
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from onnxfit.optimizer import nodes
from onnxfit.optimizer.pipeline import register_pass
from onnxfit.optimizer.rewrite import MatchContext, RewriteRule, Skip

__all__ = ["NegToMulPass"]


@register_pass
class NegToMulPass(RewriteRule):
    name = "neg-to-mul"
    version = 1
    op = "Neg"

    def match(self, node: gs.Node, ctx: MatchContext) -> np.dtype | Skip | None:
        return ctx.float_replacement_needed(node, "Mul")

    def rewrite(self, graph: gs.Graph, node: gs.Node, plan: np.dtype, ctx: MatchContext) -> None:
        minus_one = gs.Constant(nodes.unique_name(graph, f"{node.name or 'neg'}_minus_one"), np.array(-1, dtype=plan))
        node.op = "Mul"
        node.inputs.append(minus_one)
