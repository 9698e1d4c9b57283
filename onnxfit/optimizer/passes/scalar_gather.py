"""scalar-gather: Gather with rank-0 (scalar) indices -> indices of shape [1], then Squeeze.

The CoreML EP rejects Gather whose indices are a scalar (upstream issue #28180); StyleGAN-derived
models such as GFPGAN slice per-layer style codes this way (``style[:, i]``). Rules:
1. indices must be a rank-0 constant (initializer, Constant node, or constant after folding);
2. the indices become a [1] constant, the Gather keeps its axis, and a Squeeze on that axis
   restores the original output shape. Exact: the same elements are selected.
Gathers with dynamic scalar indices are rewritten too when their rank is known to be 0 (an
Unsqueeze of the indices replaces the constant).
3. left alone (a note in the report): a Gather the target EP takes itself at ``--ort-version``,
   as its support profile says (CoreML from ONNX Runtime 1.27, PR #28278, when the data is fully
   static and of rank <= 4; NNAPI with constant indices). The same rule gives the partition
   estimate. Unknown version: every scalar Gather is rewritten (the oldest release refuses them).
4. skipped: a Gather on shape values (the output of Shape) that ONNX Runtime folds itself at load
   (``MatchContext.runtime_folds``: the shape chain of a Reshape it fuses, with symbolic dims):
   it never runs, and its rewritten form is a chain ONNX Runtime no longer folds, left on the CPU
   between the EP's partitions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from onnxfit.optimizer import nodes
from onnxfit.optimizer.constants import constant_value
from onnxfit.optimizer.pipeline import register_pass
from onnxfit.optimizer.rewrite import MatchContext, RewriteRule, Skip

__all__ = ["ScalarGatherPass", "ScalarIndex"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScalarIndex:
    """A Gather whose indices are rank 0: their value when known before run time, else None."""

    value: np.ndarray | None


@register_pass
class ScalarGatherPass(RewriteRule):
    name = "scalar-gather"
    version = 3
    op = "Gather"
    kept_when_target_takes = "scalar Gather"

    def match(self, node: gs.Node, ctx: MatchContext) -> ScalarIndex | Skip | None:
        plan = _matches(node, ctx.opset)
        if plan is not None and _reads_shape(node) and ctx.runtime_folds(node):
            return Skip("shape math ONNX Runtime folds at load; rewritten, it would stay and run on the CPU")
        return plan

    def rewrite(self, graph: gs.Graph, node: gs.Node, plan: ScalarIndex, ctx: MatchContext) -> None:
        _rewrite(graph, node, plan, ctx.opset)


def _matches(node: gs.Node, opset: int) -> ScalarIndex | None:
    """The indices when they are known to be rank 0; None otherwise (not this pass's job)."""
    indices = node.inputs[1]
    value = constant_value(indices, opset)
    if value is not None:
        return ScalarIndex(value) if value.ndim == 0 else None
    return ScalarIndex(None) if indices.shape is not None and len(indices.shape) == 0 else None


def _reads_shape(node: gs.Node) -> bool:
    data = node.inputs[0]
    return len(data.inputs) == 1 and data.inputs[0].op == "Shape"


def _rewrite(graph: gs.Graph, node: gs.Node, plan: ScalarIndex, opset: int) -> None:
    indices = node.inputs[1]
    base = node.name or "gather"
    if plan.value is not None:
        node.inputs[1] = gs.Constant(nodes.unique_name(graph, f"{base}_indices_1d"), plan.value.reshape(1))
    else:
        node.inputs[1] = nodes.unsqueeze(graph, indices, [0], opset, f"{base}_indices_1d")
    output = node.outputs[0]
    # The Gather now yields the axis with length 1; Squeeze takes it away under the old name.
    widened = gs.Variable(nodes.unique_name(graph, f"{base}_1d"), dtype=output.dtype)
    node.outputs[0] = widened
    axis = node.attrs.get("axis", 0)
    if axis < 0:
        rank = len(node.inputs[0].shape) if node.inputs[0].shape is not None else None
        if rank is not None:
            axis += rank
    if axis < 0:
        # Negative axis on unknown rank: Squeeze accepts negative axes (opset >= 11) relative to
        # the widened output, whose rank equals the data rank, so the same negative axis works.
        pass
    nodes.squeeze(graph, widened, [axis], opset, f"{base}_squeeze", output=output)
