"""fold-batchnorm: inference BatchNormalization folded into the op before it, or into Mul + Add.

CoreML's MLProgram format has no BatchNormalization builder (NeuralNetwork has one, 4-D only),
and ONNX Runtime fuses BatchNormalization only into a Conv with constant weights: a BN after a
ConvTranspose, a Gemm, an Add or a Concat, or after a Conv whose weights are graph inputs, cuts
the graph. In inference a BN is ``y = x * a + b`` per channel (axis 1), with
``a = scale / sqrt(var + epsilon)`` and ``b = bias - mean * a``. Rules:
1. only inference BNs: ``training_mode`` 0 (opset 14+), and no statistics output in use; every
   opset form from 7 on (``spatial``, ``momentum``, ``epsilon``; opset 15's scale/bias and
   mean/var dtypes that differ from the input's); scale, bias, mean and var must be constant;
2. folded into a preceding Conv, ConvTranspose or Gemm whose output feeds only this BN and whose
   weights (and bias) are constant (initializers, Constant nodes, folded constants): weights and bias are rescaled once, in float64, and cast back
   to the weight dtype. Conv scales W's axis 0; ConvTranspose the output channels of W's axis 1
   within each of its ``group`` blocks; Gemm the output-feature axis of B (axis 1, or 0 under
   ``transB``), and its C becomes ``beta * C * a + b`` with beta 1;
3. any other inference BN on an input of known rank >= 2 that the target EP does not run itself
   (its profile; the CPU EP runs every BN) becomes Mul + Add with constant per-channel tensors
   shaped [C, 1, ...] to broadcast on axis 1 (``spatial=0``: the per-activation [C, D1, ...]
   statistics as they are): one node more, where the EP would otherwise leave a CPU island;
4. left alone and reported in ``skipped``: training BNs, statistics computed at run time,
   non-float types and an input rank that is not known (neither from shapes nor from a Conv,
   ConvTranspose or Gemm making the input).
Not bit-exact: the rounding of ``x * a + b`` differs from ONNX Runtime's BN kernel; float32
outputs agree within rtol/atol 1e-5 on unit-scale data (the tests' tolerance). The BN output keeps
its tensor (name and Variable). BNs inside If/Loop/Scan bodies are rewritten too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from onnxfit.errors import node_label
from onnxfit.optimizer.edits import constant_array
from onnxfit.optimizer import nodes
from onnxfit.optimizer.constants import constant_value
from onnxfit.graphs import iter_graphs
from onnxfit.optimizer.pipeline import PassContext, PassReport, register_pass
from onnxfit.optimizer.rewrite import DEFAULT_DOMAINS, MatchContext, Skip, is_omitted

__all__ = ["Affine", "FoldBatchNormPass", "Skip"]

log = logging.getLogger(__name__)

_FLOATS = (np.float16, np.float32, np.float64)
_PRODUCERS = ("Conv", "ConvTranspose", "Gemm")


@dataclass(frozen=True)
class Affine:
    """A decoded inference BN: ``y = x * scale + shift``, in float64, cast to ``dtype`` when written.

    ``scale`` and ``shift`` have shape [C] (per channel), or [C, D1, ...] for ``spatial=0``.
    """

    scale: np.ndarray
    shift: np.ndarray
    dtype: np.dtype

    @property
    def per_channel(self) -> bool:
        return self.scale.ndim == 1


@register_pass
class FoldBatchNormPass:
    name = "fold-batchnorm"
    version = 3
    exact = False  # float32 within 1e-5 relative (rule above); --exact leaves it out

    def run(self, graph: gs.Graph, ctx: PassContext) -> PassReport:
        report = PassReport(self.name, changed=False)
        graph_outputs = {id(t) for g in iter_graphs(graph) for t in g.outputs}
        mctx = MatchContext(ctx, graph)  # asks the target's profile about BNs left after rule 2
        for g in iter_graphs(graph):
            own = {id(n) for n in g.nodes}
            for node in [n for n in g.nodes if n.op == "BatchNormalization" and n.domain in DEFAULT_DOMAINS]:
                affine = _matches(node, ctx.opset, graph_outputs)
                if isinstance(affine, Skip):
                    report.skipped.append(f"BatchNormalization '{node_label(node)}': {affine.reason}")
                    log.debug("fold-batchnorm skips '%s': %s", node_label(node), affine.reason)
                    continue
                producer = _foldable_producer(node, affine, graph_outputs, own)
                if producer is not None and _fold_into(g, producer, affine, ctx.opset):
                    _bypass(node, producer)
                    g.nodes.remove(node)
                elif mctx.target_runs_as(node, "BatchNormalization"):
                    report.notes.append(f"BatchNormalization '{node_label(node)}' left as is: the target EP runs it")
                    continue
                else:
                    skip = _to_mul_add(g, node, affine, ctx.opset)
                    if skip is not None:
                        report.skipped.append(f"BatchNormalization '{node_label(node)}': {skip.reason}")
                        continue
                report.rewritten += 1
                report.changed = True
        return report


# ------------------------------------------------------------------------------------- decoding

def _matches(node: gs.Node, opset: int, graph_outputs: set[int]) -> Affine | Skip:
    """Decode every inference BN form (opsets 7, 9, 14, 15) into an Affine, or say why not."""
    if opset < 7:
        return Skip(f"opset {opset} form (is_test, consumed_inputs) is not handled")
    if int(node.attrs.get("training_mode", 0)):
        return Skip("training_mode=1 normalizes with the batch's own statistics")
    for extra in node.outputs[1:]:
        if extra.name and (extra.outputs or id(extra) in graph_outputs):
            return Skip(f"its statistics output '{extra.name}' is used")
    if len(node.inputs) != 5:
        return Skip(f"{len(node.inputs)} inputs instead of 5")
    stats = [_values(t, opset) for t in node.inputs[1:]]
    names = ("scale", "bias", "mean", "var")
    for name, tensor, value in zip(names, node.inputs[1:], stats):
        if value is None:
            return Skip(f"{name} '{tensor.name}' is not a constant")
    dtype = _input_dtype(node, opset, stats[0].dtype)
    if dtype is None:
        return Skip("the input's element type is not known")
    if not _is_float(dtype) or not all(_is_float(s.dtype) for s in stats):
        return Skip(f"element type {dtype} is not float16, float32 or float64")
    scale, bias, mean, var = (s.astype(np.float64) for s in stats)
    if len({s.shape for s in (scale, bias, mean, var)}) != 1:
        return Skip(f"scale, bias, mean and var shapes differ: {[list(s.shape) for s in (scale, bias, mean, var)]}")
    spatial = int(node.attrs.get("spatial", 1)) if opset < 9 else 1
    if spatial and scale.ndim != 1:
        return Skip(f"statistics of shape {list(scale.shape)} are not per channel")
    a = scale / np.sqrt(var + float(node.attrs.get("epsilon", 1e-5)))
    return Affine(scale=a, shift=bias - mean * a, dtype=np.dtype(dtype))


def _input_dtype(node: gs.Node, opset: int, stats_dtype: np.dtype):
    for tensor in (node.inputs[0], node.outputs[0]):
        if tensor.dtype is not None:
            return tensor.dtype
    # Before opset 15 scale shares the input's type T; from 15 on it may differ.
    return stats_dtype if opset < 15 else None


def _is_float(dtype) -> bool:
    """float16/32/64; graph-surgeon gives types numpy lacks (bfloat16) as onnx enum values."""
    try:
        return np.dtype(dtype) in _FLOATS
    except TypeError:
        return False


def _values(tensor: gs.Tensor, opset: int) -> np.ndarray | None:
    """A constant's values, weights too (constant_value stops at shape-sized tensors)."""
    if isinstance(tensor, gs.Constant):
        return constant_array(tensor)
    return constant_value(tensor, opset)


# -------------------------------------------------------------------------------------- folding

def _foldable_producer(node: gs.Node, affine: Affine, graph_outputs: set[int], own: set[int]) -> gs.Node | None:
    """The Conv / ConvTranspose / Gemm of this graph whose only use is this BN, if any."""
    x = node.inputs[0]
    if not affine.per_channel or len(x.inputs) != 1 or len(x.outputs) != 1 or id(x) in graph_outputs:
        return None
    producer = x.inputs[0]
    if producer.op not in _PRODUCERS or producer.domain not in DEFAULT_DOMAINS or id(producer) not in own:
        return None
    return producer


def _fold_into(graph: gs.Graph, producer: gs.Node, affine: Affine, opset: int) -> bool:
    """Rescale the producer's weights and bias; False (graph untouched) when they do not allow it."""
    weight = producer.inputs[1]
    w = _values(weight, opset)  # initializer or Constant node (Paddle2ONNX writes weights as those)
    has_bias = len(producer.inputs) > 2 and not is_omitted(producer.inputs[2])
    bias = _values(producer.inputs[2], opset) if has_bias else None
    if w is None or not _is_float(w.dtype) or (has_bias and bias is None):
        return False
    a, b = affine.scale, affine.shift
    if producer.op == "Gemm":
        trans_b = int(producer.attrs.get("transB", 0))
        if w.ndim != 2 or w.shape[0 if trans_b else 1] != a.size:
            return False
        new_w = w * (a[:, None] if trans_b else a[None, :])
        beta = float(producer.attrs.get("beta", 1.0))
        new_b = (beta * bias.astype(np.float64) * a + b) if has_bias else b
        producer.attrs["beta"] = 1.0
    else:
        group = int(producer.attrs.get("group", 1))
        if producer.op == "Conv":
            if w.ndim < 3 or w.shape[0] != a.size:
                return False
            new_w = w * a.reshape((-1,) + (1,) * (w.ndim - 1))
        else:  # ConvTranspose: W is [C_in, M / group, k...]; output channel g * (M / group) + j
            if w.ndim < 3 or w.shape[0] % group or group * w.shape[1] != a.size:
                return False
            blocks = w.reshape((group, w.shape[0] // group, w.shape[1]) + w.shape[2:])
            new_w = (blocks * a.reshape((group, 1, w.shape[1]) + (1,) * (w.ndim - 2))).reshape(w.shape)
        new_b = (bias.astype(np.float64) * a + b) if has_bias else b
    base = producer.name or "bn_folded"
    producer.inputs[1] = gs.Constant(nodes.unique_name(graph, f"{weight.name}_bn"), new_w.astype(w.dtype))
    bias_const = gs.Constant(nodes.unique_name(graph, f"{base}_bias_bn"), np.asarray(new_b).astype(w.dtype))
    if has_bias:
        producer.inputs[2] = bias_const
    else:
        producer.inputs.append(bias_const)
    return True


def _bypass(node: gs.Node, producer: gs.Node) -> None:
    """The producer writes the BN's output tensor itself; the BN is detached."""
    output = node.outputs[0]
    node.inputs.clear()
    node.outputs.clear()
    producer.outputs[0] = output


def _rank(x: gs.Tensor, output: gs.Tensor, opset: int) -> int | None:
    """The BN input's rank: from its shape or the output's, else from the op that makes it."""
    for tensor in (x, output):
        if tensor.shape is not None:
            return len(tensor.shape)
    producer = x.inputs[0] if len(x.inputs) == 1 else None
    if producer is not None and producer.op in ("Conv", "ConvTranspose"):
        weight = producer.inputs[1]  # the output has the weight's rank: [N, M, spatial...]
        if weight.shape is not None:
            return len(weight.shape)
        value = _values(weight, opset)
        return None if value is None else value.ndim
    if producer is not None and producer.op == "Gemm":
        return 2
    return None


def _to_mul_add(graph: gs.Graph, node: gs.Node, affine: Affine, opset: int) -> Skip | None:
    x, output = node.inputs[0], node.outputs[0]
    rank = _rank(x, output, opset)
    if rank is None:
        return Skip("the input rank is not known, so the per-channel constants cannot be shaped")
    if rank < 2:
        return Skip(f"input of rank {rank} has no channel axis")
    if affine.per_channel:
        coefficient_shape = (affine.scale.size,) + (1,) * (rank - 2)
    elif affine.scale.ndim == rank - 1:
        coefficient_shape = affine.scale.shape
    else:
        return Skip(f"per-activation statistics of shape {list(affine.scale.shape)} do not fit rank {rank}")
    base = node.name or "batchnorm"
    scale = gs.Constant(nodes.unique_name(graph, f"{base}_scale"), affine.scale.reshape(coefficient_shape).astype(affine.dtype))
    shift = gs.Constant(nodes.unique_name(graph, f"{base}_shift"), affine.shift.reshape(coefficient_shape).astype(affine.dtype))
    node.inputs.clear()
    node.outputs.clear()
    graph.nodes.remove(node)
    scaled = gs.Variable(nodes.unique_name(graph, f"{base}_scaled"), dtype=output.dtype, shape=output.shape)
    nodes.add_node(graph, "Mul", f"{base}_mul", [x, scale], outputs=[scaled])
    nodes.add_node(graph, "Add", f"{base}_add", [scaled, shift], outputs=[output])
    return None
