"""One step of the batch walk: the rule for each op of the batch-op table, and the visit that applies it.

Every op in ``onnxfit.batch_ops.BATCH_OPS`` has a rule here (a test holds the two together); an op
outside the table has none, and the walk refuses it naming the node.
"""

from __future__ import annotations

from collections.abc import Callable

import onnx_graphsurgeon as gs

from onnxfit.batch_ops import BATCH_OPS, Flow
from onnxfit.errors import OnnxfitError, node_label
from onnxfit.optimizer.passes.dynamic_batch.axis_rules import AXIS_RULES
from onnxfit.optimizer.passes.dynamic_batch.frame_rules import FRAME_RULES
from onnxfit.optimizer.passes.dynamic_batch.reshape_rules import RESHAPE_RULES
from onnxfit.optimizer.passes.dynamic_batch.walk import (
    AXIS_FORMS,
    Walk,
    absent,
    check_subgraphs,
    mixes,
    shift_axes,
)

__all__ = ["RULES", "visit"]

# op -> rule: takes the node, repairs it where needed, returns each output's batch axis (None: unbatched).
RULES: dict[str, Callable[[Walk, gs.Node], list[int | None]]] = {**FRAME_RULES, **AXIS_RULES, **RESHAPE_RULES}
# Rules that say themselves how many rows per frame their output holds; after any other op a
# batch axis holding rows (rule 3b) holds as many (the rules refuse what would mix them).
ROW_SETTERS = {"Reshape", "Flatten"}


def visit(walk: Walk, node: gs.Node) -> None:
    """Follow the batch through ``node`` (in topological order), or raise naming it."""
    check_subgraphs(walk, node)
    if all(walk.b(t) is None for t in node.inputs):
        if any(not absent(t) and t.name in walk.derived for t in node.inputs):
            walk.derived.update(o.name for o in node.outputs)
        return
    table = BATCH_OPS.get(node.op) if node.domain in (None, "", "ai.onnx") else None
    if table is not None and table.flow is Flow.SHAPE:
        walk.derived.update(o.name for o in node.outputs)
        return
    rule = RULES.get(node.op) if table is not None else None
    if rule is None:
        raise OnnxfitError(f"node '{node_label(node)}' ({node.op}): no batch rule for {node.op}; "
                           "the batch cannot be made dynamic")
    lifted_in = [t for t in node.inputs if not absent(t) and t.name in walk.lifted]
    rows = {walk.f(t) for t in node.inputs if walk.b(t) is not None}
    if len(rows) > 1:
        raise mixes(node, "of tensors holding different numbers of rows per frame "
                          f"({', '.join(map(str, sorted(rows)))}) on their batch axes")
    (f,) = rows
    if lifted_in:
        shift_axes(walk, node)
    axes = rule(walk, node)
    for out, axis in zip(node.outputs, axes):
        if axis is None:
            continue
        walk.axis[out.name] = axis
        if lifted_in and node.op in AXIS_FORMS and node.op != "Flatten":
            walk.lifted.add(out.name)
        if f > 1 and node.op not in ROW_SETTERS:
            walk.rows[out.name] = f  # a per-row op: each row stays in its frame (rule 3b)
    by = frozenset().union(*(walk.lifted_by.get(t.name, frozenset()) for t in lifted_in))
    for out in node.outputs:
        if out.name in walk.lifted and out.name not in walk.lifted_by:
            walk.lifted_by[out.name] = by or frozenset([node.outputs[0].name])
