"""dynamic-batch: make the batch axis symbolic and repair what hardcodes or swallows it.

Batch exports are usually broken: exporters trace at batch 1 and write that 1 into Reshape,
Expand, ConstantOfShape and Resize constants, or write Reshapes that flatten the batch into
another axis (SCRFD heads: ``Transpose(0,2,3,1)`` then ``Reshape([-1, 2])``), so at batch N the
model fails or, worse, lets frames leak into each other. A correct batch-16 detector runs about 6x
the frames/s of batch 1, so this is worth repairing. The pass first follows the batch through the
graph (which axis of each tensor holds the frames), op by op as the batch-op table
(``onnxfit.batch_ops``, shared with ``verify``'s contamination proof) says, then:

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
3b. where a lifted batch reaches an op that cannot take it (a Conv: its batch axis is its own),
   the merging Reshape/Flatten keeps the merge as rows instead: time-distributed layers
   (``[1, T, C, H, W] -> [T, C, H, W]``) and tf2onnx's per-pixel 1x1 convolutions
   (``[1, 1, 36, 36, 3] -> [1296, 3, 1, 1] -> Conv -> [1, 1, 36, 36, 32]``). The merged axis holds
   f rows per frame, frame i owning rows ``[i*f, (i+1)*f)``; the Reshape gets -1 there
   (``[-1, 3, 1, 1]``; value_info ``batch*1296``). Rows pass only per-row ops, as the batch-op table
   says for a batch axis: elementwise ops whose fixed operands are 1 along the rows, PER_FRAME ops
   (Conv, pooling, normalization) with the rows as their batch axis, ops that combine or contract
   other axes, PER_AXIS amounts that leave the rows alone (an Expand or Resize size there is the
   export batch times f), Reshapes that keep whole rows in one axis; batched inputs of one op must
   hold as many rows per frame. A Reshape whose output axis takes whole frames again (one row per
   frame: ``[1296, 32, 1, 1] -> [-1, 1, 36, 36, 32]``) splits them back. A fixed tensor joined to
   rows by a Concat is refused (it would be needed once per frame); rows that reach a graph
   output are split there, ``[N*f, ...] -> [N, f, ...]`` (rule 3's output form). Which merges become
   rows is learnt from where a walk with lifts stops (``plan``);
4. a fixed tensor concatenated with batched ones (ConstantOfShape, Expand, Tile or an initializer
   with batch 1) gets its batch from ``Shape(x)[b]`` of a batched input: the ConstantOfShape or
   Expand shape is rewritten, anything else is wrapped in an Expand;
5. Resize ``sizes`` with batch 1 become ``Concat(Shape(x)[b], sizes[1:])`` (not scales: a float
   scale can round to a different output size); Expand, Tile, Pad and Resize scales that leave
   the batch alone at batch 1 (broadcast 1, repeat 1, pad 0, scale 1) are batch-safe as they are;
6. an op that the table says mixes frames (Softmax or a reduction over the batch axis, MatMul/Gemm
   contracting it, Concat/Split/Gather/Slice along it, Conv or BatchNormalization on a tensor
   whose batch is not axis 0, training-mode BatchNormalization, a Reshape merging a batch that is
   not leading) or an op outside the table raises OnnxfitError naming the node: such a model
   cannot be made dynamic by rewriting constants;
7. value_info of intermediate tensors gets the symbolic batch dim (or loses its shape when it
   depends on the batch in another way), so ONNX Runtime does not check it against batch 1;
8. an input whose dims are all 1 and whose batch axis only the leading-axis guess gave
   (``dt: [1]``, seconds per frame, one value per call) is taken as one value shared by all frames
   when, batched, it stops the walk and the model squeezes it to a scalar (FacePhys:
   ``Squeeze(dt) * rates[32]``), as ``--batch-axis dt=none`` would say; a note says so and it keeps
   its shape. Used as it is (a ``[1]`` bias), it stays batched and the error names the flag; an
   input given a batch axis with ``--batch-axis`` is never second-guessed.

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

The package, along the walk's seams: ``export_shapes`` (where the batch starts, shapes at the
export batch), ``walk`` (the walk's state and the axis forms ops name), ``rules`` (the visit, and
one rule per table op from ``frame_rules``, ``axis_rules`` and ``reshape_rules``), ``plan`` (rules
3b and 8: the choices learnt from where a walk stops; each is a retry on the graph as it was),
``symbolic`` (rules 1 and 7, after the walk).
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from onnxfit.errors import OnnxfitError
from onnxfit.graphs import iter_graphs, toposort
from onnxfit.optimizer.nodes import share_name_registry
from onnxfit.optimizer.passes.dynamic_batch.export_shapes import (
    batch_seeds,
    export_batch,
    shapes_at_export_batch,
)
from onnxfit.optimizer.passes.dynamic_batch.plan import Plan, Stopped, shared_candidates, squeezed_to_scalars
from onnxfit.optimizer.passes.dynamic_batch.reshape_rules import (
    batch_slot as _batch_slot,  # noqa: F401 (tests)
)
from onnxfit.optimizer.passes.dynamic_batch.reshape_rules import split_output_rows
from onnxfit.optimizer.passes.dynamic_batch.rules import visit
from onnxfit.optimizer.passes.dynamic_batch.symbolic import (
    list_constants_as_inputs,
    make_symbolic,
)
from onnxfit.optimizer.passes.dynamic_batch.walk import Walk
from onnxfit.optimizer.pipeline import PassContext, PassReport, register_pass

__all__ = ["DynamicBatchPass"]


@register_pass
class DynamicBatchPass:
    name = "dynamic-batch"
    # 4: the batch-op table (LpNormalization, CumSum, GatherElements, ... followed); 5: Gemm bias;
    # 6: rows (rule 3b: time-distributed and per-pixel Reshapes around a Conv), per-call inputs shared
    version = 6

    def run(self, graph: gs.Graph, ctx: PassContext) -> PassReport:
        report = PassReport(self.name, changed=False)
        seeds = batch_seeds(graph, ctx.batch_axes)
        if not seeds:
            report.notes.append("no graph input has a batch axis; nothing to do")
            return report
        plan = Plan(candidates=shared_candidates(seeds, ctx.batch_axes))
        framed = [(x, b) for x, b in seeds if x.name not in plan.candidates]
        batch = export_batch(graph, framed)
        for name in plan.candidates:
            if batch != 1:  # all ones next to a fixed export batch above 1: not a batch
                plan.shared[name] = f"its batch of 1 is not the export batch of {batch}"
        toposort(graph)
        already_dynamic = all(not isinstance(x.shape[b], (int, np.integer)) for x, b in framed)
        shapes = shapes_at_export_batch(graph, [(x, b) for x, b in seeds if x.name not in plan.shared], batch, ctx)
        plan.scalars = squeezed_to_scalars(graph, plan.candidates, shapes)
        # Walks edit as they go: a retry starts from a copy, with the names taken before the first walk.
        pristine, names = graph.copy(), set(graph.__dict__.get("_onnxfit_names") or share_name_registry(graph))
        while True:
            report = PassReport(self.name, changed=False)
            try:
                walk = _walk(graph, ctx, [(x, b) for x, b in seeds if x.name not in plan.shared],
                             shapes, batch, report, plan)
                break
            except Stopped as stop:
                learnt = plan.learn(stop)
                _restore(graph, pristine.copy(), names)
                if learnt:
                    continue
                if not already_dynamic:
                    raise plan.explain(stop.error) from None
                # The exporter already made the batch symbolic: a batch we cannot follow is no
                # reason to refuse the model, only a reason not to touch it.
                report.notes.append(f"batch already symbolic; left as exported ({stop.error}); `onnxfit verify` "
                                    "checks frame independence at run time")
                return report
        report.notes.extend(plan.notes())
        inputs = {t.name: t for t in graph.inputs}  # the walk may have run on a restored copy
        symbolic = make_symbolic(walk, [(inputs[x.name], b) for x, b in seeds if x.name not in plan.shared],
                                 ctx.batch_dim)
        report.rewritten += symbolic
        list_constants_as_inputs(walk)
        report.changed = bool(report.rewritten or report.added)
        if report.changed:
            report.notes.append(f"batch axis '{ctx.batch_dim}' is dynamic ({symbolic} inputs, outputs and "
                                "value_info entries made symbolic)")
        else:
            report.notes.append("batch already symbolic and nothing hardcodes it; nothing to do")
        return report


def _walk(graph: gs.Graph, ctx: PassContext, seeds: list[tuple[gs.Variable, int]], shapes: dict, batch: int,
          report: PassReport, plan: Plan) -> Walk:
    """One walk over the graph as it is, with the choices of ``plan``; raises Stopped where it refuses."""
    walk = Walk(graph, ctx, dict(shapes), batch, report, frozenset(plan.row_merges))
    walk.axis.update({x.name: b for x, b in seeds})
    for node in list(graph.nodes):
        try:
            visit(walk, node)
        except OnnxfitError as exc:
            raise Stopped(walk, node, exc) from None
    for t in list(graph.outputs):
        try:
            split_output_rows(walk, t)
        except OnnxfitError as exc:
            raise Stopped(walk, t.inputs[0], exc) from None
    return walk


def _restore(graph: gs.Graph, fresh: gs.Graph, names: set[str]) -> None:
    """Put back the graph as it was before a walk (the walk edits as it goes)."""
    graph.nodes, graph.inputs, graph.outputs = fresh.nodes, fresh.inputs, fresh.outputs
    registry = graph.__dict__.get("_onnxfit_names")
    if registry is not None:
        registry.clear()
        registry.update(names)
        for sub in iter_graphs(graph):
            sub.__dict__["_onnxfit_names"] = registry
