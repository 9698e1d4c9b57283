"""reshape-chains: a chain of Reshape, Squeeze, Unsqueeze and Flatten becomes one Reshape.

Why: every one of these only renames the dims of the same elements in the same order, so a chain
of them is one Reshape to the last shape. Exporters write such chains all the time: tf2onnx's
``Reshape -> Unsqueeze`` around every time-distributed layer (FacePhys: 28), Paddle's
``Squeeze -> Reshape``, torch's ``view`` after ``flatten``. Rules:

1. Matched at the last node of a chain (its input is written by one of the four ops).
2. A Reshape whose shape is a constant without 0 entries (a 0 would copy a dim of the value in the
   middle of the chain) reads the chain's first input instead: same elements, same target shape.
3. A Squeeze, Unsqueeze or Flatten whose output shape is known, up to at most one symbolic dim
   (written ``-1``), becomes a Reshape of the chain's first input to that shape.
4. On the mobile targets (CoreML, NNAPI), whose Reshape builders need the data's shape static,
   rule 3 applies only when the chain's first input has a static shape.
5. A chain interrupted by one element-wise op that reads one value (a unary op, or a Clip with
   constant bounds), ``reshape -> op -> reshape`` with each output read only by the next node, runs
   the op on the first reshape's input and keeps the last reshape alone (as a Reshape to its
   output shape, by rules 2 and 3): tf2onnx writes a time-distributed activation that way, and
   dense-conv-to-gemm leaves ``Gemm -> Reshape -> Clip -> Reshape`` (FacePhys: 8).
The nodes earlier in the chain go when nothing else reads them. Exact: only dims change names, and
an element-wise op computes each element alone.
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from onnxfit.optimizer import nodes
from onnxfit.optimizer.constants import static_shape
from onnxfit.optimizer.edits import RESHAPE_OPS, is_reshape, producer, set_input, set_inputs, small_constant
from onnxfit.optimizer.pipeline import register_pass
from onnxfit.optimizer.rewrite import MatchContext, RewriteRule, is_omitted
from onnxfit.targets.presets import MOBILE_TARGETS

__all__ = ["ReshapeChainsPass"]

@register_pass
class ReshapeChainsPass(RewriteRule):
    name = "reshape-chains"
    version = 2
    op = RESHAPE_OPS
    min_opset = 5  # Reshape takes its shape as an input
    fixpoint = True

    def match(self, node: gs.Node, ctx: MatchContext) -> tuple[gs.Tensor, list[int] | None] | None:
        if not node.inputs or is_omitted(node.inputs[0]):
            return None
        first = producer(node.inputs[0])
        if first is not None and _is_elementwise_step(first, ctx):
            return _across_elementwise(node, first, ctx)
        if not is_reshape(first):
            return None
        source = first.inputs[0]
        if node.op == "Reshape":
            shape = small_constant(node.inputs[1]) if len(node.inputs) > 1 else None
            if shape is None or np.any(shape == 0):
                return None
            return source, None  # rule 2
        target = _output_shape(node.outputs[0])
        if target is None:
            return None
        if ctx.pass_ctx.target in MOBILE_TARGETS and static_shape(source) is None:
            return None  # rule 4
        return source, target

    def rewrite(self, graph: gs.Graph, node: gs.Node, plan: tuple, ctx: MatchContext) -> None:
        if len(plan) == 3:  # rule 5: the element-wise op reads the chain's first input
            step, source, target = plan
            set_input(step, 0, source)
            step.outputs[0].shape = None if source.shape is None else list(source.shape)
            plan = (step.outputs[0], target)
            if target is None:
                return
        source, target = plan
        if target is None:
            set_input(node, 0, source)
            return
        shape = nodes.int64_constant(graph, f"{node.name or 'reshape'}_shape", target)
        node.op = "Reshape"
        node.attrs.clear()
        set_inputs(node, [source, shape])


# One data input, every other input (Clip's bounds) a constant scalar: an op on each element alone.
_UNARY = {"Abs", "Ceil", "Clip", "Cos", "Elu", "Erf", "Exp", "Floor", "HardSigmoid", "HardSwish", "LeakyRelu", "Log",
          "Neg", "Reciprocal", "Relu", "Round", "Selu", "Sigmoid", "Sign", "Sin", "Softplus", "Softsign", "Sqrt", "Tanh"}


def _is_elementwise_step(node: gs.Node, ctx: MatchContext) -> bool:
    """Rule 5: a unary element-wise op between two reshapes, read only by the second."""
    if node.op not in _UNARY or node.domain not in (None, "", "ai.onnx") or len(node.outputs) != 1:
        return False
    if not node.inputs or not is_reshape(producer(node.inputs[0])):
        return False
    bounds = [t for t in node.inputs[1:] if not is_omitted(t)]
    if any(not isinstance(t, gs.Constant) or int(np.prod(t.shape)) != 1 or len(t.shape) != 0 for t in bounds):
        return False
    out = node.outputs[0]
    return len(out.outputs) == 1 and id(out) not in ctx.graph_outputs and len(node.inputs[0].outputs) == 1 \
        and id(node.inputs[0]) not in ctx.graph_outputs


def _across_elementwise(node: gs.Node, step: gs.Node, ctx: MatchContext) -> tuple | None:
    """Rule 5's plan: (the op, the first reshape's input, the last reshape's target or None)."""
    source = producer(step.inputs[0]).inputs[0]
    if node.op == "Reshape":
        shape = small_constant(node.inputs[1]) if len(node.inputs) > 1 else None
        return None if shape is None or np.any(shape == 0) else (step, source, None)
    target = _output_shape(node.outputs[0])
    if target is None or (ctx.pass_ctx.target in MOBILE_TARGETS and static_shape(source) is None):
        return None
    return step, source, target


def _output_shape(tensor: gs.Tensor) -> list[int] | None:
    """Rule 3: the output's dims, ``-1`` for the one symbolic dim it may have."""
    if tensor.shape is None:
        return None
    dims = [int(d) if isinstance(d, (int, np.integer)) and d >= 0 else -1 for d in tensor.shape]
    # A 0 would copy the input's dim in a Reshape: empty tensors keep their chain.
    return dims if dims.count(-1) <= 1 and 0 not in dims else None
