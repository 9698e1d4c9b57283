"""fold-shapes: shape-computing subgraphs (Shape -> Gather -> ... -> Reshape/Resize) -> constants.

Why: the CoreML and NNAPI model builders reject ops whose shape inputs (Reshape shape, Resize
sizes/scales, Expand shape, ConstantOfShape, Range limits) are computed at run time, so every
Shape -> Gather chain splits the model into partitions with a host sync between them. On the
SCRFD face detector that is 21 ms per frame; folded, 4 ms. Rules:

1. Fixed input shapes come from the model or from ``ctx.input_shapes`` (``--input-shape``), which
   overrides the model's input dims and is written onto the graph inputs. With
   ``ctx.dynamic_batch`` (the dynamic-batch pass ran first) each input's batch axis stays
   symbolic, whatever the exporter wrote there (a name, Paddle's -1); without it an exporter's
   own ``batch`` name is fixed like any other dim.
2. onnx shape inference (with data propagation) runs on a weight-free skeleton of the graph
   (large initializers become graph inputs of the same dtype and shape), and its shapes are
   written back onto the graph's tensors. Inferred integer dims win; dim names the model gave are
   kept over names that inference invents.
3. Values are then propagated forward through the graph and its If branches: Shape and Size of
   tensors with known dims, and shape arithmetic on known inputs (onnx.reference, exact;
   ``optimizer/shape_values.py`` lists the ops).
   Shape values are tracked element by element, so ``Shape(x)`` of ``[N, 8, 20, 20]`` knows its
   last three elements: Gather/Slice/Concat/Unsqueeze/Squeeze/Reshape/Identity and integer Casts
   of such partly known vectors stay partly known, and fold as soon as no symbolic element is
   left. ``Gather(Shape(x), 0)`` stays dynamic; ``Gather(Shape(x), 2)`` becomes a constant.
   3b. A Reshape to a partly known target whose output onnx leaves unknown (before opset 14
   inference ignores computed targets) gets the shape the target spells: silero-vad v4's
   ``Reshape(x, [1, 1, sequence])``, whose padded dim 1 then decides an ``If``.
   3c. ``Equal`` of a partly known vector is decided where each pair is: dims are never negative,
   so none equals the ``-1`` torch's ``expand(-1, ...)`` compares a shape with (rivagan).
   3d. A Reshape target known but for one entry, the others positive, gets ``-1`` there: Reshape
   keeps the element count, so the entry is what ``-1`` computes (magika's
   ``[Shape(bytes)[0], 512, 256]``, smart-turn's ``[batch, 6, 64, 400]`` from a permuted Shape).
   Exact for every input the original runs on (one it would refuse for a wrong entry reshapes).
4. A Resize whose ``sizes`` is computed, with every axis either a static ratio that float32
   represents exactly (``sizes == floor(in * scale)`` for ORT's own ``scale = sizes / in``) or the
   same symbolic dim as the input (ratio 1), gets constant ``scales`` instead and loses ``sizes``.
   ORT derives the scales from ``sizes`` the same way, so nearest and linear results are
   bit-identical (tested per mode). Only ``keep_aspect_ratio_policy=stretch`` without ``axes``.
5. Values are turned into constants only where a node that stays reads them (or a graph output
   is one), and no tensor over ``MAX_ELEMENTS`` is made, so weights are never folded. Values
   computed from constants alone fold too: onnx's inference reads Slice starts or Pad pads only
   from constants (silero-vad's ``F.pad`` chain: Shape -> ConstantOfShape -> Concat -> Reshape ->
   Slice -> Transpose -> Reshape -> Cast), and ORT's level-1 folding would fold them anyway; the
   result never keeps more shape math than ORT does. The computation that fed them is removed.
6. Rules 2-5 repeat until a round folds nothing (a fixpoint, at most ``_MAX_ROUNDS``): onnx
   infers a Reshape's output from a computed shape only from opset 14 on, so a chain
   Shape -> Reshape -> Shape needs the first constant before the second shape is known. The last
   round's inference rewrites every tensor's shape (value_info, graph outputs): integers replace
   the symbolic dims an exporter wrote, which no longer hold once input shapes are fixed.
7. Rewrites reach If branches (nested), which run at most once per run. Loop and Scan bodies are
   left alone: their loop-carried tensors may change shape from one iteration to the next.
8. When inline-if runs in the same pipeline (every target's), an If whose condition has become a
   constant is replaced by the branch it takes inside these rounds (inline_if.py): its outputs
   were unknown while the branches disagreed, so the Shape ops after it (silero-vad's LSTM state
   handling) fold in the next round. Counted in ``rewritten``.

Report: ``folded`` tensors turned into constants, ``removed`` nodes that became dead,
``rewritten`` Resize nodes moved from sizes to scales, If nodes inlined and graph inputs given
fixed shapes.
"""

from __future__ import annotations

import logging

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from onnxfit._graphsurgeon import export_graph
from onnxfit.errors import node_label
from onnxfit.optimizer import nodes
from onnxfit.optimizer.shape_values import DEFAULT_DOMAINS, MAX_ELEMENTS, KnownValues, is_empty
from onnxfit.optimizer.branches import inline_decided_ifs, straight_graphs as _straight_graphs
from onnxfit.graphs import cleanup, iter_graphs, toposort
from onnxfit.optimizer.pipeline import PassContext, PassReport, register_pass
from onnxfit.shapes import Dim, infer_shapes
from onnxfit.targets.presets import MOBILE_TARGETS
from onnxfit.batch_axes import input_batch_axes, is_symbolic

__all__ = ["FoldShapesPass", "known_values"]

log = logging.getLogger(__name__)

_MAX_ROUNDS = 8  # rule 6: one round per Shape -> Reshape -> Shape link; real models need 2-3


@register_pass
class FoldShapesPass:
    name = "fold-shapes"
    version = 5

    def run(self, graph: gs.Graph, ctx: PassContext) -> PassReport:
        report = PassReport(self.name)
        toposort(cleanup(graph))  # dead nodes are not ours to count
        report.rewritten += _set_input_shapes(graph, ctx, report)
        before = _node_count(graph)
        skipped: dict[str, str] = {}  # Resize label -> why it keeps sizes (a later round may convert it)
        hints: dict[str, tuple] = {}  # rule 3b: Reshape output -> (elem type, dims) inference is told
        for _ in range(_MAX_ROUNDS):
            # Rounds run to a fixpoint: each starts with fresh inference, so the round that changes
            # nothing has also rewritten every tensor's shape from the now constant shapes (the
            # exporter's symbolic value_info, ``floor(height/2 - 1/2) + 1``, does not survive).
            if not self._round(graph, ctx, report, skipped, hints):
                break
        report.skipped = list(skipped.values())
        report.changed = bool(report.rewritten or report.folded or _node_count(graph) != before)
        left = sum(1 for g in _straight_graphs(graph) for n in g.nodes if n.op == "Shape")
        if left:
            report.notes.append(f"{left} Shape op(s) stay: they read dims not known before run time")
        return report

    def _round(self, graph: gs.Graph, ctx: PassContext, report: PassReport, skipped: dict[str, str],
               hints: dict[str, tuple]) -> bool:
        """Infer shapes, learn values, rewrite Resize, fold; True if anything changed (rule 6)."""
        elem_types: dict[str, int] = {}
        _write_inferred_shapes(graph, _infer_shapes(graph, hints, elem_types))
        known = KnownValues(ctx.opset)
        for g in _straight_graphs(graph):  # outer graphs first: subgraphs read outer values
            for node in g.nodes:
                known.learn(node)
        given = {d for t in graph.inputs for d in (t.shape or ()) if isinstance(d, str)}
        shaped = sum(_reshape_output_shape(n, known, hints, given, elem_types.get(n.outputs[0].name))
                     for g in _straight_graphs(graph) for n in g.nodes if n.op == "Reshape")
        changed, held = (inline_decided_ifs(graph, known.value, ctx.opset, hold=ctx.target in MOBILE_TARGETS)
                         if ctx.inline_if else (0, []))
        for node in held:  # ORT must not see these conditions as constants either (inline-if rule 5)
            known.forget(node.inputs[0])
        report.rewritten += changed
        if changed:
            toposort(graph)
        for g in _straight_graphs(graph):
            for node in [n for n in g.nodes if n.op == "Resize"]:
                scales = _resize_scales(node, known, ctx.opset)
                if isinstance(scales, str):
                    if scales:
                        skipped[node_label(node)] = f"Resize '{node_label(node)}': {scales}"
                    continue
                skipped.pop(node_label(node), None)
                _use_scales(g, node, scales, ctx.opset)
                changed += 1
        for g in _straight_graphs(graph):
            changed += sum(_reshape_minus_one(g, n, known) for n in g.nodes if n.op == "Reshape")
        report.rewritten += changed
        # Drop the sizes computations Resize no longer reads before deciding what must be constant.
        cleanup(graph)
        for g in _straight_graphs(graph):
            folded = _materialize(g, known)
            report.folded += folded
            changed += folded
        cleanup(graph)
        return bool(changed or shaped)


def known_values(graph: gs.Graph, opset: int):
    """Infer shapes, then propagate values (rules 2-3): ``tensor -> ndarray | None`` for inline-if."""
    _write_inferred_shapes(graph, _infer_shapes(graph))
    known = KnownValues(opset)
    for g in _straight_graphs(graph):
        for node in g.nodes:
            known.learn(node)
    return known.value


# ------------------------------------------------------------------------------------ input shapes


def _set_input_shapes(graph: gs.Graph, ctx: PassContext, report: PassReport) -> int:
    """Write ``ctx.input_shapes`` onto the graph inputs (rule 1); returns how many changed."""
    changed = 0
    axes = _dynamic_batch_axes(graph, ctx) if ctx.dynamic_batch else {}
    for tensor in graph.inputs:
        shape = ctx.input_shapes.get(tensor.name)
        if shape is None:
            continue
        old = list(tensor.shape) if tensor.shape is not None else [None] * len(shape)
        new = [int(d) for d in shape]
        axis = axes.get(tensor.name)
        if axis is not None and len(old) == len(new) and 0 <= axis < len(old):
            # --dynamic-batch keeps the batch symbolic, whatever the exporter wrote for it (Paddle's -1).
            new[axis] = old[axis] if isinstance(old[axis], str) and old[axis] else ctx.batch_dim
        if new != old:
            tensor.shape = new
            changed += 1
            report.notes.append(f"input '{tensor.name}' shape {old} -> {new}")
    return changed


def _dynamic_batch_axes(graph: gs.Graph, ctx: PassContext) -> dict[str, int | None]:
    """Input -> batch axis where it is symbolic (the axis dynamic-batch left symbolic)."""
    shapes = {t.name: list(t.shape) if t.shape is not None else None for t in graph.inputs}
    axes = {**input_batch_axes(shapes), **ctx.batch_axes}
    return {name: axis for name, axis in axes.items()
            if axis is not None and axis >= 0 and shapes.get(name) and axis < len(shapes[name])
            and (shapes[name][axis] is None or is_symbolic(shapes[name][axis]))}


# --------------------------------------------------------------------------------- shape inference


def _infer_shapes(graph: gs.Graph, hints: dict[str, tuple] | None = None,
                  elem_types: dict[str, int] | None = None) -> dict[str, list[Dim] | None]:
    """Tensor name -> shape from onnx shape inference without the weights (rule 2), told the
    shapes of ``hints`` (rule 3b) where it would know none."""
    model = export_graph(graph)
    told = [onnx.helper.make_tensor_value_info(name, elem_type, list(dims))
            for name, (elem_type, dims) in (hints or {}).items()]
    return {name: list(shape) if shape is not None else None
            for name, shape in infer_shapes(model, known=told, elem_types=elem_types).items()}


def _write_inferred_shapes(graph: gs.Graph, shapes: dict[str, list[Dim] | None]) -> None:
    inputs = {t.name for t in graph.inputs}
    for g in _straight_graphs(graph):
        for tensor in g.tensors().values():
            if isinstance(tensor, gs.Variable) and tensor.name not in inputs and shapes.get(tensor.name) is not None:
                tensor.shape = _merge_dims(tensor.shape, shapes[tensor.name])


def _merge_dims(old, new: list[Dim]) -> list[Dim]:
    """Inferred integers win; a name the model gave beats one inference made up (``unk__3``)."""
    if old is None or len(old) != len(new):
        return list(new)
    # An old dim_value <= 0 (Paddle's -1) is no size: it never beats what inference says.
    return [n if isinstance(n, int) or o is None or (isinstance(o, (int, np.integer)) and o <= 0) else o
            for o, n in zip(old, new)]


def _reshape_output_shape(node: gs.Node, known: KnownValues, hints: dict[str, tuple], given: set[str],
                          elem_type: int | None) -> bool:
    """Rule 3b: a Reshape whose output shape inference left unknown (a computed target before opset
    14) gets the shape its partly known target spells, so the dims after it are known next round.
    Only the input dims' own names are told: names inference made up change from round to round.
    True if that told something new."""
    out, data = node.outputs[0], node.inputs[0]
    target = known.vector(node.inputs[1]) if len(node.inputs) > 1 else None
    if target is None or target.scalar or node.attrs.get("allowzero", 0) or node.domain not in DEFAULT_DOMAINS:
        return False
    source = list(data.shape) if data.shape is not None and len(data.shape) >= len(target.elements) else None
    dims: list[Dim] = []
    for i, e in enumerate(target.elements):
        if e == 0:
            e = source[i] if source is not None else None
        dims.append(None if (isinstance(e, str) and e not in given) or (isinstance(e, (int, np.integer)) and e < 0)
                    else e)
    if all(d is None for d in dims) or not elem_type:
        return False
    old = list(out.shape) if out.shape is not None else None
    if old is None or len(old) != len(dims):
        out.shape = list(dims)
    else:
        out.shape = [o if d is None else d for o, d in zip(old, dims)]
    told = (elem_type, tuple(dims))
    if hints.get(out.name) == told:
        return False
    hints[out.name] = told
    return True


def _reshape_minus_one(graph: gs.Graph, node: gs.Node, known: KnownValues) -> int:
    """Rule 3d: a Reshape target known but for one entry, the others positive, gets that entry as
    ``-1``: the element count is kept, so the entry is the count over the others, which is what
    ``-1`` computes. 1 if rewritten."""
    if len(node.inputs) < 2 or node.attrs.get("allowzero", 0) or known.value(node.inputs[1]) is not None:
        return 0
    target = known.vector(node.inputs[1])
    if target is None or target.scalar:
        return 0
    sizes = [e for e in target.elements if isinstance(e, int)]
    if len(target.elements) - len(sizes) != 1 or min(sizes, default=1) <= 0:
        return 0
    dims = [e if isinstance(e, int) else -1 for e in target.elements]
    node.inputs[1] = gs.Constant(nodes.unique_name(graph, f"{node.name or 'reshape'}_shape"), np.array(dims, np.int64))
    return 1


# ------------------------------------------------------------------------------- Resize: sizes -> scales


def _resize_scales(node: gs.Node, known: KnownValues, opset: int) -> np.ndarray | str:
    """The constant scales that give exactly the computed ``sizes`` (rule 4), or why not ('' = no sizes)."""
    if opset < 11 or node.domain not in DEFAULT_DOMAINS or len(node.inputs) < 4 or is_empty(node.inputs[3]):
        return ""
    sizes = node.inputs[3]
    if isinstance(sizes, gs.Constant) or (sizes.inputs and sizes.inputs[0].op == "Constant"):
        return ""  # already constant: the EPs accept it as it is
    if node.attrs.get("keep_aspect_ratio_policy", "stretch") != "stretch" or "axes" in node.attrs:
        return "sizes with axes or keep_aspect_ratio_policy"
    wanted = known.vector(sizes)
    have = node.inputs[0].shape
    if wanted is None or have is None or len(wanted.elements) != len(have):
        return "sizes or input rank unknown"
    scales = []
    for i, (out, inp) in enumerate(zip(wanted.elements, have)):
        if isinstance(out, str) and out == inp:
            scales.append(np.float32(1.0))
            continue
        if not isinstance(out, int) or not isinstance(inp, (int, np.integer)) or inp <= 0:
            return f"axis {i}: size {out} vs input {inp} is not a static ratio"
        # ORT computes scale = float(sizes) / float(in) and out = in * scale: only an exactly
        # representable ratio (2, 0.5, 1.5; not 1/3) is certain to round-trip.
        scale = np.float32(out) / np.float32(inp)
        if float(scale) * int(inp) != out:
            return f"axis {i}: ratio {out}/{inp} is not exact in float32"
        scales.append(scale)
    return np.asarray(scales, dtype=np.float32)


def _use_scales(graph: gs.Graph, node: gs.Node, scales: np.ndarray, opset: int) -> None:
    base = node.name or "resize"
    roi = node.inputs[1]
    if is_empty(roi) and opset < 13:
        # roi is a required input before opset 13; it is ignored unless tf_crop_and_resize.
        roi = gs.Constant(nodes.unique_name(graph, f"{base}_roi"), np.zeros(0, dtype=np.float32))
    x = node.inputs[0]
    node.inputs.clear()
    node.inputs.extend([x, roi, gs.Constant(nodes.unique_name(graph, f"{base}_scales"), scales)])


# ------------------------------------------------------------------------------------ materialize


def _materialize(graph: gs.Graph, known: KnownValues) -> int:
    """Turn shape-derived values read by nodes that stay (or graph outputs) into constants (rule 5)."""
    folded = 0
    outputs = {t.name for t in graph.outputs}
    for node in list(graph.nodes):
        if len(node.outputs) != 1:
            continue
        out = node.outputs[0]
        value = known.values.get(out.name)
        if value is None or value.size > MAX_ELEMENTS:
            continue
        if out.name in outputs:
            # A graph output keeps its name and producer: the producer becomes Identity(constant).
            constant = gs.Constant(nodes.unique_name(graph, f"{out.name}_value"), value)
            node.op, node.attrs = "Identity", {}
            node.inputs.clear()
            node.inputs.append(constant)
            folded += 1
        elif any(not _all_known(consumer, known) for consumer in out.outputs):
            out.to_constant(value)
            out.inputs.clear()
            folded += 1
    return folded


def _all_known(node: gs.Node, known: KnownValues) -> bool:
    return all(is_empty(t) or t.name in known.values for t in node.outputs)


def _node_count(graph: gs.Graph) -> int:
    return sum(len(g.nodes) for g in iter_graphs(graph))
