"""merge-siblings: the same element-wise op with a constant, applied to pieces of one value, runs once.

Why: exporters write one small op per layer where the layers share an input: FacePhys scales its
per-call time step ``dt`` by eight per-layer constant vectors (``Mul``), then takes ``1 - a`` and
``1 - (1 - a)`` of each (``Sub``): 24 kernels of 32 values each, where one ``Mul`` on the eight
vectors side by side, one ``Sub``, one more ``Sub`` and two ``Split``s compute the same numbers.
Rules, matched at a binary element-wise op (``Add``, ``Sub``, ``Mul``, ``Div``) or at a ``Split``:

1. Siblings: three or more nodes of one op read one value ``x`` on the same side, each with a
   constant on the other side, all of one dtype and output shape ``S``; ``x`` has size 1 on an axis
   ``a`` of ``S`` (it broadcasts there). They become one node reading ``x`` and the constants,
   each spelled out to ``S``, concatenated along ``a``, and a ``Split`` along ``a`` that writes
   their outputs (n nodes -> 2).
2. Through a Split: every output of a ``Split`` with known sizes is read by a node of one op, on
   the same side, with a constant that does not widen it (FacePhys: ``1 - a``). That op runs once
   on the Split's input with the constants spelled out to each output's shape and concatenated
   along the split axis, and a new ``Split`` writes the readers' outputs. The old Split stays for
   its other readers (n nodes -> 2), or goes (n + 1 -> 2).
3. Only where the target EP runs ``Split`` (split-to-slice would turn it back into n Slices).
Exact: every element is the same op of the same two values; only which kernel computes it changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from onnxfit.graphs import disconnect
from onnxfit.optimizer import nodes
from onnxfit.optimizer.edits import small_constant
from onnxfit.optimizer.pipeline import PassContext, PassReport, register_pass
from onnxfit.optimizer.passes.split_to_slice import SplitPlan, decode_split
from onnxfit.optimizer.rewrite import DEFAULT_DOMAINS, MatchContext, RewriteRule

__all__ = ["MergeSiblingsPass"]

_OPS = ("Add", "Sub", "Mul", "Div")
_MAX_VALUES = 1 << 16  # per piece: the merged constant spells every piece's values out


@dataclass
class Plan:
    source: gs.Tensor  # what the merged node reads: the siblings' shared input, or the Split's input
    op: str
    side: int  # the input position of ``source`` in each reader
    readers: list[gs.Node]  # one per piece, in order
    constants: list[np.ndarray]
    axis: int
    sizes: list[int]


@register_pass
class MergeSiblingsPass(RewriteRule):
    name = "merge-siblings"
    version = 1
    op = (*_OPS, "Split")
    fixpoint = True

    def match(self, node: gs.Node, ctx: MatchContext) -> Plan | None:
        plan = _through_split(node, ctx) if node.op == "Split" else _siblings(node, ctx)
        if plan is None or not ctx.target_runs_as(plan.readers[0], "Split"):
            return None
        members = self._members.setdefault(id(ctx.graph), {id(n) for n in ctx.graph.nodes})
        if not all(id(reader) in members for reader in plan.readers):
            return None  # a reader inside an If/Loop body: its value stays where that body computes it
        return plan

    def run(self, graph: gs.Graph, ctx: PassContext) -> PassReport:
        self._members: dict[int, set[int]] = {}  # graph -> its nodes when first asked, this run
        return super().run(graph, ctx)

    def rewrite(self, graph: gs.Graph, node: gs.Node, plan: Plan, ctx: MatchContext) -> None:
        base = plan.readers[0].name or plan.op.lower()
        outputs = [reader.outputs[0] for reader in plan.readers]
        for reader in plan.readers:
            disconnect(reader)
        values = gs.Constant(nodes.unique_name(graph, f"{base}_merged_const"),
                             np.concatenate(plan.constants, axis=plan.axis))
        merged = gs.Variable(nodes.unique_name(graph, f"{base}_merged"), dtype=values.values.dtype)
        inputs = [plan.source, values] if plan.side == 0 else [values, plan.source]
        nodes.add_node(graph, plan.op, f"{base}_merged", inputs, outputs=[merged])
        if ctx.opset >= 13:
            sizes = nodes.int64_constant(graph, f"{base}_sizes", plan.sizes)
            nodes.add_node(graph, "Split", f"{base}_split", [merged, sizes], attrs={"axis": plan.axis}, outputs=outputs)
        else:
            nodes.add_node(graph, "Split", f"{base}_split", [merged], attrs={"axis": plan.axis, "split": plan.sizes},
                           outputs=outputs)


def _constant_operand(node: gs.Node, side: int, shape: tuple[int, ...] | None) -> np.ndarray | None:
    """The other operand of a binary node, when it is a constant that broadcasts to no more than
    ``shape`` (the node's output shape): its values spelled out in that shape."""
    if node.domain not in DEFAULT_DOMAINS or len(node.inputs) != 2 or len(node.outputs) != 1 or shape is None:
        return None
    value = small_constant(node.inputs[1 - side])
    if value is None or value.ndim > len(shape) or int(np.prod(shape)) > _MAX_VALUES:
        return None
    if any(d not in (1, s) for d, s in zip(value.shape[::-1], shape[::-1])):
        return None
    return np.broadcast_to(value, shape)


def _siblings(node: gs.Node, ctx: MatchContext) -> Plan | None:
    """Rule 1, matched at the first sibling in graph order (the others match nothing)."""
    shape = ctx.static_shape(node.outputs[0]) if len(node.outputs) == 1 else None
    for side in (0, 1):
        x = node.inputs[side] if len(node.inputs) == 2 else None
        if x is None or isinstance(x, gs.Constant) or _constant_operand(node, side, shape) is None:
            continue
        axis = _broadcast_axis(ctx.static_shape(x), shape)
        if axis is None:
            continue
        readers, constants = [], []
        for reader in x.outputs:
            if reader.op != node.op or reader.inputs[side] is not x or ctx.static_shape(reader.outputs[0]) != shape:
                continue
            value = _constant_operand(reader, side, shape)
            if value is not None and (not constants or value.dtype == constants[0].dtype):
                readers.append(reader)
                constants.append(value)
        if len(readers) >= 3 and readers[0] is node:
            return Plan(x, node.op, side, readers, constants, axis, [shape[axis]] * len(readers))
    return None


def _broadcast_axis(x_shape: tuple[int, ...] | None, shape: tuple[int, ...]) -> int | None:
    """An axis of ``shape`` along which ``x`` (aligned to the right) has size 1, the first one."""
    if x_shape is None or len(x_shape) > len(shape):
        return None
    padded = (1,) * (len(shape) - len(x_shape)) + tuple(x_shape)
    return next((a for a, d in enumerate(padded) if d == 1 and shape[a] >= 1), None)


def _through_split(split: gs.Node, ctx: MatchContext) -> Plan | None:
    """Rule 2."""
    decoded = decode_split(split, ctx.opset)
    if not isinstance(decoded, SplitPlan) or len(split.outputs) < 2 or split.domain not in DEFAULT_DOMAINS:
        return None
    choice = None  # (op, side) of the first output's first fitting reader: every piece must have one
    readers, constants = [], []
    for piece in split.outputs:
        shape = ctx.static_shape(piece)
        found = None
        for reader in piece.outputs:
            if reader.op not in _OPS:
                continue
            for side in (0, 1):
                if reader.inputs[side] is not piece or (choice is not None and (reader.op, side) != choice):
                    continue
                value = _constant_operand(reader, side, shape)
                if value is not None and (not constants or value.dtype == constants[0].dtype):
                    found = (reader, side, value)
                    break
            if found:
                break
        if found is None:
            return None
        reader, side, value = found
        choice = choice or (reader.op, side)
        readers.append(reader)
        constants.append(value)
    split_goes = all(len(p.outputs) == 1 and id(p) not in ctx.graph_outputs for p in split.outputs)
    if len(readers) - (1 if split_goes else 2) < 1:
        return None  # nothing saved
    rank = len(constants[0].shape)
    return Plan(split.inputs[0], choice[0], choice[1], readers, constants, decoded.axis % rank, list(decoded.sizes))
