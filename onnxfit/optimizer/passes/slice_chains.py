"""slice-chains: a Slice of a Slice on other axes becomes one Slice.

Why: exporters slice one axis at a time: YOLOX's space-to-depth "focus" layer writes
``x[..., ::2, :]`` then ``[..., ::2]`` as two Slices per output (eight for four outputs), and
Paddle2ONNX splits multi-axis crops the same way. A Slice takes any number of axes. Rules:

1. Matched at the outer Slice (opset 10 on: starts/ends/axes/steps are inputs), whose data input
   is written by another Slice; both have constant starts, ends, axes and steps.
2. The two slice different axes (negative axes resolved with the known rank): each axis is
   sliced independently, so one Slice over the union of the axes takes the same elements.
3. The outer Slice reads the inner one's data with the merged parameters; the inner Slice goes
   when nothing else reads it.
Exact: the same elements in the same order.
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from onnxfit.optimizer import nodes
from onnxfit.optimizer.edits import producer, set_inputs, slice_params
from onnxfit.optimizer.pipeline import register_pass
from onnxfit.optimizer.rewrite import MatchContext, RewriteRule

__all__ = ["SliceChainsPass"]


@register_pass
class SliceChainsPass(RewriteRule):
    name = "slice-chains"
    version = 1
    op = "Slice"
    min_opset = 10
    fixpoint = True

    def match(self, node: gs.Node, ctx: MatchContext) -> tuple[gs.Tensor, list[np.ndarray]] | None:
        inner = producer(node.inputs[0])
        if inner is None or inner.op != "Slice" or inner.domain not in (None, "", "ai.onnx"):
            return None
        rank = len(inner.inputs[0].shape) if inner.inputs[0].shape is not None else None
        outer_params, inner_params = slice_params(node, ctx.opset, rank), slice_params(inner, ctx.opset, rank)
        if outer_params is None or inner_params is None:
            return None
        if set(outer_params[2].tolist()) & set(inner_params[2].tolist()):
            return None  # rule 2: the same axis twice
        merged = [np.concatenate([a, b]) for a, b in zip(inner_params, outer_params)]
        return inner.inputs[0], merged

    def rewrite(self, graph: gs.Graph, node: gs.Node, plan: tuple[gs.Tensor, list[np.ndarray]], ctx: MatchContext) -> None:
        data, (starts, ends, axes, steps) = plan
        base = node.name or "slice"
        set_inputs(node, [data] + [nodes.int64_constant(graph, f"{base}_{what}", values)
                                     for what, values in (("starts", starts), ("ends", ends), ("axes", axes),
                                                          ("steps", steps))])
