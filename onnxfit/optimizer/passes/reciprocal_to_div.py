"""reciprocal-to-div: ``Reciprocal(x)`` becomes ``Div(1, x)`` where the target EP takes Div but not
Reciprocal.

Why: the NNAPI EP has no Reciprocal builder, and TF exports write ``rsqrt`` as Sqrt + Reciprocal in
every RMS/layer norm (FacePhys: 18), each a CPU island between NNAPI partitions. Rules:

1. A Reciprocal of a float tensor (its dtype declared or inferred) the target EP does not take, where
   its profile takes a Div of the same input and output at ``--ort-version``.
2. It becomes ``Div(1, x)`` with a scalar one of ``x``'s dtype.
Not bit-exact under ONNX Runtime: ``Div(1, x)`` computes exactly what Reciprocal does (both round
``1 / x`` once), but ORT's level-1 DivMulFusion turns ``Div(1, x)`` read by a Mul into one
``Div(y, x)``, which rounds once where ``y * (1 / x)`` rounded twice: float32 within 1 ulp per
product (FacePhys's pulse over 3 frames: up to 3.3e-6 apart). ``--exact`` leaves the rule out.
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from onnxfit.optimizer import nodes
from onnxfit.optimizer.edits import set_inputs
from onnxfit.optimizer.pipeline import register_pass
from onnxfit.optimizer.rewrite import MatchContext, RewriteRule, Skip

__all__ = ["ReciprocalToDivPass"]


@register_pass
class ReciprocalToDivPass(RewriteRule):
    name = "reciprocal-to-div"
    version = 1
    exact = False
    op = "Reciprocal"

    def match(self, node: gs.Node, ctx: MatchContext) -> np.dtype | Skip | None:
        return ctx.float_replacement_needed(node, "Div")

    def rewrite(self, graph: gs.Graph, node: gs.Node, plan: np.dtype, ctx: MatchContext) -> None:
        one = gs.Constant(nodes.unique_name(graph, f"{node.name or 'reciprocal'}_one"), np.array(1, dtype=plan))
        node.op = "Div"
        set_inputs(node, [one, node.inputs[0]])
