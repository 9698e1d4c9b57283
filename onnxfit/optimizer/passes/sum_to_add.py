"""sum-to-add: a variadic ``Sum`` becomes a chain of ``Add`` where the target EP takes Add but not Sum.

Why: CoreML's MLProgram format has no Sum builder, and Caffe2-era exports (shufflenet) write every
residual connection as ``Sum``: each one a CPU island. Rules:

1. A Sum the target EP does not take, whose Add (same inputs, same output) its profile takes at
   ``--ort-version``.
2. One input: Identity's job (eliminate-noops); two or more: ``Add(Add(x0, x1), x2)...``, in input
   order, which is the order ONNX Runtime's Sum kernel accumulates in.
Exact for two inputs (one addition either way); for more, the additions happen in the same order.
"""

from __future__ import annotations

import onnx_graphsurgeon as gs

from onnxfit.optimizer import nodes
from onnxfit.optimizer.edits import set_inputs
from onnxfit.optimizer.pipeline import register_pass
from onnxfit.optimizer.rewrite import MatchContext, RewriteRule, Skip

__all__ = ["SumToAddPass"]


@register_pass
class SumToAddPass(RewriteRule):
    name = "sum-to-add"
    version = 1
    op = "Sum"

    def match(self, node: gs.Node, ctx: MatchContext) -> bool | Skip | None:
        return ctx.replacement_needed(node, "Add") if len(node.inputs) >= 2 else None

    def rewrite(self, graph: gs.Graph, node: gs.Node, plan: bool, ctx: MatchContext) -> None:
        total = node.inputs[0]
        for i, term in enumerate(node.inputs[1:-1]):
            total = nodes.add_node(graph, "Add", f"{node.name or 'sum'}_add{i}", [total, term]).outputs[0]
        last = node.inputs[-1]
        node.op = "Add"
        set_inputs(node, [total, last])
