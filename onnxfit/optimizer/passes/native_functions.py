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
   agree within ``1e-6 + 1e-5 * |f(x)|`` (float32 noise) for the widest ``R`` of 64, 32, 16, 8.
   The largest region that matches wins. A cruder approximation (within ``_NEAR``: FacePhys's
   sin/cos differ from the true functions by 3.2e-4) stays as the model computes it: the native op
   would change its outputs beyond float noise (1.4e-4 of the pulse over 300 frames); the pass
   lists it in ``skipped``.
4. Not exact: the native op is the function the approximation approximates, within the measured
   error (the pass notes it, per op: the largest relative difference and ``R``); outside ``[-R, R]``
   the approximation itself was inaccurate. ``--exact`` leaves this rule out.
5. Such a cruder sin or cos that is a quadrant-reduced Taylor polynomial (``native_trig``: Floor
   reduction by pi/2, K = 1..4 terms) is written again in its compact form, which ONNX Runtime
   evaluates on the same samples within the float noise of rule 3; a sine and a cosine of one
   value share the reduction (FacePhys: 63 nodes per pair -> 25). The quadrant is taken by
   ``Mod`` where the target EP runs it, else by Floor arithmetic.
6. An exp more than 8 ulps from the true function whose error is that of a range-reduced
   polynomial (``native_exp``: ``c * d^m`` relative, ``d`` the argument reduced by ln 2) is written
   ``Exp(x - c * d^m)`` when that is at least twice as close to it as ``Exp`` (FacePhys: 3.2e-6
   -> 8.6e-7, the float noise of its own polynomial; 29 nodes -> 7): states that multiply by it
   each frame then stay with the model's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from onnxfit.optimizer.constants import OrtRefused, node_proto, run_on_cpu
from onnxfit.optimizer.edits import disconnect, producer, small_constant, uniform_value
from onnxfit.optimizer import native_exp, native_trig
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
_ATOL = 1e-6  # rule 3
_NEAR = 1e-3
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
    form: native_trig.TrigForm | None = None  # rule 5: the compact approximation, not the native op
    correction: native_exp.ExpCorrection | None = None  # rule 6: Exp with the approximation's error term


@register_pass
class NativeFunctionsPass(RewriteRule):
    name = "native-functions"
    version = 3
    op = _MARKERS
    fixpoint = True
    exact = False

    def match(self, node: gs.Node, ctx: MatchContext) -> Replacement | Skip | None:
        if node.op == "Gather" and not _is_table(node):
            return None
        if id(node) in self._kept:  # an earlier round found no native op here
            return self._kept[id(node)]
        near = None
        for x in _candidate_inputs(node, ctx):
            found = _fit(x, node, ctx, self._samples, self._uniform)
            if isinstance(found, Replacement):
                return found
            near = near or found
        self._kept[id(node)] = near
        return near

    def rewrite(self, graph: gs.Graph, node: gs.Node, plan: Replacement, ctx: MatchContext) -> None:
        for member in plan.region:
            disconnect(member)  # the region goes; its other markers are not matched again
        removed = {id(n) for n in plan.region}
        for key in [k for k, region in self._samples.items() if region.ids & removed]:
            del self._samples[key]  # regions that held the nodes just removed
        if plan.form is not None:
            for added in native_trig.build(graph, plan.x, plan.y, plan.form, ctx.dtype(plan.x), self._trig):
                self._kept[id(added)] = None  # rule 5's own nodes are not matched again
        elif plan.correction is not None:
            for added in native_exp.build(graph, plan.x, plan.y, plan.correction, ctx.dtype(plan.x)):
                self._kept[id(added)] = None  # rule 6's Round is no marker of another approximation
        else:
            graph.nodes.append(gs.Node(plan.op, name=f"{plan.y.name}_{plan.op.lower()}", inputs=[plan.x],
                                       outputs=[plan.y]))
        self._replaced.append(plan)

    def __init__(self):
        # Markers left as they are, kept across the fixpoint rounds (the rules around this one do
        # not change element-wise regions of constants and one input), and the sampled values
        # of the regions of one walk, per input.
        self._kept: dict[int, Skip | None] = {}
        self._samples: dict[int, _Region] = {}
        self._uniform: dict[int, object] = {}  # constant tensor -> its one value (None: not uniform)
        self._trig: dict = {}  # rule 5: the reduction built per input, shared across the rounds

    def run(self, graph: gs.Graph, ctx: PassContext) -> PassReport:
        self._replaced: list[Replacement] = []
        self._samples.clear()
        self._uniform.clear()  # other rules made and dropped constants since the last round
        report = super().run(graph, ctx)
        for op in sorted({r.op for r in self._replaced if r.form is None}):
            done = [r for r in self._replaced if r.op == op and r.form is None and r.correction is None]
            if done:
                report.notes.append(f"{len(done)} approximation(s) of {op} ({sum(len(r.region) for r in done)} nodes) "
                                    f"-> {op}: largest difference {max(r.rel_error for r in done):.1e} relative "
                                    f"on [-{min(r.bound for r in done):g}, {min(r.bound for r in done):g}]")
        corrections = [r.correction for r in self._replaced if r.correction is not None]
        if corrections:
            powers = ", ".join(sorted({f"d^{c.power}" for c in corrections}))
            regions = sum(len(r.region) for r in self._replaced if r.correction is not None)
            bound = min(c.bound for c in corrections)
            report.notes.append(f"{len(corrections)} range-reduced polynomial exp(s) ({regions} nodes) -> "
                                f"Exp(x - c*{powers}), d the reduced argument: largest difference "
                                f"{max(c.rel_error for c in corrections):.1e} relative (plain Exp: "
                                f"{max(c.plain_error for c in corrections):.1e}) on [-{bound:g}, {bound:g}]")
        compact = [r for r in self._replaced if r.form is not None]
        if compact:
            report.notes.append(f"{len(compact)} quadrant-reduced Taylor sin/cos ({sum(len(r.region) for r in compact)} "
                                f"nodes) written compactly: largest difference {max(r.rel_error for r in compact):.1e} on "
                                f"[-{min(r.bound for r in compact):g}, {min(r.bound for r in compact):g}]")
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


def _candidate_inputs(marker: gs.Node, ctx: MatchContext) -> list[gs.Tensor]:
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
    return [t for t in reversed(chain) if ctx.dtype(t) in (np.float32, np.float64, np.float16)]


def _closure(x: gs.Tensor, graph: gs.Graph) -> list[gs.Node]:
    """Rule 2: element-wise nodes computed from ``x`` and constants alone, in graph order."""
    values = {id(x)}
    region: list[gs.Node] = []
    frontier = [x]
    seen: set[int] = set()
    while frontier and len(region) < _MAX_REGION:
        tensor = frontier.pop()
        for node in tensor.outputs:
            if id(node) in seen or not _eligible(node):
                continue
            if not all(id(t) in values for t in _variable_inputs(node)):
                continue  # another of its inputs may join the region later: seen then
            seen.add(id(node))
            region.append(node)
            values.add(id(node.outputs[0]))
            frontier.append(node.outputs[0])
    order = {id(n): i for i, n in enumerate(graph.nodes)}
    return sorted((n for n in region if id(n) in order), key=lambda n: order[id(n)])


@dataclass
class _Region:
    """What one walk learned about the nodes computed from ``x`` alone, shared by its markers."""

    nodes: list[gs.Node]
    ids: set[int]
    values: dict[int, np.ndarray] | None = None
    sampled: bool = False
    computations: dict[int, list[gs.Node] | None] = field(default_factory=dict)  # node -> its closed computation
    verdicts: dict[int, tuple] = field(default_factory=dict)  # y -> (match or None, near match or None)


def _fit(x: gs.Tensor, marker: gs.Node, ctx: MatchContext, cache: dict, uniform: dict) -> Replacement | Skip | None:
    if id(x) not in cache:
        nodes = _closure(x, ctx.graph)
        cache[id(x)] = _Region(nodes, {id(n) for n in nodes})
    region: _Region = cache[id(x)]
    if id(marker) not in region.ids:
        return None
    candidates = _outputs_by_size(x, region, marker, ctx.graph_outputs, uniform)
    if not candidates:
        return None
    if not region.sampled:
        region.values, region.sampled = _sample(x, ctx.dtype(x), region.nodes, ctx.opset), True
    if region.values is None:
        return None
    samples = region.values[id(x)]
    near = None
    for y, nodes in candidates:
        if id(y) not in region.verdicts:
            value = region.values.get(id(y))
            found = _native(samples, value, _ATOL)
            region.verdicts[id(y)] = (found, None if found else _native(samples, value, _NEAR))
        found, close = region.verdicts[id(y)]
        if found is not None:
            op, rel, bound = found
            correction = _exp_correction(samples, region.values[id(y)], bound, ctx, x, nodes) if op == "Exp" else None
            return Replacement(x, y, op, nodes, rel, bound, correction=correction)
        if close is not None and close[0] in ("Sin", "Cos"):
            compact = _compact_trig(samples, region.values.get(id(y)), ctx, marker)
            if compact is not None:
                form, rel, bound = compact
                return Replacement(x, y, close[0], nodes, rel, bound, form)
        if near is None and close is not None:
            near = Skip(f"computes {close[0]} of '{x.name}' ({len(nodes)} nodes) within {close[1]:.1e}: kept, "
                        "the native op would change the outputs beyond float noise")
    return near


def _outputs_by_size(x: gs.Tensor, region: _Region, marker: gs.Node, outputs: set[int],
                     uniform: dict) -> list[tuple[gs.Tensor, list[gs.Node]]]:
    """Rule 2's candidate outputs with the nodes computing each, largest first."""
    after_marker = _descendants(marker, region.ids)
    found = []
    for node in region.nodes:
        if id(node) not in after_marker:
            continue  # its computation cannot contain the marker
        if id(node) not in region.computations:
            region.computations[id(node)] = _closed_computation(node, x, region.ids, outputs, uniform)
        nodes = region.computations[id(node)]
        if nodes is not None and any(n is marker for n in nodes):
            found.append((node.outputs[0], nodes))
    found.sort(key=lambda item: -len(item[1]))
    return found


def _closed_computation(node: gs.Node, x: gs.Tensor, in_region: set[int], outputs: set[int],
                        uniform: dict) -> list[gs.Node] | None:
    """The nodes computing ``node``'s output from ``x``, when nobody outside reads their values and
    their constants are uniform (rule 2); else None."""
    nodes = _ancestors(node, in_region)
    if not _uniform_constants(nodes, x, uniform):
        return None
    members = {id(n) for n in nodes}
    inner = [n.outputs[0] for n in nodes if n is not node]
    if any(id(t) in outputs or any(id(r) not in members for r in t.outputs) for t in inner):
        return None
    return nodes


def _descendants(marker: gs.Node, in_region: set[int]) -> set[int]:
    """ids of the region's nodes that read the marker's output, directly or not (and the marker)."""
    seen, stack = {id(marker)}, [marker]
    while stack:
        for reader in stack.pop().outputs[0].outputs:
            if id(reader) in in_region and id(reader) not in seen:
                seen.add(id(reader))
                stack.append(reader)
    return seen


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


def _uniform_constants(nodes: list[gs.Node], x: gs.Tensor, uniform: dict) -> bool:
    """Rule 2: every constant is one value broadcast no wider than ``x`` (tables aside)."""
    rank = len(x.shape) if x.shape is not None else None
    for node in nodes:
        for i, t in enumerate(node.inputs):
            if not isinstance(t, gs.Constant) or (node.op == "Gather" and i == 0):
                continue
            if id(t) not in uniform:
                uniform[id(t)] = uniform_value(t)
            if uniform[id(t)] is None:
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


def _sample(x: gs.Tensor, dtype: np.dtype, region: list[gs.Node], opset: int) -> dict[int, np.ndarray] | None:
    """Every region value for ``_SAMPLES`` values of ``x`` on [-max R, max R], by ONNX Runtime."""
    samples = np.linspace(-_RANGES[0], _RANGES[0], _SAMPLES).astype(dtype)
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
        try:
            protos.append(node_proto(node, inputs, [f"v{i}"]))
        except ValueError:
            return None
    try:
        results = run_on_cpu(protos, opset, list(initializers.values()), {"x": samples},
                             [f"v{i}" for i in range(len(region))])
    except OrtRefused:  # a region ORT cannot run on its own is not an approximation we read
        return None
    values = {id(x): samples}
    for node, result in zip(region, results):
        values[id(node.outputs[0])] = np.asarray(result)
    return values


def _compact_trig(samples: np.ndarray, y: np.ndarray, ctx: MatchContext,
                  marker: gs.Node) -> tuple[native_trig.TrigForm, float, float] | None:
    """Rule 5: the compact form ``y`` agrees with within rule 3's noise, on the widest ``[-R, R]``."""
    y64 = y.astype(np.float64)
    for form, values in native_trig.candidates(samples, ctx.opset, ctx.target_runs_as(marker, "Mod")).items():
        err = np.abs(values.astype(np.float64) - y64)
        ok = err <= _ATOL + _RTOL * np.abs(y64)
        for bound in _RANGES:
            inside = np.abs(samples) <= bound
            if np.all(ok[inside]):
                return form, float(np.max(err[inside] / np.maximum(np.abs(y64[inside]), 1.0))), bound
    return None


def _exp_correction(samples: np.ndarray, y: np.ndarray, bound: float, ctx: MatchContext, x: gs.Tensor,
                    nodes: list[gs.Node]) -> native_exp.ExpCorrection | None:
    """Rule 6, with the ops the target EP runs: Round, else Floor or Ceil; Pow, else Muls."""
    probe = next(n for n in nodes if x in n.inputs)  # a float node: the profile asks about its types
    rounding = next((op for op in ("Round", "Floor", "Ceil") if ctx.target_runs_as(probe, op)), None)
    return native_exp.fit(samples, y, bound, rounding, ctx.target_runs_as(probe, "Pow"))


_EXPECTED: dict[str, dict[str, np.ndarray]] = {}


def _expected(samples: np.ndarray) -> dict[str, np.ndarray]:
    """Each native function on the sample grid (the same grid for every region of a dtype)."""
    key = samples.dtype.str
    if key not in _EXPECTED:
        x64 = samples.astype(np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            _EXPECTED[key] = {op: function(x64) for op, function in _NATIVES.items()}
    return _EXPECTED[key]


def _native(samples: np.ndarray, y: np.ndarray | None, atol: float) -> tuple[str, float, float] | None:
    """Rule 3: (op, largest difference relative to max(|f|, 1), R) of the native op ``y`` agrees
    with within ``atol + _RTOL * |f|``."""
    if y is None or y.shape != samples.shape or y.dtype != samples.dtype:
        return None
    y64 = y.astype(np.float64)
    finite = np.isfinite(y64)
    for op, expected in _expected(samples).items():
        scale = np.abs(expected)
        err = np.abs(y64 - expected)
        ok = finite & (err <= atol + _RTOL * scale)
        for bound in _RANGES:
            inside = np.abs(samples) <= bound
            if np.all(ok[inside]):
                return op, float(np.max(err[inside] / np.maximum(scale[inside], 1.0))), bound
    return None
