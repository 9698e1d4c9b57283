"""scatter-to-concat: a ScatterND with constant indices that write one box of ``data`` becomes
Slices of ``data`` around ``updates``, joined by Concats.

Why: CoreML's MLProgram format has no ScatterND builder. torch exports ``cache[:, :, -k:, :] = new``
and ``cache[i] = new`` as a ScatterND with constant indices; streaming models write their caches
that way (gtcrn_simple: 18), each a CPU island between CoreML partitions. Rules:

1. A ScatterND the target EP does not take, where its profile takes a Slice and a Concat of
   ``data`` at ``--ort-version`` (and a Reshape of ``updates`` where one is needed, rule 4). A
   target without a support profile (the CPU EP) runs ScatterND: left alone.
2. ``reduction`` is ``none`` (opset 16+ attribute); ``data`` and ``updates`` have static shapes;
   ``indices`` is a constant of shape ``[..., k]``, every value within its axis (negative ones count
   from the end, as ONNX Runtime reads them).
3. The index tuples form a box, in row-major order: along each of the k leading axes a range of
   consecutive positions ``[lo, hi)``, every tuple of the box listed once, in the order
   ``np.ndindex`` walks it. Then ``updates`` holds the box's values in row-major order, the
   trailing ``rank - k`` axes in full, as ScatterND writes them. Duplicate, missing, unordered
   or scattered tuples: left alone, with the reason.
4. ``updates`` is reshaped to the box (``[hi - lo for each leading axis] + data.shape[k:]``) where
   its shape differs. Then, for each axis where the box is narrower than ``data``, innermost first,
   ``Concat(data before the box, the box so far, data after the box)`` along that axis, the parts
   of ``data`` sliced to the box on the outer partial axes; empty parts are left out. The last
   Concat writes the ScatterND's output (its name and readers stay). A box that covers ``data``
   is ``updates`` reshaped to ``data``'s shape.
Exact: pure data movement, every element is copied from ``data`` or ``updates`` unchanged; checked
bit for bit against ONNX Runtime's ScatterND (gtcrn_simple's 18 included).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from onnxfit.optimizer import nodes
from onnxfit.optimizer.edits import disconnect, small_constant
from onnxfit.optimizer.pipeline import register_pass
from onnxfit.optimizer.rewrite import MatchContext, RewriteRule, Skip
from onnxfit.targets.profiles import profile_for

__all__ = ["ScatterToConcatPass", "ScatterPlan"]


@dataclass(frozen=True)
class ScatterPlan:
    """A box write: ``data[lo[0]:hi[0], ..., lo[k-1]:hi[k-1]] = updates.reshape(block)``."""

    data_shape: tuple[int, ...]
    lo: tuple[int, ...]
    hi: tuple[int, ...]
    block: tuple[int, ...]  # the box's shape: the ranges of the k leading axes, then data's trailing dims
    reshape: bool  # updates' shape differs from the block's

    def partial_axes(self) -> list[int]:
        """The axes where the box is narrower than ``data``, outermost first."""
        return [a for a, (lo, hi) in enumerate(zip(self.lo, self.hi)) if hi - lo < self.data_shape[a]]


@register_pass
class ScatterToConcatPass(RewriteRule):
    name = "scatter-to-concat"
    version = 1
    op = "ScatterND"
    min_opset = 11
    exact = True

    def match(self, node: gs.Node, ctx: MatchContext) -> ScatterPlan | Skip | None:
        if profile_for(ctx.pass_ctx.target) is None or ctx.target_takes(node):
            return None  # the CPU EP, or an EP with a ScatterND kernel, runs it as it is
        reduction = node.attrs.get("reduction", "none")
        if reduction != "none":
            return Skip(f"reduction '{reduction}' combines values: no copy writes it")
        data, indices, updates = node.inputs[:3]
        data_shape, updates_shape = ctx.static_shape(data), ctx.static_shape(updates)
        if data_shape is None or updates_shape is None:
            return Skip("needs static shapes of data and updates")
        values = small_constant(indices)
        if values is None:
            return Skip(f"indices '{indices.name}' are not a small constant")
        plan = _box(data_shape, updates_shape, np.asarray(values))
        if isinstance(plan, Skip):
            return plan
        return _ep_takes_parts(node, plan, ctx)

    def rewrite(self, graph: gs.Graph, node: gs.Node, plan: ScatterPlan, ctx: MatchContext) -> None:
        data, _, updates = node.inputs[:3]
        output = node.outputs[0]
        base = node.name or "scatter_nd"
        disconnect(node)  # cleanup drops it; its output gets the last Concat as its producer
        dtype = ctx.dtype(data)
        partial = plan.partial_axes()
        value = updates
        if plan.reshape or not partial:
            shape = nodes.int64_constant(graph, f"{base}_block_shape", plan.block)
            value = nodes.add_node(graph, "Reshape", f"{base}_block", [updates, shape],
                                   outputs=[output] if not partial else None).outputs[0]
            if partial and dtype is not None:
                value.dtype, value.shape = dtype, list(plan.block)
        # Innermost partial axis first: each Concat widens the box along one axis to data's extent.
        for i in reversed(range(len(partial))):
            axis = partial[i]
            outer = partial[:i]  # sliced to the box: the Concats of those axes come later
            starts, ends = [plan.lo[a] for a in outer], [plan.hi[a] for a in outer]
            pieces = []
            if plan.lo[axis] > 0:
                pieces.append(nodes.slice_(graph, data, [*starts, 0], [*ends, plan.lo[axis]], [*outer, axis],
                                           ctx.opset, f"{base}_before{axis}"))
            pieces.append(value)
            if plan.hi[axis] < plan.data_shape[axis]:
                pieces.append(nodes.slice_(graph, data, [*starts, plan.hi[axis]], [*ends, plan.data_shape[axis]],
                                           [*outer, axis], ctx.opset, f"{base}_after{axis}"))
            value = nodes.concat(graph, pieces, axis, f"{base}_concat{axis}", output=output if i == 0 else None)
            if i and dtype is not None:
                value.dtype = dtype
                value.shape = [plan.hi[a] - plan.lo[a] if a in outer else d for a, d in enumerate(plan.data_shape)]

    def label(self, node: gs.Node) -> str:
        return f"ScatterND '{node.name}'"


def _box(data_shape: tuple[int, ...], updates_shape: tuple[int, ...], indices: np.ndarray) -> ScatterPlan | Skip:
    """The box the index tuples write, or why they write none (rule 3)."""
    if indices.dtype.kind not in "iu" or indices.ndim < 1:
        return Skip("indices are not an integer tensor of rank >= 1")
    k, rank = indices.shape[-1], len(data_shape)
    if not 1 <= k <= rank:
        return Skip(f"index tuples of length {k} for data of rank {rank}")
    if tuple(updates_shape) != tuple(indices.shape[:-1]) + tuple(data_shape[k:]):
        return Skip(f"updates shape {list(updates_shape)} does not match indices {list(indices.shape)}")
    tuples = indices.reshape(-1, k).astype(np.int64)
    if len(tuples) == 0:
        return Skip("no index tuples (writes nothing)")
    dims = np.asarray(data_shape[:k], dtype=np.int64)
    if np.any(tuples < -dims) or np.any(tuples >= dims):
        return Skip("an index is out of range: ONNX Runtime fails at run time")
    tuples = np.where(tuples < 0, tuples + dims, tuples)
    lo, hi = tuples.min(axis=0), tuples.max(axis=0) + 1
    sizes = hi - lo
    if len(tuples) != math.prod(int(s) for s in sizes):
        return Skip("the index tuples do not fill one box (gaps or duplicates)")
    grid = np.stack(np.meshgrid(*(np.arange(a, b) for a, b in zip(lo, hi)), indexing="ij"), axis=-1)
    if not np.array_equal(tuples, grid.reshape(-1, k)):
        return Skip("the index tuples are not one box in row-major order")
    block = tuple(int(s) for s in sizes) + tuple(data_shape[k:])
    return ScatterPlan(tuple(data_shape), tuple(int(v) for v in lo), tuple(int(v) for v in hi), block,
                       reshape=tuple(updates_shape) != block)


def _ep_takes_parts(node: gs.Node, plan: ScatterPlan, ctx: MatchContext) -> ScatterPlan | Skip:
    """The plan, where the target EP takes the Slices and Concats of ``data`` (and the Reshape of
    ``updates``) that replace ``node``; asked on the tensors they read, not on the indices."""
    data, _, updates = node.inputs[:3]
    wanted = [("Slice", [data]), ("Concat", [data])] if plan.partial_axes() else []
    if plan.reshape or not plan.partial_axes():
        shape = gs.Constant(f"{node.name}_probe_shape", np.asarray(plan.block, dtype=np.int64))
        wanted.append(("Reshape", [updates, shape]))
    for op, inputs in wanted:
        if not ctx.target_takes_as(node, op, inputs):
            return Skip(f"the target EP takes no {op} of these values either at this --ort-version")
    return plan
