"""inline-if: an If whose condition is known before run time -> the nodes of the branch it takes.

Why: the CoreML EP has no If builder and the OpenVINO CPU plugin rejects If with dynamic-rank
outputs, so a model that branches on a setting (a VAD's sample rate ``sr``, fixed with
``--fix-input sr=16000``) or on a shape test (torch's ``squeeze(dim)`` on a dynamic dim becomes
``If(Shape(x)[k] == 1)``) splits into partitions or does not load. Rules:

1. The condition must be known: constant after folding (initializers, fixed inputs, Constant
   nodes, shape math on known dims: fold-shapes' value propagation decides it). Known conditions
   are read element 0 of a one-element tensor, as ONNX Runtime reads them.
2. The branch's nodes move into the graph that held the If; the If's output tensors keep their
   names, value_info and consumers: an Identity per output joins them to the branch's outputs
   (a branch output may be an outer tensor, or the same tensor twice, so it is never renamed).
3. Names stay unique: a tensor or node of the branch whose name is taken elsewhere in the model
   gets a scoped name ``<If name>/<name>``; references to outer scopes are the same tensors and
   keep their names. Nested Ifs move with their branch and are decided in the next round.
4. Rounds repeat until no If is decided: an inlined branch exposes more shape math, and a folded
   shape decides more Ifs. In a target's pipeline fold-shapes runs this rule inside its own
   fixpoint rounds; run alone (``--passes inline-if``) the pass propagates values itself.

5. On the mobile targets (CoreML, NNAPI: no If builder), an If decided only by what onnxfit knows
   of shapes (partly known dims, which ONNX Runtime's own folding does not see) stays an If when
   its branch holds Ifs that stay undecided: inlined, it would turn one If on the CPU into
   several CPU islands between EP partitions (silero-vad's LSTMCell "unbatched input?" tests after
   a ``squeeze`` on the time axis: 2 -> 3 CoreML partitions). With ``--input-shape`` the inner Ifs
   are decided too, and all go. The other targets run If nodes themselves: it is inlined (fewer
   nodes, the untaken branch gone).

Exact: ONNX Runtime evaluates the same nodes, only without the If around them.
"""

from __future__ import annotations

import onnx_graphsurgeon as gs

from onnxfit.errors import node_label
from onnxfit.optimizer.branches import inline_decided_ifs
from onnxfit.optimizer.passes.fold_shapes import known_values
from onnxfit.targets.presets import MOBILE_TARGETS
from onnxfit.graphs import cleanup, iter_graphs, toposort
from onnxfit.optimizer.pipeline import PassContext, PassReport, register_pass

__all__ = ["InlineIfPass"]

_MAX_ROUNDS = 64


@register_pass
class InlineIfPass:
    name = "inline-if"
    version = 2

    def run(self, graph: gs.Graph, ctx: PassContext) -> PassReport:
        # fold-shapes owns value propagation (shapes, partly known shape vectors).
        report = PassReport(self.name, changed=False)
        if not any(n.op == "If" for g in iter_graphs(graph) for n in g.nodes):
            return report  # no If: not worth a shape inference
        held = []
        for _ in range(_MAX_ROUNDS):
            inlined, held = inline_decided_ifs(graph, known_values(graph, ctx.opset), ctx.opset,
                                               hold=ctx.target in MOBILE_TARGETS)
            if not inlined:
                break
            report.rewritten += inlined
            report.changed = True
            toposort(cleanup(graph))
        for node in held:
            report.skipped.append(f"If '{node_label(node)}': decided by shapes, but its branch holds Ifs decided "
                                  "only at run time (--input-shape decides them)")
        left = sum(1 for g in iter_graphs(graph) for n in g.nodes if n.op == "If")
        if left:
            report.notes.append(f"{left} If node(s) stay: their condition is known only at run time")
        return report
