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
"""

from __future__ import annotations

import logging

import onnx_graphsurgeon as gs

from onnxfit.errors import node_label
from onnxfit.optimizer import nodes
from onnxfit.optimizer.constants import constant_value
from onnxfit.graphs import iter_graphs
from onnxfit.optimizer.pipeline import PassContext, PassReport, register_pass
from onnxfit.targets.profiles import ep_acceptor

__all__ = ["ScalarGatherPass"]

log = logging.getLogger(__name__)


@register_pass
class ScalarGatherPass:
    name = "scalar-gather"
    version = 2

    def run(self, graph: gs.Graph, ctx: PassContext) -> PassReport:
        report = PassReport(self.name)
        takes = ep_acceptor(graph, ctx.target, ctx.opset, ctx.ort_version)
        for g in iter_graphs(graph):
            for node in [n for n in g.nodes if n.op == "Gather"]:
                if _matches(node, ctx.opset):
                    if takes(node):
                        report.notes.append(f"{node_label(node)}: scalar Gather left as is, the target EP takes it")
                        continue
                    _rewrite(g, node, ctx.opset)
                    report.rewritten += 1
                    report.added += 1
        return report


def _matches(node: gs.Node, opset: int) -> bool:
    """True when the indices are known to be rank 0."""
    indices = node.inputs[1]
    value = constant_value(indices, opset)
    if value is not None:
        return value.ndim == 0
    return indices.shape is not None and len(indices.shape) == 0


def _rewrite(graph: gs.Graph, node: gs.Node, opset: int) -> None:
    indices = node.inputs[1]
    value = constant_value(indices, opset)
    base = node.name or "gather"
    if value is not None:
        node.inputs[1] = gs.Constant(nodes.unique_name(graph, f"{base}_indices_1d"), value.reshape(1))
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
