"""dense-conv-to-gemm: a 1x1 Conv over a batch of 1x1 images -> ``Gemm`` on their ``[N, C]`` rows.

Why: tf2onnx writes a Keras Dense (or 1x1 Conv) applied to every pixel as
``Reshape([H*W, C, 1, 1]) -> Conv(1x1) -> Reshape`` (FacePhys: 12, batches of 1296, 324, 81 and 25
"images"). ONNX Runtime's CPU EP runs such a Conv image by image: on one thread the 1296-pixel one
(32 -> 64 channels, with its bias) takes 87 us where a Gemm of the same rows takes 36 us. It is a
dense layer: ``Y[n, k] = sum_c X[n, c] * W[k, c] + B[k]``. Rules:

1. Matched at a float Conv with group 1 and no padding (explicit zero pads, ``NOTSET`` or ``VALID``).
2. Its input has a static shape ``[N, C, 1, ..., 1]`` with N > 1 (one image is a matrix-vector
   product either way: no faster, so left a Conv; a symbolic N, as ``--dynamic-batch`` leaves, may
   be that one image) and C >= 8, its weight is a constant ``[K, C, 1, ..., 1]``
   and its bias, if any, a constant ``[K]``. Strides and dilations do not matter on 1x1 images.
3. The input is written by a Reshape (or Squeeze, Unsqueeze, Flatten): the rows were another
   tensor's, and the Reshape to rows merges into it. A Conv's own 1x1 feature maps (centerface at
   batch 10, 32x32 input: its last stage) stay Convs: there the Reshapes would be nodes of their
   own (centerface: 119 -> 132 nodes), for a gain not measured.
4. The target EP runs a Gemm of these operands.
5. ``Reshape(X, [N, C])`` (merged by reshape-chains into the Reshape that usually writes X),
   ``Gemm(rows, W[K, C], B, transB=1)`` and a Reshape back to ``[N, K, 1, ..., 1]`` replace it.
Not exact in general: the Gemm kernel may sum the C products in another order than the Conv kernel.
On ONNX Runtime's CPU EP at its default optimization level they agree bit for bit from C = 8 (the
blocked-channel NCHWc Conv) on every shape measured (C = 32 to 256; with optimizations off, within
1e-6); below, the Conv takes another path and one rounding differs:
FacePhys's first layer (C = 3) would move a carried state by 2.5e-4 over 300 frames, so rule 2
leaves such Convs alone. ``--exact`` leaves the pass out.
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from onnxfit.optimizer import nodes
from onnxfit.optimizer.edits import constant_array, is_reshape, producer, set_inputs
from onnxfit.optimizer.pipeline import register_pass
from onnxfit.optimizer.rewrite import MatchContext, RewriteRule, Skip, is_omitted

__all__ = ["DenseConvToGemmPass"]

_MIN_CHANNELS = 8  # rule 2: below, ONNX Runtime's CPU Conv sums the channels in another order


@register_pass
class DenseConvToGemmPass(RewriteRule):
    name = "dense-conv-to-gemm"
    version = 1
    op = "Conv"
    min_opset = 7  # Gemm broadcasts C; Reshape takes its shape as an input from opset 5
    fixpoint = True
    exact = False

    def match(self, node: gs.Node, ctx: MatchContext) -> tuple | Skip | None:
        if int(node.attrs.get("group", 1)) != 1 or not _unpadded(node):
            return None
        dtype = ctx.dtype(node.inputs[0])
        if dtype is None or dtype.kind != "f":
            return None
        shape = ctx.static_shape(node.inputs[0])
        if shape is None or len(shape) < 3 or shape[0] <= 1 or any(d != 1 for d in shape[2:]) or shape[1] < _MIN_CHANNELS:
            return None
        if not is_reshape(producer(node.inputs[0])):
            return None
        weight = _constant(node.inputs[1])
        if weight is None or weight.ndim != len(shape) or weight.shape[1] != shape[1] \
                or any(d != 1 for d in weight.shape[2:]) or weight.dtype != dtype:
            return None
        bias = None
        if len(node.inputs) > 2 and not is_omitted(node.inputs[2]):
            bias = _constant(node.inputs[2])
            if bias is None or bias.shape != (weight.shape[0],):
                return None
        n, c, k = shape[0], shape[1], weight.shape[0]
        matrix = weight.reshape(k, c)
        probe = [gs.Variable("rows_probe", dtype=dtype, shape=[n, c]), gs.Constant("weight_probe", matrix)]
        if bias is not None:
            probe.append(gs.Constant("bias_probe", bias))
        if not ctx.target_runs_as(node, "Gemm", probe):
            return Skip("the target EP takes no Gemm of these operands")
        return n, c, k, len(shape), matrix, bias

    def rewrite(self, graph: gs.Graph, node: gs.Node, plan: tuple, ctx: MatchContext) -> None:
        n, c, k, rank, matrix, bias = plan
        base = node.name or "conv"
        dtype = node.inputs[0].dtype
        rows = gs.Variable(nodes.unique_name(graph, f"{base}_rows"), dtype=dtype, shape=[n, c])
        nodes.add_node(graph, "Reshape", f"{base}_as_rows", [node.inputs[0], nodes.int64_constant(graph, f"{base}_rows_shape", [n, c])],
                       outputs=[rows])
        weight = gs.Constant(nodes.unique_name(graph, f"{base}_matrix"), np.ascontiguousarray(matrix))
        operands = [rows, weight]
        if bias is not None:
            operands.append(gs.Constant(nodes.unique_name(graph, f"{base}_bias"), np.ascontiguousarray(bias)))
        product = gs.Variable(nodes.unique_name(graph, f"{base}_product"), dtype=dtype, shape=[n, k])
        nodes.add_node(graph, "Gemm", f"{base}_gemm", operands, outputs=[product], attrs={"transB": 1})
        node.op = "Reshape"
        node.attrs.clear()
        set_inputs(node, [product, nodes.int64_constant(graph, f"{base}_image_shape", [n, k] + [1] * (rank - 2))])


def _unpadded(node: gs.Node) -> bool:
    auto_pad = node.attrs.get("auto_pad", "NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    return auto_pad in ("NOTSET", "VALID") and all(int(p) == 0 for p in node.attrs.get("pads", []))


def _constant(tensor: gs.Tensor) -> np.ndarray | None:
    """A weight's value: initializers of any size, read where lazy_io left them (a Constant node's
    output is folded by then)."""
    return constant_array(tensor) if isinstance(tensor, gs.Constant) else None
