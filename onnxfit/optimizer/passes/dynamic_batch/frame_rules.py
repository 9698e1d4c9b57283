"""Rules for the ops that leave the batch where it is (ELEMENTWISE, PER_FRAME and PER_AXIS in
``onnxfit.batch_ops``): broadcasting, NCHW and recurrent ops, and per-axis amounts (pad, repeat,
broadcast, scale, slice) whose batch slot must stay the identity, or is repaired to (rules 2, 5).
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from onnxfit.batch_ops import (
    BATCH_OPS,
    Flow,
    frame_axes,
    per_frame_problem,
    slice_keeps_axis,
)
from onnxfit.errors import OnnxfitError, node_label
from onnxfit.optimizer.passes.dynamic_batch.reshape_rules import batch_slots
from onnxfit.optimizer.passes.dynamic_batch.walk import (
    NodeFacts,
    Walk,
    absent,
    mixes,
    norm,
)

__all__ = ["FRAME_RULES"]

def _broadcast(walk: Walk, node: gs.Node) -> list[int | None]:
    """Elementwise ops: numpy broadcasting aligns axes from the right."""
    present = [t for t in node.inputs if not absent(t)]
    ranks = [walk.rank(t, node) for t in present]
    out_rank = max(ranks)
    from_end = {r - walk.b(t) for t, r in zip(present, ranks) if walk.b(t) is not None}
    if len(from_end) != 1:
        raise mixes(node, "broadcasting batch axes that do not line up")
    (p,) = from_end
    for t, r in zip(present, ranks):
        if walk.b(t) is None and r >= p and _dim(walk, t, node, r - p) != 1:
            raise mixes(node, "broadcasting a fixed tensor along the batch axis")
    old_rank = max(r - (t.name in walk.lifted) for t, r in zip(present, ranks))
    out_axis = out_rank - p
    if out_rank > old_rank:
        for out in node.outputs:
            walk.lifted.add(out.name)
    return [out_axis] * len(node.outputs)


def _dim(walk: Walk, t, node: gs.Node, i: int) -> int:
    """One dim of ``t``; the others may stay unknown (symbolic H/W)."""
    shape = walk.shape(t)
    if shape is None or shape[i] is None:
        raise OnnxfitError(f"node '{node_label(node)}' ({node.op}): dim {i} of '{t.name}' is not static; "
                           "cannot tell whether it broadcasts along the batch")
    return int(shape[i])


def _cast_like(walk: Walk, node: gs.Node) -> list[int | None]:
    """CastLike takes only the element type of input 1; the output is input 0 converted."""
    x = node.inputs[0]
    if x.name in walk.lifted:
        walk.lifted.add(node.outputs[0].name)
    return [walk.b(x)]


def _frame_op(walk: Walk, node: gs.Node) -> list[int | None]:
    """Conv, pooling, normalization: axis 0 is the batch, other inputs are per-model weights
    (GridSample's grid is per frame: the batch-op table says which inputs carry frames)."""
    expected = frame_axes(BATCH_OPS[node.op], node.attrs)
    batched = {i: walk.b(t) for i, t in enumerate(node.inputs) if walk.b(t) is not None}
    if walk.b(node.inputs[0]) != expected[0] or any(expected.get(i) != b for i, b in batched.items()):
        raise mixes(node, "on a tensor whose batch is not axis 0 of its data input")
    problem = per_frame_problem(node.op, node.attrs)
    if problem:
        raise mixes(node, problem)
    n_batched = len(node.outputs) if node.op == "MaxPool" else 1
    return [0] * n_batched


def _recurrent(walk: Walk, node: gs.Node) -> list[int | None]:
    """LSTM/GRU/RNN run each frame on its own when the batch sits on their batch axis: X and the
    initial states on axis 1 (layout 0) or 0 (layout 1); Y then holds it on axis 2 (or 0), Y_h/Y_c
    on axis 1 (or 0). Weights must be per-model, and a fixed sequence_lens would pin the batch."""
    expected = frame_axes(BATCH_OPS[node.op], node.attrs)
    state_axis, y_axis = (0, 0) if node.attrs.get("layout", 0) else (1, 2)
    for i, t in enumerate(node.inputs):
        if absent(t):
            continue
        b = walk.b(t)
        if i in expected and b is not None and b != expected[i]:
            raise mixes(node, f"with the batch of input {i} on axis {b}, not its batch axis {expected[i]}")
        if i not in expected and b is not None:
            raise mixes(node, f"with batched weights (input {i})")
        if i == 4 and b is None:
            raise OnnxfitError(f"node '{node_label(node)}' ({node.op}): sequence_lens is fixed per batch; "
                               "the batch cannot be made dynamic")
        if i in (5, 6) and b is None and walk.b(node.inputs[0]) is not None:
            raise OnnxfitError(f"node '{node_label(node)}' ({node.op}): initial state input {i} has a fixed batch; "
                               "feed it from a graph input with a batch axis")
    return [y_axis, state_axis, state_axis][:len(node.outputs)]


def _slice(walk: Walk, node: gs.Node) -> list[int | None]:
    if any(walk.b(t) is not None for t in node.inputs[1:]):
        raise mixes(node, "with batched starts/ends")
    x, b = node.inputs[0], walk.b(node.inputs[0])
    keeps = slice_keeps_axis(NodeFacts(walk, node), walk.rank(x, node), b)
    if keeps is None:
        raise OnnxfitError(f"node '{node_label(node)}' (Slice): starts/ends are computed at run time; "
                           "cannot tell whether it selects frames")
    if not keeps:
        raise mixes(node, f"selecting frames on the batch axis {b}")
    return [b]


def _pad(walk: Walk, node: gs.Node) -> list[int | None]:
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
    if len(node.inputs) > 3 and not absent(node.inputs[3]):
        axes = [norm(a, rank) for a in _read_pad_axes(walk, node)]
    if b in axes:
        j, n = axes.index(b), len(axes)
        if pads[j] or pads[j + n]:
            raise mixes(node, f"padding the batch axis {b}")
    return [b]


def _read_pad_axes(walk: Walk, node: gs.Node) -> list[int]:
    value = walk.fixed(node.inputs[3])
    if value is None:
        raise OnnxfitError(f"node '{node_label(node)}' (Pad): axes are computed at run time; cannot follow the batch")
    return [int(a) for a in np.atleast_1d(value)]


def _tile(walk: Walk, node: gs.Node) -> list[int | None]:
    b = walk.b(node.inputs[0])
    repeats = walk.fixed(node.inputs[1])
    if repeats is not None and int(repeats[b]) != 1:
        raise mixes(node, f"repeating frames along the batch axis {b}")
    return [b]


def _expand(walk: Walk, node: gs.Node) -> list[int | None]:
    x, b = node.inputs[0], walk.b(node.inputs[0])
    if walk.b(node.inputs[1]) is not None:
        raise mixes(node, "with a shape taken from batched data")
    rank = walk.rank(x, node)
    shape = walk.fixed(node.inputs[1])
    if shape is None:
        slots = batch_slots(walk, node.inputs[1])
        out_rank = max(rank, len(slots)) if slots is not None else len(walk.static(node.outputs[0], node, old=True))
        return [b + out_rank - rank]
    out_rank = max(rank, len(shape))
    out_b = b + out_rank - rank
    j = out_b - (out_rank - len(shape))
    # A 1 in the batch slot broadcasts to any batch; the export batch there (times the rows per
    # frame, rule 3b) broadcasts nothing but pins the batch (repaired to 1); any other k copied a
    # single frame k times.
    if j >= 0 and int(shape[j]) == walk.batch * walk.f(x) != 1:
        new = [int(v) for v in shape]
        new[j] = 1
        node.inputs[1] = walk.int64(f"{node.name or 'expand'}_batch_shape", new)
        walk.report.rewritten += 1
    elif j >= 0 and int(shape[j]) != 1:
        raise mixes(node, f"copying the frame {int(shape[j])} times along the batch axis {out_b}")
    return [out_b]


def _resize(walk: Walk, node: gs.Node) -> list[int | None]:
    x, b = node.inputs[0], walk.b(node.inputs[0])
    if any(walk.b(t) is not None for t in node.inputs[1:]):
        raise mixes(node, "with batched scales or sizes")
    axes = node.attrs.get("axes")
    rank = walk.rank(x, node)
    axes = [norm(a, rank) for a in axes] if axes is not None else list(range(rank))
    if b not in axes:
        return [b]
    pos = axes.index(b)
    if node.op == "Upsample" and walk.opset < 9:
        scales, sizes_index = node.attrs.get("scales"), None
    elif node.op == "Upsample" or walk.opset < 11:
        scales, sizes_index = walk.fixed(node.inputs[1]), None
    else:
        scales, sizes_index = walk.fixed(node.inputs[2]) if len(node.inputs) > 2 else None, 3
    if sizes_index is not None and len(node.inputs) > sizes_index and not absent(node.inputs[sizes_index]):
        sizes = walk.fixed(node.inputs[sizes_index])
        if sizes is None:
            return [b]  # computed at run time from the input's shape
        if int(sizes[pos]) != walk.batch * walk.f(x):
            raise mixes(node, f"resizing the batch axis {b} to {int(sizes[pos])}")
        node.inputs[sizes_index] = walk.batch_shape(sizes, pos, x, b, node.name or "resize")
        walk.report.rewritten += 1
        return [b]
    if scales is not None and np.size(scales) and float(np.asarray(scales)[pos]) != 1.0:
        raise mixes(node, f"scaling the batch axis {b}")
    return [b]


FRAME_RULES = {
    **{op: _broadcast for op, rule in BATCH_OPS.items() if rule.flow is Flow.ELEMENTWISE},
    **{op: _frame_op for op, rule in BATCH_OPS.items() if rule.flow is Flow.PER_FRAME and not rule.layout},
    **{op: _recurrent for op, rule in BATCH_OPS.items() if rule.flow is Flow.PER_FRAME and rule.layout},
    "CastLike": _cast_like, "Slice": _slice, "Pad": _pad, "Tile": _tile, "Expand": _expand,
    "Resize": _resize, "Upsample": _resize,
}
