"""Cross-frame contamination: does frame i of a batch depend only on frame i of the inputs?

Two views of the same question:

1. A dynamic test, for models with a symbolic batch, at batch N (default 4) on one runtime:
   a. every frame run alone equals its slice of the batched run (parity tolerances);
   b. changing frame j leaves every other frame's outputs unchanged (each j in turn: an N x N
      influence matrix whose off-diagonal must be zero);
   c. every output has the batch as its leading axis: comparing output shapes at batch 1 and
      batch N shows which dims scale; anything else is "batch axis lost in output X".
2. A static batch-flow analysis, also for fixed-batch models: onnx shape inference at two batch
   sizes tells which axis of every tensor scales with the batch; per-op rules (``BATCH_RULES``)
   then name the first node that merges, moves, reduces or mixes the batch axis. For a model
   whose batch is fixed to 1 these nodes are what blocks ``--dynamic-batch``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import onnx
from onnx import helper, numpy_helper

from onnxfit.errors import first_line
from onnxfit.shapes import infer_shapes
from onnxfit.verify.inputs import (
    InputSpec,
    generate_inputs,
    is_batched,
    make_inputs,
    model_inputs,
)
from onnxfit.verify.parity import compare_arrays, split_frames
from onnxfit.verify.report import Check
from onnxfit.verify.runtimes import Runtime

__all__ = [
    "Finding",
    "BatchFlow",
    "batch_flow",
    "FrameTest",
    "frame_test",
    "contamination_check",
    "BATCH_RULES",
    "DEFAULT_BATCH",
]

log = logging.getLogger(__name__)

DEFAULT_BATCH = 4
# Two batch sizes for shape inference: a dim that is 3c at the first and 5c at the second holds
# c frames' worth of data per frame. Odd, distinct, and unlike the 1s and 2s models hard-code.
_PROBE_A, _PROBE_B = 3, 5
# Small integer initializers hold shapes, axes and indices that shape inference must read;
# everything else is handed over as a typed input so that weights are not copied.
_KEEP_INT_ELEMENTS = 4096


# ------------------------------------------------------------------------ static analysis


@dataclass(frozen=True)
class Axis:
    """A batch-scaling axis of one tensor: its dim is ``factor * N`` (factor 1: the batch itself)."""

    index: int
    factor: int


@dataclass
class _State:
    axes: list[Axis]
    irregular: list[int]  # dims that change with N but not as a multiple of it

    @property
    def batched(self) -> bool:
        return bool(self.axes or self.irregular)

    @property
    def clean(self) -> bool:
        return self.axes == [Axis(0, 1)] and not self.irregular

    def describe(self) -> str:
        if not self.batched:
            return "no batch axis"
        parts = [f"axis {a.index}" + (f" (merged: N*{a.factor})" if a.factor > 1 else "") for a in self.axes]
        parts += [f"axis {i} (changes with N, not a multiple of it)" for i in self.irregular]
        return "batch on " + ", ".join(parts)


@dataclass
class Finding:
    """One node that changes where the batch lives. ``blocking``: breaks frame independence by itself."""

    node: str
    op: str
    kind: str  # merges | moves | reduces | mixes | fixes
    message: str
    blocking: bool

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class BatchFlow:
    batched_inputs: list[str]
    findings: list[Finding] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)  # output -> where its batch is
    lost: dict[str, str] = field(default_factory=dict)  # output -> why its batch is not axis 0
    notes: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return [f.message for f in self.findings if f.blocking] + list(self.lost.values())

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "batched_inputs": self.batched_inputs,
            "findings": [f.to_dict() for f in self.findings],
            "outputs": self.outputs,
            "lost": self.lost,
            "notes": self.notes,
        }


@dataclass
class _NodeView:
    """What a rule sees: the node, its attributes, and where the batch is in each input."""

    node: onnx.NodeProto
    attrs: dict
    inputs: list[_State | None]
    ranks: list[int | None]
    constants: dict[str, np.ndarray]
    opset: int

    @property
    def label(self) -> str:
        return f"{self.node.op_type} '{self.node.name or self.node.output[0]}'"

    def constant(self, index: int) -> np.ndarray | None:
        if index < len(self.node.input) and self.node.input[index] in self.constants:
            return self.constants[self.node.input[index]]
        return None


Rule = Callable[[_NodeView], "tuple[str, str] | None"]  # -> (kind, message) or None


@dataclass(frozen=True)
class AxisUse:
    """The op combines values along the axes it names; the batch must not be one of them.

    ``through_end``: the op covers every axis from ``axis`` on (LayerNormalization; Softmax
    before opset 13 coerced its input to 2-D at ``axis``: ``legacy_before`` / ``legacy_default``).
    ``axes_input``: the axis (or axes) may come from a constant input (CumSum; Reduce* at newer
    opsets). ``many``: an ``axes`` list (Reduce*, MVN) whose absence means ``default_axes``
    (None: every axis).
    """

    verb: str
    default: int = -1
    through_end: bool = False
    legacy_before: int | None = None
    legacy_default: int = 1
    axes_input: int | None = None
    many: bool = False
    default_axes: tuple[int, ...] | None = None
    kind: str = "mixes"

    def __call__(self, view: _NodeView) -> tuple[str, str] | None:
        data = view.inputs[0]
        rank = view.ranks[0]
        if data is None or not data.batched or rank is None or rank == 0:
            return None
        used = self._axes(view, rank)
        if used is None:
            return None
        for axis in data.axes:
            if axis.index in used:
                merged = f" (merged: N*{axis.factor})" if axis.factor > 1 else ""
                return self.kind, f"{view.label} {self.verb} the batch axis {axis.index}{merged} of '{view.node.input[0]}'"
        return None

    def _axes(self, view: _NodeView, rank: int) -> set[int] | None:
        """The axes the op combines over, or None when they are only known at run time."""
        given = view.attrs.get("axes" if self.many else "axis")
        has_input = self.axes_input is not None and len(view.node.input) > self.axes_input and view.node.input[self.axes_input]
        if given is None and has_input:
            constant = view.constant(self.axes_input)
            if constant is None:
                return None
            given = [int(a) for a in constant.ravel()] if self.many else int(constant.ravel()[0])
        if self.many:
            axes = self.default_axes if given is None else given
            if axes is None or len(axes) == 0:
                return set() if view.attrs.get("noop_with_empty_axes", 0) and axes is not None else set(range(rank))
            return {int(a) % rank for a in axes}
        legacy = self.legacy_before is not None and view.opset < self.legacy_before
        axis = int(given) if given is not None else (self.legacy_default if legacy else self.default)
        axis %= rank
        return set(range(axis, rank)) if self.through_end or legacy else {axis}


@dataclass(frozen=True)
class BatchFirst:
    """The op treats one axis of its first input as the batch (N of NCHW); the batch must be there.

    ``layout_attr``: RNNs take ``[seq, batch, ...]`` unless ``layout=1``.
    """

    layout_attr: str | None = None

    def __call__(self, view: _NodeView) -> tuple[str, str] | None:
        expected = 1 if self.layout_attr and not view.attrs.get(self.layout_attr, 0) else 0
        data = view.inputs[0]
        if data is not None and data.batched and not any(a.index == expected for a in data.axes):
            where = ", ".join(str(a.index) for a in data.axes) or ", ".join(map(str, data.irregular))
            return "mixes", f"{view.label} treats axis {expected} as the batch, but the batch is on axis {where}"
        for index, state in enumerate(view.inputs[1:], start=1):
            if state is not None and state.batched:
                return "mixes", f"{view.label} takes batch-dependent parameters (input '{view.node.input[index]}')"
        if view.node.op_type == "BatchNormalization" and view.attrs.get("training_mode", 0):
            return "mixes", f"{view.label} computes statistics over the batch (training_mode=1)"
        return None


@dataclass(frozen=True)
class Contracts:
    """MatMul/Gemm sum over one axis of each operand; the batch must not be that axis."""

    def __call__(self, view: _NodeView) -> tuple[str, str] | None:
        if view.node.op_type == "Gemm":
            contracted = [0 if view.attrs.get("transA", 0) else 1, 1 if view.attrs.get("transB", 0) else 0]
        else:
            contracted = [
                None if view.ranks[0] is None else view.ranks[0] - 1,
                None if view.ranks[1] is None else max(view.ranks[1] - 2, 0),
            ]
        for index in (0, 1):
            state = view.inputs[index] if index < len(view.inputs) else None
            if state is not None and any(a.index == contracted[index] for a in state.axes):
                return "mixes", (
                    f"{view.label} sums over the batch axis {contracted[index]} of '{view.node.input[index]}' "
                    f"(its contracted axis)"
                )
        return None


_REDUCE = AxisUse("reduces over", axes_input=1, many=True, kind="reduces")
_NCHW = BatchFirst()

# Per-op rules: ops not listed are judged by the shape rule alone (an output axis scaling with
# N is where the batch went). Listed ops can mix frames without any shape telling.
BATCH_RULES: dict[str, Rule] = {
    "Softmax": AxisUse("takes a softmax over", legacy_before=13),
    "LogSoftmax": AxisUse("takes a log-softmax over", legacy_before=13),
    "Hardmax": AxisUse("takes a hardmax over", legacy_before=13),
    "LpNormalization": AxisUse("normalizes over"),
    "LayerNormalization": AxisUse("normalizes over", through_end=True),
    "MeanVarianceNormalization": AxisUse("normalizes over", many=True, default_axes=(0, 2, 3)),
    "CumSum": AxisUse("sums cumulatively over", axes_input=1),
    "ArgMax": AxisUse("takes an argmax over", default=0, kind="reduces"),
    "ArgMin": AxisUse("takes an argmin over", default=0, kind="reduces"),
    "TopK": AxisUse("takes top-k over"),
    "Gather": AxisUse("gathers along", default=0),
    "GatherElements": AxisUse("gathers along", default=0),
    "ScatterElements": AxisUse("scatters along", default=0),
    "ReduceMean": _REDUCE, "ReduceSum": _REDUCE, "ReduceMax": _REDUCE, "ReduceMin": _REDUCE,
    "ReduceProd": _REDUCE, "ReduceL1": _REDUCE, "ReduceL2": _REDUCE, "ReduceLogSum": _REDUCE,
    "ReduceLogSumExp": _REDUCE, "ReduceSumSquare": _REDUCE,
    "MatMul": Contracts(), "Gemm": Contracts(),
    "Conv": _NCHW, "ConvTranspose": _NCHW, "MaxPool": _NCHW, "AveragePool": _NCHW, "LpPool": _NCHW,
    "GlobalAveragePool": _NCHW, "GlobalMaxPool": _NCHW, "GlobalLpPool": _NCHW,
    "BatchNormalization": _NCHW, "InstanceNormalization": _NCHW, "GroupNormalization": _NCHW, "LRN": _NCHW,
    "DepthToSpace": _NCHW, "SpaceToDepth": _NCHW, "GridSample": _NCHW,
    "LSTM": BatchFirst("layout"), "GRU": BatchFirst("layout"), "RNN": BatchFirst("layout"),
}
# Their outputs describe the shape, not the data: they depend on N by design.
_SHAPE_ONLY = {"Shape", "Size"}


def batch_flow(model: onnx.ModelProto, shapes: dict[str, tuple[int, ...]]) -> BatchFlow:
    """Follow the batch axis from the inputs to the outputs.

    ``shapes``: a concrete shape for every input (at any batch); the leading dim of the batched
    inputs is replaced by two probe sizes. Batched inputs are those with a symbolic leading dim;
    for a fixed-batch model, those whose leading dim is 1 (rank >= 2): where a batch would go.
    """
    specs = model_inputs(model)
    batched = [s.name for s in specs if is_batched(s)]
    if not batched:
        batched = [s.name for s in specs if s.dims and len(s.dims) >= 2 and s.dims[0] == 1]
    flow = BatchFlow(batched)
    if not batched:
        flow.notes.append("no input has a batch axis (no dynamic or size-1 leading dim)")
        return flow
    try:
        probe_a = _infer(model, specs, shapes, batched, _PROBE_A)
        probe_b = _infer(model, specs, shapes, batched, _PROBE_B)
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError) as exc:
        reason = first_line(exc)
        flow.notes.append(f"static batch-flow analysis skipped: onnx shape inference failed ({reason})")
        return flow
    states: dict[str, _State | None] = {name: _state(probe_a.get(name), probe_b.get(name)) for name in probe_a}
    culprit: dict[str, Finding | None] = {}
    constants = _constants(model)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
    stopped: set[str] = set()
    for node in model.graph.node:
        ins = [states.get(t) if t else None for t in node.input]
        batched_ins = [i for i, s in enumerate(ins) if s is not None and s.batched]
        if not batched_ins or node.op_type in _SHAPE_ONLY:
            continue
        outs = [states.get(t) for t in node.output]
        view = _NodeView(node, _attributes(node), ins, [_rank(probe_a.get(t)) for t in node.input], constants, opset)
        if any(o is None for o, t in zip(outs, node.output) if t):
            finding = _unknown_output(view, batched_ins, flow, stopped)
            if finding:
                flow.findings.append(finding)
            continue
        rule = BATCH_RULES.get(node.op_type)
        verdict = rule(view) if rule else None
        if verdict is None:
            verdict = _shape_rule(view, outs)
        finding = None
        if verdict is not None:
            kind, message = verdict
            finding = Finding(node.name or node.output[0], node.op_type, kind, message, kind in ("mixes", "reduces", "fixes"))
            flow.findings.append(finding)
        upstream = next((culprit.get(node.input[i]) for i in batched_ins if culprit.get(node.input[i])), None)
        for name, state in zip(node.output, outs):
            if name and state is not None and state.batched and not state.clean:
                culprit[name] = upstream or finding
    for output in model.graph.output:
        state = states.get(output.name)
        if state is None:
            flow.outputs[output.name] = "unknown (shape inference could not follow)"
            continue
        flow.outputs[output.name] = state.describe()
        if state.batched and not state.clean:
            first = culprit.get(output.name)
            where = f"; first changed by {first.op} '{first.node}'" if first else ""
            flow.lost[output.name] = f"batch axis lost in output '{output.name}' ({state.describe()}){where}"
        elif not state.batched and not flow.findings:
            flow.notes.append(f"output '{output.name}' does not depend on the batch size")
    return flow


def _unknown_output(view: _NodeView, batched_ins: list[int], flow: BatchFlow, stopped: set[str]) -> Finding | None:
    node = view.node
    if node.op_type == "Reshape":
        target = view.constant(1)
        shown = f"target shape {target.tolist()}" if target is not None else "its target shape"
        return Finding(
            node.name or node.output[0], node.op_type, "fixes",
            f"{view.label} hard-codes the batch size ({shown} cannot hold another batch size)", True,
        )
    if node.output[0] not in stopped:
        stopped.add(node.output[0])
        flow.notes.append(f"{view.label}: output shape unknown to shape inference, the analysis stops on this path")
    return None


def _shape_rule(view: _NodeView, outs: list[_State | None]) -> tuple[str, str] | None:
    """What the output shapes say: the batch vanished, merged, split off, or moved."""
    source = next(s for s in view.inputs if s is not None and s.batched)
    name = view.node.input[view.inputs.index(source)]
    present = [s for s in outs if s is not None and s.batched]
    if not present:
        if view.node.op_type == "Reshape" and view.constant(1) is not None:
            return "fixes", f"{view.label} hard-codes the batch size (target shape {view.constant(1).tolist()})"
        return "reduces", f"{view.label} removes the batch axis of '{name}': no output has a dim that scales with N"
    for out_name, state in zip(view.node.output, outs):
        if state is None or not state.batched:
            continue
        if len(state.axes) + len(state.irregular) > 1:
            return "mixes", f"{view.label} pairs frames with each other: '{out_name}' has {state.describe()}"
        if state.irregular:
            return "merges", (
                f"{view.label} makes axis {state.irregular[0]} of '{out_name}' depend on N without being a multiple of it"
            )
        axis, before = state.axes[0], source.axes[0] if source.axes else None
        if before is None or axis.factor > before.factor:
            return "merges", f"{view.label} merges the batch into axis {axis.index} of '{out_name}' (dim N*{axis.factor})"
        if axis.index != before.index and source.clean:
            return "moves", f"{view.label} moves the batch axis from {before.index} to {axis.index} in '{out_name}'"
    return None


def _infer(
    model: onnx.ModelProto, specs: list[InputSpec], shapes: dict[str, tuple[int, ...]], batched: list[str], batch: int
) -> dict[str, tuple[int | None, ...] | None]:
    """Shape inference without the weights, with the batched inputs at ``batch``."""
    probe = {spec.name: (batch, *shapes[spec.name][1:]) if spec.name in batched else tuple(shapes[spec.name])
             for spec in specs}
    table = {name: None if shape is None else tuple(d if isinstance(d, int) else None for d in shape)
             for name, shape in infer_shapes(model, probe).items()}
    for node in model.graph.node:
        for name in node.output:
            table.setdefault(name, None)
    return table


def _state(a: tuple | None, b: tuple | None) -> _State | None:
    if a is None or b is None or len(a) != len(b) or any(d is None for d in a + b):
        return None
    axes, irregular = [], []
    for index, (da, db) in enumerate(zip(a, b)):
        if da == db:
            continue
        if da % _PROBE_A == 0 and da // _PROBE_A * _PROBE_B == db:
            axes.append(Axis(index, da // _PROBE_A))
        else:
            irregular.append(index)
    return _State(axes, irregular)


def _rank(shape: tuple | None) -> int | None:
    return None if shape is None else len(shape)


def _attributes(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute if a.type != onnx.AttributeProto.GRAPH}


def _constants(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Small integer constants (axes, shapes, indices) from initializers and Constant nodes."""
    values = {}
    for init in model.graph.initializer:
        if init.data_type in (onnx.TensorProto.INT64, onnx.TensorProto.INT32) and np.prod(init.dims) <= _KEEP_INT_ELEMENTS:
            values[init.name] = numpy_helper.to_array(init)
    for node in model.graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value" and attr.t.data_type in (onnx.TensorProto.INT64, onnx.TensorProto.INT32):
                    values[node.output[0]] = numpy_helper.to_array(attr.t)
                elif attr.name in ("value_int", "value_ints"):
                    values[node.output[0]] = np.array(helper.get_attribute_value(attr))
    return values


# ------------------------------------------------------------------------ dynamic test


@dataclass
class FrameTest:
    """Results of running frames alone and changing one frame at a time, at batch ``batch``."""

    batch: int
    failures: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    alone: dict[str, list[float]] = field(default_factory=dict)  # output -> max |alone - slice| per frame
    influence: list[list[float]] = field(default_factory=list)  # [changed j][observed i] max |diff| over outputs

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def frame_test(
    runtime: Runtime, inputs: dict[str, np.ndarray], batched: list[str], changed: list[dict[str, np.ndarray]],
    atol: float | None = None, rtol: float | None = None,
) -> FrameTest:
    """Run the three dynamic tests. ``changed[j]``: a replacement for the batched inputs' frame j."""
    n = inputs[batched[0]].shape[0]
    test = FrameTest(n)
    full = _run(runtime, inputs, f"batch {n}", test)
    frames = [_run(runtime, frame, "batch 1", test) for frame in split_frames(inputs, batched, n)]
    if full is None or any(f is None for f in frames):
        return test
    sliceable = []
    for name, value in full.items():
        one = frames[0][name].shape
        if value.ndim and one[:1] == (1,) and value.shape == (n, *one[1:]):
            sliceable.append(name)
        else:
            test.lost.append(name)
            test.failures.append(
                f"batch axis lost in output '{name}': shape {list(one)} at batch 1, {list(value.shape)} at batch {n}"
            )
    for name in sliceable:
        test.alone[name] = []
        for i, frame in enumerate(frames):
            comparison = compare_arrays(name, frame[name], full[name][i : i + 1], atol=atol, rtol=rtol)
            test.alone[name].append(comparison.max_abs or 0.0)
            if not comparison.ok:
                test.failures.append(
                    f"output '{name}': frame {i} run alone differs from its slice of the batch-{n} run "
                    f"(max abs error {comparison.max_abs:.3g}, {comparison.mismatches} of {comparison.size} elements)"
                )
    for j in range(n):
        perturbed = {k: v.copy() if k in batched else v for k, v in inputs.items()}
        for k in batched:
            perturbed[k][j] = changed[j][k]
        out = _run(runtime, perturbed, f"batch {n} with frame {j} changed", test)
        if out is None:
            return test
        row = [0.0] * n
        for name in sliceable:
            for i in range(n):
                comparison = compare_arrays(name, out[name][i : i + 1], full[name][i : i + 1], atol=atol, rtol=rtol)
                row[i] = max(row[i], comparison.max_abs or 0.0)
                if i != j and not comparison.ok:
                    test.failures.append(
                        f"output '{name}': changing frame {j} changes frame {i} (max abs {comparison.max_abs:.3g})"
                    )
        test.influence.append(row)
    return test


def _run(runtime: Runtime, inputs: dict[str, np.ndarray], what: str, test: FrameTest) -> dict[str, np.ndarray] | None:
    try:
        return runtime.run(inputs)
    except Exception as exc:  # noqa: BLE001 - a model that cannot run at batch N fails the check; say why
        message = first_line(exc)
        test.failures.append(f"the model fails at {what} on {runtime.name}: {message}")
        return None


# ------------------------------------------------------------------------ the check


def contamination_check(
    model: onnx.ModelProto,
    runtime: Runtime,
    specs: list[InputSpec],
    shapes: dict[str, tuple[int, ...]],
    input_shapes: dict[str, tuple[int, ...]] | None = None,
    provided: dict[str, np.ndarray] | None = None,
    batch: int | None = None,
    seed: int = 0,
    atol: float | None = None,
    rtol: float | None = None,
) -> Check:
    """Static batch flow for every model; the dynamic frame test when the batch is symbolic.

    ``shapes``: the concrete input shapes parity used (the static analysis reuses their
    non-batch dims). ``provided``: arrays from ``--inputs``; batched ones are cycled to N frames.
    """
    flow = batch_flow(model, shapes)
    batched = [s.name for s in specs if is_batched(s)]
    details: dict = {"static": flow.to_dict(), "notes": list(flow.notes)}
    culprit = next((f.message for f in flow.findings if f.blocking), None) or next(iter(flow.lost.values()), None)
    if not batched:
        blockers = flow.problems
        fixed = {s.name: s.dims[0] for s in specs if s.dims}
        details["dynamic"] = False
        fixed_text = ", ".join(f"{k}: {v}" for k, v in fixed.items())
        details["notes"].insert(0, f"batch fixed ({fixed_text}): the model cannot be batched as is")
        if blockers:
            details["notes"].append("nodes that block --dynamic-batch: " + "; ".join(blockers))
        elif flow.batched_inputs:
            details["notes"].append("no node blocks --dynamic-batch: making the leading input dim symbolic should work")
        summary = "fixed batch: cannot be batched" + (f"; {len(blockers)} node(s) block --dynamic-batch" if blockers else "")
        return Check("contamination", True, summary, details)
    n = batch or DEFAULT_BATCH
    provided = dict(provided or {})
    # Batched arrays from --inputs are cycled to N frames; the rest is generated at batch N.
    provided = {k: np.take(v, np.arange(n) % v.shape[0], axis=0) if k in batched else v for k, v in provided.items()}
    # --input-shape fixes the other dims; the leading dim of batched inputs is the test's N.
    input_shapes = {k: (n, *v[1:]) if k in batched else v for k, v in (input_shapes or {}).items()}
    inputs, _ = make_inputs(specs, n, input_shapes, provided, seed)
    batch_shapes = {k: v.shape for k, v in inputs.items() if k in batched}
    changed = [generate_inputs([s for s in specs if s.name in batched], batch_shapes, seed + 1 + j) for j in range(n)]
    changed = [{k: v[j] for k, v in c.items()} for j, c in enumerate(changed)]
    test = frame_test(runtime, inputs, batched, changed, atol, rtol)
    details.update(dynamic=True, batch=n, runtime=runtime.name, frames=test.to_dict())
    ok = test.ok
    if ok and flow.problems:
        details["notes"].append(
            f"static analysis flags {len(flow.problems)} issue(s) the run at batch {n} did not show: "
            + "; ".join(flow.problems)
        )
    if ok:
        summary = f"frames independent at batch {n} on {runtime.name}"
    else:
        summary = test.failures[0]
        if culprit is not None:
            summary += f"; static analysis: {culprit}"
    details["failures"] = test.failures
    return Check("contamination", ok, summary, details)
