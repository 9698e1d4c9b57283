"""CUDA EP support profile (`cuda`): which nodes ONNX Runtime's CUDA EP takes, which stay on the CPU.

The CUDA EP is a kernel EP: it takes node by node, and ORT groups what it took. Two things leave
nodes on the CPU (microsoft/onnxruntime):

1. No CUDA kernel: `CUDAExecutionProvider::GetCapability` (providers/cuda/cuda_execution_provider.cc)
   looks each node up in the CUDA kernel registry by domain, op, opset and input/output types,
   and drops LSTM/GRU/RNN with attributes cuDNN lacks, ConvTranspose with asymmetric or SAME_*
   padding, and Cast to string. The registry here is ONNX Runtime's CPU registry (cuda_kernels.py)
   with the CUDA EP's differences on top (`_NO_CUDA_KERNEL`, `_CUDA_TYPES`, float16): dtypes of
   rarely used ops may differ from the real CUDA registry.
2. CPU-preferred nodes: `GetCpuPreferredNodes` (framework/fallback_cpu_capability.cc). A CUDA
   Shape or Size kernel writes its output to CPU memory. Starting from the consumers of such CPU
   tensors, in topological order, a node moves to the CPU when every input is a CPU tensor, a
   small initializer (at most 100 elements) or a graph input, none is float16/bfloat16/float8, and
   no CPU tensor feeds an input that the CUDA kernel reads from CPU memory anyway (Reshape's shape,
   Slice's starts/ends, ...: that node stays on CUDA). Its outputs become CPU tensors in turn;
   consumers of nodes that have no CUDA kernel are followed the same way. This is why shape math
   over symbolic dims (Shape -> Gather -> Unsqueeze -> Concat) runs on the CPU while CUDA is there.

The placed nodes are grouped as ORT's partitioner groups them (`ort_partition_groups`): each
border between a CUDA run and a CPU run is a device copy and a stream sync.
Checked against the real CUDA EP (onnxruntime-gpu 1.30, H200) by reports/cuda_gpu.py: see
reports/CUDA.md for the agreement per model.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field

import onnx
from onnx import TensorProto

from onnxfit.targets.cuda_kernels import KERNELS, ORT_VERSION
from onnxfit.targets.openvino import ort_topological_order
from onnxfit.targets.support import GraphFacts, NodeFacts, Profile, Verdict
from onnxfit.versions import Version

__all__ = ["CUDA", "HOST_OUTPUT_OPS", "KernelTable", "cpu_preferred_nodes", "host_memory_inputs"]

EP = "CUDAExecutionProvider"

# Inputs a CUDA kernel reads from CPU memory (KernelDefBuilder InputMemoryType(OrtMemTypeCPUInput, i)),
# by op and the opset the form started at. A CPU tensor there is no reason to move the node.
_CPU_INPUTS: dict[str, tuple[tuple[int, frozenset[int]], ...]] = {
    "Reshape": ((5, frozenset({1})),),
    "Expand": ((8, frozenset({1})),),
    "Tile": ((6, frozenset({1})),),
    "Slice": ((10, frozenset({1, 2, 3, 4})),),
    "Squeeze": ((13, frozenset({1})),),
    "Unsqueeze": ((13, frozenset({1})),),
    "ConstantOfShape": ((9, frozenset({0})),),
    "Range": ((11, frozenset({0, 1, 2})),),
    "Upsample": ((9, frozenset({1})),),
    "Resize": ((10, frozenset({1})), (11, frozenset({1, 2, 3}))),
    "TopK": ((10, frozenset({1})),),
    "Pad": ((11, frozenset({1, 2, 3})),),
    "Split": ((13, frozenset({1})),),
    "ReduceSum": ((13, frozenset({1})),),
    "OneHot": ((9, frozenset({1})),),
    "NonMaxSuppression": ((10, frozenset({2, 3, 4})),),
    "Clip": ((11, frozenset({1, 2})),),
    "Dropout": ((12, frozenset({1, 2})),),
    "CumSum": ((11, frozenset({1})),),
    "Trilu": ((14, frozenset({1})),),
    "If": ((1, frozenset({0})),),
    "Loop": ((1, frozenset({0, 1})),),
    "LSTM": ((7, frozenset({4})),),
    "GRU": ((7, frozenset({4})),),
    "RNN": ((7, frozenset({4})),),
}
for _reduce in ("ReduceMax", "ReduceMin", "ReduceMean", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum",
                "ReduceLogSumExp", "ReduceSumSquare"):
    _CPU_INPUTS[_reduce] = ((18, frozenset({1})),)

# The registry in cuda_kernels.py is the CPU EP's (onnxruntime's Python listing of kernel defs
# crashes in onnxruntime-gpu builds whose TensorRT library is absent, so the CUDA EP's own list
# cannot be dumped). What the CUDA EP registers differently, from cuda_execution_provider.cc's
# registration list and the GPU run of reports/cuda_gpu.py:
# - no kernel at all for these ops (the quantized ops of dynamic quantization among them);
_NO_CUDA_KERNEL = frozenset({
    "DynamicQuantizeLinear", "ConvInteger", "QLinearConv", "QLinearMatMul", "Unique", "Det", "MaxRoiPool",
    "GlobalLpPool", "LpNormalization", "MaxUnpool", "ImageDecoder", "StringNormalizer", "TfIdfVectorizer",
    "RegexFullMatch", "StringConcat", "StringSplit", "com.microsoft:DynamicQuantizeLSTM",
    "com.microsoft:DynamicQuantizeMatMul", "com.microsoft:MatMulIntegerToFloat", "com.microsoft:QLinearAdd",
    "com.microsoft:QLinearMul", "com.microsoft:QLinearConcat", "com.microsoft:QLinearSigmoid",
    "com.microsoft:QLinearLeakyRelu", "com.microsoft:QLinearAveragePool", "com.microsoft:QLinearGlobalAveragePool",
    "com.microsoft:NhwcMaxPool", "com.microsoft:FusedGemm",
})
_NO_CUDA_DOMAINS = frozenset({"ai.onnx.ml"})
# - narrower types: MatMulInteger on int8 only;
_CUDA_TYPES = {("", "MatMulInteger"): {"T1": frozenset({TensorProto.INT8}), "T2": frozenset({TensorProto.INT8})}}
# - float16 wherever float is taken (the CUDA EP registers float, double and MLFloat16 together).

# Kernels that write an output to CPU memory (OutputMemoryType(OrtMemTypeCPUOutput, 0)).
HOST_OUTPUT_OPS = frozenset({"Shape", "Size"})

_SMALL_INITIALIZER = 100  # elements; fallback_cpu_capability.cc kSmallInitializerThreshold
_HALF_TYPES = frozenset({
    TensorProto.FLOAT16, TensorProto.BFLOAT16, TensorProto.FLOAT8E4M3FN, TensorProto.FLOAT8E4M3FNUZ,
    TensorProto.FLOAT8E5M2, TensorProto.FLOAT8E5M2FNUZ,
})


# ------------------------------------------------------------------------------ kernel table


@dataclass(frozen=True)
class Kernel:
    start: int
    end: int  # inclusive; a large number for "and later"
    types: dict[str, frozenset[int]]  # type constraint name -> dtypes


class KernelTable:
    """A kernel registry as data: `(domain, op) -> [Kernel]`, parsed from cuda_kernels.py's text.

    Line format: ``[domain:]Op start[-end] T=float,double T1=int64`` (no end: and later).
    """

    def __init__(self, text: str):
        self.kernels: dict[tuple[str, str], list[Kernel]] = {}
        for line in text.strip().splitlines():
            op_text, versions, *constraints = line.split()
            domain, _, op = op_text.rpartition(":")
            start, _, end = versions.partition("-")
            types = {}
            for constraint in constraints:
                name, _, names = constraint.partition("=")
                types[name] = frozenset(_dtype(t) for t in names.split(",") if _dtype(t) is not None)
            kernel = Kernel(int(start), int(end) if end else 10**6, types)
            self.kernels.setdefault((domain, op), []).append(kernel)

    def lookup(self, facts: NodeFacts) -> str | None:
        """None when a kernel matches the node, else why none does (ORT's `KernelRegistry::TryFindKernel`)."""
        kernels = self.kernels.get((facts.domain, facts.op))
        if facts.domain in _NO_CUDA_DOMAINS or _qualified(facts) in _NO_CUDA_KERNEL:
            kernels = None
        if not kernels:
            return f"the CUDA EP has no kernel for {_qualified(facts)}"
        since = facts.since_version()
        if since is None:  # an op onnx does not define (com.microsoft): match on the domain's opset
            since = facts.graph.opsets.get(facts.domain, 1)
        in_range = [k for k in kernels if k.start <= since <= k.end]
        if not in_range:
            spans = ", ".join(f"{k.start}-{k.end}" if k.end < 10**6 else f"{k.start}+" for k in kernels)
            return f"the CUDA EP has no kernel for {_qualified(facts)} opset {since} (kernels for {spans})"
        bound = _bound_types(facts)
        limits = _CUDA_TYPES.get((facts.domain, facts.op), {})
        reasons = []
        for kernel in in_range:
            reason = None
            for name, allowed in kernel.types.items():
                allowed = limits.get(name, allowed | ({TensorProto.FLOAT16} if TensorProto.FLOAT in allowed else set()))
                dtype = bound.get(name)
                if dtype is not None and dtype not in allowed:
                    names = ", ".join(sorted(_dtype_name(t) for t in allowed))
                    reason = f"{name}={_dtype_name(dtype)} has no CUDA kernel (CUDA takes {names})"
                    break
            if reason is None:
                return None
            reasons.append(reason)
        return f"{_qualified(facts)}: {reasons[0]}"


def _dtype(name: str) -> int | None:
    try:
        return TensorProto.DataType.Value(name.upper())
    except ValueError:
        return None  # seq(...), optional(...): not a tensor type a node of the graph carries


def _dtype_name(dtype: int) -> str:
    return TensorProto.DataType.Name(dtype).lower()


def _qualified(facts: NodeFacts) -> str:
    return f"{facts.domain}:{facts.op}" if facts.domain else facts.op


def _bound_types(facts: NodeFacts) -> dict[str, int]:
    """Type constraint name -> the dtype the node binds to it (first argument that carries it)."""
    try:
        schema = onnx.defs.get_schema(facts.op, facts.graph.opsets.get(facts.domain, 1), facts.domain)
    except onnx.defs.SchemaError:
        return {}
    bound: dict[str, int] = {}
    for params, names in ((schema.inputs, list(facts.node.input)), (schema.outputs, list(facts.node.output))):
        for i, name in enumerate(names):
            if not name or not params:
                continue
            param = params[min(i, len(params) - 1)]
            if i >= len(params) and param.option != onnx.defs.OpSchema.FormalParameterOption.Variadic:
                continue
            dtype = facts.graph.dtype(name)
            if dtype is not None:
                bound.setdefault(param.type_str, dtype)
    return bound


# ------------------------------------------------------------------- GetCapability special cases


def _rnn_reason(facts: NodeFacts) -> str | None:
    """cuDNN RNNs: default activations only, no clip/alpha/beta, LSTM without peepholes or input_forget."""
    defaults = {"LSTM": ("sigmoid", "tanh", "tanh") * 2, "GRU": ("sigmoid", "tanh") * 2, "RNN": ("tanh",) * 2}[facts.op]
    for name in ("activation_alpha", "activation_beta", "clip"):
        if name in facts.attrs:
            return f"{facts.op} with '{name}' runs on the CPU (cuDNN has no such option)"
    activations = [a.decode() if isinstance(a, bytes) else a for a in facts.attrs.get("activations", [])]
    for position, activation in enumerate(activations):
        if position >= len(defaults) or activation.lower() != defaults[position]:
            return f"{facts.op} activation '{activation}' runs on the CPU (cuDNN takes the defaults only)"
    if facts.op == "LSTM" and facts.attr("input_forget", 0):
        return "LSTM input_forget=1 runs on the CPU"
    if facts.op == "LSTM" and facts.input(7):
        return "LSTM with peepholes runs on the CPU"
    if facts.op == "GRU" and facts.attr("linear_before_reset", 0) != 1:
        return "GRU linear_before_reset=0 runs on the CPU (cuDNN computes linear_before_reset=1)"
    return None


def _conv_transpose_reason(facts: NodeFacts) -> str | None:
    pads = list(facts.attr("pads", []))
    half = len(pads) // 2
    if pads[:half] != pads[half:]:
        return f"ConvTranspose with asymmetric pads {pads} runs on the CPU"
    if facts.attr("auto_pad", "NOTSET") in ("SAME_UPPER", "SAME_LOWER"):
        return "ConvTranspose with auto_pad SAME_* runs on the CPU (the pads may be asymmetric)"
    return None


def _cast_reason(facts: NodeFacts) -> str | None:
    return "Cast to string runs on the CPU" if facts.attr("to") == TensorProto.STRING else None


_SPECIAL = {"LSTM": _rnn_reason, "GRU": _rnn_reason, "RNN": _rnn_reason,
            "ConvTranspose": _conv_transpose_reason, "Cast": _cast_reason}


# ---------------------------------------------------------------------------- CPU-preferred


def host_memory_inputs(facts: NodeFacts) -> frozenset[int]:
    """Input positions the node's CUDA kernel reads from host memory (Reshape's shape, ...)."""
    forms = _CPU_INPUTS.get(facts.op) if not facts.domain else None
    if not forms:
        return frozenset()
    since = facts.since_version() or 0
    chosen = frozenset()
    for start, indices in forms:
        if since >= start:
            chosen = indices
    return chosen


def _is_small_initializer(graph: GraphFacts, name: str) -> bool:
    tensor = graph.initializers.get(name)
    if tensor is None:
        return False
    size = 1
    for dim in tensor.dims:
        size *= dim
    return size <= _SMALL_INITIALIZER


def cpu_preferred_nodes(graph: GraphFacts, on_cuda: Sequence[bool]) -> set[int]:
    """`GetCpuPreferredNodes`: nodes with a CUDA kernel that ORT still runs on the CPU."""
    order = {index: position for position, index in enumerate(ort_topological_order(graph))}
    candidates: list[tuple[int, int]] = []
    cpu_tensors: set[str] = set()

    def push_consumers(index: int) -> None:
        for consumer in graph.consumers[index]:
            heapq.heappush(candidates, (order[consumer], consumer))

    for index, node in enumerate(graph.nodes):
        if on_cuda[index] and node.op_type in HOST_OUTPUT_OPS and not node.domain:
            cpu_tensors.update(name for name in node.output if name)
            push_consumers(index)
    graph_inputs = set(graph.graph_inputs)
    visited: set[int] = set()
    cpu_nodes: set[int] = set()
    while candidates:
        _, index = heapq.heappop(candidates)
        if index in visited:
            continue
        visited.add(index)
        node = graph.nodes[index]
        if not on_cuda[index]:
            # Left to the CPU already: its outputs are CPU tensors too.
            cpu_tensors.update(name for name in node.output if name)
            push_consumers(index)
            continue
        facts = graph.node_facts(index)
        cpu_inputs = host_memory_inputs(facts)
        place_on_cpu = True
        for position, name in enumerate(node.input):
            if not name:
                continue
            if graph.dtype(name) in _HALF_TYPES:
                place_on_cpu = False
                break
            if _is_small_initializer(graph, name) or name in graph_inputs:
                continue
            if name not in cpu_tensors or position in cpu_inputs:
                place_on_cpu = False
                break
        if place_on_cpu:
            cpu_nodes.add(index)
            cpu_tensors.update(name for name in node.output if name)
            push_consumers(index)
    return cpu_nodes


# ------------------------------------------------------------------------------- the profile

_CPU_PREFERRED = ("computes on CPU tensors only (shape math after Shape/Size): ORT keeps it on the CPU "
                  "(fallback_cpu_capability.cc)")


@dataclass(frozen=True)
class KernelProfile(Profile):
    """A kernel EP: node support from its kernel registry, then ORT's CPU-preferred pass."""

    table: KernelTable | None = field(default=None, compare=False)
    table_version: str = ""

    def judge(self, facts: NodeFacts, version: Version) -> Verdict:
        reason = self.table.lookup(facts)
        if reason is None and not facts.domain and facts.op in _SPECIAL:
            reason = _SPECIAL[facts.op](facts)
        return Verdict(facts.index, facts.name, _qualified(facts), not reason, reason or "")

    def judge_graph(self, graph: GraphFacts, version: Version) -> list[Verdict]:
        verdicts = [self.judge(graph.node_facts(i), version) for i in range(len(graph.nodes))]
        if not graph.nodes:
            return verdicts
        moved = cpu_preferred_nodes(graph, [v.supported for v in verdicts])
        return [Verdict(v.index, v.node, v.op, False, _CPU_PREFERRED) if v.index in moved else v for v in verdicts]


CUDA = KernelProfile(
    name="CUDA",
    ep=EP,
    rules=(),
    description=f"CUDA EP (onnxruntime {ORT_VERSION} kernel registry with the CUDA EP's gaps)",
    table=KernelTable(KERNELS),
    table_version=ORT_VERSION,
)
