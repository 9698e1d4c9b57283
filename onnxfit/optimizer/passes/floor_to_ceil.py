"""floor-to-ceil: ``Floor(x)`` -> ``-Ceil(-x)`` where the target EP takes Ceil but not Floor.

Why: CoreML's MLProgram format has a Ceil builder (ONNX Runtime 1.27 on) and no Floor builder, so
every Floor is a CPU island with two device round trips. Models that compute ``exp``/``sin`` by
hand (range reduction: ``floor(x * log2(e) + 0.5)``) or quantize coordinates carry many:
FacePhys's sin/cos have 80. Rules:

1. A Floor the target EP does not take, where its profile takes a Ceil of the same input and output
   at ``--ort-version`` (an unknown version takes nothing: no rewrite).
2. ``Floor(x)`` becomes ``Mul(Ceil(Mul(x, -1)), -1)``: the EP takes Mul, and has no Neg builder.
Exact: negation is exact in IEEE floats and ``floor(x) == -ceil(-x)`` for every value, NaN and
infinities included. It adds two nodes per Floor, by design: fewer partitions, not fewer nodes.
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from onnxfit.optimizer import nodes
from onnxfit.optimizer.edits import set_inputs
from onnxfit.optimizer.pipeline import register_pass
from onnxfit.optimizer.rewrite import MatchContext, RewriteRule, Skip

__all__ = ["FloorToCeilPass"]


@register_pass
class FloorToCeilPass(RewriteRule):
    name = "floor-to-ceil"
    version = 1
    op = "Floor"
    min_opset = 6

    def match(self, node: gs.Node, ctx: MatchContext) -> np.dtype | Skip | None:
        return ctx.float_replacement_needed(node, "Ceil")

    def rewrite(self, graph: gs.Graph, node: gs.Node, plan: np.dtype, ctx: MatchContext) -> None:
        x = node.inputs[0]
        minus_one = gs.Constant(nodes.unique_name(graph, f"{node.name or 'floor'}_minus_one"), np.array(-1, dtype=plan))
        negated = nodes.add_node(graph, "Mul", f"{node.name or 'floor'}_negate", [x, minus_one]).outputs[0]
        ceiled = nodes.add_node(graph, "Ceil", f"{node.name or 'floor'}_ceil", [negated]).outputs[0]
        negated.dtype = ceiled.dtype = plan
        negated.shape = ceiled.shape = x.shape
        node.op = "Mul"
        set_inputs(node, [ceiled, minus_one])
