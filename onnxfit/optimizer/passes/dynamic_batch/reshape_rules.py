"""Rules for the ops that move or merge the batch (RESHAPES in ``onnxfit.batch_ops``): Reshape,
Flatten, Squeeze, Unsqueeze, Transpose.

Where the batch went is read from shapes at the export batch; a merged leading batch is kept as a
new leading axis (rule 3), a hardcoded one becomes -1 (rule 2).
"""

from __future__ import annotations

import math

import numpy as np
import onnx_graphsurgeon as gs

from onnxfit.errors import OnnxfitError, node_label
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

__all__ = ["BATCH", "RESHAPE_RULES", "batch_slot", "batch_slots"]


def reshape(walk: Walk, node: gs.Node) -> list[int | None]:
    x, out = node.inputs[0], node.outputs[0]
    b = walk.b(x)
    if walk.b(node.inputs[1]) is not None:
        raise mixes(node, "with a shape taken from batched data")
    allowzero = node.attrs.get("allowzero", 0)
    slots = batch_slots(walk, node.inputs[1])
    if slots is not None and slots.count(BATCH) == 1:
        return [_reshape_with_run_time_batch(walk, node, slots, allowzero)]
    current = walk.fixed(node.inputs[1])
    if current is not None and _copies_leading_batch([int(v) for v in current], b, allowzero):
        _note_rank(walk, out, len(current))
        return [0]
    in_shape = walk.static(x, node)
    out_shape = walk.old_shape(out)
    if out_shape is None or None in out_shape:
        # onnx data propagation misses some shape chains (Unsqueeze with Constant-node axes).
        value = shape_value(node.inputs[1], walk.shapes, walk.opset)
        if value is not None:
            out_shape = _reshape_result(walk.static(x, node, old=True), [int(v) for v in value], allowzero)
    out_shape = walk.static(out, node, old=True) if out_shape is None else out_shape
    k = batch_slot(in_shape, b, out_shape, walk.batch)
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
        elements = [BATCH if i == walk.b(src) else d for i, d in enumerate(shape)]
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
    x = node.inputs[0]
    b, shape = walk.b(x), walk.static(x, node)
    axis = norm(axis_of(walk, node), len(shape))
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


RESHAPE_RULES = {"Reshape": reshape, "Flatten": flatten, "Squeeze": squeeze, "Unsqueeze": unsqueeze,
                 "Transpose": transpose}
