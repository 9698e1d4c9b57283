"""The match/rewrite driver that node-local passes share.

A rule is a pass that rewrites one op, node by node. It declares the op, its domain (the default
one unless it says otherwise) and the opsets it handles, and implements two steps:

- ``match(node, ctx)``: decode the node into a plan, ``Skip(reason)`` when the node is this rule's
  job but cannot be rewritten exactly, or None when it is not this rule's job (a constant-mode Pad);
- ``rewrite(graph, node, plan, ctx)``: apply the plan.

The driver owns the rest: the walk over the graph and every subgraph (If/Loop/Scan bodies), the
op/domain/opset test, the ``skipped`` lines, the notes for nodes the target EP runs itself
(``keep``), the ``rewritten`` count and the pass's explicit ``changed``. ``match`` never edits the
graph, so ``inspect`` lists a rule's findings with the same code (``find``).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np
import onnx_graphsurgeon as gs
from onnx import helper

from onnxfit.errors import node_label
from onnxfit.graphs import graph_outputs, iter_graphs
from onnxfit.optimizer.constants import static_shape
from onnxfit.optimizer.pipeline import PassContext, PassReport
from onnxfit.targets.profiles import OLDEST_PROFILED, ep_acceptor, inferred_types, profile_for

__all__ = ["DEFAULT_DOMAINS", "MatchContext", "RewriteRule", "Skip", "declared_dtype", "find", "is_omitted"]

log = logging.getLogger(__name__)

DEFAULT_DOMAINS = (None, "", "ai.onnx")


def is_omitted(tensor: gs.Tensor | None) -> bool:
    """An optional input left out: absent, or given as the empty name ONNX uses for "none"."""
    return tensor is None or (isinstance(tensor, gs.Variable) and tensor.name == "")


def declared_dtype(tensor: gs.Tensor) -> np.dtype | None:
    """The tensor's numpy dtype as the model declares it; None when undeclared or a type numpy
    lacks (graph-surgeon gives bfloat16 and float8 as onnx enums)."""
    if tensor is None or tensor.dtype is None:
        return None
    try:
        return np.dtype(tensor.dtype)
    except TypeError:
        return None


@dataclass(frozen=True)
class Skip:
    """Why a rule leaves a node of its op alone; one line of the pass report."""

    reason: str


@dataclass
class MatchContext:
    """What ``match``, ``keep`` and ``rewrite`` may read: the pass context and the whole graph."""

    pass_ctx: PassContext
    root: gs.Graph
    # The graph (root or subgraph) of the node being matched; ``find`` sets it.
    graph: gs.Graph | None = None
    _outputs: set[int] | None = field(default=None, repr=False)
    _types: dict | None = field(default=None, repr=False)  # one onnx inference, shared below
    _acceptors: dict = field(default_factory=dict, repr=False)  # ORT release -> takes(node)
    _removed_at_load: set[str] | None = field(default=None, repr=False)

    @property
    def graph_outputs(self) -> set[int]:
        """ids of the tensors any graph of the model returns (their names must stay)."""
        if self._outputs is None:
            self._outputs = graph_outputs(self.root)
        return self._outputs

    @property
    def opset(self) -> int:
        return self.pass_ctx.opset

    def dtype(self, tensor: gs.Tensor):
        """The tensor's numpy dtype: declared, else from the graph's onnx inference; None if unknown."""
        declared = declared_dtype(tensor)
        if declared is not None:
            return declared
        inferred = self._inferred().get(tensor.name)
        elem = inferred.tensor_type.elem_type if inferred is not None and inferred.HasField("tensor_type") else 0
        return np.dtype(helper.tensor_dtype_to_np_dtype(elem)) if elem else None

    def static_shape(self, tensor: gs.Tensor) -> tuple[int, ...] | None:
        """The tensor's dims when every one is a known size: declared, else from the graph's onnx
        inference; None otherwise."""
        declared = static_shape(tensor)
        if declared is not None:
            return declared
        inferred = self._inferred().get(tensor.name)
        if inferred is None or not inferred.HasField("tensor_type") or not inferred.tensor_type.HasField("shape"):
            return None
        dims = inferred.tensor_type.shape.dim
        return tuple(d.dim_value for d in dims) if all(d.dim_value > 0 for d in dims) else None

    def target_takes(self, node: gs.Node) -> bool:
        """True when the target EP runs ``node`` as it is at ``--ort-version`` (its support profile)."""
        return self._acceptor(self.pass_ctx.ort_version)(node)

    def target_takes_at_any(self, node: gs.Node) -> bool:
        """``target_takes``, where no ``--ort-version`` asks the oldest profiled release (as
        ``target_takes_as`` does) instead of taking nothing."""
        return self._acceptor(self.pass_ctx.ort_version or OLDEST_PROFILED)(node)

    def target_takes_as(self, node: gs.Node, op: str, inputs: list[gs.Tensor] | None = None) -> bool:
        """True when the target EP would run ``op`` on ``node``'s inputs (or the ``inputs`` the
        replacement reads) and outputs, no attributes: asks the profile about a replacement before
        building it. With no ``--ort-version`` (any release) the oldest profiled release is asked:
        the replacement must hold for every one."""
        probe = SimpleNamespace(op=op, domain=node.domain, name=node.name,
                                inputs=node.inputs if inputs is None else inputs, outputs=node.outputs, attrs={})
        return self._acceptor(self.pass_ctx.ort_version or OLDEST_PROFILED)(probe)

    def runtime_folds(self, node: gs.Node) -> bool:
        """True when ONNX Runtime's basic optimizations remove ``node`` when it loads the model
        (computed once, at load): a rewrite of it changes nothing at run time, and may stop the
        folding. Asks ONNX Runtime once per pass, on the graph as it was when first asked."""
        if self._removed_at_load is None:
            from onnxfit._graphsurgeon import export_graph
            from onnxfit.optimizer.runtime_folding import removed_at_load

            self._removed_at_load = removed_at_load(export_graph(self.root))
        return any(t.name in self._removed_at_load for t in node.outputs)

    def target_runs_as(self, node: gs.Node, op: str, inputs: list[gs.Tensor] | None = None) -> bool:
        """``target_takes_as``, where a target without a support profile (the CPU EP: every ONNX op
        has a kernel) runs any op: for rules that build an op every EP has, where a profile is asked
        only so that a fusion never moves nodes off the target EP."""
        return profile_for(self.pass_ctx.target) is None or self.target_takes_as(node, op, inputs)

    def replacement_needed(self, node: gs.Node, op: str) -> bool | Skip | None:
        """For rules that swap an op the target EP lacks for an equivalent it takes: None when the EP
        runs ``node`` itself, ``Skip`` when it takes no ``op`` either, True to rewrite."""
        if self.target_takes(node):
            return None
        if not self.target_takes_as(node, op):
            return Skip(f"the target EP takes no {op} either at this --ort-version")
        return True

    def float_replacement_needed(self, node: gs.Node, op: str):
        """``replacement_needed`` for rules that rewrite float math only: the input's dtype when the
        rewrite is needed, None for other dtypes (or where the EP runs the node), else ``Skip``."""
        dtype = self.dtype(node.inputs[0])
        if dtype is None or dtype.kind != "f":
            return None
        needed = self.replacement_needed(node, op)
        return dtype if needed is True else needed

    def _inferred(self) -> dict:
        if self._types is None:
            self._types = inferred_types(self.root)
        return self._types

    def _acceptor(self, version) -> Callable[[gs.Node], bool]:
        if version not in self._acceptors:
            ctx = self.pass_ctx
            self._acceptors[version] = ep_acceptor(self.root, ctx.target, ctx.opset, version, inferred=self._inferred)
        return self._acceptors[version]


class RewriteRule(ABC):
    """Base class of node-local passes: subclasses set the class attributes and implement
    ``match`` and ``rewrite``; ``run`` (the pass contract) is the driver."""

    name: ClassVar[str]
    version: ClassVar[int]
    op: ClassVar[str | tuple[str, ...]]  # the op, or the ops, the rule matches
    domain: ClassVar[str] = ""  # "" is the default domain ("ai.onnx" and None name it too)
    min_opset: ClassVar[int] = 1
    max_opset: ClassVar[int | None] = None
    # Simplification rules run in the pipeline's fixpoint rounds with the rules next to them.
    fixpoint: ClassVar[bool] = False
    # False: the rewrite changes float rounding within a stated tolerance; --exact leaves it out
    # (select_passes).
    exact: ClassVar[bool] = True

    def applies(self, node: gs.Node, opset: int) -> bool:
        """The op, domain and opset this rule was declared for."""
        domain_ok = node.domain in DEFAULT_DOMAINS if self.domain in DEFAULT_DOMAINS else node.domain == self.domain
        in_range = self.min_opset <= opset and (self.max_opset is None or opset <= self.max_opset)
        ops = (self.op,) if isinstance(self.op, str) else self.op
        return node.op in ops and domain_ok and in_range

    @abstractmethod
    def match(self, node: gs.Node, ctx: MatchContext) -> Any | Skip | None:
        """A plan to rewrite ``node``, ``Skip(reason)`` when it is this rule's job but not exactly
        rewritable, or None when it is not this rule's job. Never edits the graph."""

    # What the note calls a matched node the target EP runs itself at --ort-version (its support
    # profile is asked); None: the rule rewrites every match.
    kept_when_target_takes: ClassVar[str | None] = None

    def keep(self, node: gs.Node, plan: Any, ctx: MatchContext) -> str | None:
        """A note when the target EP runs this matched node itself (left as is); None to rewrite."""
        if self.kept_when_target_takes is None or not ctx.target_takes(node):
            return None
        return f"{self.kept_when_target_takes} left as is, the target EP takes it"

    @abstractmethod
    def rewrite(self, graph: gs.Graph, node: gs.Node, plan: Any, ctx: MatchContext) -> None:
        """Replace ``node`` in ``graph`` as ``plan`` (from ``match``) says."""

    def label(self, node: gs.Node) -> str:
        """How ``skipped`` lines name a node."""
        return node_label(node)

    def run(self, graph: gs.Graph, ctx: PassContext) -> PassReport:
        report = PassReport(self.name, changed=False)
        mctx = MatchContext(ctx, graph)
        for g, node, plan in find(self, graph, mctx):
            if isinstance(plan, Skip):
                report.skipped.append(f"{self.label(node)}: {plan.reason}")
                log.debug("%s skips %s: %s", self.name, node_label(node), plan.reason)
                continue
            note = self.keep(node, plan, mctx)
            if note is not None:
                report.notes.append(f"{node_label(node)}: {note}")
                continue
            self.rewrite(g, node, plan, mctx)
            report.rewritten += 1
            report.changed = True
        return report


def find(rule: RewriteRule, graph: gs.Graph, ctx: MatchContext | PassContext) -> Iterator[tuple[gs.Graph, gs.Node, Any]]:
    """(graph, node, plan or Skip) for every node of ``graph`` and its subgraphs that is ``rule``'s
    job. Each graph's nodes are listed before the first of them is rewritten."""
    if isinstance(ctx, PassContext):
        ctx = MatchContext(ctx, graph)
    for g in iter_graphs(graph):
        ctx.graph = g
        for node in [n for n in g.nodes if rule.applies(n, ctx.opset)]:
            if not node.outputs:
                continue  # removed by an earlier rewrite of this walk
            plan = rule.match(node, ctx)
            if plan is not None:
                yield g, node, plan
