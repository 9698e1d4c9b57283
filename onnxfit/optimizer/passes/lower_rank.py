"""lower-rank: element-wise regions above the target EP's rank limit run on fewer dims.

Why: NNAPI's builders take inputs of rank <= 4 only, CoreML's of rank <= 5
(``Profile.max_rank``). tf2onnx writes time-distributed layers as ``Reshape [1, 36, 36, 32] ->
[1, 1, 36, 36, 32]`` followed by an element-wise EMA/norm whose state inputs are rank 5 too:
FacePhys leaves 129 such nodes on the CPU under NNAPI, between partitions. Their axes of size 1
carry nothing. Rules:

1. Only for targets whose support profile has a rank limit (``max_rank``).
2. A region is a maximal set of element-wise nodes (unary ops, Cast, Clip with constant bounds,
   broadcasting binary and variadic ops, Where: ``ELEMENTWISE``), each writing a value of a static
   shape (declared or inferred) whose rank is above the limit, connected through the values above
   the limit that one writes and another reads, or that two read.
3. Every value of the region (its nodes' inputs and outputs) must have a static shape. Axes are
   numbered in the region's full rank, values right-aligned as numpy broadcasts them; the axes
   dropped are the outermost ones where every value has size 1 or lacks the axis, as few as
   bring the rank to the limit. A region without enough of them is left alone (``skipped``).
4. Inputs: a constant (also one known after folding) becomes a new constant of its reduced shape
   (``[1, 1, 1, 1, 32]`` -> ``[1, 1, 1, 32]``; ``[32]`` lacks the dropped axis and stays); a value
   written by a Reshape with a constant shape that only the region reads gets that Reshape's
   shape reduced; any other value is read through a new Reshape.
5. Outputs: a value read outside the region, or returned by a graph, is reshaped back to its full
   shape under its own name (graph outputs keep their names and shapes); a reader that is a
   Reshape with a constant shape without 0 entries reads the reduced value itself.
6. A region whose every neighbouring node stays off the EP (past the Reshapes rules 4-5 adapt) is
   left: lowered, it would be an EP partition of its own between CPU nodes (rivagan's Conv3d
   blocks). A region with no neighbouring node (graph inputs to graph outputs) is lowered.
Exact: the region's ops and attributes are unchanged; dropping axes of size 1 moves no element,
and since every value loses the same axes of the full rank, broadcasting pairs the same elements.
Axis-carrying ops (Reduce*, Softmax, Concat, Transpose) are not element-wise here: they bound
regions, reading values reshaped back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx_graphsurgeon as gs

from onnxfit.errors import node_label
from onnxfit.graphs import iter_graphs
from onnxfit.optimizer import nodes
from onnxfit.optimizer.constants import constant_value
from onnxfit.optimizer.edits import constant_array, consumers, producer, set_input, small_constant
from onnxfit.optimizer.pipeline import PassContext, PassReport, register_pass
from onnxfit.optimizer.rewrite import DEFAULT_DOMAINS, MatchContext, Skip, is_omitted
from onnxfit.targets.profiles import profile_for

__all__ = ["ELEMENTWISE", "LowerRankPass"]

_UNARY = ("Abs", "Acos", "Acosh", "Asin", "Asinh", "Atan", "Atanh", "Ceil", "Celu", "Cos", "Cosh", "Elu", "Erf",
          "Exp", "Floor", "HardSigmoid", "HardSwish", "Identity", "IsInf", "IsNaN", "LeakyRelu", "Log", "Mish", "Neg",
          "Not", "Reciprocal", "Relu", "Round", "Selu", "Sigmoid", "Sign", "Sin", "Sinh", "Softplus", "Softsign",
          "Sqrt", "Tan", "Tanh", "ThresholdedRelu", "Cast", "Clip")
_BROADCASTING = ("Add", "Sub", "Mul", "Div", "Pow", "Mod", "PRelu", "And", "Or", "Xor", "Equal", "Greater",
                 "GreaterOrEqual", "Less", "LessOrEqual", "Max", "Min", "Sum", "Mean", "Where")
ELEMENTWISE = frozenset(_UNARY + _BROADCASTING)

Shape = tuple[int, ...]


@register_pass
class LowerRankPass:
    name = "lower-rank"
    version = 1

    def run(self, graph: gs.Graph, ctx: PassContext) -> PassReport:
        report = PassReport(self.name, changed=False)
        profile = profile_for(ctx.target)
        max_rank = profile.max_rank if profile is not None else None
        if max_rank is None or ctx.opset < 7:  # numpy broadcasting from opset 7
            return report
        mctx = MatchContext(ctx, graph)
        for g in list(iter_graphs(graph)):
            lowering = _Lowering(g, mctx)
            for region, plan in [(r, _plan(r, mctx, max_rank)) for r in _regions(g, mctx, max_rank)]:
                if not isinstance(plan, Skip) and not _touches_the_ep(region, mctx):
                    plan = Skip("every node next to it stays on the CPU: lowered, it would be a partition of its own")
                if isinstance(plan, Skip):
                    report.skipped.append(f"{_label(region)}: {plan.reason}")
                    continue
                lowering.lower(region, plan)
                report.rewritten += len(region)
                report.changed = True
        return report


@dataclass(frozen=True)
class _Plan:
    """The region's full rank, the axes it drops, and the static shape of each of its values."""

    rank: int
    dropped: frozenset[int]
    shapes: dict[int, Shape]  # id(tensor) -> shape

    def reduced(self, tensor: gs.Tensor) -> Shape:
        shape = self.shapes[id(tensor)]
        offset = self.rank - len(shape)
        return tuple(d for axis, d in enumerate(shape, offset) if axis not in self.dropped)


def _is_elementwise(node: gs.Node, opset: int) -> bool:
    if node.op not in ELEMENTWISE or node.domain not in DEFAULT_DOMAINS or len(node.outputs) != 1:
        return False
    if "broadcast" in node.attrs or "axis" in node.attrs:
        return False  # the opset < 7 broadcasting forms
    if node.op == "Clip":
        return all(is_omitted(t) or constant_value(t, opset) is not None for t in node.inputs[1:])
    return True


def _regions(graph: gs.Graph, ctx: MatchContext, max_rank: int) -> list[list[gs.Node]]:
    """Rule 2: connected element-wise nodes writing values of a static rank above ``max_rank``."""
    members = {id(n): n for n in graph.nodes if _is_elementwise(n, ctx.opset) and _above(n.outputs[0], ctx, max_rank)}
    order = {id(n): i for i, n in enumerate(graph.nodes)}
    regions, seen = [], set()
    for start in members.values():
        if id(start) in seen:
            continue
        seen.add(id(start))
        region, stack = [], [start]
        while stack:
            node = stack.pop()
            region.append(node)
            for other in _neighbours(node, ctx, max_rank):
                if id(other) in members and id(other) not in seen:
                    seen.add(id(other))
                    stack.append(other)
        regions.append(sorted(region, key=lambda n: order[id(n)]))
    return regions


def _neighbours(node: gs.Node, ctx: MatchContext, max_rank: int) -> list[gs.Node]:
    """The writers and readers of the values above ``max_rank`` that ``node`` reads or writes: two
    readers of one such value share its Reshape, or that value's own Reshape (rule 4)."""
    values = [t for t in (*node.inputs, *node.outputs) if not is_omitted(t) and _above(t, ctx, max_rank)]
    return [n for t in values for n in (producer(t), *consumers(t)) if n is not None]


def _above(tensor: gs.Tensor, ctx: MatchContext, max_rank: int) -> bool:
    shape = ctx.static_shape(tensor)
    return shape is not None and len(shape) > max_rank


def _values(region: list[gs.Node]) -> list[gs.Tensor]:
    """Every input and output of the region's nodes, once."""
    found = {id(t): t for node in region for t in (*node.inputs, *node.outputs) if not is_omitted(t)}
    return list(found.values())


def _plan(region: list[gs.Node], ctx: MatchContext, max_rank: int) -> _Plan | Skip:
    """Rule 3: the axes to drop, or why the region stays."""
    shapes = {}
    for tensor in _values(region):
        shape = ctx.static_shape(tensor)
        if shape is None:
            return Skip(f"'{tensor.name}' has no static shape")
        shapes[id(tensor)] = shape
    rank = max(len(s) for s in shapes.values())
    units = [axis for axis in range(rank) if all(_dim(s, axis, rank) == 1 for s in shapes.values())]
    needed = rank - max_rank
    if len(units) < needed:
        return Skip(f"rank {rank} with {len(units)} axes of size 1 in every value: "
                    f"{needed} needed for rank <= {max_rank}")
    return _Plan(rank, frozenset(units[:needed]), shapes)


def _touches_the_ep(region: list[gs.Node], ctx: MatchContext) -> bool:
    """Rule 6: a node next to the region (past the Reshapes the lowering adapts) runs on the EP, or
    no node is next to it (it reads graph inputs and writes graph outputs only)."""
    inside = {id(n) for n in region}
    neighbours = []
    for tensor in _values(region):
        for node in (producer(tensor), *consumers(tensor)):
            if node is None or id(node) in inside:
                continue
            if node.op == "Reshape":  # rules 4-5 adapt it: the node past it decides
                neighbours += [n for n in (producer(node.inputs[0]), *consumers(node.outputs[0]))
                               if n is not None and n is not node and id(n) not in inside]
            else:
                neighbours.append(node)
    return not neighbours or any(ctx.target_takes_at_any(n) for n in neighbours)


def _dim(shape: Shape, axis: int, rank: int) -> int:
    """The size of ``shape`` (right-aligned in ``rank`` dims) along ``axis``; 1 where it lacks it."""
    offset = rank - len(shape)
    return shape[axis - offset] if axis >= offset else 1


def _label(region: list[gs.Node]) -> str:
    more = f" and {len(region) - 1} more element-wise nodes" if len(region) > 1 else ""
    return f"{node_label(region[0])}{more}"


@dataclass
class _Lowering:
    """Rules 4 and 5 on one graph; a value's reduced form is made once and shared by regions."""

    graph: gs.Graph
    ctx: MatchContext
    _inputs: dict[tuple[int, Shape], gs.Tensor] = field(default_factory=dict)  # (id(value), shape) -> reduced
    _shapes: dict[Shape, gs.Constant] = field(default_factory=dict)
    _own_nodes: set[int] = field(init=False)  # ids of the graph's nodes before the lowering

    def __post_init__(self):
        self._own_nodes = {id(n) for n in self.graph.nodes}

    def lower(self, region: list[gs.Node], plan: _Plan) -> None:
        inside = {id(n) for n in region}
        written = {id(n.outputs[0]) for n in region}
        for tensor in _values(region):
            if id(tensor) not in written and plan.reduced(tensor) != plan.shapes[id(tensor)]:
                self._lower_input(tensor, plan.reduced(tensor), inside)
        for node in region:
            out = node.outputs[0]
            self._lower_output(out, plan.shapes[id(out)], plan.reduced(out), inside)

    def _lower_input(self, tensor: gs.Tensor, shape: Shape, inside: set[int]) -> None:
        source = producer(tensor)
        if (source is not None and _is_fixed_reshape(source) and id(source) in self._own_nodes
                and id(tensor) not in self.ctx.graph_outputs and all(id(n) in inside for n in consumers(tensor))):
            set_input(source, 1, self._shape_constant(shape))
            tensor.shape = list(shape)
            return
        _read_instead(tensor, self._reduced_input(tensor, shape), inside)

    def _reduced_input(self, tensor: gs.Tensor, shape: Shape) -> gs.Tensor:
        """A constant of the reduced shape, else ``Reshape(tensor)``."""
        key = (id(tensor), shape)
        if key not in self._inputs:
            base = f"{tensor.name}_rank{len(shape)}"
            value = (constant_array(tensor) if isinstance(tensor, gs.Constant)
                     else constant_value(tensor, self.ctx.opset))
            if value is not None:
                self._inputs[key] = gs.Constant(nodes.unique_name(self.graph, base), np.asarray(value).reshape(shape))
            else:
                self._inputs[key] = self._reshape(tensor, shape, base)
        return self._inputs[key]

    def _lower_output(self, tensor: gs.Variable, full: Shape, shape: Shape, inside: set[int]) -> None:
        outside = [n for n in consumers(tensor) if id(n) not in inside]
        takers = {id(n) for n in outside if _takes_any_shape(n, tensor)}
        if id(tensor) not in self.ctx.graph_outputs and all(id(n) in takers for n in outside):
            tensor.shape = list(shape)
            return
        # The region writes a new reduced value; the tensor keeps its name, shape and outside
        # readers, written by a Reshape back to the full shape.
        reduced = gs.Variable(nodes.unique_name(self.graph, f"{tensor.name}_rank{len(shape)}"), tensor.dtype,
                              list(shape))
        producer(tensor).outputs[0] = reduced
        _read_instead(tensor, reduced, inside | takers)
        self._reshape(reduced, full, f"{tensor.name}_restore", output=tensor)

    def _reshape(self, tensor: gs.Tensor, shape: Shape, base: str, output: gs.Variable | None = None) -> gs.Variable:
        node = nodes.add_node(self.graph, "Reshape", base, [tensor, self._shape_constant(shape)],
                              outputs=[output] if output is not None else None)
        if output is None:
            node.outputs[0].dtype, node.outputs[0].shape = tensor.dtype, list(shape)
        return node.outputs[0]

    def _shape_constant(self, shape: Shape) -> gs.Constant:
        if shape not in self._shapes:
            self._shapes[shape] = nodes.int64_constant(self.graph, f"rank{len(shape)}_shape", shape)
        return self._shapes[shape]


def _is_fixed_reshape(node: gs.Node) -> bool:
    """A Reshape whose shape is a constant."""
    return (node.op == "Reshape" and node.domain in DEFAULT_DOMAINS and len(node.inputs) > 1
            and small_constant(node.inputs[1]) is not None)


def _takes_any_shape(node: gs.Node, tensor: gs.Tensor) -> bool:
    """Rule 5: a Reshape of ``tensor`` to a constant shape without 0 entries (a 0 copies a dim)."""
    return _is_fixed_reshape(node) and node.inputs[0] is tensor and not np.any(small_constant(node.inputs[1]) == 0)


def _read_instead(tensor: gs.Tensor, new: gs.Tensor, readers: set[int]) -> None:
    """The nodes in ``readers`` (ids) read ``new`` where they read ``tensor``."""
    for node in consumers(tensor):
        if id(node) in readers:
            for i, t in enumerate(node.inputs):
                if t is tensor:
                    set_input(node, i, new)
