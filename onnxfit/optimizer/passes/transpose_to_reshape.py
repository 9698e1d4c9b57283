"""transpose-to-reshape: a Transpose that only moves dims of size 1 becomes a Reshape.

Why: a permutation that keeps every dim larger than 1 in its order moves no element: torch's
``x.transpose(0, 1)`` on a batch of 1 (GRU inputs in gtcrn: 31 of them), tf2onnx's NHWC/NCHW swaps on
``[N, 1, 1, C]``. As a Reshape it joins the Reshape chains around it (reshape-chains), where a
Transpose would stay a node and a copy. Rules:

1. The Transpose's input shape is known, with at most one symbolic dim; the dims that are not 1
   keep their relative order under ``perm``.
2. It becomes ``Reshape(x, output shape)``, the symbolic dim written ``-1``.
3. On the mobile targets (CoreML, NNAPI), whose Reshape builders need a static shape, only when
   every dim is known.
Exact: the elements keep their order in memory.
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from onnxfit.optimizer import nodes
from onnxfit.optimizer.pipeline import register_pass
from onnxfit.optimizer.rewrite import MatchContext, RewriteRule
from onnxfit.targets.presets import MOBILE_TARGETS

__all__ = ["TransposeToReshapePass"]



@register_pass
class TransposeToReshapePass(RewriteRule):
    name = "transpose-to-reshape"
    version = 1
    op = "Transpose"
    min_opset = 5
    fixpoint = True

    def match(self, node: gs.Node, ctx: MatchContext) -> list[int] | None:
        shape = node.inputs[0].shape
        perm = node.attrs.get("perm")
        if shape is None or perm is None or len(perm) != len(shape):
            return None
        dims = [int(d) if isinstance(d, (int, np.integer)) and d >= 0 else -1 for d in shape]
        if dims.count(-1) > (0 if ctx.pass_ctx.target in MOBILE_TARGETS else 1) or 0 in dims:
            return None
        moved = [p for p in perm if dims[p] != 1]
        if moved != sorted(moved):
            return None
        return [dims[p] for p in perm]

    def rewrite(self, graph: gs.Graph, node: gs.Node, plan: list[int], ctx: MatchContext) -> None:
        node.op = "Reshape"
        node.attrs.clear()
        node.inputs.append(nodes.int64_constant(graph, f"{node.name or 'transpose'}_shape", plan))
