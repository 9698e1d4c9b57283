"""concat-chains: a Concat of a Concat on the same axis becomes one Concat.

Why: TF's ``tf.concat`` in a Python loop and Keras' stacking layers append one piece at a time:
basic-pitch's constant-Q transform writes ``concat_k = Concat(stack_k, concat_{k-1})`` eight deep,
each an extra kernel that copies everything concatenated so far. A Concat takes any number of
inputs. Rules:

1. Matched at the outer Concat; an input written by another Concat on the same axis (negative axes
   resolved with the known rank) that nothing else reads and no graph returns.
2. That input is replaced, in place, by the inner Concat's inputs, which then goes.
Exact: the same elements in the same order.
"""

from __future__ import annotations

import onnx_graphsurgeon as gs

from onnxfit.optimizer.edits import producer, set_inputs
from onnxfit.optimizer.pipeline import register_pass
from onnxfit.optimizer.rewrite import DEFAULT_DOMAINS, MatchContext, RewriteRule

__all__ = ["ConcatChainsPass"]


@register_pass
class ConcatChainsPass(RewriteRule):
    name = "concat-chains"
    version = 1
    op = "Concat"
    fixpoint = True

    def match(self, node: gs.Node, ctx: MatchContext) -> list[gs.Tensor] | None:
        merged, found = [], False
        for tensor in node.inputs:
            inner = producer(tensor)
            if (inner is not None and inner.op == "Concat" and inner.domain in DEFAULT_DOMAINS
                    and _same_axis(inner, node) and len(tensor.outputs) == 1 and id(tensor) not in ctx.graph_outputs):
                merged += list(inner.inputs)
                found = True
            else:
                merged.append(tensor)
        return merged if found else None

    def rewrite(self, graph: gs.Graph, node: gs.Node, plan: list[gs.Tensor], ctx: MatchContext) -> None:
        set_inputs(node, plan)


def _same_axis(inner: gs.Node, outer: gs.Node) -> bool:
    """Both concatenate along one axis: the same attribute, or the same once the rank resolves it."""
    a, b = int(inner.attrs.get("axis", 0)), int(outer.attrs.get("axis", 0))
    if a == b:
        return True
    ranks = {len(t.shape) for t in [*inner.inputs, *outer.inputs, *outer.outputs] if t.shape is not None}
    return len(ranks) == 1 and a % min(ranks) == b % min(ranks)
