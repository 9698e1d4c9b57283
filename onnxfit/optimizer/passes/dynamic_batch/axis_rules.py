"""Rules for the ops that combine values along axes (ALONG_AXES and CONTRACTS in
``onnxfit.batch_ops``): the table says which axes they combine; here the output's batch axis is
computed and a Concat's fixed inputs get their batch at run time (rule 4).
"""

from __future__ import annotations

import onnx_graphsurgeon as gs

from onnxfit.batch_ops import BATCH_OPS, combined_axes, contracted_axes
from onnxfit.errors import OnnxfitError, node_label
from onnxfit.optimizer import nodes
from onnxfit.optimizer.passes.dynamic_batch.walk import (
    NodeFacts,
    Walk,
    axis_of,
    mixes,
    norm,
)

__all__ = ["AXIS_RULES"]

def _concat(walk: Walk, node: gs.Node) -> list[int | None]:
    batched = [t for t in node.inputs if walk.b(t) is not None]
    axes = {walk.b(t) for t in batched}
    if len(axes) != 1 or len({t.name in walk.lifted for t in batched}) != 1:
        raise mixes(node, "of tensors whose batch axes differ")
    (b,) = axes
    if b in _combined(walk, node, batched[0]):
        raise mixes(node, f"along the batch axis {b}")
    for i, t in enumerate(node.inputs):
        if walk.b(t) is None:
            _give_batch(walk, node, i, b, batched[0])
    return [b]


def _give_batch(walk: Walk, node: gs.Node, i: int, b: int, source: gs.Tensor) -> None:
    """A fixed input of a Concat with batch 1 takes its batch from ``source`` at run time (rule 4)."""
    t = node.inputs[i]
    shape = walk.static(t, node)
    if walk.f(source) > 1:
        # Next to rows of frames (rule 3b) the fixed tensor holds one frame's rows: Expand cannot repeat them.
        raise OnnxfitError(f"node '{node_label(node)}' (Concat) joins the fixed tensor '{t.name}' to rows of frames "
                           "(rule 3b), which would need it once per frame; the batch cannot be made dynamic")
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


def _split(walk: Walk, node: gs.Node) -> list[int | None]:
    b = walk.b(node.inputs[0])
    if b in _combined(walk, node, node.inputs[0]):
        raise mixes(node, f"along the batch axis {b}")
    return [b] * len(node.outputs)


def _gather(walk: Walk, node: gs.Node) -> list[int | None]:
    data, indices = node.inputs[:2]
    axis = norm(axis_of(walk, node), walk.rank(data, node))
    if walk.b(indices) is not None:
        if walk.b(data) is not None:
            raise mixes(node, "with batched data and batched indices")
        return [axis + walk.b(indices)]
    b = walk.b(data)
    if b in _combined(walk, node, data):
        raise mixes(node, f"indexing the batch axis {b}")
    return [b if b < axis else b + walk.rank(indices, node) - 1]


def _softmax(walk: Walk, node: gs.Node) -> list[int | None]:
    b = walk.b(node.inputs[0])
    if b in _combined(walk, node, node.inputs[0]):
        raise mixes(node, f"over axis {b}")
    return [b]


def _reduce(walk: Walk, node: gs.Node) -> list[int | None]:
    b = walk.b(node.inputs[0])
    axes = _combined(walk, node, node.inputs[0])
    if b in axes:
        raise mixes(node, f"over axis {b}")
    if node.attrs.get("keepdims", 1):
        return [b]
    return [b - sum(a < b for a in axes)]


def _topk(walk: Walk, node: gs.Node) -> list[int | None]:
    b = walk.b(node.inputs[0])
    if b in _combined(walk, node, node.inputs[0]):
        raise mixes(node, f"over axis {b}")
    return [b, b]


def _layer_norm(walk: Walk, node: gs.Node) -> list[int | None]:
    b = walk.b(node.inputs[0])
    if any(walk.b(t) is not None for i, t in enumerate(node.inputs) if i in BATCH_OPS[node.op].params):
        raise mixes(node, "with batched scale or bias")
    if b in _combined(walk, node, node.inputs[0]):
        raise mixes(node, f"normalizing over the batch axis {b}")
    return [b] * len(node.outputs)


def _matmul(walk: Walk, node: gs.Node) -> list[int | None]:
    a, bm = node.inputs[:2]
    ra, rb = walk.rank(a, node), walk.rank(bm, node)
    summed = contracted_axes(node.op, node.attrs, [ra, rb])
    out_rank = max(ra, rb) if ra >= 2 and rb >= 2 else max(ra, rb) - 1
    candidates = set()
    if walk.b(a) is not None:
        ba = walk.b(a)
        if ba == summed[0]:
            raise mixes(node, "contracting the batch axis")
        if ba == ra - 2:
            candidates.add(out_rank - 2 if rb >= 2 else out_rank - 1)
        else:
            candidates.add(out_rank - (ra - ba) if rb >= 2 else ba)
    if walk.b(bm) is not None:
        bb = walk.b(bm)
        if bb == summed[1]:
            raise mixes(node, "contracting the batch axis")
        if bb == rb - 1:
            candidates.add(out_rank - 1)
        else:
            candidates.add(out_rank - (rb - bb) if ra >= 2 else bb)
    # Both operands batched: only per-frame matrix products (the same broadcast axis) keep frames apart.
    if len(candidates) != 1:
        raise mixes(node, "with both operands batched on different axes")
    (axis,) = candidates
    # A batch moved in front by a Reshape (rule 3) lifts the output too unless the other operand
    # already had that many axes.
    old_ra, old_rb = ra - (a.name in walk.lifted), rb - (bm.name in walk.lifted)
    old_rank = max(old_ra, old_rb) if old_ra >= 2 and old_rb >= 2 else max(old_ra, old_rb) - 1
    if out_rank > old_rank:
        walk.lifted.add(node.outputs[0].name)
    return [axis]


def _gemm(walk: Walk, node: gs.Node) -> list[int | None]:
    """A batched A puts the batch on the output's rows, a batched B on its columns; a batched bias C
    (broadcast to the output) is per frame when it carries the batch on that same output axis."""
    a, bm = node.inputs[:2]
    summed = contracted_axes(node.op, node.attrs, [2, 2])
    if walk.b(a) is not None and walk.b(bm) is not None:
        raise mixes(node, "with both operands batched")
    out = None
    if walk.b(a) is not None:
        if walk.b(a) == summed[0]:
            raise mixes(node, "contracting the batch axis")
        out = 0
    elif walk.b(bm) is not None:
        if walk.b(bm) == summed[1]:
            raise mixes(node, "contracting the batch axis")
        out = 1
    if len(node.inputs) > 2 and walk.b(node.inputs[2]) is not None:
        c = node.inputs[2]
        on_output = walk.b(c) + 2 - walk.rank(c, node)  # C broadcasts to [M, N] from the right
        if out is not None and on_output != out:
            raise mixes(node, "with a bias batched on another axis than its output")
        out = on_output
    return [out]


def _combined(walk: Walk, node: gs.Node, data: gs.Tensor) -> set[int]:
    """The axes of ``data`` the op combines values along, as the batch-op table decodes them."""
    axes = combined_axes(BATCH_OPS[node.op], NodeFacts(walk, node), walk.rank(data, node))
    if axes is None:
        raise OnnxfitError(f"node '{node_label(node)}' ({node.op}): axes are computed at run time; cannot follow the batch")
    return axes


def _along(walk: Walk, node: gs.Node) -> list[int | None]:
    """Ops that keep the data's shape (normalizations, cumulative sums, element gathers/scatters):
    the batch stays where it is unless the op works along it. ``aligned`` inputs (indices,
    updates) must carry the batch on the same axis as the data, or frame 0 would get all of them."""
    rule = BATCH_OPS[node.op]
    b = walk.b(node.inputs[0])
    aligned = [walk.b(node.inputs[i]) for i in rule.aligned if i < len(node.inputs)]
    if aligned and len(set(aligned)) != 1:
        raise mixes(node, "with inputs whose batch axes differ")
    b = aligned[0] if aligned else b
    if b is None:
        raise mixes(node, "with a batch in a parameter input")
    if b in _combined(walk, node, node.inputs[0]):
        raise mixes(node, f"{rule.verb} the batch axis {b}")
    return [b]


AXIS_RULES = {
    **{op: _reduce for op, rule in BATCH_OPS.items() if rule.kind == "reduces"},
    **{op: _along for op in ("LpNormalization", "MeanVarianceNormalization", "CumSum", "GatherElements",
                             "ScatterElements")},
    "Softmax": _softmax, "LogSoftmax": _softmax, "Hardmax": _softmax, "TopK": _topk,
    "LayerNormalization": _layer_norm, "Concat": _concat, "Split": _split, "Gather": _gather,
    "MatMul": _matmul, "Gemm": _gemm,
}
