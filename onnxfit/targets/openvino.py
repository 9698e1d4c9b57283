"""OpenVINO EP support profile (`openvino`, device CPU), checkable against the real EP on Linux.

Source: microsoft/onnxruntime onnxruntime/core/providers/openvino/ov_versions/
- data_ops.cc: `supported_op_mode` (the op list, "All" devices from V_2024_4 on), the dtype sets
  (`supported_types_cpu_` for run-time tensors, `supported_types_initializer_` for constants),
  the rank-0 rule (`no_dimension_supported_`), the zero-dim rule, and `op_list_` (known bad modes:
  ReduceMax on int8/uint8, Reshape with a zero dim, Unsqueeze with an input named "axes").
- capability.cc (2025 releases): if no node is unsupported the whole graph is one subgraph
  (tiny graphs of "model-only" ops excepted); otherwise the topological order is cut at each
  unsupported node (`GetPartitionedClusters`), each run is split into connected pieces
  (`GetConnectedClusters`), a one-node piece is merged into the next piece when connected to it
  or else dropped (unless it is the last piece), and a piece is dropped when a Conv or Identity
  output leaves it (that output goes to another piece/EP) or when it has no run-time inputs.
- utils.cc: `GetInputsOutputsOfCluster`.
The topological order is ORT's `GraphViewer` default: reverse DFS from the leaf nodes, inputs
visited in node-index order (graph.cc `ReverseDFSFrom` with `NodeCompare`).

This profile is validated against the real OpenVINO EP (onnxruntime-openvino 1.24.1, OpenVINO
2025.4) by tests/targets/test_openvino_fidelity.py, run in `.venv-openvino`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto

from onnxfit.errors import node_label

from onnxfit.targets.support import GraphFacts, NodeFacts, Profile, Rule, format_shape

__all__ = ["OPENVINO", "OpenVinoProfile", "dynamic_rank_if", "openvino_partition_groups", "ort_topological_order"]

EP = "OpenVINOExecutionProvider"

_SUPPORTED_OPS = """
Abs Acos Acosh AdaptiveAvgPool2d Add Affine And ArgMax ArgMin Asin Asinh Atan Atanh ATen AveragePool
BatchNormalization BitShift BitwiseAnd BitwiseNot BitwiseOr BitwiseXor BlackmanWindow Cast CastLike Ceil
Celu Clip Compress Concat Constant ConstantFill ConstantOfShape Conv ConvInteger ConvTranspose Cos Cosh
Crop CumSum DepthToSpace DequantizeLinear DFT Div Dropout DynamicQuantizeLinear Einsum Elu Equal Erf Exp
Expand EyeLike Flatten Floor Gather GatherElements GatherND Gelu Gemm GlobalAveragePool GlobalLpPool
GlobalMaxPool Greater GreaterOrEqual GridSample GroupNormalization GRU HammingWindow HardSigmoid HardSwish
Hardmax Identity If ImageScaler InstanceNormalization IsFinite IsInf IsNaN LayerNormalization LeakyRelu
Less LessOrEqual Log LogSoftmax Loop LpNormalization LRN LSTM MatMul MatMulInteger Max MaxPool MaxRoiPool
Mean MeanVarianceNormalization Min Mish Mod Mul Multinomial Neg NonMaxSuppression NonZero Not OneHot Or
Pad Pow PRelu QLinearConv QLinearMatMul QuantizeLinear RandomNormal RandomNormalLike RandomUniform
RandomUniformLike Range Reciprocal ReduceLogSum ReduceLogSumExp ReduceL1 ReduceL2 ReduceMax ReduceMean
ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize ReverseSequence RNN RoiAlign Round Scan
ScatterElements ScatterND Selu Shape Shrink Sigmoid Sign Sin Sinh Size Slice Softmax Softplus Softsign
SpaceToDepth Split Sqrt Squeeze STFT Sub Sum Tan Tanh ThresholdedRelu Tile TopK Transpose Trilu Unique
Unsqueeze Upsample Where Xor Scatter
""".split()

# Ops the EP accepts on rank-0 (scalar) run-time tensors.
_NO_DIMENSION_OK = frozenset("""
Add And Cast Ceil Clip Div DequantizeLinear Equal Expand Floor Gather Greater Identity If Less Loop Max Min
Mul Neg Pow QuantizeLinear Range ReduceMax ReduceMin ReduceProd Reshape Shape Sqrt Squeeze Sub Unsqueeze
Where
""".split())

# Ops the EP accepts on tensors with a zero-sized dim (CPU device).
_ZERO_DIM_OK = frozenset({"Expand", "Equal", "Slice", "Concat", "Shape"})

# A graph of at most three nodes led by one of these is not offloaded ("supported only in models").
_MODEL_ONLY_OPS = frozenset("""
Add Cast Celu Concat ConstantOfShape DequantizeLinear Dropout Einsum Exp Expand EyeLike GatherElements
GatherND GridSample Identity LayerNormalization Loop LSTM NonMaxSuppression NonZero Not OneHot Pad
QuantizeLinear RandomNormalLike Range ReduceMin Resize Round Shape Slice Split Tile TopK Trilu
""".split())

# `InsertNode`: supported, but cut the graph like an unsupported node.
_CUT_OPS = frozenset({"TopK", "NonZero"})

_RUNTIME_TYPES = frozenset({
    TensorProto.BOOL, TensorProto.FLOAT, TensorProto.INT32, TensorProto.INT16, TensorProto.UINT16,
    TensorProto.INT8, TensorProto.UINT8, TensorProto.INT64, TensorProto.FLOAT16, TensorProto.INT4,
    TensorProto.UINT4,
})
_INITIALIZER_TYPES = frozenset({
    TensorProto.BOOL, TensorProto.FLOAT, TensorProto.INT32, TensorProto.INT64, TensorProto.INT16,
    TensorProto.UINT16, TensorProto.FLOAT16, TensorProto.INT8, TensorProto.UINT8, TensorProto.INT4,
    TensorProto.UINT4,
})


def _dtype_name(dtype: int | None) -> str:
    return TensorProto.DataType.Name(dtype).lower() if dtype else "unknown"


def _types_and_dims(facts: NodeFacts) -> str | None:
    """data_ops.cc checks 1 and 2, over every input and output of the node."""
    graph = facts.graph
    defs = [(name, True) for name in facts.inputs if name] + [(name, False) for name in facts.node.output if name]
    for name, is_input in defs:
        constant = is_input and graph.is_const(name)
        allowed = _INITIALIZER_TYPES if constant else _RUNTIME_TYPES
        dtype = graph.dtype(name)
        if dtype is not None and dtype not in allowed:
            return f"'{name}' has dtype {_dtype_name(dtype)}, which the OpenVINO EP does not take"
        if constant:
            continue
        shape = graph.shape(name)
        if shape is None:
            continue
        if len(shape) == 0 and facts.op not in _NO_DIMENSION_OK and facts.op not in ("Identity", "Sqrt"):
            return f"'{name}' is a scalar (rank 0), which the OpenVINO EP does not take for {facts.op}"
        if 0 in shape and facts.op not in _ZERO_DIM_OK:
            return f"'{name}' has a zero-sized dim {format_shape(shape)}"
    return None


def _reduce_max_not_int8(facts: NodeFacts) -> str | None:
    if any(facts.dtype(i) in (TensorProto.INT8, TensorProto.UINT8) for i in range(len(facts.inputs))):
        return "ReduceMax on int8/uint8 is refused (output mismatch in OpenVINO)"
    return None


def _reshape_no_zero_dim(facts: NodeFacts) -> str | None:
    shape = facts.shape(1 if len(facts.inputs) > 1 else 0)
    if shape and 0 in shape:
        return "Reshape with a zero-sized dim is refused"
    return None


def _unsqueeze_axes_not_named_axes(facts: NodeFacts) -> str | None:
    # data_ops.cc matches the tensor *name*: an input called "axes" is taken for a run-time axes
    # input, which OpenVINO could not make static in old releases; the check was never relaxed.
    if "axes" in facts.inputs:
        return "Unsqueeze with an input named 'axes' is refused (data_ops.cc matches the name)"
    return None


_SPECIAL = {
    "ReduceMax": (_reduce_max_not_int8,),
    "Reshape": (_reshape_no_zero_dim,),
    "Unsqueeze": (_unsqueeze_axes_not_named_axes,),
}
_SRC = "onnxruntime/core/providers/openvino/ov_versions/data_ops.cc"


def _rules() -> tuple[Rule, ...]:
    return tuple(Rule(op, _SPECIAL.get(op, ()), source=_SRC) for op in _SUPPORTED_OPS)


# ------------------------------------------------------------------------------ grouping


def ort_topological_order(graph: GraphFacts) -> list[int]:
    """`GraphViewer`'s default order: reverse DFS from the leaves, emitting a node after its inputs.

    Leaves are pushed in node-index order and popped last-first; a node's input nodes are pushed
    highest index first so the lowest index is visited first.
    """
    leaves = [i for i in range(len(graph.nodes)) if not graph.consumers[i]]
    stack: list[tuple[int, bool]] = [(i, False) for i in leaves]
    visited = [False] * len(graph.nodes)
    order: list[int] = []
    while stack:
        index, leaving = stack.pop()
        if leaving:
            order.append(index)
            continue
        if visited[index]:
            continue
        visited[index] = True
        stack.append((index, True))
        for source in sorted(graph.producers[index], reverse=True):
            if not visited[source]:
                stack.append((source, False))
    return order


def _connected_pieces(graph: GraphFacts, run: list[int]) -> list[list[int]]:
    """`GetConnectedClusters`: split one run into pieces connected through edges inside the run."""
    remaining = list(run)
    members = set(run)
    pieces = []
    while remaining:
        piece: list[int] = []
        stack = [remaining[0]]
        while stack:
            index = stack.pop()
            if index not in members:
                continue
            members.discard(index)
            piece.append(index)
            # The C++ recursion visits input nodes, then output nodes, depth first.
            neighbours = sorted(graph.producers[index]) + sorted(graph.consumers[index])
            stack.extend(reversed(neighbours))
        remaining = [i for i in remaining if i in members]
        pieces.append(piece)
    return pieces


def _piece_io(graph: GraphFacts, piece: list[int]) -> tuple[list[str], set[str]]:
    """(run-time inputs, outputs used outside the piece or as graph outputs) of one piece."""
    members = set(piece)
    produced = {name for i in piece for name in graph.nodes[i].output if name}
    inputs: list[str] = []
    for i in piece:
        for name in graph.nodes[i].input:
            if name and name not in produced and not graph.is_const(name) and name not in inputs:
                inputs.append(name)
    outputs = set()
    for i in piece:
        for consumer in graph.consumers[i]:
            if consumer not in members:
                outputs.update(set(graph.nodes[i].output) & set(graph.nodes[consumer].input))
    outputs.update(produced & set(graph.graph_outputs))
    return inputs, outputs


def openvino_partition_groups(graph: GraphFacts, supported: Sequence[bool]) -> list[list[int]]:
    """capability.cc `GetCapability::Execute` for a graph with at least one node."""
    order = ort_topological_order(graph)
    if all(supported):
        if not graph.graph_inputs:
            return []
        if len(order) <= 3 and graph.nodes[order[0]].op_type in _MODEL_ONLY_OPS:
            return []
        first = graph.nodes[order[0]]
        if len(order) == 1 and first.op_type == "Reshape" and not graph.is_const(first.input[1]):
            return []
        return [order]
    cut = [not supported[i] or graph.nodes[i].op_type in _CUT_OPS for i in order]
    runs: list[list[int]] = [[]]
    for index, is_cut in zip(order, cut):
        if is_cut:
            runs.append([])
        else:
            runs[-1].append(index)
    pieces = [piece for run in runs if run for piece in _connected_pieces(graph, run)]
    groups = []
    for position in range(len(pieces)):
        piece = list(pieces[position])
        omit = False
        if len(piece) == 1 and graph.nodes[piece[0]].op_type != "EPContext" and position < len(pieces) - 1:
            following = set(pieces[position + 1])
            node = piece[0]
            if (graph.consumers[node] | graph.producers[node]) & following:
                pieces[position + 1].append(node)
            omit = True
        inputs, outputs = _piece_io(graph, piece)
        for i in piece:
            node = graph.nodes[i]
            if node.op_type in ("Conv", "Identity") and node.output[0] in outputs and graph.consumers[i]:
                omit = True
                break
        if not omit and inputs:
            groups.append(piece)
    return groups


# ------------------------------------------------------------------------- compile failures

DYNAMIC_RANK_IF = "onnxruntime#23757: the OpenVINO EP cannot compile If nodes whose outputs have a dynamic rank"


def dynamic_rank_if(graph: GraphFacts, groups: Sequence[Sequence[int]]) -> tuple[onnx.NodeProto, str] | None:
    """(If node, output) where the real EP would fail to compile a claimed partition, or None.

    The EP claims If nodes (data_ops.cc lists If for every device) and converts each branch into
    an OpenVINO body; the CPU plug-in then refuses a body Parameter of dynamic rank and the
    session throws (onnxruntime#23757). An If output whose rank shape inference cannot tell is
    such a Parameter. The If nodes of a claimed partition are visited in node order, each
    before its branches, the else branch before the then branch: the order in which OpenVINO
    2025.4 reports the first failing one.
    """
    types = _all_types(graph.graph)
    for index in sorted(i for group in groups for i in group):
        node = graph.nodes[index]
        condition = _static_value(graph, node.input[0]) if node.op_type == "If" and not node.domain else None
        if condition is not None and condition.size == 1:
            # OpenVINO folds an If whose condition constants and static dims fix (silero v4's
            # Equal(Shape(x)[1], 1)): only the branch taken is compiled.
            taken = "then_branch" if bool(condition.reshape(-1)[0]) else "else_branch"
            branch = next((a.g for a in node.attribute if a.name == taken), None)
            inner = (_first_dynamic_rank_if(n, types) for n in (branch.node if branch is not None else ()))
            found = next((f for f in inner if f is not None), None)
        else:
            found = _first_dynamic_rank_if(node, types)
        if found is not None:
            return found
    return None


_COMPARE = {"Equal": np.equal, "Greater": np.greater, "Less": np.less}


def _static_value(graph: GraphFacts, name: str, depth: int = 0) -> np.ndarray | None:
    """The value of a small shape-math tensor when constants and static dims fix it, else None."""
    value = graph.value(name)
    if value is not None or depth > 8 or name not in graph.producer:
        return value
    node = graph.nodes[graph.producer[name]]
    if node.domain:
        return None
    if node.op_type == "Shape":
        return _known(_dims(graph, node))
    if node.op_type == "Gather":
        index = _static_value(graph, node.input[1], depth + 1)
        source = graph.producer.get(node.input[0])
        if index is not None and source is not None and graph.nodes[source].op_type == "Shape":
            return _known(np.take(_dims(graph, graph.nodes[source]), index.astype(np.int64)))
        data = _static_value(graph, node.input[0], depth + 1)
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        return None if data is None or index is None else np.take(data, index.astype(np.int64), axis=axis)
    inputs = [_static_value(graph, i, depth + 1) for i in node.input]
    if any(i is None for i in inputs):
        return None
    if node.op_type in _COMPARE:
        return _COMPARE[node.op_type](inputs[0], inputs[1])
    if node.op_type == "Not":
        return np.logical_not(inputs[0])
    if node.op_type in ("Identity", "Squeeze", "Unsqueeze") and inputs[0].size == 1:
        return inputs[0]  # only the value is read: one element whatever its rank
    if node.op_type == "Cast":
        to = next(a.i for a in node.attribute if a.name == "to")
        return inputs[0].astype(onnx.helper.tensor_dtype_to_np_dtype(to))
    return None


def _dims(graph: GraphFacts, shape: onnx.NodeProto) -> np.ndarray:
    """What a Shape node outputs, None for each dim shape inference does not know."""
    dims = graph.shape(shape.input[0])
    if dims is None:
        return np.array([None], dtype=object)
    attrs = {a.name: a.i for a in shape.attribute}
    return np.array(dims[attrs.get("start", 0):attrs.get("end", len(dims))], dtype=object)


def _known(dims: np.ndarray) -> np.ndarray | None:
    return None if any(d is None for d in np.ravel(dims)) else np.asarray(dims, np.int64)


def _all_types(graph: onnx.GraphProto) -> dict[str, onnx.TypeProto]:
    types = {vi.name: vi.type for vi in (*graph.input, *graph.value_info, *graph.output)}
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                types.update(_all_types(attribute.g))
    return types


def _first_dynamic_rank_if(node: onnx.NodeProto, types: dict[str, onnx.TypeProto]):
    if node.op_type == "If" and not node.domain:
        for output in node.output:
            known = types.get(output)
            if known is None or not known.HasField("tensor_type") or not known.tensor_type.HasField("shape"):
                return node, output
    branches = {a.name: a.g for a in node.attribute if a.type == onnx.AttributeProto.GRAPH}
    for name in sorted(branches, key=lambda n: n != "else_branch"):
        for inner in branches[name].node:
            found = _first_dynamic_rank_if(inner, types)
            if found is not None:
                return found
    return None


@dataclass(frozen=True)
class OpenVinoProfile(Profile):
    """The OpenVINO EP profile, which also predicts the EP's known compile failures."""

    def compile_failure(self, graph: GraphFacts, groups: Sequence[Sequence[int]]) -> str | None:
        found = dynamic_rank_if(graph, groups)
        if found is None:
            return None
        node, output = found
        return (f"{EP} would fail to compile the model at node '{node_label(node)}' (If, output '{output}'): "
                f"the output has a dynamic rank ({DYNAMIC_RANK_IF})")


OPENVINO = OpenVinoProfile(
    name="OpenVINO",
    ep=EP,
    rules=_rules(),
    node_checks=(_types_and_dims,),
    group=openvino_partition_groups,
    description="OpenVINO EP, device_type CPU",
)
