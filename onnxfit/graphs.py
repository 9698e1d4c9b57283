"""Facts about a model's graphs that every part of onnxfit reads: its graphs, opset and op counts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING

import onnx

from onnxfit.errors import OnnxfitError

if TYPE_CHECKING:
    import onnx_graphsurgeon as gs

__all__ = ["iter_graphs", "attribute_graphs", "default_opset", "graph_outputs", "op_histogram"]


def iter_graphs(graph: onnx.GraphProto | gs.Graph) -> Iterator:
    """The graph and every subgraph (If/Loop/Scan bodies, nested), depth first.

    Takes an ``onnx.GraphProto`` or an onnx-graphsurgeon ``Graph`` and yields graphs of the same
    kind: passes rewrite them all, readers count and read them all.
    """
    yield graph
    if not isinstance(graph, onnx.GraphProto):
        yield from graph.subgraphs(recursive=True)
        return
    for node in graph.node:
        for attr in node.attribute:
            for sub in attribute_graphs(attr):
                yield from iter_graphs(sub)


def graph_outputs(root: gs.Graph) -> set[int]:
    """ids of the tensors any graph of the model returns (root or If/Loop/Scan body): their names
    must stay."""
    return {id(t) for g in iter_graphs(root) for t in g.outputs}


def attribute_graphs(attr: onnx.AttributeProto) -> list[onnx.GraphProto]:
    """The subgraphs an attribute holds (If branches, Loop/Scan bodies); none for other attributes."""
    if attr.type == onnx.AttributeProto.GRAPH:
        return [attr.g]
    if attr.type == onnx.AttributeProto.GRAPHS:
        return list(attr.graphs)
    return []


def default_opset(model: onnx.ModelProto) -> int:
    """The version of the default (``ai.onnx``) opset the model imports."""
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx"):
            return opset.version
    raise OnnxfitError("the model imports no default-domain opset")


def imports_default_opset(model: onnx.ModelProto) -> bool:
    """False for models of ``ai.onnx.ml`` or training ops only: they have no node a pass rewrites."""
    return any(opset.domain in ("", "ai.onnx") for opset in model.opset_import)


def op_histogram(model: onnx.ModelProto) -> Counter:
    """op_type -> count over the graph and all subgraphs."""
    return Counter(node.op_type for g in iter_graphs(model.graph) for node in g.node)
