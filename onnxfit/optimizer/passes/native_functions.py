"""native-functions: element-wise approximations of exp, sin, cos, tanh, sigmoid, erf -> the ONNX op.

Why: models written for NPUs that lacked transcendental ops compute them by hand: FacePhys's
``exp`` is a range reduction (``Floor(x * log2(e) + 0.5)``), a degree-5 polynomial and a 40-entry
``2^k`` table read by ``Gather`` after integer clamping (about 45 nodes); its ``sin`` is a quadrant
reduction with four Floors and two polynomials. Every node is a kernel launch, and the Floors,
comparisons and int64 arithmetic are what the CoreML EP refuses. ONNX has these functions as
single ops. Rules:

1. Start at a marker that no polynomial needs (Floor, Ceil, Round, Mod, a Gather from a constant
   1-D table). Candidate inputs ``x``: the marker's input and the values it is computed from through
   nodes with a single non-constant input (the range reduction's ``x * c + 0.5``).
2. The region is every element-wise node computed from ``x`` alone (constants aside); a candidate
   output ``y`` is a value of the region whose computation reads nothing but ``x`` and constants,
   contains the marker, and whose intermediate values nobody outside it reads. Constants must be
   uniform (one value, like a scalar), so ``y = f(x)`` element by element and has ``x``'s shape;
   table lookups (``Gather`` from a constant 1-D table) are element-wise too.
3. ``f`` is evaluated by ONNX Runtime on ``_SAMPLES`` float values of ``x`` over ``[-R, R]`` and
   compared with exp, sin, cos, tanh, sigmoid and erf. It is replaced by the first whose values
   agree within ``5e-4 + 1e-5 * |f(x)|`` for the widest ``R`` of 64, 32, 16, 8. The absolute
   term is what float32 NPU approximations achieve (FacePhys's sin/cos: 3.2e-4, its exp: 3.2e-6
   relative); a function that differs more is no approximation of that op. The largest region that
   matches wins.
4. Not exact: the native op is the function the approximation approximates, within the measured
   error (the pass notes it, per op: the largest relative difference and ``R``); outside ``[-R, R]``
   the approximation itself was inaccurate. ``--exact`` leaves this rule out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from onnxfit.optimizer.edits import producer, small_constant, uniform_value
from onnxfit.optimizer.pipeline import PassContext, PassReport, register_pass
from onnxfit.optimizer.rewrite import DEFAULT_DOMAINS, MatchContext, RewriteRule, Skip, is_omitted

__all__ = ["NativeFunctionsPass"]

_ELEMENTWISE = frozenset({
    "Add", "Sub", "Mul", "Div", "Neg", "Abs", "Floor", "Ceil", "Round", "Cast", "Clip", "Min", "Max", "Where",
    "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Equal", "Not", "And", "Or", "Xor", "Sqrt",
    "Reciprocal", "Pow", "Mod", "Sign", "Exp", "Log", "Identity",
})
_MARKERS = ("Floor", "Ceil", "Round", "Mod", "Gather")
_MAX_REGION = 256
_SAMPLES = 16385
_RANGES = (64.0, 32.0, 16.0, 8.0)
_RTOL = 1e-5
_ATOL = 5e-4  # rule 3
_ERF = np.vectorize(math.erf)
_NATIVES = {
    "Exp": np.exp,
    "Sin": np.sin,
    "Cos": np.cos,
    "Tanh": np.tanh,
    "Sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "Erf": _ERF,
}


@dataclass
class Replacement:
    x: gs.Tensor
    y: gs.Tensor
    op: str
    region: list[gs.Node]
    rel_error: float
    bound: float


@register_pass
class NativeFunctionsPass(RewriteRule):
    name = "native-functions"
    version = 1
    op = _MARKERS
    fixpoint = True
    exact = False

    def match(self, node: gs.Node, ctx: MatchContext) -> Replacement | None:
        if node.op == "Gather" and not _is_table(node):
            return None
        for x in _candidate_inputs(node):
            found = _fit(x, node, ctx)
            if found is not None:
                return found
        return None

    def rewrite(self, graph: gs.Graph, node: gs.Node, plan: Replacement, ctx: MatchContext) -> None:
        for member in plan.region:
            member.outputs.clear()  # the region goes; its other markers are not matched again
        graph.nodes.append(gs.Node(plan.op, name=f"{plan.y.name}_{plan.op.lower()}", inputs=[plan.x],
                                   outputs=[plan.y]))
        self._replaced.append(plan)

    def run(self, graph: gs.Graph, ctx: PassContext) -> PassReport:
        self._replaced: list[Replacement] = []
        report = super().run(graph, ctx)
        for op in sorted({r.op for r in self._replaced}):
            done = [r for r in self._replaced if r.op == op]
            report.notes.append(f"{len(done)} approximation(s) of {op} ({sum(len(r.region) for r in done)} nodes) "
                                f"-> {op}: largest difference {max(r.rel_error for r in done):.1e} relative "
                                f"on [-{min(r.bound for r in done):g}, {min(r.bound for r in done):g}]")
        return report


def _is_table(node: gs.Node) -> bool:
    data = node.inputs[0]
    return isinstance(data, gs.Constant) and len(data.shape) == 1 and int(node.attrs.get("axis", 0)) == 0


def _eligible(node: gs.Node) -> bool:
    if node.domain not in DEFAULT_DOMAINS or not node.outputs or len(node.outputs) != 1:
        return False
    return node.op in _ELEMENTWISE or (node.op == "Gather" and _is_table(node))


def _variable_inputs(node: gs.Node) -> list[gs.Tensor]:
    return [t for t in node.inputs if not is_omitted(t) and not isinstance(t, gs.Constant)]


def _candidate_inputs(marker: gs.Node) -> list[gs.Tensor]:
    """Rule 1: farthest first, so the largest region is tried first."""
    inputs = _variable_inputs(marker)
    if len(inputs) != 1:
        return []
    chain = [inputs[0]]
    while len(chain) < 16:
        node = producer(chain[-1])
        if node is None or not _eligible(node):
            break
        variables = _variable_inputs(node)
        if len(variables) != 1:
            break
        chain.append(variables[0])
    return [t for t in reversed(chain) if _is_float(t)]


def _is_float(tensor: gs.Tensor) -> bool:
    return tensor.dtype is not None and np.dtype(tensor.dtype) in (np.float32, np.float64, np.float16)


def _closure(x: gs.Tensor, graph: gs.Graph) -> list[gs.Node]:
    """Rule 2: element-wise nodes computed from ``x`` and constants alone, in graph order."""
    values = {id(x)}
    region = []
    for node in graph.nodes:
        if len(region) >= _MAX_REGION:
            break
        variables = _variable_inputs(node)
        if not variables or not _eligible(node) or not all(id(t) in values for t in variables):
            continue
        region.append(node)
        values.add(id(node.outputs[0]))
    return region


def _fit(x: gs.Tensor, marker: gs.Node, ctx: MatchContext) -> Replacement | None:
    graph = ctx.graph
    region = _closure(x, graph)
    if marker not in region:
        return None
    candidates = _outputs_by_size(x, region, marker, ctx.graph_outputs)
    if not candidates:
        return None
    values = _sample(x, region, ctx.opset)
    if values is None:
        return None
    samples = values[id(x)]
    for y, nodes in candidates:
        found = _native(samples, values.get(id(y)))
        if found is not None:
            op, rel, bound = found
            return Replacement(x, y, op, nodes, rel, bound)
    return None


def _outputs_by_size(x: gs.Tensor, region: list[gs.Node], marker: gs.Node,
                     outputs: set[int]) -> list[tuple[gs.Tensor, list[gs.Node]]]:
    """Rule 2's candidate outputs with the nodes computing each, largest first."""
    in_region = {id(n) for n in region}
    found = []
    for node in region:
        y = node.outputs[0]
        nodes = _ancestors(node, in_region)
        if marker not in nodes or not _uniform_constants(nodes, x):
            continue
        members = {id(n) for n in nodes}
        inner = [n.outputs[0] for n in nodes if n is not node]
        if any(id(t) in outputs or any(id(r) not in members for r in t.outputs) for t in inner):
            continue
        found.append((y, nodes))
    found.sort(key=lambda item: -len(item[1]))
    return found


def _ancestors(node: gs.Node, in_region: set[int]) -> list[gs.Node]:
    seen, stack, out = set(), [node], []
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        out.append(n)
        for t in _variable_inputs(n):
            p = producer(t)
            if p is not None and id(p) in in_region:
                stack.append(p)
    return out


def _uniform_constants(nodes: list[gs.Node], x: gs.Tensor) -> bool:
    """Rule 2: every constant is one value broadcast no wider than ``x`` (tables aside)."""
    rank = len(x.shape) if x.shape is not None else None
    for node in nodes:
        for i, t in enumerate(node.inputs):
            if not isinstance(t, gs.Constant) or (node.op == "Gather" and i == 0):
                continue
            if uniform_value(t) is None:
                return False
            dims = [int(d) for d in t.shape]
            if dims and any(d != 1 for d in dims):
                if rank is None or len(dims) > rank:
                    return False
                tail = list(x.shape)[rank - len(dims):]
                if any(d != 1 and d != s for d, s in zip(dims, tail)):
                    return False
            elif dims and (rank is None or len(dims) > rank):
                return False
    return True


def _sample(x: gs.Tensor, region: list[gs.Node], opset: int) -> dict[int, np.ndarray] | None:
    """Every region value for ``_SAMPLES`` values of ``x`` on [-max R, max R], by ONNX Runtime."""
    import onnxruntime as ort

    samples = np.linspace(-_RANGES[0], _RANGES[0], _SAMPLES).astype(np.dtype(x.dtype))
    initializers, protos, names = {}, [], {id(x): "x"}
    for i, node in enumerate(region):
        inputs = []
        for t in node.inputs:
            if is_omitted(t):
                inputs.append("")
            elif isinstance(t, gs.Constant):
                value = small_constant(t)
                if value is None:
                    return None
                if not (node.op == "Gather" and t is node.inputs[0]):
                    value = value.reshape(-1)[:1].reshape(())  # uniform (rule 2): one element does
                name = f"c{len(initializers)}"
                initializers[name] = onnx.numpy_helper.from_array(np.asarray(value), name)
                inputs.append(name)
            else:
                inputs.append(names[id(t)])
        names[id(node.outputs[0])] = f"v{i}"
        attrs = {k: v for k, v in node.attrs.items() if not isinstance(v, gs.Tensor)}
        protos.append(onnx.helper.make_node(node.op, inputs, [f"v{i}"], **attrs))
    dtype = onnx.helper.np_dtype_to_tensor_dtype(samples.dtype)
    graph = onnx.helper.make_graph(protos, "fit", [onnx.helper.make_tensor_value_info("x", dtype, [_SAMPLES])],
                                   [onnx.ValueInfoProto(name=f"v{i}") for i in range(len(region))],
                                   initializer=list(initializers.values()))
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, 10)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 4
    try:
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        results = session.run(None, {"x": samples})
    except Exception:  # noqa: BLE001 - a region ORT cannot run on its own is not an approximation we read
        return None
    values = {id(x): samples}
    for node, result in zip(region, results):
        values[id(node.outputs[0])] = np.asarray(result)
    return values


def _native(samples: np.ndarray, y: np.ndarray | None) -> tuple[str, float, float] | None:
    """Rule 3: (op, largest relative difference, R) of the native op ``y`` agrees with."""
    if y is None or y.shape != samples.shape or y.dtype != samples.dtype:
        return None
    x64, y64 = samples.astype(np.float64), y.astype(np.float64)
    for op, function in _NATIVES.items():
        with np.errstate(over="ignore", invalid="ignore"):
            expected = function(x64)
        for bound in _RANGES:
            inside = np.abs(x64) <= bound
            err = np.abs(y64[inside] - expected[inside])
            scale = np.abs(expected[inside])
            if np.all(np.isfinite(y64[inside])) and np.all(err <= _ATOL + _RTOL * scale):
                rel = float(np.max(err / np.maximum(scale, 1.0)))
                return op, rel, bound
    return None
