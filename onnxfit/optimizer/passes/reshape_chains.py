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
The nodes earlier in the chain go when nothing else reads them. Exact: only dims change names.
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from onnxfit.optimizer import nodes
from onnxfit.optimizer.constants import static_shape
from onnxfit.optimizer.edits import producer, set_input, set_inputs, small_constant
from onnxfit.optimizer.pipeline import register_pass
from onnxfit.optimizer.rewrite import MatchContext, RewriteRule, is_omitted
from onnxfit.targets.presets import MOBILE_TARGETS

__all__ = ["ReshapeChainsPass"]

_RESHAPES = ("Reshape", "Squeeze", "Unsqueeze", "Flatten")


@register_pass
class ReshapeChainsPass(RewriteRule):
    name = "reshape-chains"
    version = 1
    op = _RESHAPES
    min_opset = 5  # Reshape takes its shape as an input
    fixpoint = True

    def match(self, node: gs.Node, ctx: MatchContext) -> tuple[gs.Tensor, list[int] | None] | None:
        if not node.inputs or is_omitted(node.inputs[0]):
            return None
        first = producer(node.inputs[0])
        if first is None or first.op not in _RESHAPES or first.domain not in (None, "", "ai.onnx"):
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

    def rewrite(self, graph: gs.Graph, node: gs.Node, plan: tuple[gs.Tensor, list[int] | None],
                ctx: MatchContext) -> None:
        source, target = plan
        if target is None:
            set_input(node, 0, source)
            return
        shape = nodes.int64_constant(graph, f"{node.name or 'reshape'}_shape", target)
        node.op = "Reshape"
        node.attrs.clear()
        set_inputs(node, [source, shape])


def _output_shape(tensor: gs.Tensor) -> list[int] | None:
    """Rule 3: the output's dims, ``-1`` for the one symbolic dim it may have."""
    if tensor.shape is None:
        return None
    dims = [int(d) if isinstance(d, (int, np.integer)) and d >= 0 else -1 for d in tensor.shape]
    # A 0 would copy the input's dim in a Reshape: empty tensors keep their chain.
    return dims if dims.count(-1) <= 1 and 0 not in dims else None
