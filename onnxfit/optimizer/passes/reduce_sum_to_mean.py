"""reduce-sum-to-mean: ``ReduceSum(x)`` becomes ``ReduceMean(x) * N`` where the target EP takes
ReduceMean but not ReduceSum and N, the count of values each output sums, is a power of two.

Why: the NNAPI EP's reduction builder takes ReduceMean only; state-space and attention heads sum
over an axis (FacePhys: 20 ReduceSums over 128 values), each a CPU island between NNAPI
partitions. Rules:

1. A float ReduceSum the target EP does not take, where its profile takes a ReduceMean of the same
   input and output at ``--ort-version``.
2. Its axes are known: a constant ``axes`` input (opset 13+) or attribute; none means every axis
   (with ``noop_with_empty_axes`` it is an Identity: left to eliminate-noops). The input's dims on
   those axes are static and their product N is a power of two.
3. ``ReduceMean`` with the same axes (attribute before opset 18, input from 18) and ``keepdims``,
   then ``Mul`` by N writes the original output.
Exact: the mean is the same sum divided by N, and dividing then multiplying by a power of two is
exact in binary floating point (unless the sum is subnormal or the product overflows). Checked bit
for bit against ReduceSum on ONNX Runtime's CPU kernels. Other N would round twice: left alone.
"""

from __future__ import annotations

import math

import numpy as np
import onnx_graphsurgeon as gs

from onnxfit.optimizer import nodes
from onnxfit.optimizer.edits import reduce_axes, set_inputs
from onnxfit.optimizer.pipeline import register_pass
from onnxfit.optimizer.rewrite import MatchContext, RewriteRule, Skip

__all__ = ["ReduceSumToMeanPass"]


@register_pass
class ReduceSumToMeanPass(RewriteRule):
    name = "reduce-sum-to-mean"
    version = 1
    op = "ReduceSum"

    def match(self, node: gs.Node, ctx: MatchContext) -> tuple | Skip | None:
        dtype = ctx.float_replacement_needed(node, "ReduceMean")
        if not isinstance(dtype, np.dtype):
            return dtype
        shape = ctx.static_shape(node.inputs[0])
        axes = reduce_axes(node, ctx.opset, None if shape is None else len(shape))
        if shape is None or axes is None:
            return Skip("needs a static input shape and constant axes")
        count = math.prod(shape[a] for a in axes)
        if count < 1 or count & (count - 1):
            return Skip(f"sums {count} values, not a power of two: the mean would round differently")
        return dtype, axes, count

    def rewrite(self, graph: gs.Graph, node: gs.Node, plan: tuple, ctx: MatchContext) -> None:
        dtype, axes, count = plan
        base = node.name or "reduce_sum"
        total = node.outputs[0]
        mean = gs.Variable(nodes.unique_name(graph, f"{base}_mean"), dtype=dtype)
        node.op = "ReduceMean"
        node.attrs.pop("noop_with_empty_axes", None)
        if ctx.opset >= 18:
            set_inputs(node, [node.inputs[0], nodes.int64_constant(graph, f"{base}_axes", axes)])
        else:
            set_inputs(node, [node.inputs[0]])
            node.attrs["axes"] = list(axes)
        node.outputs[0] = mean
        scale = gs.Constant(nodes.unique_name(graph, f"{base}_count"), np.array(count, dtype=dtype))
        nodes.add_node(graph, "Mul", f"{base}_times_count", [mean, scale], outputs=[total])

