"""Facts about a model's graphs that every part of onnxfit reads: its graphs, opset and op counts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING

import onnx

from onnxfit.errors import OnnxfitError

if TYPE_CHECKING:
    import onnx_graphsurgeon as gs

__all__ = ["iter_graphs", "attribute_graphs", "cleanup", "toposort", "default_opset", "disconnect", "graph_outputs", "op_histogram"]


_GRAPH_OPS = frozenset({"If", "Loop", "Scan", "SequenceMap"})
_DEFAULT_DOMAINS = (None, "", "ai.onnx")


def iter_graphs(graph: onnx.GraphProto | gs.Graph) -> Iterator:
    """The graph and every subgraph (If/Loop/Scan bodies, nested), depth first.

    Takes an ``onnx.GraphProto`` or an onnx-graphsurgeon ``Graph`` and yields graphs of the same
    kind: passes rewrite them all, readers count and read them all.
    """
    yield graph
    if not isinstance(graph, onnx.GraphProto):
        # Not graph-surgeon's own subgraphs(): it imports and walks per node, a third of a
        # pass's time on a 2500-node model.
        for node in graph.nodes:
            if node.op not in _GRAPH_OPS and node.domain in _DEFAULT_DOMAINS:
                continue  # no default-domain op but these holds a graph attribute
            for value in node.attrs.values():
                if isinstance(value, (list, tuple)):
                    for item in value:
                        if hasattr(item, "nodes") and hasattr(item, "outputs"):
                            yield from iter_graphs(item)
                elif hasattr(value, "nodes") and hasattr(value, "outputs"):
                    yield from iter_graphs(value)
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


def disconnect(node: gs.Node) -> None:
    """Detach ``node`` from every tensor it reads and writes (cleanup then drops it), by identity.

    graph-surgeon's own ``clear()`` removes by equality: after common-subexpression elimination
    three equal nameless nodes of one input leave, one at a time, the wrong list entries, and
    cleanup fails on the last (ONNX's AffineGrid function body does it).
    """
    for tensor in node.inputs:
        if tensor is None:
            continue
        readers = tensor.outputs
        list.pop(readers, next(k for k, reader in enumerate(readers) if reader is node))
    for tensor in node.outputs:
        writers = tensor.inputs
        list.pop(writers, next(k for k, writer in enumerate(writers) if writer is node))
    list.clear(node.inputs)
    list.clear(node.outputs)


def toposort(root: gs.Graph) -> gs.Graph:
    """graph-surgeon's ``toposort`` (nodes stably sorted by depth: 1 + the deepest local producer
    of an input or of a value a subgraph reads), without its per-node walks of every subgraph, a
    fifth of a pass's time on a 1500-node model. Functions, if any, are graph-surgeon's to sort."""
    for graph in iter_graphs(root):
        _sort_by_depth(graph)
    if root.functions:
        root.toposort(recurse_subgraphs=False, mode="functions")
    return root


def _sort_by_depth(graph: gs.Graph) -> None:
    producers = {t.name: node for node in graph.nodes for t in node.outputs if t.name}
    inputs = {id(node): _local_producers(node, producers) for node in graph.nodes}
    depth: dict[int, int] = {}
    for start in graph.nodes:
        stack = [start]
        while stack:
            node = stack[-1]
            if id(node) in depth:
                stack.pop()
                continue
            waiting = [p for p in inputs[id(node)] if id(p) not in depth]
            if waiting:
                if len(stack) > len(graph.nodes):
                    raise ValueError(f"cycle in graph '{graph.name}' at node '{node.name}'")
                stack.extend(waiting)
                continue
            depth[id(node)] = 1 + max((depth[id(p)] for p in inputs[id(node)]), default=-1)
            stack.pop()
    graph.nodes = sorted(graph.nodes, key=lambda n: depth[id(n)])


def _local_producers(node: gs.Node, producers: dict) -> list[gs.Node]:
    names = [t.name for t in node.inputs]
    if node.op in _GRAPH_OPS or node.domain not in _DEFAULT_DOMAINS:
        for value in node.attrs.values():
            for sub in value if isinstance(value, (list, tuple)) else [value]:
                if hasattr(sub, "nodes") and hasattr(sub, "outputs"):
                    names += [t.name for g in iter_graphs(sub) for n in g.nodes for t in n.inputs]
    return [producers[name] for name in names if name in producers and producers[name] is not node]


def cleanup(root: gs.Graph) -> gs.Graph:
    """graph-surgeon's ``cleanup`` (unused graph inputs kept), after dead nodes are detached here.

    graph-surgeon formats every node it removes into a log message even when logging is off, and
    a node that reads or holds constants prints them with numpy: 0.5 s of PP-PicoDet's 2 s. Dead
    nodes (no output read, in its graph or a subgraph, or returned) are detached and dropped here;
    in a graph without subgraphs or functions that is all graph-surgeon's cleanup would do, so it
    runs only where a dead If's body may still read an outer value.
    """
    outputs = graph_outputs(root)
    graphs = list(iter_graphs(root))
    # A reader no graph holds any more (a rewrite dropped it from the list) reads nothing.
    held = {id(node) for graph in graphs for node in graph.nodes}
    for graph in graphs:
        dead = True
        while dead:  # readers first, so a dead chain mostly goes in one sweep
            dead = [node for node in reversed(graph.nodes) if (node.inputs or node.outputs)
                    and not any(id(t) in outputs or any(id(r) in held for r in t.outputs) for t in node.outputs)]
            for node in dead:
                disconnect(node)
        graph.nodes = [node for node in graph.nodes if node.inputs or node.outputs]  # folded Constants too
    if len(graphs) == 1 and not root.functions:
        return root
    return root.cleanup(remove_unused_graph_inputs=False)
