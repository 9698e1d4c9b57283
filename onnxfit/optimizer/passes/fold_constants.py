"""fold-constants: Constant nodes and subgraphs computed from constants alone become weights.

Why: exporters write every attribute-like tensor as a ``Constant`` node (Paddle2ONNX: 375 on
SLANet) and weight preprocessing as nodes (a quantized model's ``Mul(scale, const)``, Caffe2-era
``ConstantOfShape`` generators, a transposed or cast weight). ONNX Runtime pays for each node at
load time, the EP builders see them one at a time, and onnxsim and onnxslim remove them. Rules:

1. A ``Constant`` node whose value is a tensor (``value``, ``value_float(s)``, ``value_int(s)``)
   becomes the tensor it holds, unless it is a graph output (its name must stay a node output).
   Sparse and string values stay nodes.
2. A default-domain node whose inputs are all constants is evaluated, once, by ONNX Runtime's CPU
   EP with graph optimizations off: the value is what the CPU EP computes at run time, bit for bit.
   Nodes with subgraphs, random ops, sequences and optionals, and QuantizeLinear /
   DequantizeLinear (EPs need the QDQ pairs to run int8 kernels) are never folded.
3. Size cap: a folded tensor is written only if it is at most ``_CAP_BYTES`` or at most the
   constants it was computed from, so a small generator that expands into a huge tensor
   (``ConstantOfShape``, ``Expand``, ``Tile``, ``Range``) stays a generator. A tensor that a compute
   op reads as its weights (Conv's W and B, Gemm's B and C, MatMul's second input, a normalization's
   scale and bias, a recurrent op's weights) is written up to ``_WEIGHT_CAP_BYTES``: every runtime
   materializes it when it loads the model (ONNX Runtime's own constant folding does), and EP
   builders take such weights only as initializers (ONNX's "light" test models generate every Conv
   weight with ``ConstantOfShape``). Only the file grows. Generators whose output the model
   declares larger than ``_EVAL_LIMIT_BYTES`` are not even evaluated.
4. Graph outputs (of the model or of an If/Loop body) keep their producing node.
5. A batch of nodes ONNX Runtime refuses to run (a type its CPU kernels lack) is folded node by node;
   a node that still fails stays, with the reason in the pass's ``skipped`` lines.
Exact: folded values are ONNX Runtime's own CPU results (the fuzz compares bit for bit).
"""

from __future__ import annotations

import logging

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from onnxfit.errors import node_label
from onnxfit.graphs import graph_outputs, iter_graphs
from onnxfit.optimizer.constants import OrtRefused, constant_node_value, node_proto, run_on_cpu
from onnxfit.optimizer.edits import constant_array, disconnect
from onnxfit.optimizer.pipeline import PassContext, PassReport, register_pass
from onnxfit.optimizer.rewrite import DEFAULT_DOMAINS, is_omitted

__all__ = ["FoldConstantsPass"]

log = logging.getLogger(__name__)

_CAP_BYTES = 256 * 1024
_WEIGHT_CAP_BYTES = 16 * 2**20
# Which inputs of a compute op are its weights (rule 3): read as initializers by the EP builders.
_WEIGHT_INPUTS = {
    "Conv": (1, 2), "ConvTranspose": (1, 2), "Gemm": (1, 2), "MatMul": (1,), "PRelu": (1,),
    "BatchNormalization": (1, 2, 3, 4), "InstanceNormalization": (1, 2), "LayerNormalization": (1, 2),
    "GRU": (1, 2, 3), "LSTM": (1, 2, 3), "RNN": (1, 2, 3),
}
_EVAL_LIMIT_BYTES = 64 * 2**20
_NEVER = frozenset({
    "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli",
    "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "If", "Loop", "Scan", "Constant",
    "Optional", "OptionalGetElement", "OptionalHasElement",
})


@register_pass
class FoldConstantsPass:
    name = "fold-constants"
    version = 2
    fixpoint = True
    exact = True

    def run(self, graph: gs.Graph, ctx: PassContext) -> PassReport:
        report = PassReport(self.name, changed=False)
        outputs = graph_outputs(graph)
        for g in iter_graphs(graph):
            report.folded += _constant_nodes(g, outputs)
        for g in iter_graphs(graph):
            folded, skipped = _fold_graph(g, ctx, outputs)
            report.folded += folded
            report.skipped += skipped
        report.changed = bool(report.folded)
        return report


def _constant_nodes(graph: gs.Graph, outputs: set[int]) -> int:
    """Rule 1: Constant nodes -> constant tensors."""
    count = 0
    for node in [n for n in graph.nodes if n.op == "Constant" and n.domain in DEFAULT_DOMAINS]:
        value = constant_node_value(node)
        out = node.outputs[0] if node.outputs else None
        if value is None or value.dtype.kind in "OUS" or out is None or id(out) in outputs or not isinstance(out, gs.Variable):
            continue
        node.outputs.clear()
        out.to_constant(value)
        count += 1
    return count


def _foldable(node: gs.Node) -> bool:
    if node.domain not in DEFAULT_DOMAINS or node.op in _NEVER or node.op.startswith(("Sequence", "Optional")):
        return False
    if node.op in ("SplitToSequence", "ConcatFromSequence"):
        return False
    return not any(isinstance(v, gs.Graph) for v in node.attrs.values())


def _fold_graph(graph: gs.Graph, ctx: PassContext, outputs: set[int]) -> tuple[int, list[str]]:
    """Rules 2-5 on one graph (its nodes are in topological order)."""
    known: set[int] = set()  # ids of tensors constant after folding
    plan: list[gs.Node] = []
    for node in graph.nodes:
        if not _foldable(node) or not node.outputs:
            continue
        if not all(is_omitted(t) or isinstance(t, gs.Constant) or id(t) in known for t in node.inputs):
            continue
        if _declared_bytes(node) > _EVAL_LIMIT_BYTES:
            continue
        plan.append(node)
        known.update(id(t) for t in node.outputs)
    if not plan:
        return 0, []
    values, skipped = _evaluate(plan, ctx)
    return _apply(plan, values, outputs), skipped


def _itemsize(dtype) -> int:
    """Bytes per element; graph-surgeon gives types numpy lacks (bfloat16, float8) as onnx enums."""
    try:
        return np.dtype(dtype).itemsize
    except TypeError:
        return 8


def _declared_bytes(node: gs.Node) -> int:
    """The largest output the model declares for ``node`` (0 where it declares none)."""
    largest = 0
    for t in node.outputs:
        if t.shape is not None and all(isinstance(d, (int, np.integer)) and d >= 0 for d in t.shape):
            itemsize = _itemsize(t.dtype) if t.dtype is not None else 8
            largest = max(largest, int(np.prod(t.shape, dtype=np.int64)) * itemsize)
    return largest


def _evaluate(plan: list[gs.Node], ctx: PassContext) -> tuple[dict[int, np.ndarray], list[str]]:
    """Tensor id -> value for every output of ``plan``, by ONNX Runtime's CPU EP (rule 2, 5)."""
    try:
        return _run(plan, ctx), []
    except OrtRefused as exc:
        log.debug("folding %d nodes at once failed (%s); one by one", len(plan), exc)
    values: dict[int, np.ndarray] = {}
    skipped = []
    for node in plan:
        if not all(is_omitted(t) or isinstance(t, gs.Constant) or id(t) in values for t in node.inputs):
            continue
        try:
            values.update(_run([node], ctx, values))
        except OrtRefused as exc:
            skipped.append(f"{node_label(node)}: ONNX Runtime cannot evaluate it ({exc})")
    return values, skipped


def _run(nodes: list[gs.Node], ctx: PassContext, known: dict[int, np.ndarray] | None = None) -> dict[int, np.ndarray]:
    known = known or {}
    produced = {id(t) for n in nodes for t in n.outputs}
    initializers: dict[str, onnx.TensorProto] = {}
    protos = []
    for node in nodes:
        for t in node.inputs:
            if is_omitted(t) or id(t) in produced or t.name in initializers:
                continue
            value = known.get(id(t))
            initializers[t.name] = onnx.numpy_helper.from_array(
                constant_array(t) if value is None else value, t.name)
        try:
            protos.append(node_proto(node, [t.name if not is_omitted(t) else "" for t in node.inputs],
                                     [t.name for t in node.outputs]))
        except ValueError as exc:
            raise OrtRefused(str(exc)) from None
    out_tensors = [t for n in nodes for t in n.outputs if t.name]
    results = run_on_cpu(protos, ctx.opset, list(initializers.values()), {}, [t.name for t in out_tensors])
    return {id(t): r for t, r in zip(out_tensors, results)}


def _apply(plan: list[gs.Node], values: dict[int, np.ndarray], outputs: set[int]) -> int:
    """Write the folded tensors that a remaining node reads (rules 3, 4); returns how many."""
    folded_nodes = {id(n) for n in plan if all(id(t) in values for t in n.outputs)}
    kept: set[int] = set()  # folded nodes that stay nodes: graph outputs, over the cap
    # A node that stays needs its inputs: a folded one is written, or stays too when over the cap.
    written = 0
    changed = True
    while changed:
        changed = False
        for node in plan:
            if id(node) not in folded_nodes or id(node) in kept:
                continue
            if any(id(t) in outputs for t in node.outputs) or not _within_cap(node, values):
                if _read_by_remaining(node, folded_nodes, kept):
                    kept.add(id(node))
                    changed = True
    for node in plan:
        if id(node) not in folded_nodes or id(node) in kept:
            continue
        if not _read_by_remaining(node, folded_nodes, kept):
            continue  # only other folded nodes read it: it goes with them
        outs = list(node.outputs)
        disconnect(node)
        for t in outs:
            t.to_constant(values[id(t)])
            written += 1
    return written


def _within_cap(node: gs.Node, values: dict[int, np.ndarray]) -> bool:
    out_bytes = max(values[id(t)].nbytes for t in node.outputs)
    in_bytes = sum(_nbytes(t, values) for t in node.inputs if not is_omitted(t))
    cap = _WEIGHT_CAP_BYTES if all(_read_as_weights(t) for t in node.outputs) else _CAP_BYTES
    return out_bytes <= max(cap, in_bytes)


def _read_as_weights(tensor: gs.Tensor) -> bool:
    """Every reader of ``tensor`` takes it as weights of a compute op (rule 3)."""
    readers = list(tensor.outputs)
    return bool(readers) and all(
        reader.domain in DEFAULT_DOMAINS
        and any(i < len(reader.inputs) and reader.inputs[i] is tensor for i in _WEIGHT_INPUTS.get(reader.op, ()))
        for reader in readers)


def _nbytes(tensor: gs.Tensor, values: dict[int, np.ndarray]) -> int:
    if id(tensor) in values:
        return values[id(tensor)].nbytes
    return int(np.prod(tensor.shape, dtype=np.int64)) * _itemsize(tensor.dtype)


def _read_by_remaining(node: gs.Node, folded: set[int], kept: set[int]) -> bool:
    """A node that is not folded away (or a graph output) reads one of ``node``'s outputs."""
    for t in node.outputs:
        for reader in t.outputs:
            if id(reader) not in folded or id(reader) in kept:
                return True
    return False
