"""Rules for the ops that move or merge the batch (RESHAPES in ``onnxfit.batch_ops``): Reshape,
Flatten, Squeeze, Unsqueeze, Transpose.

Where the batch went is read from shapes at the export batch (``frame_slot``: which output axis
holds whole frames, and how many rows of it each frame owns); a merged leading batch is kept as a
new leading axis (rule 3) or as rows (rule 3b, where the walk chose so), rows become one row per
frame again where a Reshape splits them back, and the slot of a hardcoded batch becomes -1
(rule 2).
"""

from __future__ import annotations

import math

import numpy as np
import onnx_graphsurgeon as gs

from onnxfit.errors import OnnxfitError, node_label
from onnxfit.optimizer import nodes
from onnxfit.optimizer.passes.dynamic_batch.export_shapes import shape_value
from onnxfit.optimizer.passes.dynamic_batch.walk import (
    Walk,
    absent,
    axis_of,
    mixes,
    norm,
    read_axes,
    slice_params,
    write_axes,
)

__all__ = ["BATCH", "RESHAPE_RULES", "batch_slot", "batch_slots", "frame_slot", "split_output_rows"]


def reshape(walk: Walk, node: gs.Node) -> list[int | None]:
    x, out = node.inputs[0], node.outputs[0]
    b, f = walk.b(x), walk.f(x)
    if walk.b(node.inputs[1]) is not None:
        raise mixes(node, "with a shape taken from batched data")
    allowzero = node.attrs.get("allowzero", 0)
    slots = batch_slots(walk, node.inputs[1])
    if slots is not None and slots.count(BATCH) == 1:
        return [_reshape_with_run_time_batch(walk, node, slots, allowzero)]
    current = walk.fixed(node.inputs[1])
    if current is not None and _copies_leading_batch([int(v) for v in current], b, allowzero):
        _note_rank(walk, out, len(current))
        _set_rows(walk, out, f)
        return [0]
    in_shape = walk.static(x, node)
    out_shape = walk.old_shape(out)
    if out_shape is None or None in out_shape:
        # onnx data propagation misses some shape chains (Unsqueeze with Constant-node axes).
        value = shape_value(node.inputs[1], walk.shapes, walk.opset)
        if value is not None:
            out_shape = _reshape_result(walk.static(x, node, old=True), [int(v) for v in value], allowzero)
    out_shape = walk.static(out, node, old=True) if out_shape is None else out_shape
    slot = frame_slot(in_shape, b, out_shape, walk.batch, f)
    # Rows in, rows out or back to one row per frame (rule 3b); a merge of a whole batch into rows
    # only where the walk chose rows over the lift for this node.
    if slot is not None and (slot[1] == 1 or f > 1 or walk.rows_out(node)):
        k, g = slot
        if g > 1 and f == 1:
            _refuse_merge_at_fixed_batch(walk, node)
        if current is not None and not _keeps_batch([int(v) for v in current], k, b, allowzero, f == g):
            new = list(out_shape)
            new[k] = -1
            _set_reshape_shape(walk, node, new)
        _set_rows(walk, out, g)
        return [k]
    if b != 0:
        raise OnnxfitError(f"node '{node_label(node)}' (Reshape) merges the batch (axis {b}, not leading) into "
                           "another axis; frames interleave and the batch cannot be made dynamic")
    _refuse_merge_at_fixed_batch(walk, node)
    _set_reshape_shape(walk, node, [-1, *out_shape])
    walk.lifted.add(out.name)
    return [0]


def _set_rows(walk: Walk, out: gs.Tensor, f: int) -> None:
    if f > 1:
        walk.rows[out.name] = f


def _copies_leading_batch(shape: list[int], b: int, allowzero: int) -> bool:
    """``[0, ...]`` copies a leading batch whatever the other dims are (no -1 needs the frame size)."""
    return b == 0 and bool(shape) and shape[0] == 0 and not allowzero


def _note_rank(walk: Walk, out: gs.Tensor, rank: int) -> None:
    """Inference could not size a tensor (symbolic H/W): its rank is enough for the rules after it."""
    known = walk.old_shape(out)
    if known is None or len(known) != rank:
        walk.shapes[out.name] = (walk.batch, *[None] * (rank - 1))


def _refuse_merge_at_fixed_batch(walk: Walk, node: gs.Node) -> None:
    if walk.batch != 1:
        raise OnnxfitError(f"node '{node_label(node)}' ({node.op}) merges the fixed batch of {walk.batch} into "
                           "another axis; dynamic-batch repairs such merges only in models exported at batch 1 "
                           "or with a symbolic batch")


def _reshape_with_run_time_batch(walk: Walk, node: gs.Node, slots: list, allowzero: int) -> int:
    """A Reshape whose shape already puts ``Shape(x)[b]`` in one slot: no repair, if frames stay apart.

    Frames stay contiguous blocks when the dims before the batch hold as many elements in the
    input as in the output (nothing before the batch on both sides is the usual case).
    """
    x, out = node.inputs[0], node.outputs[0]
    b, k = walk.b(x), slots.index(BATCH)
    shape = walk.shape(x) or ()
    in_before = None if len(shape) < b or None in shape[:b] else math.prod(shape[:b])
    out_dims = [shape[i] if d == 0 and not allowzero and i < len(shape) else d for i, d in enumerate(slots[:k])]
    out_before = None if any(not isinstance(d, int) or d < 0 for d in out_dims) else math.prod(out_dims)
    if in_before is None or in_before != out_before:
        raise OnnxfitError(f"node '{node_label(node)}' (Reshape) puts the batch of axis {b} in slot {k} of a shape "
                           "computed at run time; cannot tell whether frames stay apart (try --input-shape)")
    known = walk.old_shape(out)
    if known is None or len(known) != len(slots) or None in known:
        walk.shapes[out.name] = tuple(walk.batch if d is BATCH else (d if isinstance(d, int) and d > 0 else None)
                                      for d in slots)
    return k


class _BatchSlot:
    def __repr__(self) -> str:
        return "BATCH"


BATCH = _BatchSlot()  # a shape element that is the batch at run time: Shape(x)[b] of a batched x


def batch_slots(walk: Walk, t, depth: int = 0) -> list | None:
    """The elements of a 1-D shape computed from Shape(batched): ``BATCH``, an int, or None (unknown).

    Follows Shape -> Gather/Slice -> Unsqueeze/Cast/Squeeze -> Concat; None when ``t`` is not
    such a chain.
    """
    if absent(t) or t.name not in walk.derived or depth > 64 or len(t.inputs) != 1:
        return None
    node = t.inputs[0]
    if node.op == "Shape":
        src = node.inputs[0]
        shape = walk.shape(src)
        if shape is None:
            return None
        # A batch axis holding rows (rule 3b) is f times the batch: not a batch slot.
        batch = BATCH if walk.f(src) == 1 else None
        elements = [batch if i == walk.b(src) else d for i, d in enumerate(shape)]
        return elements[node.attrs.get("start", 0):node.attrs.get("end")]
    if node.op in ("Cast", "Identity", "Unsqueeze", "Squeeze", "Reshape"):
        return batch_slots(walk, node.inputs[0], depth + 1)
    if node.op == "Concat":
        parts = [batch_slots(walk, i, depth + 1) if i.name in walk.derived else _known_ints(walk, i)
                 for i in node.inputs]
        return None if any(p is None for p in parts) else [e for p in parts for e in p]
    if node.op in ("Gather", "Slice"):
        data = batch_slots(walk, node.inputs[0], depth + 1)
        if data is None or any(not absent(i) and i.name in walk.derived for i in node.inputs[1:]):
            return None
        if node.op == "Gather":
            indices = walk.fixed(node.inputs[1])
            if indices is None or node.attrs.get("axis", 0) != 0:
                return None
            return [data[int(i)] for i in np.atleast_1d(indices)]
        params = slice_params(walk, node)
        if params is None or len(params[0]) != 1:
            return None
        (start,), (end,), (step,) = params
        return data[start:min(end, len(data)) if end >= 0 else end:step]
    return None


def _known_ints(walk: Walk, t) -> list | None:
    value = walk.fixed(t)
    if value is None:
        value = shape_value(t, walk.shapes, walk.opset)
    return None if value is None else [int(v) for v in np.atleast_1d(value)]


def _reshape_result(in_shape: tuple[int, ...], shape: list[int], allowzero: int) -> tuple[int, ...]:
    """What Reshape makes of ``in_shape``: 0 copies the input dim (unless allowzero), -1 takes the rest."""
    out = [in_shape[i] if d == 0 and not allowzero else d for i, d in enumerate(shape)]
    if -1 in out:
        known = math.prod(d for d in out if d != -1)
        out[out.index(-1)] = math.prod(in_shape) // known if known else 0
    return tuple(out)


def batch_slot(in_shape: tuple[int, ...], b: int, out_shape: tuple[int, ...], batch: int = 1) -> int | None:
    """The output axis that holds the batch after a Reshape at the export batch, or None if merged.

    The batch survives in output axis k when the axes before it hold exactly the elements that the
    input axes before the batch hold (frames stay contiguous blocks) and axis k has the batch size.
    """
    slot = frame_slot(in_shape, b, out_shape, batch)
    return slot[0] if slot is not None and slot[1] == 1 else None


def frame_slot(in_shape: tuple[int, ...], b: int, out_shape: tuple[int, ...], batch: int = 1,
               rows: int = 1) -> tuple[int, int] | None:
    """Where the frames go through a Reshape at the export batch: ``(k, g)``, output axis k holds
    them with g rows per frame (g = 1: axis k is the batch), or None when frames interleave.

    The input's batch axis ``b`` holds ``rows`` rows per frame, so a frame is ``rows * S``
    contiguous elements (S: the elements of the axes after b) for each index of the axes before
    it. Output axis k keeps frames apart when the axes before it hold what the input axes before
    the batch hold and each of its rows (S' elements) lies inside one frame: S' divides
    ``rows * S``, and then each frame owns ``g = rows * S / S'`` rows of axis k. The first such k
    wins: at batch 1 a size-1 axis could hold the batch as well as any other.
    """
    before = math.prod(in_shape[:b])
    frame = rows * math.prod(in_shape[b + 1:])
    run = 1
    for k, d in enumerate(out_shape):
        if run == before:
            inner = math.prod(out_shape[k + 1:])
            if inner and frame % inner == 0 and d == batch * (frame // inner):
                return k, frame // inner
        run *= d
        if run > before:
            return None
    return None


def _keeps_batch(shape: list[int], k: int, b: int, allowzero: int, same_rows: bool = True) -> bool:
    """True when a Reshape shape already copies or infers the batch in slot ``k`` (a 0 copies the
    input's batch axis only where it holds as many rows per frame as the output's)."""
    if k >= len(shape):
        return False
    if shape[k] == -1:
        return shape.count(-1) == 1
    return shape[k] == 0 and k == b and not allowzero and same_rows


def _set_reshape_shape(walk: Walk, node: gs.Node, shape: list[int]) -> None:
    old = node.inputs[1]
    if walk.graph.ir_version < 4 and isinstance(old, gs.Constant) and len(old.outputs) == 1:
        # IR 3 lists the initializer as a graph input too: rewrite it in place rather than orphan it.
        old.values = np.asarray(shape, dtype=np.int64)
        walk.report.rewritten += 1
        return
    # A new constant each time: one shape initializer is often shared by several Reshapes.
    node.inputs[1] = walk.int64(f"{node.name or 'reshape'}_batch_shape", shape)
    walk.report.rewritten += 1


def flatten(walk: Walk, node: gs.Node) -> list[int | None]:
    x, out = node.inputs[0], node.outputs[0]
    b, f, shape = walk.b(x), walk.f(x), walk.static(x, node)
    axis = norm(axis_of(walk, node), len(shape))
    if b < axis and math.prod(shape[:axis]) == shape[b]:
        _set_rows(walk, out, f)
        return [0]  # the batch axis is all of output axis 0
    if b == 0 < axis and (f > 1 or walk.rows_out(node)):
        # Output axis 0 is the batch axis times the axes up to ``axis``: rows (rule 3b), as it is.
        if f == 1:
            _refuse_merge_at_fixed_batch(walk, node)
        _set_rows(walk, out, math.prod(shape[:axis]) // walk.batch)
        return [0]
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


def squeeze(walk: Walk, node: gs.Node) -> list[int | None]:
    x, b = node.inputs[0], walk.b(node.inputs[0])
    rank = walk.rank(x, node)
    axes = read_axes(walk, node)
    implicit = axes is None
    if implicit:
        axes = [i for i, d in enumerate(walk.static(x, node)) if d == 1]
    axes = [norm(a, rank) for a in axes]
    if b not in axes:
        if implicit:
            # Only at an export batch above 1. At a run-time batch of 1 "all size-1 axes" would drop the batch too: name the axes.
            write_axes(walk, node, axes)
            walk.report.rewritten += 1
        return [b - sum(a < b for a in axes)]
    keep = [a for a in axes if a != b]
    if b - sum(a < b for a in keep) != 0:
        raise OnnxfitError(f"node '{node_label(node)}' (Squeeze) drops the batch axis {b} between other axes; "
                           "the batch cannot be made dynamic")
    # At batch 1 the Squeeze also removed the batch; keep it as a leading axis (rule 3).
    if keep:
        write_axes(walk, node, keep)
    else:
        node.op, node.attrs = "Identity", {}
        while len(node.inputs) > 1:
            node.inputs.pop()
    walk.report.rewritten += 1
    walk.lifted.add(node.outputs[0].name)
    return [0]


def unsqueeze(walk: Walk, node: gs.Node) -> list[int | None]:
    b = walk.b(node.inputs[0])
    axes = read_axes(walk, node)
    out_rank = walk.rank(node.inputs[0], node) + len(axes)
    inserted = {norm(a, out_rank) for a in axes}
    kept = [i for i in range(out_rank) if i not in inserted]
    return [kept[b]]


def transpose(walk: Walk, node: gs.Node) -> list[int | None]:
    perm = node.attrs.get("perm") or list(reversed(range(walk.rank(node.inputs[0], node))))
    return [list(perm).index(walk.b(node.inputs[0]))]


def split_output_rows(walk: Walk, t: gs.Tensor) -> None:
    """A graph output that still holds rows of frames (rule 3b) gets them split back,
    ``[N*f, ...] -> [N, f, ...]``: the lifted form of rule 3 (at batch 1 the old output with a
    leading 1 added)."""
    f = walk.f(t)
    if walk.b(t) is None or f == 1:
        return
    shape = walk.old_shape(t)
    if walk.b(t) != 0 or shape is None or None in shape[1:]:
        raise OnnxfitError(f"output '{t.name}' holds rows of frames on axis {walk.b(t)} (a merged batch that no "
                           "Reshape splits back); the batch cannot be made dynamic")
    rows = gs.Variable(nodes.unique_name(walk.graph, f"{t.name}_rows"), dtype=t.dtype)
    for consumer in list(t.outputs):
        consumer.inputs[:] = [rows if i is t else i for i in consumer.inputs]
    producer = t.inputs[0]
    producer.outputs[producer.outputs.index(t)] = rows
    split = walk.int64(f"{t.name}_frames_shape", [-1, f, *shape[1:]])
    nodes.add_node(walk.graph, "Reshape", f"{t.name}_frames", [rows, split], outputs=[t])
    walk.report.added += 1
    walk.axis[rows.name], walk.rows[rows.name], walk.shapes[rows.name] = 0, f, shape
    walk.rows.pop(t.name)
    walk.lifted.add(t.name)


RESHAPE_RULES = {"Reshape": reshape, "Flatten": flatten, "Squeeze": squeeze, "Unsqueeze": unsqueeze,
                 "Transpose": transpose}
