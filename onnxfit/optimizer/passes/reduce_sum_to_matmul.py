"""reduce-sum-to-matmul: ``ReduceSum(Mul(x, v), axes=[-1], keepdims=1)`` -> ``MatMul(x, Reshape(v, [K, 1]))``
where ``v`` is a vector along the last axis.

Why: exports write a dot product along the last axis as a Mul by a broadcast vector and a
ReduceSum (FacePhys, a tf2onnx state-space model: 20 pairs, ``[1, 32, 4, 128] * [1, 1, 1, 128]``);
MatMul computes it in one node instead of two (ONNX Runtime pays about 2 us a node). Rules:

1. Matched at a float ReduceSum (float16/32/64, bfloat16) with ``keepdims`` 1 that reduces exactly
   the last axis of its input: constant ``axes`` input from opset 13, attribute before; no axes
   (every axis) is left alone.
2. Its input is written by a Mul whose output only this ReduceSum reads (no graph output).
3. One Mul operand ``x`` has a static shape of rank >= 2 ending in K; the other, ``v``, has a static
   shape of rank at most x's whose dims are 1 but the last, K (``[K]``, ``[1, 1, 1, K]``). Then x is
   not broadcast: the Mul writes x's shape. Either operand order.
4. The target EP runs a MatMul of x and a ``[K, 1]`` column (every EP without a support profile,
   the CPU EP, does).
5. ``Reshape(v, [K, 1])`` is added (once for the sums of one v); the ReduceSum becomes
   ``MatMul(x, column)`` writing its output; the Mul goes.
Not exact: MatMul sums the K products in another order than ReduceSum (float32 within 1e-5
relative). ``--exact`` leaves it out.
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from onnxfit.optimizer import nodes
from onnxfit.optimizer.constants import constant_value
from onnxfit.optimizer.edits import disconnect, producer, reduce_axes, set_inputs, small_constant
from onnxfit.optimizer.pipeline import register_pass
from onnxfit.optimizer.rewrite import MatchContext, RewriteRule, Skip

__all__ = ["ReduceSumToMatMulPass"]


@register_pass
class ReduceSumToMatMulPass(RewriteRule):
    name = "reduce-sum-to-matmul"
    version = 1
    op = "ReduceSum"
    min_opset = 5  # Reshape takes its shape as an input
    fixpoint = True
    exact = False

    def match(self, node: gs.Node, ctx: MatchContext) -> tuple | Skip | None:
        dtype = ctx.dtype(node.inputs[0])
        if not _is_float(dtype) or int(node.attrs.get("keepdims", 1)) != 1:
            return None
        mul = producer(node.inputs[0])
        if mul is None or mul.op != "Mul" or mul.domain not in ("", "ai.onnx", None) or len(mul.inputs) != 2:
            return None
        product = mul.outputs[0]
        if len(product.outputs) != 1 or id(product) in ctx.graph_outputs:
            return None
        for side in (0, 1):
            x, v = mul.inputs[side], mul.inputs[1 - side]
            shape, vector = ctx.static_shape(x), ctx.static_shape(v)
            if shape is None or vector is None or len(shape) < 2 or not 1 <= len(vector) <= len(shape):
                continue
            k = shape[-1]
            if vector[-1] != k or any(d != 1 for d in vector[:-1]):
                continue
            if reduce_axes(node, ctx.opset, len(shape)) != [len(shape) - 1]:
                return None  # not a sum over the last axis alone
            if not ctx.target_runs_as(node, "MatMul", [x, _column_probe(v, k, dtype, ctx)]):
                return Skip("the target EP takes no MatMul of these inputs")
            return x, v, k, dtype
        return None

    def rewrite(self, graph: gs.Graph, node: gs.Node, plan: tuple, ctx: MatchContext) -> None:
        x, v, k, dtype = plan
        mul = producer(node.inputs[0])
        column = _existing_column(graph, v, k)
        if column is None:
            base = node.name or "reduce_sum"
            column = gs.Variable(nodes.unique_name(graph, f"{base}_column"),
                                 dtype=dtype if v.dtype is None else v.dtype, shape=[k, 1])
            target = nodes.int64_constant(graph, f"{base}_column_shape", [k, 1])
            nodes.add_node(graph, "Reshape", f"{base}_as_column", [v, target], outputs=[column])
        node.op = "MatMul"
        node.attrs.clear()
        set_inputs(node, [x, column])
        disconnect(mul)


def _is_float(dtype) -> bool:
    """float16/32/64 and bfloat16 (an ml_dtypes type of kind "V" where inference found it)."""
    return dtype is not None and (dtype.kind == "f" or dtype.name == "bfloat16")


def _existing_column(graph: gs.Graph, v: gs.Tensor, k: int) -> gs.Tensor | None:
    """A ``Reshape(v, [K, 1])`` of ``graph`` (an earlier match's, when sums share one vector)."""
    for reader in v.outputs:
        if (reader.op == "Reshape" and len(reader.inputs) == 2 and reader.inputs[0] is v and len(reader.outputs) == 1
                and np.array_equal(small_constant(reader.inputs[1]), [k, 1]) and any(n is reader for n in graph.nodes)):
            return reader.outputs[0]
    return None


def _column_probe(v: gs.Tensor, k: int, dtype, ctx: MatchContext) -> gs.Tensor:
    """The ``[K, 1]`` column the rewrite builds, as the EP profile sees it: a constant when v is."""
    name = f"{v.name}_column_probe"
    value = constant_value(v, ctx.opset)
    return gs.Constant(name, np.asarray(value).reshape(k, 1)) if value is not None else \
        gs.Variable(name, dtype=dtype, shape=[k, 1])
