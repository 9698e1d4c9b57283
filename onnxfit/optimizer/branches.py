"""Inlining an If whose condition is known: the rules of the inline-if pass (passes/inline_if.py),
shared with fold-shapes, which decides Ifs inside its own fixpoint rounds."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import onnx_graphsurgeon as gs

from onnxfit.errors import node_label
from onnxfit.optimizer import nodes
from onnxfit.optimizer.constants import constant_value

__all__ = ["inline_decided_ifs", "inline_branch", "straight_graphs"]

log = logging.getLogger(__name__)

_DEFAULT_DOMAINS = (None, "", "ai.onnx")  # graph-surgeon imports "" as None


def inline_decided_ifs(graph: gs.Graph, value_of: Callable[[gs.Tensor], np.ndarray | None],
                       opset: int, hold: bool = True) -> tuple[int, list[gs.Node]]:
    """Inline every If of ``graph`` (and of If branches, nested) whose condition ``value_of`` knows.

    Returns how many were inlined and the Ifs held back (rule 5, with ``hold``): their condition
    must then stay computed, or ONNX Runtime would fold it and inline them at load time anyway.
    """
    undecided = set()
    decided = []
    for g in straight_graphs(graph):
        for node in [n for n in g.nodes if n.op == "If" and n.domain in _DEFAULT_DOMAINS]:
            cond = value_of(node.inputs[0])
            if cond is None or cond.size != 1:
                undecided.add(id(node))
            else:
                decided.append((g, node, bool(cond.reshape(-1)[0])))
    inlined, held = 0, []
    for g, node, take_then in decided:
        if node not in g.nodes:  # moved with an enclosing branch inlined this round: next round
            continue
        branch = node.attrs["then_branch" if take_then else "else_branch"]
        exposes_undecided = any(id(n) in undecided for b in straight_graphs(branch) for n in b.nodes)
        if hold and exposes_undecided and constant_value(node.inputs[0], opset) is None:
            held.append(node)
            continue
        inline_branch(graph, g, node, take_then)
        inlined += 1
    return inlined, held


def inline_branch(root: gs.Graph, graph: gs.Graph, node: gs.Node, take_then: bool) -> None:
    """Replace ``node`` (an If in ``graph``, part of the model ``root``) by one of its branches."""
    branch: gs.Graph = node.attrs["then_branch" if take_then else "else_branch"]
    label = node_label(node)
    _scope_names(root, branch, label)
    outputs = list(node.outputs)
    node.inputs.clear()
    node.outputs.clear()
    graph.nodes.remove(node)
    graph.nodes.extend(branch.nodes)
    branch.nodes = []  # they live in ``graph`` now; nested Ifs are decided there next round
    for inner, outer in zip(branch.outputs, outputs):
        nodes.add_node(graph, "Identity", f"{label}/{outer.name}", [inner], outputs=[outer])


def _scope_names(root: gs.Graph, branch: gs.Graph, label: str) -> None:
    """Rename the branch's own tensors and nodes whose names are taken elsewhere (rule 3)."""
    tensors_outside: dict[str, set[int]] = {}
    nodes_outside: set[str] = set()
    for g in _graphs_except(root, branch):
        nodes_outside.update(n.name for n in g.nodes if n.name)
        for node in g.nodes:
            for t in (*node.inputs, *node.outputs):
                tensors_outside.setdefault(t.name, set()).add(id(t))
        for t in (*g.inputs, *g.outputs):
            tensors_outside.setdefault(t.name, set()).add(id(t))
    for node in branch.nodes:
        own = [*node.outputs, *(t for t in node.inputs if isinstance(t, gs.Constant))]
        for tensor in own:
            if tensor.name and tensor.name in tensors_outside and id(tensor) not in tensors_outside[tensor.name]:
                tensor.name = nodes.unique_name(root, f"{label}/{tensor.name}")
        if node.name and node.name in nodes_outside:
            node.name = nodes.unique_name(root, f"{label}/{node.name}")


def _graphs_except(root: gs.Graph, skipped: gs.Graph):
    """``root`` and its subgraphs, nested, without ``skipped`` and what it holds."""
    if root is skipped:
        return
    yield root
    for node in root.nodes:
        for attr in node.attrs.values():
            if isinstance(attr, gs.Graph):
                yield from _graphs_except(attr, skipped)


def straight_graphs(graph: gs.Graph):
    """The graph and its If branches, nested: each runs at most once per inference."""
    yield graph
    for node in graph.nodes:
        if node.op == "If":
            for attr in node.attrs.values():
                if isinstance(attr, gs.Graph):
                    yield from straight_graphs(attr)
