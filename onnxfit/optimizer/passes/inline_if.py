"""inline-if: an If whose condition is known before run time -> the nodes of the branch it takes.

Why: the CoreML EP has no If builder and the OpenVINO CPU plugin rejects If with dynamic-rank
outputs, so a model that branches on a setting (a VAD's sample rate ``sr``, fixed with
``--fix-input sr=16000``) or on a shape test (torch's ``squeeze(dim)`` on a dynamic dim becomes
``If(Shape(x)[k] == 1)``) splits into partitions or does not load. Rules:

1. The condition must be known: constant after folding (initializers, fixed inputs, Constant
   nodes, shape math on known dims: fold-shapes' value propagation decides it). Known conditions
   are read element 0 of a one-element tensor, as ONNX Runtime reads them.
2. The branch's nodes move into the graph that held the If; the If's output tensors keep their
   names, value_info and consumers: an Identity per output joins them to the branch's outputs
   (a branch output may be an outer tensor, or the same tensor twice, so it is never renamed).
3. Names stay unique: a tensor or node of the branch whose name is taken elsewhere in the model
   gets a scoped name ``<If name>/<name>``; references to outer scopes are the same tensors and
   keep their names. Nested Ifs move with their branch and are decided in the next round.
4. Rounds repeat until no If is decided: an inlined branch exposes more shape math, and a folded
   shape decides more Ifs. In a target's pipeline fold-shapes runs this rule inside its own
   fixpoint rounds; run alone (``--passes inline-if``) the pass propagates values itself.

5. On the mobile targets (CoreML, NNAPI: no If builder), an If decided only by what onnxfit knows
   of shapes (partly known dims, which ONNX Runtime's own folding does not see) stays an If when
   its branch holds Ifs that stay undecided: inlined, it would turn one If on the CPU into
   several CPU islands between EP partitions (silero-vad's LSTMCell "unbatched input?" tests after
   a ``squeeze`` on the time axis: 2 -> 3 CoreML partitions). With ``--input-shape`` the inner Ifs
   are decided too, and all go. The other targets run If nodes themselves: it is inlined (fewer
   nodes, the untaken branch gone).

Exact: ONNX Runtime evaluates the same nodes, only without the If around them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import onnx_graphsurgeon as gs

from onnxfit.errors import node_label
from onnxfit.optimizer import nodes
from onnxfit.optimizer.constants import constant_value
from onnxfit.targets.presets import MOBILE_TARGETS
from onnxfit.graphs import cleanup, iter_graphs
from onnxfit.optimizer.pipeline import PassContext, PassReport, register_pass

__all__ = ["InlineIfPass", "inline_decided_ifs", "inline_branch", "straight_graphs"]

log = logging.getLogger(__name__)

_DEFAULT_DOMAINS = (None, "", "ai.onnx")  # graph-surgeon imports "" as None
_MAX_ROUNDS = 64


@register_pass
class InlineIfPass:
    name = "inline-if"
    version = 2

    def run(self, graph: gs.Graph, ctx: PassContext) -> PassReport:
        # fold-shapes owns value propagation (shapes, partly known shape vectors); imported here
        # because fold-shapes imports this module for rule 4.
        from onnxfit.optimizer.passes.fold_shapes import known_values

        report = PassReport(self.name, changed=False)
        held = []
        for _ in range(_MAX_ROUNDS):
            inlined, held = inline_decided_ifs(graph, known_values(graph, ctx.opset), ctx.opset,
                                               hold=ctx.target in MOBILE_TARGETS)
            if not inlined:
                break
            report.rewritten += inlined
            report.changed = True
            cleanup(graph).toposort()
        for node in held:
            report.skipped.append(f"If '{node_label(node)}': decided by shapes, but its branch holds Ifs decided "
                                  "only at run time (--input-shape decides them)")
        left = sum(1 for g in iter_graphs(graph) for n in g.nodes if n.op == "If")
        if left:
            report.notes.append(f"{left} If node(s) stay: their condition is known only at run time")
        return report


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
