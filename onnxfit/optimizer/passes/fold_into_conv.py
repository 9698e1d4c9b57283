"""fold-into-conv: a per-channel Mul or Add after a Conv is folded into its weights and bias.

Why: Paddle2ONNX and tf2onnx write batch norms and scales they already folded once as Conv ->
Mul(scale) -> Add(shift) (ppocr_v4_det: 28 such chains); ONNX Runtime's CPU EP fuses some at load
time, the other EPs and the node count see all of them. Rules:

1. Matched at a Mul or Add with one constant operand that is per output channel of the Conv
   before it: a scalar, or a shape that broadcast against the Conv output's rank is 1 everywhere
   but axis 1 (``[C, 1, 1]``, ``[1, C, 1, 1]``).
2. The Conv's weights and bias are constants, float, its output is read by this node alone and is
   no graph output; the constant does not widen the output (same dtype, broadcast stays).
3. Mul by ``s``: ``W[c] *= s[c]`` and ``b[c] *= s[c]``; Add of ``t``: ``b[c] += t[c]`` (a bias is
   added when the Conv has none). Computed in float64, cast back to the weights' dtype.
4. The Mul/Add goes: the Conv writes its output (its name kept where it is a graph output).
Not exact: float rounding of ``(x * W) * s`` differs from ``x * (W * s)``: float32 within 1e-5
relative on the zoo, as fold-batchnorm. ``--exact`` leaves the rule out.
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from onnxfit.optimizer.edits import (bypass, bypass_blocked, constant_array, declared_dtype, producer, set_input,
                                     small_constant)
from onnxfit.optimizer.nodes import unique_name
from onnxfit.optimizer.pipeline import register_pass
from onnxfit.optimizer.rewrite import MatchContext, RewriteRule, is_omitted

__all__ = ["FoldIntoConvPass"]

_FLOATS = (np.float16, np.float32, np.float64)


@register_pass
class FoldIntoConvPass(RewriteRule):
    name = "fold-into-conv"
    version = 1
    op = ("Mul", "Add")
    fixpoint = True
    exact = False

    def match(self, node: gs.Node, ctx: MatchContext) -> tuple[gs.Node, np.ndarray] | None:
        if len(node.inputs) != 2:
            return None
        for side in (0, 1):
            conv = producer(node.inputs[side])
            const = node.inputs[1 - side]
            if conv is None or conv.op != "Conv" or not isinstance(const, gs.Constant):
                continue
            plan = _per_channel(conv, node, const, ctx)
            if plan is not None:
                return conv, plan
        return None

    def rewrite(self, graph: gs.Graph, node: gs.Node, plan: tuple[gs.Node, np.ndarray], ctx: MatchContext) -> None:
        conv, values = plan
        weight = constant_array(conv.inputs[1])
        bias_tensor = conv.inputs[2] if len(conv.inputs) > 2 and not is_omitted(conv.inputs[2]) else None
        bias = constant_array(bias_tensor).astype(np.float64) if bias_tensor is not None else np.zeros(weight.shape[0])
        if node.op == "Mul":
            shape = (-1,) + (1,) * (weight.ndim - 1)
            new_weight = (weight.astype(np.float64) * values.reshape(shape)).astype(weight.dtype)
            set_input(conv, 1, gs.Constant(unique_name(graph, f"{conv.inputs[1].name}_scaled"), new_weight))
            bias = bias * values
        else:
            bias = bias + values
        new_bias = gs.Constant(unique_name(graph, f"{conv.name or 'conv'}_bias"), bias.astype(weight.dtype))
        if bias_tensor is None:
            conv.inputs.append(new_bias)
        else:
            set_input(conv, 2, new_bias)
        bypass(graph, node, conv.outputs[0], ctx.graph_outputs)


def _per_channel(conv: gs.Node, node: gs.Node, const: gs.Constant, ctx: MatchContext) -> np.ndarray | None:
    """Rules 1-2: the constant as one float64 value per output channel, or None."""
    weight, out = conv.inputs[1], conv.outputs[0]
    if not isinstance(weight, gs.Constant) or len(conv.inputs) > 2 and not (
            is_omitted(conv.inputs[2]) or isinstance(conv.inputs[2], gs.Constant)):
        return None
    if declared_dtype(weight) not in _FLOATS or len(out.outputs) != 1 or id(out) in ctx.graph_outputs:
        return None
    value = small_constant(const)
    if value is None or value.dtype != declared_dtype(weight):
        return None
    rank, channels = len(weight.shape), int(weight.shape[0])
    if value.ndim > rank:
        return None
    dims = (1,) * (rank - value.ndim) + tuple(value.shape)
    if any(d != 1 for i, d in enumerate(dims) if i != 1) or dims[1] not in (1, channels):
        return None
    if bypass_blocked(ctx.graph, node, out, ctx.graph_outputs) is not None:
        return None
    return np.broadcast_to(value.reshape(-1).astype(np.float64), (channels,)).copy()
