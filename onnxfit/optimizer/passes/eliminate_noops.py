"""eliminate-noops: nodes that hand on their input unchanged are removed.

Why: exporters write Identity for renames, Dropout for training-time behaviour, a Cast to the
type a value already has, Reshape/Transpose/Slice/Pad/Expand/Tile/Concat that change nothing, and
arithmetic with the neutral element (tf2onnx's ``x * 1.0``). ONNX Runtime launches a kernel for
each (or a copy); onnxsim and onnxslim remove them. Rules (a node goes when its output provably
equals one input, element for element and in shape):

1. Identity; Dropout at inference (no training_mode, or a constant False; its mask unused).
2. Cast to the dtype its input already has (declared, or inferred by onnx).
3. Reshape to the input's own static shape; Transpose with the identity perm; Slice that keeps
   every element (step 1, full range on each axis of a known size); Pad with all pads 0; Expand and
   Tile that leave the static shape as it is; Concat of one input; Squeeze/Unsqueeze of no axes.
4. ``x * 1``, ``1 * x``, ``x / 1``, ``x - 0``, ``x + 0`` and ``0 + x`` where the constant is all 1 (or
   0) and broadcasting it leaves ``x``'s shape and dtype unchanged (a scalar, or ones on axes ``x``
   has). ``x + 0`` turns ``-0.0`` into ``+0.0``; both compare equal, and no other value changes.
5. ``Where`` with a constant condition that is all True (all False) and a branch of the output's
   shape: that branch.
The output of a removed node that is a graph output keeps its name: the value's producer writes it
(``edits.bypass``). Exact.
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs
from onnx import helper

from onnxfit.optimizer.constants import static_shape
from onnxfit.optimizer.edits import bypass, bypass_blocked, declared_dtype, slice_params, small_constant, uniform_value
from onnxfit.optimizer.pipeline import register_pass
from onnxfit.optimizer.rewrite import MatchContext, RewriteRule, Skip, is_omitted

__all__ = ["EliminateNoOpsPass"]


@register_pass
class EliminateNoOpsPass(RewriteRule):
    name = "eliminate-noops"
    version = 2
    op = ("Identity", "Dropout", "Cast", "Reshape", "Transpose", "Slice", "Pad", "Expand", "Tile", "Concat",
          "Squeeze", "Unsqueeze", "Mul", "Div", "Add", "Sub", "Where")
    fixpoint = True

    def match(self, node: gs.Node, ctx: MatchContext) -> gs.Tensor | Skip | None:
        if not node.outputs or not node.inputs or is_omitted(node.inputs[0]):
            return None
        value = _CHECKS[node.op](node, ctx)
        if value is None or isinstance(value, Skip):
            return value
        return bypass_blocked(ctx.graph, node, value, ctx.graph_outputs) or value

    def rewrite(self, graph: gs.Graph, node: gs.Node, plan: gs.Tensor, ctx: MatchContext) -> None:
        bypass(graph, node, plan, ctx.graph_outputs)


def _x(node: gs.Node) -> gs.Tensor:
    return node.inputs[0]


def _same_shape(a: gs.Tensor, b: gs.Tensor) -> bool:
    sa, sb = static_shape(a), static_shape(b)
    return sa is not None and sa == sb


def _identity(node, ctx):
    return _x(node)


def _dropout(node, ctx):
    if len(node.outputs) > 1 and (node.outputs[1].outputs or id(node.outputs[1]) in ctx.graph_outputs):
        return Skip("its mask is read")
    if len(node.inputs) > 2 and not is_omitted(node.inputs[2]):
        training = small_constant(node.inputs[2])
        if training is None or bool(training.reshape(-1)[0]):
            return Skip("training_mode is not a constant False")
    return _x(node)


def _cast(node, ctx):
    x = _x(node)
    dtype = ctx.dtype(x)  # declared, or inferred (exporters leave most values undeclared)
    if dtype is None:
        return None
    try:
        same = dtype == helper.tensor_dtype_to_np_dtype(int(node.attrs["to"]))
    except (TypeError, KeyError):
        return None
    return x if same else None


def _reshape(node, ctx):
    x, out = _x(node), node.outputs[0]
    shape = small_constant(node.inputs[1]) if len(node.inputs) > 1 else None
    in_shape = static_shape(x)
    if in_shape is None:
        return None
    if shape is not None and shape.ndim == 1 and len(shape) == len(in_shape):
        wanted = [in_shape[i] if (d == 0 and not node.attrs.get("allowzero", 0)) else int(d) for i, d in enumerate(shape)]
        if all(w == s or w == -1 for w, s in zip(wanted, in_shape)) and sum(w == -1 for w in wanted) <= 1:
            return x
    return x if _same_shape(x, out) else None


def _transpose(node, ctx):
    perm = node.attrs.get("perm")
    if perm is None:
        shape = static_shape(_x(node))
        return _x(node) if shape is not None and len(shape) <= 1 else None
    return _x(node) if list(perm) == list(range(len(perm))) else None


def _slice(node, ctx):
    x = _x(node)
    shape = static_shape(x)
    params = slice_params(node, ctx.opset, len(shape)) if shape is not None else None
    if params is None:
        return None
    for start, end, axis, step in zip(*params):
        size = shape[int(axis)]
        begin = int(start) + size if start < 0 else int(start)
        stop = int(end) + size if end < 0 else int(end)
        if step != 1 or begin > 0 or min(stop, size) < size:
            return None
    return x


def _pad(node, ctx):
    pads = node.attrs.get("pads") if ctx.opset < 11 else (small_constant(node.inputs[1]) if len(node.inputs) > 1 else None)
    if pads is None:
        return None
    return _x(node) if not np.any(np.asarray(pads)) else None


def _expand(node, ctx):
    x = _x(node)
    shape, target = static_shape(x), small_constant(node.inputs[1]) if len(node.inputs) > 1 else None
    if shape is None or target is None:
        return None
    try:
        broadcast = np.broadcast_shapes(shape, tuple(int(d) for d in target.reshape(-1)))
    except ValueError:
        return None
    return x if tuple(broadcast) == shape else None


def _tile(node, ctx):
    repeats = small_constant(node.inputs[1]) if len(node.inputs) > 1 else None
    return _x(node) if repeats is not None and np.all(repeats == 1) else None


def _concat(node, ctx):
    return _x(node) if len(node.inputs) == 1 else None


def _squeeze(node, ctx):
    axes = node.attrs.get("axes") if ctx.opset < 13 else (
        small_constant(node.inputs[1]) if len(node.inputs) > 1 and not is_omitted(node.inputs[1]) else None)
    if node.op == "Squeeze" and axes is None:
        return None  # no axes: every dim of size 1 goes
    return _x(node) if axes is not None and np.asarray(axes).size == 0 else None


_NEUTRAL = {"Mul": (1, "both"), "Div": (1, "right"), "Add": (0, "both"), "Sub": (0, "right")}


def _arithmetic(node, ctx):
    if len(node.inputs) != 2:
        return None
    neutral, sides = _NEUTRAL[node.op]
    out = node.outputs[0]
    for keep, const in ((0, 1), (1, 0)):
        if sides == "right" and const == 0:
            continue
        x, c = node.inputs[keep], node.inputs[const]
        value = uniform_value(c)
        if value is None or value != neutral:
            continue
        if declared_dtype(x) is not None and declared_dtype(out) is not None and declared_dtype(x) != declared_dtype(out):
            continue
        if _broadcast_keeps(x, c, out):
            return x
    return None


def _broadcast_keeps(x: gs.Tensor, c: gs.Tensor, out: gs.Tensor) -> bool:
    """Broadcasting ``c`` against ``x`` gives ``x``'s own shape."""
    c_shape = tuple(int(d) for d in c.shape)
    if len(c_shape) == 0:
        return True
    x_shape = x.shape
    if x_shape is None or len(x_shape) < len(c_shape):
        return False
    tail = x_shape[len(x_shape) - len(c_shape):]
    return all(d == 1 or (isinstance(t, (int, np.integer)) and t == d) for d, t in zip(c_shape, tail))


def _where(node, ctx):
    if len(node.inputs) != 3:
        return None
    cond = small_constant(node.inputs[0])
    if cond is None or cond.size == 0:
        return None
    if np.all(cond):
        branch = node.inputs[1]
    elif not np.any(cond):
        branch = node.inputs[2]
    else:
        return None
    return branch if _same_shape(branch, node.outputs[0]) else None


_CHECKS = {
    "Identity": _identity, "Dropout": _dropout, "Cast": _cast, "Reshape": _reshape, "Transpose": _transpose,
    "Slice": _slice, "Pad": _pad, "Expand": _expand, "Tile": _tile, "Concat": _concat, "Squeeze": _squeeze,
    "Unsqueeze": _squeeze, "Mul": _arithmetic, "Div": _arithmetic, "Add": _arithmetic, "Sub": _arithmetic,
    "Where": _where,
}
