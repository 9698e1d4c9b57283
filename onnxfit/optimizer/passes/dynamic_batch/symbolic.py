"""After the walk: the symbolic batch goes into io and value_info shapes (rules 1 and 7), and IR 3
models list the constants the pass added as graph inputs."""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from onnxfit.optimizer.passes.dynamic_batch.walk import Walk

__all__ = ["list_constants_as_inputs", "make_symbolic"]


def list_constants_as_inputs(walk: Walk) -> None:
    """IR 3 models list every initializer as a graph input; the constants the pass added too."""
    if getattr(walk.graph, "ir_version", None) is None or walk.graph.ir_version >= 4:
        return
    listed = {t.name for t in walk.graph.inputs}
    walk.graph.inputs.extend(c for c in walk.added_constants if c.outputs and c.name not in listed)


def make_symbolic(walk: Walk, seeds: list[tuple[gs.Variable, int]], dim: str) -> int:
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
    touched = walk.edited() or changed
    for t in graph.tensors().values():
        if not isinstance(t, gs.Variable) or t.name in io or t.shape is None:
            continue
        if t.name in walk.axis:
            f = walk.f(t)  # rows per frame (rule 3b): the axis is the batch times f
            new = _symbolic_shape(t.shape, walk.shapes.get(t.name), walk.axis[t.name], t.name in walk.lifted,
                                  dim if f == 1 else f"{dim}*{f}")
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
