"""The batch walk's state (which axis of each tensor holds the frames) and the axis forms it reads.

Ops name axes in attributes or inputs, with defaults that changed across opsets; the rules and
the rank lift of rule 3 read and write them through the helpers here.
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from onnxfit.batch_ops import BATCH_OPS, REDUCE_OPS, Flow, op_axis
from onnxfit.batch_ops import slice_params as shared_slice_params
from onnxfit.errors import OnnxfitError, node_label
from onnxfit.graphs import iter_graphs
from onnxfit.optimizer import nodes
from onnxfit.optimizer.constants import constant_value
from onnxfit.optimizer.pipeline import PassContext, PassReport

__all__ = ["AXIS_FORMS", "NodeFacts", "Walk", "absent", "axis_of", "check_subgraphs", "mixes", "norm", "read_axes", "shift_axes",
           "slice_params", "write_axes"]

class Walk:
    """Follows the batch through the graph in topological order, repairing as it goes.

    ``axis``: batched tensor name -> its batch axis in the rewritten graph. ``lifted``: batched
    tensors that gained a leading batch axis (rule 3), one rank above the original tensor;
    ``lifted_by``: for each, the merging nodes whose lift it carries (by first output). ``rows``: batched tensors
    whose batch axis holds ``f`` rows per frame (rule 3b: frame i owns rows ``[i*f, (i+1)*f)``),
    name -> ``f`` (absent: one row per frame); ``row_merges``: the merging Reshapes/Flattens that
    keep their merge as rows instead of lifting it. ``derived``: unbatched tensors whose value
    depends on the batch (Shape chains). ``shapes`` are at the export batch ``batch`` (1 for models
    exported at batch 1 or with a symbolic batch).
    """

    def __init__(self, graph: gs.Graph, ctx: PassContext, shapes: dict[str, tuple], batch: int,
                 report: PassReport, row_merges: frozenset[str] = frozenset()):
        self.graph, self.opset, self.shapes, self.batch, self.report = graph, ctx.opset, shapes, batch, report
        self.added_constants: list[gs.Constant] = []
        self.axis: dict[str, int] = {}
        self.lifted: set[str] = set()
        self.lifted_by: dict[str, frozenset[str]] = {}
        self.rows: dict[str, int] = {}
        self.row_merges = row_merges
        self.derived: set[str] = set()

    # --- facts about tensors
    def b(self, t) -> int | None:
        return None if absent(t) else self.axis.get(t.name)

    def f(self, t) -> int:
        """Rows per frame on the batch axis of ``t`` (1: the axis is the batch itself)."""
        return 1 if absent(t) else self.rows.get(t.name, 1)

    def rows_out(self, node: gs.Node) -> bool:
        """Whether the merge ``node`` keeps the batch as rows (rule 3b) rather than lifting it."""
        return bool(node.outputs) and node.outputs[0].name in self.row_merges

    def old_shape(self, t) -> tuple | None:
        if isinstance(t, gs.Constant):
            return tuple(t.shape)
        return self.shapes.get(t.name)

    def shape(self, t) -> tuple | None:
        """Shape at the export batch in the rewritten graph."""
        old = self.old_shape(t)
        if old is None:
            return None
        return (self.batch, *old) if t.name in self.lifted else old

    def rank(self, t, node: gs.Node) -> int:
        shape = self.shape(t)
        if shape is None:
            raise OnnxfitError(f"node '{node_label(node)}' ({node.op}): the rank of '{t.name}' is unknown; "
                               "cannot follow the batch")
        return len(shape)

    def static(self, t, node: gs.Node, old: bool = False) -> tuple[int, ...]:
        shape = self.old_shape(t) if old else self.shape(t)
        if shape is None or any(d is None for d in shape):
            raise OnnxfitError(f"node '{node_label(node)}' ({node.op}): the per-frame shape of '{t.name}' is not static; "
                               "cannot tell where the batch goes")
        return tuple(int(d) for d in shape)

    def fixed(self, t) -> np.ndarray | None:
        """The value of ``t`` when it is known before run time and does not come from the batch."""
        if absent(t) or t.name in self.derived:
            return None
        return constant_value(t, self.opset)

    def edited(self) -> bool:
        """Whether a repair changed the graph so far (value_info updates aside)."""
        return bool(self.report.rewritten or self.report.added)

    # --- building repairs
    def int64(self, base: str, values) -> gs.Constant:
        constant = nodes.int64_constant(self.graph, base, values)
        self.added_constants.append(constant)
        return constant

    def batch_shape(self, values, pos: int, source: gs.Tensor, source_axis: int, base: str) -> gs.Variable:
        """``values`` with element ``pos`` replaced by ``Shape(source)[source_axis]`` at run time."""
        shape = nodes.add_node(self.graph, "Shape", f"{base}_shape", [source]).outputs[0]
        batch = nodes.add_node(self.graph, "Gather", f"{base}_batch",
                               [shape, self.int64(f"{base}_batch_index", [source_axis])], {"axis": 0}).outputs[0]
        parts = [batch]
        values = [int(v) for v in values]
        if values[:pos]:
            parts.insert(0, self.int64(f"{base}_before", values[:pos]))
        if values[pos + 1:]:
            parts.append(self.int64(f"{base}_after", values[pos + 1:]))
        out = nodes.concat(self.graph, parts, 0, f"{base}_with_batch")
        self.report.added += 3
        return out


class NodeFacts:
    """A node as ``onnxfit.batch_ops`` reads it: its attributes and the inputs known before run time."""

    def __init__(self, walk: Walk, node: gs.Node):
        self.attrs, self.opset, self._walk, self._node = node.attrs, walk.opset, walk, node

    def has_input(self, index: int) -> bool:
        return len(self._node.inputs) > index and not absent(self._node.inputs[index])

    def constant(self, index: int) -> np.ndarray | None:
        return self._walk.fixed(self._node.inputs[index]) if self.has_input(index) else None


def absent(t) -> bool:
    return t is None or (isinstance(t, gs.Variable) and t.name == "")


def check_subgraphs(walk: Walk, node: gs.Node) -> None:
    """If/Loop/Scan bodies are not followed: refuse when they see a batched tensor."""
    for value in node.attrs.values():
        if not isinstance(value, gs.Graph):
            continue
        for sub in iter_graphs(value):
            for inner in sub.nodes:
                batched = next((t for t in inner.inputs if walk.b(t) is not None), None)
                if batched is not None:
                    raise OnnxfitError(f"node '{node_label(node)}' ({node.op}) uses the batched tensor "
                                       f"'{batched.name}' inside its subgraph (at '{node_label(inner)}'), and "
                                       "dynamic-batch does not follow the batch into subgraphs; "
                                       "the batch cannot be made dynamic")


def mixes(node: gs.Node, how: str) -> OnnxfitError:
    return OnnxfitError(f"node '{node_label(node)}' ({node.op} {how}) mixes frames; the batch cannot be made dynamic")


def norm(axis: int, rank: int) -> int:
    return int(axis) + rank if axis < 0 else int(axis)


# Ops whose ``axis`` attribute names an axis of the data input (defaults from the batch-op table).
AXIS_ATTR_OPS = {op for op, rule in BATCH_OPS.items()
                 if rule.flow is Flow.ALONG_AXES and not rule.many and rule.axes_input is None} | {"Flatten"}
# Ops that name axes of the data input in an ``axes`` list (attribute or input, by opset).
AXES_OPS = set(REDUCE_OPS) | {"Squeeze", "Unsqueeze", "Slice"}
# Ops whose axes rule 3 can move up by one when their data gained a leading batch axis.
AXIS_FORMS = AXIS_ATTR_OPS | AXES_OPS | {"Transpose"}


def axis_of(walk: Walk, node: gs.Node) -> int:
    if node.op == "Flatten":
        return node.attrs.get("axis", 1)
    return op_axis(BATCH_OPS[node.op], node.attrs, walk.opset)


def axes_input(op: str, opset: int) -> int | None:
    """Index of the axes input, or None while axes were still an attribute."""
    if op == "Slice":
        return 3 if opset >= 10 else None
    since = 13 if op in ("Squeeze", "Unsqueeze", "ReduceSum") else 18
    return 1 if opset >= since else None


def read_axes(walk: Walk, node: gs.Node) -> list[int] | None:
    index = axes_input(node.op, walk.opset)
    if index is None:
        axes = node.attrs.get("axes")
        return None if axes is None else [int(a) for a in axes]
    if len(node.inputs) <= index or absent(node.inputs[index]):
        return None
    value = walk.fixed(node.inputs[index])
    if value is None:
        raise OnnxfitError(f"node '{node_label(node)}' ({node.op}): axes are computed at run time; cannot follow the batch")
    return [int(a) for a in np.atleast_1d(value)]


def write_axes(walk: Walk, node: gs.Node, axes: list[int]) -> None:
    index = axes_input(node.op, walk.opset)
    if index is None:
        node.attrs["axes"] = list(axes)
        return
    constant = walk.int64(f"{node.name or node.op}_axes", axes)
    if len(node.inputs) > index:
        node.inputs[index] = constant
    else:
        node.inputs.append(constant)


def slice_params(walk: Walk, node: gs.Node) -> tuple[list[int], list[int], list[int]] | None:
    """starts, ends, steps of a Slice when known before run time (and not from the batch)."""
    return shared_slice_params(NodeFacts(walk, node))


def shift_axes(walk: Walk, node: gs.Node) -> None:
    """The data input gained a leading batch axis (rule 3): its old axis i is now axis i + 1.

    Negative axes count from the end and still name the same axis.
    """
    op = node.op
    if BATCH_OPS[op].flow is Flow.ELEMENTWISE or op in ("Reshape", "MatMul"):
        return  # these rules read the new ranks themselves
    if op not in AXIS_FORMS:
        raise OnnxfitError(f"node '{node_label(node)}' ({op}) follows a Reshape that moved the batch to a new leading "
                           f"axis, and {op} has no rule for that; the batch cannot be made dynamic")
    if any(not absent(t) and t.name in walk.lifted for t in node.inputs[1:]) and op != "Concat":
        raise OnnxfitError(f"node '{node_label(node)}' ({op}): a batch moved by a Reshape reaches a non-data input; "
                           "the batch cannot be made dynamic")
    old_rank = walk.rank(node.inputs[0], node) - 1

    def up(a: int) -> int:
        return a + 1 if a >= 0 else a

    if op == "Transpose":
        perm = node.attrs.get("perm") or list(reversed(range(old_rank)))
        node.attrs["perm"] = [0] + [p + 1 for p in perm]
    elif op in AXIS_ATTR_OPS:
        node.attrs["axis"] = up(axis_of(walk, node))
    else:
        axes = read_axes(walk, node)
        if axes is None:
            if op == "Squeeze" or (op in REDUCE_OPS and node.attrs.get("noop_with_empty_axes", 0)):
                return  # the Squeeze rule resolves "all size-1 axes"; a no-op reduce stays one
            count = len(slice_params(walk, node)[0]) if op == "Slice" else old_rank
            axes = list(range(count))
        write_axes(walk, node, [up(a) for a in axes])
