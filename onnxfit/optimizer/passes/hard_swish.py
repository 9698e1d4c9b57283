"""hard-swish: hard-swish and hard-sigmoid written out as Add/Clip/Mul/Div -> the ONNX ops.

Why: Paddle2ONNX (before opset 14) and tf2onnx write ``hardswish(x)`` as
``Div(Mul(x, Clip(Add(x, 3), 0, 6)), 6)``: four nodes where ONNX has one (``HardSwish``, opset 14)
or two (``Mul(x, HardSigmoid(x))``, any opset). PP-PicoDet has 94 of them, SLANet 73, the PP-OCR
models 18 to 28: a third of their nodes. Rules:

1. Matched at the last node: ``Div(m, 6)`` or ``Mul(m, 1/6)`` (either operand order), where ``m``
   is ``Mul(x, c)`` (hard-swish) or ``c`` itself (hard-sigmoid), ``c = Clip(Add(x, 3), 0, 6)``
   with its bounds as attributes (before opset 11) or constant inputs, every constant one value
   of ``x``'s float dtype. Each intermediate value is read only by the next node of the chain and
   is no graph output.
2. Hard-swish becomes ``HardSwish(x)`` from opset 14 where the target EP takes it, else
   ``Mul(x, HardSigmoid(x, alpha=1/6, beta=0.5))`` where it takes both; hard-sigmoid becomes
   ``HardSigmoid(x, 1/6, 0.5)``. A target that takes none of them keeps the chain (a note says so).
3. From opset 14, ``Mul(x, HardSigmoid(x, 1/6, 0.5))`` (what torch exports for ``hardswish``
   before opset 14, once the model is upgraded) becomes ``HardSwish(x)`` where the target takes it.
Not exact: ``HardSigmoid`` computes ``x * (1/6) + 0.5`` where the chain computed ``(x + 3) / 6``:
float32 within a few ulp (1e-6 relative, tested). ``--exact`` leaves it out.
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from onnxfit.optimizer.edits import disconnect, producer, set_inputs, uniform_value
from onnxfit.optimizer.pipeline import register_pass
from onnxfit.optimizer.rewrite import MatchContext, RewriteRule, Skip

__all__ = ["HardSwishPass"]

_SIXTH = np.float32(1 / 6)


@register_pass
class HardSwishPass(RewriteRule):
    name = "hard-swish"
    version = 1
    op = ("Div", "Mul")
    min_opset = 6  # HardSigmoid
    fixpoint = True
    exact = False

    def match(self, node: gs.Node, ctx: MatchContext) -> tuple | Skip | None:
        if len(node.inputs) != 2:
            return None
        if node.op == "Mul":
            fused = self._fused_mul(node, ctx)
            if fused is not None:
                return fused
        for side in ((0,) if node.op == "Div" else (0, 1)):
            inner, scale = node.inputs[side], uniform_value(node.inputs[1 - side])
            if scale is None or scale != (6 if node.op == "Div" else np.asarray(1 / 6, dtype=scale.dtype)):
                continue
            chain = _chain(producer(inner), ctx)
            if chain is None:
                continue
            x, kind, dead = chain
            ops = ("HardSwish",) if kind == "swish" and ctx.opset >= 14 and ctx.target_runs_as(node, "HardSwish") \
                else ("HardSigmoid", "Mul") if kind == "swish" else ("HardSigmoid",)
            if not all(ctx.target_runs_as(node, op) for op in ops):
                return Skip(f"the target EP takes no {' + '.join(ops)} at this --ort-version")
            return x, ops, [*dead, producer(inner)] if kind == "swish" else dead
        return None

    def _fused_mul(self, node: gs.Node, ctx: MatchContext) -> tuple | None:
        """Rule 3: Mul(x, HardSigmoid(x, 1/6, 0.5)) -> HardSwish(x)."""
        if ctx.opset < 14:
            return None
        for side in (0, 1):
            x, hs = node.inputs[1 - side], producer(node.inputs[side])
            if (hs is None or hs.op != "HardSigmoid" or hs.inputs[0] is not x or not _alone(hs.outputs[0], ctx)
                    or np.float32(hs.attrs.get("alpha", 0.2)) != _SIXTH or np.float32(hs.attrs.get("beta", 0.5)) != 0.5):
                continue
            if ctx.target_runs_as(node, "HardSwish"):
                return x, ("HardSwish",), [hs]
        return None

    def rewrite(self, graph: gs.Graph, node: gs.Node, plan: tuple, ctx: MatchContext) -> None:
        x, ops, dead = plan
        for n in dead:
            disconnect(n)
        if ops == ("HardSigmoid", "Mul"):
            hs_out = gs.Variable(f"{node.outputs[0].name}_hardsigmoid", dtype=x.dtype, shape=x.shape)
            graph.nodes.append(gs.Node("HardSigmoid", f"{node.name}_hardsigmoid", _HS_ATTRS, inputs=[x], outputs=[hs_out]))
            node.op, node.attrs = "Mul", {}
            set_inputs(node, [x, hs_out])
        else:
            node.op, node.attrs = ops[0], dict(_HS_ATTRS) if ops[0] == "HardSigmoid" else {}
            set_inputs(node, [x])


_HS_ATTRS = {"alpha": float(_SIXTH), "beta": 0.5}


def _alone(tensor: gs.Tensor, ctx: MatchContext) -> bool:
    """Read by one node only and not a graph output: the chain may absorb it."""
    return len(tensor.outputs) == 1 and id(tensor) not in ctx.graph_outputs


def _chain(node: gs.Node | None, ctx: MatchContext) -> tuple[gs.Tensor, str, list[gs.Node]] | None:
    """(x, "swish" or "sigmoid", the nodes that go) when ``node`` is ``Mul(x, c)`` or ``c``."""
    if node is None or not _alone(node.outputs[0], ctx):
        return None
    if node.op == "Clip":
        found = _clip_of_shift(node, ctx)
        return (found[0], "sigmoid", found[1]) if found else None
    if node.op != "Mul" or len(node.inputs) != 2:
        return None
    for side in (0, 1):
        clip = producer(node.inputs[side])
        if clip is None or clip.op != "Clip" or not _alone(clip.outputs[0], ctx):
            continue
        found = _clip_of_shift(clip, ctx)
        if found is not None and found[0] is node.inputs[1 - side]:
            return found[0], "swish", found[1]
    return None


def _clip_of_shift(clip: gs.Node, ctx: MatchContext) -> tuple[gs.Tensor, list[gs.Node]] | None:
    """(x, [Add, Clip]) when ``clip`` is ``Clip(Add(x, 3), 0, 6)`` on floats."""
    if "min" in clip.attrs or "max" in clip.attrs:  # before opset 11
        low, high = clip.attrs.get("min"), clip.attrs.get("max")
    else:
        low, high = (uniform_value(t) for t in (list(clip.inputs) + [None, None])[1:3])
    if low != 0 or high != 6:
        return None
    add = producer(clip.inputs[0])
    if add is None or add.op != "Add" or len(add.inputs) != 2 or not _alone(add.outputs[0], ctx):
        return None
    for side in (0, 1):
        x, shift = add.inputs[side], uniform_value(add.inputs[1 - side])
        dtype = ctx.dtype(x)
        if shift == 3 and dtype is not None and dtype.kind == "f" and not isinstance(x, gs.Constant):
            return x, [add, clip]
    return None
