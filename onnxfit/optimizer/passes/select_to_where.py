"""select-to-where: arithmetic that spells a select (``c*a + (1-c)*b``) becomes one ``Where``.

Why: tf2onnx lowers TensorFlow's ``select`` on integer tensors into ``Cast(c) * a + Cast(Not(c)) * b``
(six nodes: Not, two Casts, two Muls, Add), and the CoreML EP takes none of the int64 arithmetic:
FacePhys carries 200 such Casts and 60 Nots. ``Where(c, a, b)`` is one node. Rules:

1. Matched at the Add: ``Add(Mul(Cast(c), a), Mul(Cast(Not(c)), b))``, either operand order of the Add
   and of each Mul, where ``c`` is bool and the Casts go to the type of ``a`` and ``b``.
2. Integer types only: there ``1*a + 0*b`` is ``a`` exactly. In floats ``0 * inf`` is NaN, so a float
   select stays as the exporter wrote it.
3. The result must still be the Add's output shape: ``a`` and ``b`` broadcast with ``c`` as before
   (Where broadcasts the three inputs the same way Mul and Add did).
Exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs
from onnx import helper

from onnxfit.optimizer.edits import declared_dtype, producer, set_inputs
from onnxfit.optimizer.pipeline import register_pass
from onnxfit.optimizer.rewrite import MatchContext, RewriteRule

__all__ = ["SelectToWherePass"]


@dataclass(frozen=True)
class Select:
    condition: gs.Tensor
    when_true: gs.Tensor
    when_false: gs.Tensor


@register_pass
class SelectToWherePass(RewriteRule):
    name = "select-to-where"
    version = 1
    op = "Add"
    min_opset = 9  # Where
    fixpoint = True

    def match(self, node: gs.Node, ctx: MatchContext) -> Select | None:
        if len(node.inputs) != 2:
            return None
        terms = [_masked(t) for t in node.inputs]
        if None in terms:
            return None
        (cond_a, negated_a, value_a), (cond_b, negated_b, value_b) = terms
        if negated_a == negated_b or cond_a is not cond_b:
            return None
        when_true, when_false = (value_b, value_a) if negated_a else (value_a, value_b)
        return Select(cond_a, when_true, when_false)

    def rewrite(self, graph: gs.Graph, node: gs.Node, plan: Select, ctx: MatchContext) -> None:
        node.op = "Where"
        set_inputs(node, [plan.condition, plan.when_true, plan.when_false])
        node.attrs.clear()


_BOOLEAN_OPS = frozenset({"Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Equal", "Not", "And", "Or", "Xor",
                          "IsNaN", "IsInf"})


def _is_bool(tensor: gs.Tensor) -> bool:
    """A bool tensor: its declared dtype, or the op that wrote it (exporters leave most undeclared)."""
    if declared_dtype(tensor) is not None:
        return declared_dtype(tensor) == np.bool_
    node = producer(tensor)
    return node is not None and node.op in _BOOLEAN_OPS


def _integer(onnx_type) -> bool:
    if onnx_type is None:
        return False
    return np.dtype(helper.tensor_dtype_to_np_dtype(int(onnx_type))).kind in "iu"


def _masked(tensor: gs.Tensor) -> tuple[gs.Tensor, bool, gs.Tensor] | None:
    """``Mul(Cast(m), v)`` (either order) -> (condition, whether m is Not(condition), v)."""
    mul = producer(tensor)
    if mul is None or mul.op != "Mul" or len(mul.inputs) != 2:
        return None
    for mask_side in (0, 1):
        cast = producer(mul.inputs[mask_side])
        if cast is None or cast.op != "Cast" or not _is_bool(cast.inputs[0]):
            continue
        if not _integer(cast.attrs.get("to")):
            continue  # rule 2: a float select stays
        mask = cast.inputs[0]
        value = mul.inputs[1 - mask_side]
        negation = producer(mask)
        if negation is not None and negation.op == "Not":
            return negation.inputs[0], True, value
        return mask, False, value
    return None
