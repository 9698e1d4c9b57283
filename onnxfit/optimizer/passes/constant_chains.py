"""constant-chains: ``x * c1 * c2`` and ``x + c1 - c2`` become one node with the constants combined.

Why: Keras/tf2onnx exports apply scales and shifts one after another (``x * gamma * (1/sqrt(var))``,
``x + b1 - b2``), one kernel each. Rules:

1. Matched at the outer node: ``Mul(Mul(x, c1), c2)``, or ``Add``/``Sub`` of a constant after an
   ``Add``/``Sub`` of a constant (``Sub(x, c)`` counts as ``x + (-c)``; ``c - x`` is left alone).
   Constant operands may stand on either side of Mul and Add.
2. The inner node's output is read by the outer node alone and is no graph output; the constants
   are float (so is ``x``: the ops take one type) and small.
3. The constants are combined once, in float64, and cast back: ``x * (c1*c2)`` or ``x + (±c1 ± c2)``.
   Broadcasting the combined constant gives the shape the chain gave.
Not exact: float rounding of ``(x * c1) * c2`` differs from ``x * (c1 * c2)`` by an ulp or so;
``--exact`` leaves the rule out.
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from onnxfit.optimizer.edits import producer, set_inputs, small_constant
from onnxfit.optimizer.nodes import unique_name
from onnxfit.optimizer.pipeline import register_pass
from onnxfit.optimizer.rewrite import MatchContext, RewriteRule

__all__ = ["ConstantChainsPass"]


@register_pass
class ConstantChainsPass(RewriteRule):
    name = "constant-chains"
    version = 1
    op = ("Mul", "Add", "Sub")
    fixpoint = True
    exact = False

    def match(self, node: gs.Node, ctx: MatchContext) -> tuple[gs.Tensor, np.ndarray, str] | None:
        outer = _split(node)
        if outer is None:
            return None
        t, c2, sign2 = outer
        inner_node = producer(t)
        if inner_node is None or len(t.outputs) != 1 or id(t) in ctx.graph_outputs:
            return None
        inner = _split(inner_node)
        if inner is None:
            return None
        x, c1, sign1 = inner
        is_mul = node.op == "Mul"
        if is_mul != (inner_node.op == "Mul") or isinstance(x, gs.Constant):
            return None
        # Mul/Add/Sub take operands of one type: x has the constants' dtype.
        if c1.dtype != c2.dtype or c1.dtype.kind != "f":
            return None
        wide1, wide2 = c1.astype(np.float64), c2.astype(np.float64)
        combined = wide1 * wide2 if is_mul else sign1 * wide1 + sign2 * wide2
        return x, np.asarray(combined, dtype=c1.dtype), "Mul" if is_mul else "Add"

    def rewrite(self, graph: gs.Graph, node: gs.Node, plan: tuple[gs.Tensor, np.ndarray, str], ctx: MatchContext) -> None:
        x, combined, op = plan
        node.op = op
        set_inputs(node, [x, gs.Constant(unique_name(graph, f"{node.name or op.lower()}_combined"), combined)])


def _split(node: gs.Node) -> tuple[gs.Tensor, np.ndarray, int] | None:
    """(the variable operand, the constant, the constant's sign) of a Mul/Add/Sub with one constant."""
    if node.op not in ("Mul", "Add", "Sub") or len(node.inputs) != 2 or node.domain not in (None, "", "ai.onnx"):
        return None
    a, b = node.inputs
    if isinstance(b, gs.Constant) and not isinstance(a, gs.Constant):
        value = small_constant(b)
        return (a, value, -1 if node.op == "Sub" else 1) if value is not None else None
    if isinstance(a, gs.Constant) and not isinstance(b, gs.Constant) and node.op != "Sub":
        value = small_constant(a)
        return (b, value, 1) if value is not None else None
    return None
