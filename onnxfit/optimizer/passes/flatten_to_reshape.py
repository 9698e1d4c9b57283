"""flatten-to-reshape: Flatten -> Reshape with a constant shape.

The CoreML EP's MLProgram format has no Flatten builder (flatten_op_builder.cc does not support
MLProgram), so the Flatten that ends every torch classifier/embedding head (``x.flatten(1)``,
GFPGAN's style MLP, MobileFaceNet's embedding) sends one node to the CPU and splits the graph.
Reshape with a constant shape is taken by every EP. Rules:
1. ``Flatten(axis=a)`` of a rank-r input is ``[prod(dims[:a]), prod(dims[a:])]``;
2. when ``dims[a:]`` are static the shape is ``[-1, prod(dims[a:])]``, so a symbolic batch stays
   symbolic; else when ``dims[:a]`` are static it is ``[prod(dims[:a]), -1]``; else the node is
   left alone and reported (no 0-copy dims: CoreML rejects ``allowzero`` forms);
3. exact: Reshape and Flatten move no data. Opsets from 5 (Reshape's shape input).
"""

from __future__ import annotations

import logging
import math

import numpy as np
import onnx_graphsurgeon as gs

from onnxfit.optimizer import nodes
from onnxfit.optimizer.pipeline import register_pass
from onnxfit.optimizer.rewrite import MatchContext, RewriteRule, Skip

__all__ = ["FlattenToReshapePass"]

log = logging.getLogger(__name__)


@register_pass
class FlattenToReshapePass(RewriteRule):
    name = "flatten-to-reshape"
    version = 1
    op = "Flatten"
    min_opset = 5  # Reshape takes its shape as an input from opset 5

    def match(self, node: gs.Node, ctx: MatchContext) -> list[int] | Skip:
        shape = _target_shape(node)
        return Skip(shape) if isinstance(shape, str) else shape

    def rewrite(self, graph: gs.Graph, node: gs.Node, plan: list[int], ctx: MatchContext) -> None:
        # Reuse the node in place: its output and consumers stay as they are.
        node.op = "Reshape"
        node.attrs = {}
        node.inputs.append(nodes.int64_constant(graph, f"{node.name or 'flatten'}_shape", plan))

    def label(self, node: gs.Node) -> str:
        return node.name or "Flatten"


def _target_shape(node: gs.Node) -> list[int] | str:
    """The Reshape shape that equals this Flatten, or the reason there is none."""
    dims = node.inputs[0].shape
    if dims is None:
        return "input rank unknown"
    rank = len(dims)
    axis = node.attrs.get("axis", 1)
    axis = axis + rank if axis < 0 else axis

    def static(part) -> bool:
        return all(isinstance(d, (int, np.integer)) and d >= 0 for d in part)

    if static(dims[axis:]):
        return [-1, int(math.prod(dims[axis:]))]
    if static(dims[:axis]):
        return [int(math.prod(dims[:axis])), -1]
    return "both sides of the flatten axis have symbolic dims"
