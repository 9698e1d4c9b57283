"""matmul-add-to-gemm: a 2-D MatMul with constant weights followed by a constant bias Add -> Gemm.

Why: Paddle2ONNX and torch exports of Linear layers on 2-D inputs write ``MatMul`` then ``Add``
(fsmn_vad: 8, ppocr_v4_rec: 9); ``Gemm`` computes ``A @ B + C`` in one node, which every EP takes.
Rules:

1. Matched at the Add; one operand is written by a MatMul whose output only this Add reads (no
   graph output), the other is a constant bias.
2. The MatMul's first input has rank 2 (declared, or the target of the Reshape writing it), its
   second is a constant of rank 2; the bias is ``[N]``, ``[1, N]`` or one value, of the same float
   dtype (Gemm's C broadcasts the same way).
3. The MatMul becomes ``Gemm(A, B, C)`` writing the Add's output; the Add goes.
Not exact: Gemm adds the bias inside the kernel; float32 within 1e-5 relative (ONNX Runtime's own
level-1 MatMulAddFusion does the same at load time on the CPU EP). ``--exact`` leaves it out.
"""

from __future__ import annotations

import onnx_graphsurgeon as gs

from onnxfit.optimizer.edits import bypass, bypass_blocked, declared_dtype, producer
from onnxfit.optimizer.pipeline import register_pass
from onnxfit.optimizer.rewrite import MatchContext, RewriteRule

__all__ = ["MatMulAddToGemmPass"]


@register_pass
class MatMulAddToGemmPass(RewriteRule):
    name = "matmul-add-to-gemm"
    version = 1
    op = "Add"
    min_opset = 7  # Gemm broadcasts C
    fixpoint = True
    exact = False

    def match(self, node: gs.Node, ctx: MatchContext) -> tuple[gs.Node, gs.Constant] | None:
        if len(node.inputs) != 2:
            return None
        for side in (0, 1):
            matmul, bias = producer(node.inputs[side]), node.inputs[1 - side]
            if matmul is None or matmul.op != "MatMul" or not isinstance(bias, gs.Constant):
                continue
            a, b, out = matmul.inputs[0], matmul.inputs[1], matmul.outputs[0]
            if not isinstance(b, gs.Constant) or len(b.shape) != 2 or _rank(a) != 2:
                continue
            if len(out.outputs) != 1 or id(out) in ctx.graph_outputs:
                continue
            if declared_dtype(b) is None or declared_dtype(bias) != declared_dtype(b) or declared_dtype(b).kind != "f":
                continue
            n = int(b.shape[1])
            if tuple(bias.shape) not in ((), (n,), (1, n), (1,)):
                continue
            if bypass_blocked(ctx.graph, node, out, ctx.graph_outputs) is not None:
                continue
            return matmul, bias
        return None

    def rewrite(self, graph: gs.Graph, node: gs.Node, plan: tuple[gs.Node, gs.Constant], ctx: MatchContext) -> None:
        matmul, bias = plan
        matmul.op = "Gemm"
        matmul.inputs.append(bias)
        bypass(graph, node, matmul.outputs[0], ctx.graph_outputs)


def _rank(tensor: gs.Tensor) -> int | None:
    """The tensor's rank: declared, or the length of the constant target of the Reshape writing it."""
    if tensor.shape is not None:
        return len(tensor.shape)
    node = producer(tensor)
    if node is not None and node.op == "Reshape" and isinstance(node.inputs[1], gs.Constant):
        return int(node.inputs[1].shape[0]) if len(node.inputs[1].shape) == 1 else None
    return None
