"""dedupe-nodes: common-subexpression elimination; equal constants and equal nodes are kept once.

Why: exporters repeat work per use: 21 identical ``Mul(scale, const)`` in a quantized CRNN, the same
Shape -> Gather -> Range chain per layer inside a Loop body, one ``Constant`` per use of ``1.0``.
Each copy is a kernel launch. Rules:

1. Small constants (at most ``_MAX_CONSTANT`` elements) with the same dtype, shape and bytes are
   one tensor; graph inputs and outputs keep their own.
2. Two nodes with the same op, domain, attributes and inputs (the same tensors, in order) compute
   the same outputs: the later one's readers read the earlier one's outputs. Larger constants
   count as the same input when their values are equal, compared only between two such candidate
   nodes (two Convs on one input whose generated weights are equal), so weights are read only
   where a merge is possible. Random ops, nodes with subgraphs and nodes with no outputs are left
   alone.
3. Per graph: an If/Loop body is deduplicated within itself (it sees the outer graph's values as
   inputs like any other), in the same walk.
4. An output of the later node that a graph returns keeps its name: that node stays.
Exact: the kept node computes the same values from the same inputs.
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from onnxfit.graphs import graph_outputs, iter_graphs
from onnxfit.optimizer.edits import constant_array, disconnect, replace_uses, set_input
from onnxfit.optimizer.pipeline import PassContext, PassReport, register_pass
from onnxfit.optimizer.rewrite import is_omitted

__all__ = ["DedupeNodesPass"]

_MAX_CONSTANT = 4096
_NONDETERMINISTIC = frozenset({"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
                               "Multinomial", "Bernoulli", "Dropout"})


@register_pass
class DedupeNodesPass:
    name = "dedupe-nodes"
    version = 2
    fixpoint = True
    exact = True

    def run(self, graph: gs.Graph, ctx: PassContext) -> PassReport:
        report = PassReport(self.name, changed=False)
        outputs = graph_outputs(graph)
        for g in iter_graphs(graph):
            report.folded += _dedupe_constants(g, outputs)
            report.rewritten += _dedupe_nodes(g, outputs)
        report.changed = bool(report.rewritten or report.folded)
        return report


def _dedupe_constants(graph: gs.Graph, outputs: set[int]) -> int:
    """Rule 1: readers of a constant equal to an earlier one read the earlier one."""
    first: dict[tuple, gs.Constant] = {}
    merged = 0
    inputs = {id(t) for t in graph.inputs}
    for node in graph.nodes:
        for i, tensor in enumerate(node.inputs):
            if not isinstance(tensor, gs.Constant) or id(tensor) in outputs or id(tensor) in inputs:
                continue
            if int(np.prod(tensor.shape, dtype=np.int64)) > _MAX_CONSTANT:
                continue
            value = np.asarray(tensor.values)
            if value.dtype.kind in "OUS":
                continue
            key = (value.dtype.str, value.shape, value.tobytes())
            kept = first.setdefault(key, tensor)
            if kept is not tensor:
                set_input(node, i, kept)
                merged += 1
    return merged


def _key(node: gs.Node) -> tuple | None:
    if node.op in _NONDETERMINISTIC or not node.outputs:
        return None
    attrs = []
    for name, value in sorted(node.attrs.items()):
        if isinstance(value, gs.Graph):
            return None
        if isinstance(value, gs.Constant):
            array = np.asarray(value.values)
            value = (array.dtype.str, array.shape, array.tobytes())
        elif isinstance(value, gs.Tensor):
            return None
        elif isinstance(value, (list, tuple)):
            value = tuple(value)
        attrs.append((name, repr(value)))
    inputs = tuple(None if is_omitted(t) else _input_key(t) for t in node.inputs)
    return node.op, node.domain or "", tuple(attrs), inputs, len(node.outputs)


def _input_key(tensor: gs.Tensor):
    """A large constant is keyed by dtype and shape; its values are compared by ``_same_inputs``."""
    if isinstance(tensor, gs.Constant) and int(np.prod(tensor.shape, dtype=np.int64)) > _MAX_CONSTANT:
        return "constant", str(tensor.dtype), tuple(tensor.shape)
    return id(tensor)


def _same_inputs(a: gs.Node, b: gs.Node) -> bool:
    """Inputs keyed equal are the same tensor, or large constants with equal values."""
    for x, y in zip(a.inputs, b.inputs):
        if x is not y and not (isinstance(x, gs.Constant) and isinstance(y, gs.Constant)
                               and np.array_equal(constant_array(x), constant_array(y))):
            return False
    return True


def _dedupe_nodes(graph: gs.Graph, outputs: set[int]) -> int:
    """Rule 2 in topological order, so chains of duplicates fold in one walk."""
    seen: dict[tuple, list[gs.Node]] = {}
    merged = 0
    for node in list(graph.nodes):
        key = _key(node)
        if key is None:
            continue
        kept = next((k for k in seen.get(key, ()) if _same_inputs(k, node)), None)
        if kept is None:
            seen.setdefault(key, []).append(node)
            continue
        if any(id(t) in outputs for t in node.outputs):
            continue  # rule 4
        outputs_of_node = list(node.outputs)
        disconnect(node)
        for mine, theirs in zip(outputs_of_node, kept.outputs):
            replace_uses(mine, theirs)
        merged += 1
    return merged
