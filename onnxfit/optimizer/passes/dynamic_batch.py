"""dynamic-batch: make the batch axis symbolic and repair what hardcodes or swallows it.

Batch exports are usually broken: exporters trace at batch 1 and write that 1 into Reshape,
Expand, ConstantOfShape and Resize constants, or write Reshapes that flatten the batch into
another axis (SCRFD heads: ``Transpose(0,2,3,1)`` then ``Reshape([-1, 2])``), so at batch N the
model fails or, worse, lets frames leak into each other. A correct batch-16 detector runs about 6x
the frames/s of batch 1, so this is worth repairing. The pass first follows the batch through the
graph (which axis of each tensor holds the frames; a small table of per-op rules, ``_RULES``), then:

1. each input's batch axis comes from its dim names (``onnxfit.batch_axes``: ``state: [2, batch,
   128]`` is batched on axis 1, scalars are not batched; an input whose axis cannot be known is
   an error naming it); a fixed batch there (1, or any export batch B such as centerface's 10,
   the same for every input) gets the symbolic dim ``ctx.batch_dim`` ("batch"); shapes are
   inferred at B, with ``--input-shape`` dims where given, and Shape chains that onnx data
   propagation misses (a Cast in a Resize ``sizes`` chain) are evaluated and inference rerun;
2. a Reshape (or Flatten) that keeps the batch in an axis gets a constant shape with -1 in that
   slot and the static per-frame dims elsewhere (``[1, 512, 20, 20]`` or ``[10, ...]`` at batch 10
   -> ``[-1, 512, 20, 20]``); a Reshape whose shape already takes the batch at run time
   (``Concat(Shape(x)[0], 4, -1)``, or 0 in a leading batch slot) needs no repair and no static
   per-frame shape; an Expand holding B in the batch slot gets 1 there;
3. a Reshape or Flatten that merges a leading batch into another axis, or a Squeeze that drops it,
   keeps it as a new leading axis instead (export batch 1 only; at B > 1 an error):
   ``[N*H*W, 2]`` becomes ``[N, H*W, 2]``. Such a graph
   output changes rank (at batch 1 its value is the old output with a leading 1 added), and ops
   after it that name axes (Softmax, Concat, Transpose, Reduce*, Slice, ...) have their
   non-negative axes moved up by one, so they still work within a frame;
4. a fixed tensor concatenated with batched ones (ConstantOfShape, Expand, Tile or an initializer
   with batch 1) gets its batch from ``Shape(x)[b]`` of a batched input: the ConstantOfShape or
   Expand shape is rewritten, anything else is wrapped in an Expand;
5. Resize ``sizes`` with batch 1 become ``Concat(Shape(x)[b], sizes[1:])`` (not scales: a float
   scale can round to a different output size); Expand, Tile, Pad and Resize scales that leave
   the batch alone at batch 1 (broadcast 1, repeat 1, pad 0, scale 1) are batch-safe as they are;
6. an op that mixes frames (Softmax or a reduction over the batch axis, MatMul/Gemm contracting
   it, Concat/Split/Gather/Slice along it, Conv or BatchNormalization on a tensor whose batch is
   not axis 0, a Reshape merging a batch that is not leading) or an op without a rule raises
   OnnxfitError naming the node: such a model cannot be made dynamic by rewriting constants;
7. value_info of intermediate tensors gets the symbolic batch dim (or loses its shape when it
   depends on the batch in another way), so ONNX Runtime does not check it against batch 1.

``rewritten`` counts repaired nodes plus the graph inputs, outputs and value_info entries whose
batch became symbolic; a model whose batch is already symbolic everywhere is left unchanged.
Only the main graph is followed; an If/Loop/Scan whose subgraph uses a batched tensor is an
error naming the node and the tensor. LSTM/GRU/RNN keep frames apart when X and the initial states carry the batch on the op's
batch axis (axis 1 at layout 0). Each input's batch axis comes from its dim names
(``onnxfit.batch_axes``) or from ``--batch-axis NAME=AXIS`` (``ctx.batch_axes``) where the names
do not tell (silero-vad's ``state: [2, ?, 128]``). When every input's batch is already symbolic, anything the
walk cannot follow leaves the graph exactly as exported (with a note) instead of failing: the
exporter made the batch dynamic, and ``verify`` proves frame independence on the running model. Errors name nameless nodes by their first output
(``node_label``). In IR 3 models (initializers are graph inputs) the constants the pass adds are
listed as graph inputs too, and a Reshape's own shape initializer is rewritten in place.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import numpy as np
import onnx
import onnx.numpy_helper
import onnx_graphsurgeon as gs

from onnxfit.batch_axes import UNKNOWN, input_batch_axes
from onnxfit.errors import OnnxfitError, node_label
from onnxfit.graphs import iter_graphs
from onnxfit.optimizer import nodes
from onnxfit.optimizer.constants import constant_value, evaluate_node
from onnxfit.optimizer.pipeline import PassContext, PassReport, register_pass
from onnxfit.shapes import infer_shapes, proto_dim

__all__ = ["DynamicBatchPass"]

log = logging.getLogger(__name__)

_FULL_END = 2**31 - 1  # Slice ends at or above this reach the end of any axis


@register_pass
class DynamicBatchPass:
    name = "dynamic-batch"
    version = 3

    def run(self, graph: gs.Graph, ctx: PassContext) -> PassReport:
        report = PassReport(self.name)
        seeds = _batch_axes(graph, ctx.batch_axes)
        if not seeds:
            report.notes.append("no graph input has a batch axis; nothing to do")
            return report
        batch = _export_batch(graph, seeds)
        graph.toposort()
        already_dynamic = all(not isinstance(x.shape[b], (int, np.integer)) for x, b in seeds)
        snapshot = graph.copy() if already_dynamic else None
        walk = _Walk(graph, ctx, _shapes_at_export_batch(graph, seeds, batch, ctx), batch, report)
        walk.axis.update({x.name: b for x, b in seeds})
        try:
            for node in list(graph.nodes):
                walk.visit(node)
        except OnnxfitError as exc:
            if snapshot is None:
                raise
            # The exporter already made the batch symbolic: a batch we cannot follow is no reason
            # to refuse the model, only a reason not to touch it.
            graph.nodes, graph.inputs, graph.outputs = snapshot.nodes, snapshot.inputs, snapshot.outputs
            report.notes.append(f"batch already symbolic; left as exported ({exc}); `onnxfit verify` "
                                "checks frame independence at run time")
            return report
        symbolic = _make_symbolic(walk, seeds, ctx.batch_dim)
        report.rewritten += symbolic
        _list_constants_as_inputs(walk)
        if report.changed:
            report.notes.append(f"batch axis '{ctx.batch_dim}' is dynamic ({symbolic} inputs, outputs and "
                                "value_info entries made symbolic)")
        else:
            report.notes.append("batch already symbolic and nothing hardcodes it; nothing to do")
        return report


# ---------------------------------------------------------------------------- inputs and shapes

def _gs_dim(d):
    return int(d) if isinstance(d, (int, np.integer)) else (d or None)


def _batch_axes(graph: gs.Graph, overrides: dict[str, int | None]) -> list[tuple[gs.Variable, int]]:
    """Graph inputs that carry frames -> their batch axis, read from the dim names (rule 1) unless
    ``--batch-axis`` says (``overrides``)."""
    dims = {x.name: None if x.shape is None else [_gs_dim(d) for d in x.shape] for x in graph.inputs}
    for name, axis in overrides.items():
        if name not in dims:
            raise OnnxfitError(f"--batch-axis {name}=...: '{name}' is not a model input (inputs: {', '.join(dims)})")
        if axis is not None and (dims[name] is None or axis >= len(dims[name])):
            raise OnnxfitError(f"--batch-axis {name}={axis}: input '{name}' has dims {dims[name]}")
    axes = {**input_batch_axes(dims), **overrides}
    seeds = []
    for x in graph.inputs:
        axis = axes.get(x.name)
        if axis == UNKNOWN:
            raise OnnxfitError(f"input '{x.name}' {dims[x.name]}: its dims do not say which axis holds the batch; "
                               f"pass --batch-axis {x.name}=AXIS (or name that dim 'batch')")
        if axis is not None:
            seeds.append((x, axis))
    return seeds


def _export_batch(graph: gs.Graph, seeds: list[tuple[gs.Variable, int]]) -> int:
    """The batch the model was exported at: 1 when symbolic; every fixed one must agree."""
    fixed = {x.name: int(x.shape[b]) for x, b in seeds if isinstance(x.shape[b], (int, np.integer))
             and x.shape[b] > 0}
    if len(set(fixed.values())) > 1:
        (a, na), (c, nc) = sorted(fixed.items(), key=lambda item: item[1])[:1] + sorted(
            fixed.items(), key=lambda item: -item[1])[:1]
        raise OnnxfitError(f"input '{c}' has a batch of {nc} but input '{a}' has {na}; the batch cannot be "
                           "made dynamic")
    return next(iter(fixed.values()), 1)


def _shapes_at_export_batch(graph: gs.Graph, seeds: list[tuple[gs.Variable, int]], batch: int,
                            ctx: PassContext) -> dict[str, tuple]:
    """Every tensor's shape at the export batch (1 when symbolic), from onnx shape inference.

    Repairs need static per-frame shapes; inference at a fixed batch gives them even when the
    model's batch is already symbolic, and ``--input-shape`` (``ctx.input_shapes``) fixes the other
    symbolic dims. Shape chains that onnx's data propagation does not follow (a Cast in the
    chain, a Resize ``sizes`` built from Shape -> Gather -> Unsqueeze -> Concat) are evaluated
    here and inference runs again with their values. Symbolic dims count as unknown.
    """
    model = gs.export_onnx(graph, do_type_check=False)
    # graph-surgeon does not list initializers as inputs, which IR 3 requires: infer as IR 4.
    model.ir_version = max(model.ir_version, 4)
    declared = {vi.name: [proto_dim(d) for d in vi.type.tensor_type.shape.dim] for vi in model.graph.input}
    fixed_inputs = {}
    for x, b in seeds:
        dims = list(ctx.input_shapes.get(x.name) or declared.get(x.name) or [])
        if len(dims) != len(declared.get(x.name) or []):
            dims = declared[x.name]
        dims[b] = batch
        fixed_inputs[x.name] = dims
    table = _known(infer_shapes(model, fixed_inputs))
    producers = {o: n for n in model.graph.node for o in n.output}
    for _ in range(8):  # each round resolves one more level of shape chains after a Resize/Reshape
        values = _unresolved_shape_values(graph, table, ctx.opset, producers)
        if not values:
            break
        for name, value in values.items():
            model.graph.initializer.append(onnx.numpy_helper.from_array(value.astype(np.int64), name))
            # The tensor is now an initializer; its producer must not write it twice.
            node = producers.pop(name)
            node.output[list(node.output).index(name)] = f"{name}__dynamic_batch_probe"
        table = _known(infer_shapes(model, fixed_inputs))
    return table


def _known(shapes: dict) -> dict[str, tuple]:
    return {name: tuple(d if isinstance(d, int) else None for d in shape)
            for name, shape in shapes.items() if shape is not None}


def _unresolved_shape_values(graph: gs.Graph, table: dict[str, tuple], opset: int,
                             producers: dict) -> dict[str, np.ndarray]:
    """Values of shape inputs (Reshape shape, Resize sizes, ...) that inference did not follow."""
    found = {}
    for node in graph.nodes:
        spots = _SHAPE_INPUTS.get(node.op, ())
        if not spots or all(o.name in table and None not in table[o.name] for o in node.outputs):
            continue
        for i in spots:
            t = node.inputs[i] if len(node.inputs) > i else None
            if _absent(t) or isinstance(t, gs.Constant) or t.name not in producers or t.name in found:
                continue
            value = _shape_value(t, table, opset)
            if value is not None and value.dtype.kind in "iu":
                found[t.name] = value
    return found


# Inputs whose value decides an output shape.
_SHAPE_INPUTS = {"Reshape": (1,), "Expand": (1,), "ConstantOfShape": (0,), "Tile": (1,), "Resize": (3,),
                 "Upsample": (), "Slice": (1, 2, 3, 4), "Range": (0, 1, 2), "Pad": (1,)}


def _shape_value(t, table: dict[str, tuple], opset: int, depth: int = 0) -> np.ndarray | None:
    """The value of a small tensor computed from shapes in ``table`` (Shape chains), else None."""
    if _absent(t) or depth > 64:
        return None
    value = constant_value(t, opset)
    if value is not None or not isinstance(t, gs.Variable) or len(t.inputs) != 1:
        return value
    node = t.inputs[0]
    if node.op == "Shape":
        shape = table.get(node.inputs[0].name)
        if shape is None or None in shape:
            return None
        return np.asarray(shape[node.attrs.get("start", 0):node.attrs.get("end")], dtype=np.int64)
    if node.op not in _SHAPE_MATH:
        return None
    values = [None if _absent(i) else _shape_value(i, table, opset, depth + 1) for i in node.inputs]
    if any(v is None and not _absent(i) for v, i in zip(values, node.inputs)):
        return None
    outputs = evaluate_node(node, values, opset)
    return None if outputs is None else outputs[node.outputs.index(t)]


_SHAPE_MATH = {"Gather", "Slice", "Concat", "Unsqueeze", "Squeeze", "Cast", "Reshape", "Identity", "Mul", "Div",
               "Add", "Sub", "Floor", "Ceil", "ReduceProd", "Max", "Min", "Neg", "Abs", "Range", "Where",
               "Equal", "ConstantOfShape", "Expand"}


def _list_constants_as_inputs(walk: "_Walk") -> None:
    """IR 3 models list every initializer as a graph input; the constants the pass added too."""
    if getattr(walk.graph, "ir_version", None) is None or walk.graph.ir_version >= 4:
        return
    listed = {t.name for t in walk.graph.inputs}
    walk.graph.inputs.extend(c for c in walk.added_constants if c.outputs and c.name not in listed)


# ---------------------------------------------------------------------------- the batch walk

class _Walk:
    """Follows the batch through the graph in topological order, repairing as it goes.

    ``axis``: batched tensor name -> its batch axis in the rewritten graph. ``lifted``: batched
    tensors that gained a leading batch axis (rule 3), one rank above the original tensor.
    ``derived``: unbatched tensors whose value depends on the batch (Shape chains). ``shapes`` are
    at the export batch ``batch`` (1 for models exported at batch 1 or with a symbolic batch).
    """

    def __init__(self, graph: gs.Graph, ctx: PassContext, shapes: dict[str, tuple], batch: int,
                 report: PassReport):
        self.graph, self.opset, self.shapes, self.batch, self.report = graph, ctx.opset, shapes, batch, report
        self.added_constants: list[gs.Constant] = []
        self.axis: dict[str, int] = {}
        self.lifted: set[str] = set()
        self.derived: set[str] = set()

    # --- facts about tensors
    def b(self, t) -> int | None:
        return None if _absent(t) else self.axis.get(t.name)

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
        if _absent(t) or t.name in self.derived:
            return None
        return constant_value(t, self.opset)

    # --- the walk
    def visit(self, node: gs.Node) -> None:
        _check_subgraphs(self, node)
        if all(self.b(t) is None for t in node.inputs):
            if any(not _absent(t) and t.name in self.derived for t in node.inputs):
                self.derived.update(o.name for o in node.outputs)
            return
        if node.op in ("Shape", "Size"):
            self.derived.update(o.name for o in node.outputs)
            return
        rule = _RULES.get(node.op) if node.domain in (None, "", "ai.onnx") else None
        if rule is None:
            raise OnnxfitError(f"node '{node_label(node)}' ({node.op}): no batch rule for {node.op}; "
                               "the batch cannot be made dynamic")
        lifted_in = any(not _absent(t) and t.name in self.lifted for t in node.inputs)
        if lifted_in:
            _shift_axes(self, node)
        axes = rule(self, node)
        for out, axis in zip(node.outputs, axes):
            if axis is None:
                continue
            self.axis[out.name] = axis
            if lifted_in and node.op in _AXIS_FORMS and node.op != "Flatten":
                self.lifted.add(out.name)

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


def _absent(t) -> bool:
    return t is None or (isinstance(t, gs.Variable) and t.name == "")


def _check_subgraphs(walk: _Walk, node: gs.Node) -> None:
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


def _mixes(node: gs.Node, how: str) -> OnnxfitError:
    return OnnxfitError(f"node '{node_label(node)}' ({node.op} {how}) mixes frames; the batch cannot be made dynamic")


def _norm(axis: int, rank: int) -> int:
    return int(axis) + rank if axis < 0 else int(axis)


# ---------------------------------------------------------------------------- axis forms

_REDUCE = {"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
           "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"}
# Ops whose axes name axes of the data input, with the default axis (by opset) where one exists.
_AXIS_DEFAULT: dict[str, Callable[[int], int | None]] = {
    "Softmax": lambda opset: 1 if opset < 13 else -1, "LogSoftmax": lambda opset: 1 if opset < 13 else -1,
    "Hardmax": lambda opset: 1 if opset < 13 else -1, "Concat": lambda opset: None,
    "Gather": lambda opset: 0, "Split": lambda opset: 0, "ArgMax": lambda opset: 0, "ArgMin": lambda opset: 0,
    "Flatten": lambda opset: 1, "TopK": lambda opset: -1, "LayerNormalization": lambda opset: -1,
}
_AXES_OPS = _REDUCE | {"Squeeze", "Unsqueeze", "Slice"}
_AXIS_FORMS = set(_AXIS_DEFAULT) | _AXES_OPS | {"Transpose"}


def _axis(walk: _Walk, node: gs.Node) -> int:
    return node.attrs.get("axis", _AXIS_DEFAULT[node.op](walk.opset))


def _axes_input(op: str, opset: int) -> int | None:
    """Index of the axes input, or None while axes were still an attribute."""
    if op == "Slice":
        return 3 if opset >= 10 else None
    since = 13 if op in ("Squeeze", "Unsqueeze", "ReduceSum") else 18
    return 1 if opset >= since else None


def _read_axes(walk: _Walk, node: gs.Node) -> list[int] | None:
    index = _axes_input(node.op, walk.opset)
    if index is None:
        axes = node.attrs.get("axes")
        return None if axes is None else [int(a) for a in axes]
    if len(node.inputs) <= index or _absent(node.inputs[index]):
        return None
    value = walk.fixed(node.inputs[index])
    if value is None:
        raise OnnxfitError(f"node '{node_label(node)}' ({node.op}): axes are computed at run time; cannot follow the batch")
    return [int(a) for a in np.atleast_1d(value)]


def _write_axes(walk: _Walk, node: gs.Node, axes: list[int]) -> None:
    index = _axes_input(node.op, walk.opset)
    if index is None:
        node.attrs["axes"] = list(axes)
        return
    constant = walk.int64(f"{node.name or node.op}_axes", axes)
    if len(node.inputs) > index:
        node.inputs[index] = constant
    else:
        node.inputs.append(constant)


def _slice_params(walk: _Walk, node: gs.Node) -> tuple[list[int], list[int], list[int]] | None:
    """starts, ends, steps of a Slice when known before run time."""
    if walk.opset < 10:
        starts, ends = node.attrs["starts"], node.attrs["ends"]
        return list(starts), list(ends), [1] * len(starts)
    values = [walk.fixed(node.inputs[i]) if len(node.inputs) > i and not _absent(node.inputs[i]) else None
              for i in (1, 2, 4)]
    if values[0] is None or values[1] is None:
        return None
    steps = values[2] if values[2] is not None else np.ones(len(values[0]), dtype=np.int64)
    return [int(v) for v in values[0]], [int(v) for v in values[1]], [int(v) for v in steps]


def _shift_axes(walk: _Walk, node: gs.Node) -> None:
    """The data input gained a leading batch axis (rule 3): its old axis i is now axis i + 1.

    Negative axes count from the end and still name the same axis.
    """
    op = node.op
    if op in _BROADCAST or op in ("Reshape", "MatMul"):
        return  # these rules read the new ranks themselves
    if op not in _AXIS_FORMS:
        raise OnnxfitError(f"node '{node_label(node)}' ({op}) follows a Reshape that moved the batch to a new leading "
                           f"axis, and {op} has no rule for that; the batch cannot be made dynamic")
    if any(not _absent(t) and t.name in walk.lifted for t in node.inputs[1:]) and op != "Concat":
        raise OnnxfitError(f"node '{node_label(node)}' ({op}): a batch moved by a Reshape reaches a non-data input; "
                           "the batch cannot be made dynamic")
    old_rank = walk.rank(node.inputs[0], node) - 1

    def up(a: int) -> int:
        return a + 1 if a >= 0 else a

    if op == "Transpose":
        perm = node.attrs.get("perm") or list(reversed(range(old_rank)))
        node.attrs["perm"] = [0] + [p + 1 for p in perm]
    elif op in _AXIS_DEFAULT:
        node.attrs["axis"] = up(_axis(walk, node))
    else:
        axes = _read_axes(walk, node)
        if axes is None:
            if op == "Squeeze" or (op in _REDUCE and node.attrs.get("noop_with_empty_axes", 0)):
                return  # the Squeeze rule resolves "all size-1 axes"; a no-op reduce stays one
            count = len(_slice_params(walk, node)[0]) if op == "Slice" else old_rank
            axes = list(range(count))
        _write_axes(walk, node, [up(a) for a in axes])


# ---------------------------------------------------------------------------- per-op rules

def _broadcast(walk: _Walk, node: gs.Node) -> list[int | None]:
    """Elementwise ops: numpy broadcasting aligns axes from the right."""
    present = [t for t in node.inputs if not _absent(t)]
    ranks = [walk.rank(t, node) for t in present]
    out_rank = max(ranks)
    from_end = {r - walk.b(t) for t, r in zip(present, ranks) if walk.b(t) is not None}
    if len(from_end) != 1:
        raise _mixes(node, "broadcasting batch axes that do not line up")
    (p,) = from_end
    for t, r in zip(present, ranks):
        if walk.b(t) is None and r >= p and _dim(walk, t, node, r - p) != 1:
            raise _mixes(node, "broadcasting a fixed tensor along the batch axis")
    old_rank = max(r - (t.name in walk.lifted) for t, r in zip(present, ranks))
    out_axis = out_rank - p
    if out_rank > old_rank:
        for out in node.outputs:
            walk.lifted.add(out.name)
    return [out_axis] * len(node.outputs)


def _dim(walk: _Walk, t, node: gs.Node, i: int) -> int:
    """One dim of ``t``; the others may stay unknown (symbolic H/W)."""
    shape = walk.shape(t)
    if shape is None or shape[i] is None:
        raise OnnxfitError(f"node '{node_label(node)}' ({node.op}): dim {i} of '{t.name}' is not static; "
                           "cannot tell whether it broadcasts along the batch")
    return int(shape[i])


def _cast_like(walk: _Walk, node: gs.Node) -> list[int | None]:
    """CastLike takes only the element type of input 1; the output is input 0 converted."""
    return [walk.b(node.inputs[0])]


def _frame_op(walk: _Walk, node: gs.Node) -> list[int | None]:
    """Conv, pooling, normalization: axis 0 is the batch, other inputs are per-model weights."""
    batched = [i for i, t in enumerate(node.inputs) if walk.b(t) is not None]
    allowed = {0, 1} if node.op == "GridSample" else {0}
    if walk.b(node.inputs[0]) != 0 or not set(batched) <= allowed or any(walk.b(node.inputs[i]) != 0 for i in batched):
        raise _mixes(node, "on a tensor whose batch is not axis 0 of its data input")
    n_batched = len(node.outputs) if node.op == "MaxPool" else 1
    return [0] * n_batched


def _reshape(walk: _Walk, node: gs.Node) -> list[int | None]:
    x, out = node.inputs[0], node.outputs[0]
    b = walk.b(x)
    if walk.b(node.inputs[1]) is not None:
        raise _mixes(node, "with a shape taken from batched data")
    allowzero = node.attrs.get("allowzero", 0)
    slots = _batch_slots(walk, node.inputs[1])
    if slots is not None and slots.count(_BATCH) == 1:
        return [_reshape_with_run_time_batch(walk, node, slots, allowzero)]
    current = walk.fixed(node.inputs[1])
    if current is not None and _copies_leading_batch([int(v) for v in current], b, allowzero):
        _note_rank(walk, out, len(current))
        return [0]
    in_shape = walk.static(x, node)
    out_shape = walk.old_shape(out)
    if out_shape is None or None in out_shape:
        # onnx data propagation misses some shape chains (Unsqueeze with Constant-node axes).
        value = _shape_value(node.inputs[1], walk.shapes, walk.opset)
        if value is not None:
            out_shape = _reshape_result(walk.static(x, node, old=True), [int(v) for v in value], allowzero)
    out_shape = walk.static(out, node, old=True) if out_shape is None else out_shape
    k = _batch_slot(in_shape, b, out_shape, walk.batch)
    if k is not None:
        if current is not None and not _keeps_batch([int(v) for v in current], k, b, allowzero):
            new = list(out_shape)
            new[k] = -1
            _set_reshape_shape(walk, node, new)
        return [k]
    if b != 0:
        raise OnnxfitError(f"node '{node_label(node)}' (Reshape) merges the batch (axis {b}, not leading) into "
                           "another axis; frames interleave and the batch cannot be made dynamic")
    _refuse_merge_at_fixed_batch(walk, node)
    _set_reshape_shape(walk, node, [-1, *out_shape])
    walk.lifted.add(out.name)
    return [0]


def _copies_leading_batch(shape: list[int], b: int, allowzero: int) -> bool:
    """``[0, ...]`` copies a leading batch whatever the other dims are (no -1 needs the frame size)."""
    return b == 0 and bool(shape) and shape[0] == 0 and not allowzero


def _note_rank(walk: _Walk, out: gs.Tensor, rank: int) -> None:
    """Inference could not size a tensor (symbolic H/W): its rank is enough for the rules after it."""
    known = walk.old_shape(out)
    if known is None or len(known) != rank:
        walk.shapes[out.name] = (walk.batch, *[None] * (rank - 1))


def _refuse_merge_at_fixed_batch(walk: _Walk, node: gs.Node) -> None:
    if walk.batch != 1:
        raise OnnxfitError(f"node '{node_label(node)}' ({node.op}) merges the fixed batch of {walk.batch} into "
                           "another axis; dynamic-batch repairs such merges only in models exported at batch 1 "
                           "or with a symbolic batch")


def _reshape_with_run_time_batch(walk: _Walk, node: gs.Node, slots: list, allowzero: int) -> int:
    """A Reshape whose shape already puts ``Shape(x)[b]`` in one slot: no repair, if frames stay apart.

    Frames stay contiguous blocks when the dims before the batch hold as many elements in the
    input as in the output (nothing before the batch on both sides is the usual case).
    """
    x, out = node.inputs[0], node.outputs[0]
    b, k = walk.b(x), slots.index(_BATCH)
    shape = walk.shape(x) or ()
    in_before = None if len(shape) < b or None in shape[:b] else math.prod(shape[:b])
    out_dims = [shape[i] if d == 0 and not allowzero and i < len(shape) else d for i, d in enumerate(slots[:k])]
    out_before = None if any(not isinstance(d, int) or d < 0 for d in out_dims) else math.prod(out_dims)
    if in_before is None or in_before != out_before:
        raise OnnxfitError(f"node '{node_label(node)}' (Reshape) puts the batch of axis {b} in slot {k} of a shape "
                           "computed at run time; cannot tell whether frames stay apart (try --input-shape)")
    known = walk.old_shape(out)
    if known is None or len(known) != len(slots) or None in known:
        walk.shapes[out.name] = tuple(walk.batch if d is _BATCH else (d if isinstance(d, int) and d > 0 else None)
                                      for d in slots)
    return k


class _BatchSlot:
    def __repr__(self) -> str:
        return "BATCH"


_BATCH = _BatchSlot()  # a shape element that is the batch at run time: Shape(x)[b] of a batched x


def _batch_slots(walk: _Walk, t, depth: int = 0) -> list | None:
    """The elements of a 1-D shape computed from Shape(batched): ``_BATCH``, an int, or None (unknown).

    Follows Shape -> Gather/Slice -> Unsqueeze/Cast/Squeeze -> Concat; None when ``t`` is not
    such a chain.
    """
    if _absent(t) or t.name not in walk.derived or depth > 64 or len(t.inputs) != 1:
        return None
    node = t.inputs[0]
    if node.op == "Shape":
        src = node.inputs[0]
        shape = walk.shape(src)
        if shape is None:
            return None
        elements = [_BATCH if i == walk.b(src) else d for i, d in enumerate(shape)]
        return elements[node.attrs.get("start", 0):node.attrs.get("end")]
    if node.op in ("Cast", "Identity", "Unsqueeze", "Squeeze", "Reshape"):
        return _batch_slots(walk, node.inputs[0], depth + 1)
    if node.op == "Concat":
        parts = [_batch_slots(walk, i, depth + 1) if i.name in walk.derived else _known_ints(walk, i)
                 for i in node.inputs]
        return None if any(p is None for p in parts) else [e for p in parts for e in p]
    if node.op in ("Gather", "Slice"):
        data = _batch_slots(walk, node.inputs[0], depth + 1)
        if data is None or any(not _absent(i) and i.name in walk.derived for i in node.inputs[1:]):
            return None
        if node.op == "Gather":
            indices = walk.fixed(node.inputs[1])
            if indices is None or node.attrs.get("axis", 0) != 0:
                return None
            return [data[int(i)] for i in np.atleast_1d(indices)]
        params = _slice_params(walk, node)
        if params is None or len(params[0]) != 1:
            return None
        (start,), (end,), (step,) = params
        return data[start:min(end, len(data)) if end >= 0 else end:step]
    return None


def _known_ints(walk: _Walk, t) -> list | None:
    value = walk.fixed(t)
    if value is None:
        value = _shape_value(t, walk.shapes, walk.opset)
    return None if value is None else [int(v) for v in np.atleast_1d(value)]


def _reshape_result(in_shape: tuple[int, ...], shape: list[int], allowzero: int) -> tuple[int, ...]:
    """What Reshape makes of ``in_shape``: 0 copies the input dim (unless allowzero), -1 takes the rest."""
    out = [in_shape[i] if d == 0 and not allowzero else d for i, d in enumerate(shape)]
    if -1 in out:
        known = math.prod(d for d in out if d != -1)
        out[out.index(-1)] = math.prod(in_shape) // known if known else 0
    return tuple(out)


def _batch_slot(in_shape: tuple[int, ...], b: int, out_shape: tuple[int, ...], batch: int = 1) -> int | None:
    """The output axis that holds the batch after a Reshape at the export batch, or None if merged.

    The batch survives in output axis k when the axes before it hold exactly the elements that the
    input axes before the batch hold (frames stay contiguous blocks) and axis k has the batch size.
    """
    before = math.prod(in_shape[:b])
    run = 1
    for k, d in enumerate(out_shape):
        if run == before and d == batch:
            return k
        run *= d
        if run > before:
            return None
    return None


def _keeps_batch(shape: list[int], k: int, b: int, allowzero: int) -> bool:
    """True when a Reshape shape already copies or infers the batch in slot ``k``."""
    if k >= len(shape):
        return False
    if shape[k] == -1:
        return shape.count(-1) == 1
    return shape[k] == 0 and k == b and not allowzero


def _set_reshape_shape(walk: _Walk, node: gs.Node, shape: list[int]) -> None:
    old = node.inputs[1]
    if walk.graph.ir_version < 4 and isinstance(old, gs.Constant) and len(old.outputs) == 1:
        # IR 3 lists the initializer as a graph input too: rewrite it in place rather than orphan it.
        old.values = np.asarray(shape, dtype=np.int64)
        walk.report.rewritten += 1
        return
    # A new constant each time: one shape initializer is often shared by several Reshapes.
    node.inputs[1] = walk.int64(f"{node.name or 'reshape'}_batch_shape", shape)
    walk.report.rewritten += 1


def _flatten(walk: _Walk, node: gs.Node) -> list[int | None]:
    x = node.inputs[0]
    b, shape = walk.b(x), walk.static(x, node)
    axis = _norm(_axis(walk, node), len(shape))
    if b < axis and math.prod(shape[:axis]) == shape[b]:
        return [0]  # the batch is all of output axis 0
    if b != 0:
        raise OnnxfitError(f"node '{node_label(node)}' (Flatten) merges the batch (axis {b}, not leading) into another "
                           "axis; frames interleave and the batch cannot be made dynamic")
    _refuse_merge_at_fixed_batch(walk, node)
    # Flatten always yields rank 2; keeping the batch in front takes a Reshape.
    out_shape = walk.static(node.outputs[0], node, old=True)
    node.op, node.attrs = "Reshape", {}
    node.inputs.append(walk.int64(f"{node.name or 'flatten'}_batch_shape", [-1, *out_shape]))
    walk.report.rewritten += 1
    walk.lifted.add(node.outputs[0].name)
    return [0]


def _squeeze(walk: _Walk, node: gs.Node) -> list[int | None]:
    x, b = node.inputs[0], walk.b(node.inputs[0])
    rank = walk.rank(x, node)
    axes = _read_axes(walk, node)
    implicit = axes is None
    if implicit:
        axes = [i for i, d in enumerate(walk.static(x, node)) if d == 1]
    axes = [_norm(a, rank) for a in axes]
    if b not in axes:
        if implicit:
            # Only at an export batch above 1. At a run-time batch of 1 "all size-1 axes" would drop the batch too: name the axes.
            _write_axes(walk, node, axes)
            walk.report.rewritten += 1
        return [b - sum(a < b for a in axes)]
    keep = [a for a in axes if a != b]
    if b - sum(a < b for a in keep) != 0:
        raise OnnxfitError(f"node '{node_label(node)}' (Squeeze) drops the batch axis {b} between other axes; "
                           "the batch cannot be made dynamic")
    # At batch 1 the Squeeze also removed the batch; keep it as a leading axis (rule 3).
    if keep:
        _write_axes(walk, node, keep)
    else:
        node.op, node.attrs = "Identity", {}
        while len(node.inputs) > 1:
            node.inputs.pop()
    walk.report.rewritten += 1
    walk.lifted.add(node.outputs[0].name)
    return [0]


def _unsqueeze(walk: _Walk, node: gs.Node) -> list[int | None]:
    b = walk.b(node.inputs[0])
    axes = _read_axes(walk, node)
    out_rank = walk.rank(node.inputs[0], node) + len(axes)
    inserted = {_norm(a, out_rank) for a in axes}
    kept = [i for i in range(out_rank) if i not in inserted]
    return [kept[b]]


def _transpose(walk: _Walk, node: gs.Node) -> list[int | None]:
    perm = node.attrs.get("perm") or list(reversed(range(walk.rank(node.inputs[0], node))))
    return [list(perm).index(walk.b(node.inputs[0]))]


def _concat(walk: _Walk, node: gs.Node) -> list[int | None]:
    batched = [t for t in node.inputs if walk.b(t) is not None]
    rank = walk.rank(batched[0], node)
    axes = {walk.b(t) for t in batched}
    if len(axes) != 1 or len({t.name in walk.lifted for t in batched}) != 1:
        raise _mixes(node, "of tensors whose batch axes differ")
    (b,) = axes
    if _norm(node.attrs["axis"], rank) == b:
        raise _mixes(node, f"along the batch axis {b}")
    for i, t in enumerate(node.inputs):
        if walk.b(t) is None:
            _give_batch(walk, node, i, b, batched[0])
    return [b]


def _give_batch(walk: _Walk, node: gs.Node, i: int, b: int, source: gs.Tensor) -> None:
    """A fixed input of a Concat with batch 1 takes its batch from ``source`` at run time (rule 4)."""
    t = node.inputs[i]
    shape = walk.static(t, node)
    # Next to batches that a Reshape moved to a new leading axis (rule 3) it needs that axis too.
    lifted = len(shape) < walk.rank(source, node)
    shape = (1, *shape) if lifted else shape
    base = f"{node.name or 'concat'}_{t.name}"
    producer = t.inputs[0] if isinstance(t, gs.Variable) and len(t.inputs) == 1 else None
    shape_input = {"ConstantOfShape": 0, "Expand": 1}.get(producer.op) if producer is not None else None
    if shape_input is not None and len(t.outputs) == 1 and walk.fixed(producer.inputs[shape_input]) is not None:
        producer.inputs[shape_input] = walk.batch_shape(shape, b, source, walk.b(source), base)
        walk.report.rewritten += 1
        walk.axis[t.name] = b
        if lifted:
            walk.lifted.add(t.name)
        return
    wide = nodes.add_node(walk.graph, "Expand", f"{base}_batch",
                          [t, walk.batch_shape(shape, b, source, walk.b(source), base)]).outputs[0]
    wide.dtype = t.dtype
    node.inputs[i] = wide
    walk.report.added += 1
    walk.axis[wide.name] = b


def _split(walk: _Walk, node: gs.Node) -> list[int | None]:
    b = walk.b(node.inputs[0])
    if _norm(_axis(walk, node), walk.rank(node.inputs[0], node)) == b:
        raise _mixes(node, f"along the batch axis {b}")
    return [b] * len(node.outputs)


def _gather(walk: _Walk, node: gs.Node) -> list[int | None]:
    data, indices = node.inputs[:2]
    axis = _norm(_axis(walk, node), walk.rank(data, node))
    if walk.b(indices) is not None:
        if walk.b(data) is not None:
            raise _mixes(node, "with batched data and batched indices")
        return [axis + walk.b(indices)]
    b = walk.b(data)
    if axis == b:
        raise _mixes(node, f"indexing the batch axis {b}")
    return [b if b < axis else b + walk.rank(indices, node) - 1]


def _slice(walk: _Walk, node: gs.Node) -> list[int | None]:
    if any(walk.b(t) is not None for t in node.inputs[1:]):
        raise _mixes(node, "with batched starts/ends")
    x, b = node.inputs[0], walk.b(node.inputs[0])
    params = _slice_params(walk, node)
    axes = _read_axes(walk, node)
    if params is None:
        if axes is None or b in [_norm(a, walk.rank(x, node)) for a in axes]:
            raise OnnxfitError(f"node '{node_label(node)}' (Slice): starts/ends are computed at run time; "
                               "cannot tell whether it selects frames")
        return [b]
    starts, ends, steps = params
    axes = axes if axes is not None else list(range(len(starts)))
    axes = [_norm(a, walk.rank(x, node)) for a in axes]
    if b in axes:
        j = axes.index(b)
        if not (starts[j] == 0 and ends[j] >= _FULL_END and steps[j] == 1):
            raise _mixes(node, f"selecting frames on the batch axis {b}")
    return [b]


def _softmax(walk: _Walk, node: gs.Node) -> list[int | None]:
    b = walk.b(node.inputs[0])
    axis = _norm(_axis(walk, node), walk.rank(node.inputs[0], node))
    # Before opset 13 Softmax flattens axes [axis:] into one row.
    if axis == b or (walk.opset < 13 and b >= axis):
        raise _mixes(node, f"over axis {b}")
    return [b]


def _reduce(walk: _Walk, node: gs.Node) -> list[int | None]:
    x, b = node.inputs[0], walk.b(node.inputs[0])
    rank = walk.rank(x, node)
    if node.op in ("ArgMax", "ArgMin"):
        axes = [_norm(_axis(walk, node), rank)]
    else:
        axes = _read_axes(walk, node)
        if not axes:
            if node.attrs.get("noop_with_empty_axes", 0):
                return [b]
            axes = list(range(rank))
        axes = [_norm(a, rank) for a in axes]
    if b in axes:
        raise _mixes(node, f"over axis {b}")
    if node.attrs.get("keepdims", 1):
        return [b]
    return [b - sum(a < b for a in axes)]


def _topk(walk: _Walk, node: gs.Node) -> list[int | None]:
    b = walk.b(node.inputs[0])
    if _norm(_axis(walk, node), walk.rank(node.inputs[0], node)) == b:
        raise _mixes(node, f"over axis {b}")
    return [b, b]


def _layer_norm(walk: _Walk, node: gs.Node) -> list[int | None]:
    b = walk.b(node.inputs[0])
    if any(walk.b(t) is not None for t in node.inputs[1:]):
        raise _mixes(node, "with batched scale or bias")
    if b >= _norm(_axis(walk, node), walk.rank(node.inputs[0], node)):
        raise _mixes(node, f"normalizing over the batch axis {b}")
    return [b] * len(node.outputs)


def _matmul(walk: _Walk, node: gs.Node) -> list[int | None]:
    a, bm = node.inputs[:2]
    ra, rb = walk.rank(a, node), walk.rank(bm, node)
    out_rank = max(ra, rb) if ra >= 2 and rb >= 2 else max(ra, rb) - 1
    candidates = set()
    if walk.b(a) is not None:
        ba = walk.b(a)
        if ra == 1 or ba == ra - 1:
            raise _mixes(node, "contracting the batch axis")
        if ba == ra - 2:
            candidates.add(out_rank - 2 if rb >= 2 else out_rank - 1)
        else:
            candidates.add(out_rank - (ra - ba) if rb >= 2 else ba)
    if walk.b(bm) is not None:
        bb = walk.b(bm)
        if rb == 1 or bb == rb - 2:
            raise _mixes(node, "contracting the batch axis")
        if bb == rb - 1:
            candidates.add(out_rank - 1)
        else:
            candidates.add(out_rank - (rb - bb) if ra >= 2 else bb)
    # Both operands batched: only per-frame matrix products (the same broadcast axis) keep frames apart.
    if len(candidates) != 1:
        raise _mixes(node, "with both operands batched on different axes")
    (axis,) = candidates
    # A batch moved in front by a Reshape (rule 3) lifts the output too unless the other operand
    # already had that many axes.
    old_ra, old_rb = ra - (a.name in walk.lifted), rb - (bm.name in walk.lifted)
    old_rank = max(old_ra, old_rb) if old_ra >= 2 and old_rb >= 2 else max(old_ra, old_rb) - 1
    if out_rank > old_rank:
        walk.lifted.add(node.outputs[0].name)
    return [axis]


def _gemm(walk: _Walk, node: gs.Node) -> list[int | None]:
    a, bm = node.inputs[:2]
    if len(node.inputs) > 2 and walk.b(node.inputs[2]) is not None:
        raise _mixes(node, "with a batched bias")
    rows = 1 if node.attrs.get("transA", 0) else 0
    cols = 0 if node.attrs.get("transB", 0) else 1
    if walk.b(a) is not None and walk.b(bm) is not None:
        raise _mixes(node, "with both operands batched")
    if walk.b(a) is not None:
        if walk.b(a) != rows:
            raise _mixes(node, "contracting the batch axis")
        return [0]
    if walk.b(bm) != cols:
        raise _mixes(node, "contracting the batch axis")
    return [1]


def _pad(walk: _Walk, node: gs.Node) -> list[int | None]:
    x, b = node.inputs[0], walk.b(node.inputs[0])
    rank = walk.rank(x, node)
    if walk.opset < 11:
        pads = node.attrs.get("pads", node.attrs.get("paddings"))
    else:
        pads = walk.fixed(node.inputs[1])
    if pads is None:
        return [b]  # computed at run time from the input's shape
    pads = [int(p) for p in pads]
    axes = list(range(rank))
    if len(node.inputs) > 3 and not _absent(node.inputs[3]):
        axes = [_norm(a, rank) for a in _read_pad_axes(walk, node)]
    if b in axes:
        j, n = axes.index(b), len(axes)
        if pads[j] or pads[j + n]:
            raise _mixes(node, f"padding the batch axis {b}")
    return [b]


def _read_pad_axes(walk: _Walk, node: gs.Node) -> list[int]:
    value = walk.fixed(node.inputs[3])
    if value is None:
        raise OnnxfitError(f"node '{node_label(node)}' (Pad): axes are computed at run time; cannot follow the batch")
    return [int(a) for a in np.atleast_1d(value)]


def _tile(walk: _Walk, node: gs.Node) -> list[int | None]:
    b = walk.b(node.inputs[0])
    repeats = walk.fixed(node.inputs[1])
    if repeats is not None and int(repeats[b]) != 1:
        raise _mixes(node, f"repeating frames along the batch axis {b}")
    return [b]


def _expand(walk: _Walk, node: gs.Node) -> list[int | None]:
    x, b = node.inputs[0], walk.b(node.inputs[0])
    if walk.b(node.inputs[1]) is not None:
        raise _mixes(node, "with a shape taken from batched data")
    rank = walk.rank(x, node)
    shape = walk.fixed(node.inputs[1])
    if shape is None:
        slots = _batch_slots(walk, node.inputs[1])
        out_rank = max(rank, len(slots)) if slots is not None else len(walk.static(node.outputs[0], node, old=True))
        return [b + out_rank - rank]
    out_rank = max(rank, len(shape))
    out_b = b + out_rank - rank
    j = out_b - (out_rank - len(shape))
    # A 1 in the batch slot broadcasts to any batch; the export batch there broadcasts nothing but
    # pins the batch (repaired to 1); any other k copied a single frame k times.
    if j >= 0 and int(shape[j]) == walk.batch != 1:
        new = [int(v) for v in shape]
        new[j] = 1
        node.inputs[1] = walk.int64(f"{node.name or 'expand'}_batch_shape", new)
        walk.report.rewritten += 1
    elif j >= 0 and int(shape[j]) != 1:
        raise _mixes(node, f"copying the frame {int(shape[j])} times along the batch axis {out_b}")
    return [out_b]


def _resize(walk: _Walk, node: gs.Node) -> list[int | None]:
    x, b = node.inputs[0], walk.b(node.inputs[0])
    if any(walk.b(t) is not None for t in node.inputs[1:]):
        raise _mixes(node, "with batched scales or sizes")
    axes = node.attrs.get("axes")
    rank = walk.rank(x, node)
    axes = [_norm(a, rank) for a in axes] if axes is not None else list(range(rank))
    if b not in axes:
        return [b]
    pos = axes.index(b)
    if node.op == "Upsample" and walk.opset < 9:
        scales, sizes_index = node.attrs.get("scales"), None
    elif node.op == "Upsample" or walk.opset < 11:
        scales, sizes_index = walk.fixed(node.inputs[1]), None
    else:
        scales, sizes_index = walk.fixed(node.inputs[2]) if len(node.inputs) > 2 else None, 3
    if sizes_index is not None and len(node.inputs) > sizes_index and not _absent(node.inputs[sizes_index]):
        sizes = walk.fixed(node.inputs[sizes_index])
        if sizes is None:
            return [b]  # computed at run time from the input's shape
        if int(sizes[pos]) != walk.batch:
            raise _mixes(node, f"resizing the batch axis {b} to {int(sizes[pos])}")
        node.inputs[sizes_index] = walk.batch_shape(sizes, pos, x, b, node.name or "resize")
        walk.report.rewritten += 1
        return [b]
    if scales is not None and np.size(scales) and float(np.asarray(scales)[pos]) != 1.0:
        raise _mixes(node, f"scaling the batch axis {b}")
    return [b]


_BROADCAST = {
    # unary
    "Identity", "Cast", "Dropout", "Relu", "LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "Gelu",
    "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Softplus", "Softsign", "Mish", "Erf", "Exp", "Log", "Sqrt",
    "Reciprocal", "Abs", "Neg", "Sign", "Floor", "Ceil", "Round", "Sin", "Cos", "Not", "IsNaN", "IsInf", "Clip",
    # n-ary with numpy broadcasting
    "Add", "Sub", "Mul", "Div", "Pow", "Mod", "Max", "Min", "Sum", "Mean", "Where", "Equal", "Less",
    "LessOrEqual", "Greater", "GreaterOrEqual", "And", "Or", "Xor", "BitShift",
}
_FRAME_OPS = {
    "Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool", "GlobalAveragePool", "GlobalMaxPool",
    "GlobalLpPool", "BatchNormalization", "InstanceNormalization", "GroupNormalization", "LRN",
    "DepthToSpace", "SpaceToDepth", "GridSample",
}
def _recurrent(walk: _Walk, node: gs.Node) -> list[int | None]:
    """LSTM/GRU/RNN run each frame on its own when the batch sits on their batch axis: X and the
    initial states on axis 1 (layout 0) or 0 (layout 1); Y then holds it on axis 2 (or 0), Y_h/Y_c
    on axis 1 (or 0). Weights must be per-model, and a fixed sequence_lens would pin the batch."""
    layout = int(node.attrs.get("layout", 0))
    x_axis, state_axis, y_axis = (0, 0, 0) if layout else (1, 1, 2)
    expected = {0: x_axis, 5: state_axis, 6: state_axis}
    for i, t in enumerate(node.inputs):
        if _absent(t):
            continue
        b = walk.b(t)
        if i in expected and b is not None and b != expected[i]:
            raise _mixes(node, f"with the batch of input {i} on axis {b}, not its batch axis {expected[i]}")
        if i not in expected and i != 4 and b is not None:
            raise _mixes(node, f"with batched weights (input {i})")
        if i == 4 and b is None:
            raise OnnxfitError(f"node '{node_label(node)}' ({node.op}): sequence_lens is fixed per batch; "
                               "the batch cannot be made dynamic")
        if i in (5, 6) and b is None and walk.b(node.inputs[0]) is not None:
            raise OnnxfitError(f"node '{node_label(node)}' ({node.op}): initial state input {i} has a fixed batch; "
                               "feed it from a graph input with a batch axis")
    return [y_axis, state_axis, state_axis][:len(node.outputs)]


_RULES: dict[str, Callable[[_Walk, gs.Node], list[int | None]]] = {
    **{op: _broadcast for op in _BROADCAST},
    **{op: _frame_op for op in _FRAME_OPS},
    **{op: _reduce for op in _REDUCE | {"ArgMax", "ArgMin"}},
    "CastLike": _cast_like, "Softmax": _softmax, "LogSoftmax": _softmax, "Hardmax": _softmax,
    "Reshape": _reshape, "Flatten": _flatten, "Squeeze": _squeeze, "Unsqueeze": _unsqueeze,
    "Transpose": _transpose, "Concat": _concat, "Split": _split, "Gather": _gather, "Slice": _slice,
    "TopK": _topk, "LayerNormalization": _layer_norm, "MatMul": _matmul, "Gemm": _gemm,
    "Pad": _pad, "Tile": _tile, "Expand": _expand, "Resize": _resize, "Upsample": _resize,
    "LSTM": _recurrent, "GRU": _recurrent, "RNN": _recurrent,
}


# ---------------------------------------------------------------------------- symbolic shapes

def _make_symbolic(walk: _Walk, seeds: list[tuple[gs.Variable, int]], dim: str) -> int:
    """Put the symbolic batch into io and value_info shapes (rules 1 and 7); returns how many changed."""
    graph, changed = walk.graph, 0
    for x, b in seeds:
        if isinstance(x.shape[b], (int, np.integer)) and x.shape[b] > 0:
            x.shape = [*x.shape[:b], dim, *x.shape[b + 1:]]
            changed += 1
    io = {t.name for t in graph.inputs}
    for t in graph.outputs:
        if walk.b(t) is None:
            walk.report.notes.append(f"output '{t.name}' does not depend on the frames; its shape stays")
    touched = walk.report.changed or changed
    for t in graph.tensors().values():
        if not isinstance(t, gs.Variable) or t.name in io or t.shape is None:
            continue
        if t.name in walk.axis:
            new = _symbolic_shape(t.shape, walk.shapes.get(t.name), walk.axis[t.name], t.name in walk.lifted, dim)
            if new is not None:
                t.shape = new
                changed += 1
        elif t.name in walk.derived and touched:
            t.shape = None  # its shape may follow the batch's value (ConstantOfShape of a Shape)
    return changed


def _symbolic_shape(shape, at_batch_1: tuple | None, b: int, lifted: bool, dim: str) -> list | None:
    """``shape`` with ``dim`` in the batch axis, or None when it already is symbolic there.

    A lifted tensor's old shape holds the merged batch (``[128*batch, 2]``): its per-frame dims
    come from inference at batch 1, the declared dims only fill what inference left unknown.
    """
    if lifted:
        frame = list(shape)
        if at_batch_1 is not None and len(at_batch_1) == len(shape):
            frame = [d if d is not None else old for d, old in zip(at_batch_1, shape)]
        return [dim, *frame]
    if b < len(shape) and isinstance(shape[b], (int, np.integer)):
        return [*shape[:b], dim, *shape[b + 1:]]
    return None
