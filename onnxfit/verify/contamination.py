"""Cross-frame contamination: does frame i of a batch depend only on frame i of the inputs?

The frames lie on each input's batch axis, read from its dim names (``onnxfit.batch_axes``)
or given with ``--batch-axis NAME=AXIS``: axis 0 of ``x: [N, 3, H, W]``, axis 1 of a state
``[2, batch, 128]``. Two views of the same question:

1. A dynamic test on one runtime:
   a. every frame run alone equals its slice of the batched run (parity tolerances);
   b. changing frame j leaves every other frame's outputs unchanged (each j in turn: an N x N
      influence matrix whose off-diagonal must be zero);
   c. every output holds its frames on one axis: comparing output shapes at batch 1 and
      batch N shows which dim scales; anything else is "batch axis lost in output X".
   A symbolic batch runs all three at batch N (default 4); a batch fixed to N > 1 runs b at N
   (frames cannot run alone, and need not). A model without a batch axis (time-major:
   ``[sequence_length, 576]``) has no frames to keep apart and passes with a note.
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

from onnxfit.batch_axes import TIME_NAME
from onnxfit.errors import first_line, node_label
from onnxfit.shapes import infer_shapes
from onnxfit.verify.inputs import (
    InputSpec,
    batch_axes,
    generate_inputs,
    known_batch_axes,
    make_inputs,
    model_inputs,
    take_frames,
)
from onnxfit.verify.parity import compare_arrays, frame_axis, split_frames
from onnxfit.verify.report import Check
from onnxfit.verify.runtimes import Runtime

__all__ = [
    "Finding",
    "BatchFlow",
    "batch_flow",
    "FrameTest",
    "frame_test",
    "fixed_batch_test",
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

    @property
    def framed(self) -> bool:
        """Frames on one axis, one frame per index: a state ``[2, N, 128]`` as well as ``[N, C]``."""
        return len(self.axes) == 1 and self.axes[0].factor == 1 and not self.irregular

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
        return f"{self.node.op_type} '{node_label(self.node)}'"

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

    ``layout_attr``: RNNs take ``[seq, batch, ...]`` unless ``layout=1``, and they also take
    per-frame inputs: ``sequence_lens`` (4) on axis 0, ``initial_h``/``initial_c`` (5, 6)
    ``[dirs, batch, hidden]`` on axis 1 (0 with ``layout=1``).
    """

    layout_attr: str | None = None

    def _expected(self, view: _NodeView, index: int) -> int | None:
        """Where input ``index`` must hold the batch; None: it must not depend on the batch."""
        if not self.layout_attr:
            return 0 if index == 0 else None
        seq_first = not view.attrs.get(self.layout_attr, 0)
        return {0: 1 if seq_first else 0, 4: 0, 5: 1 if seq_first else 0, 6: 1 if seq_first else 0}.get(index)

    def __call__(self, view: _NodeView) -> tuple[str, str] | None:
        for index, state in enumerate(view.inputs):
            if state is None or not state.batched:
                continue
            expected = self._expected(view, index)
            if expected is None:
                return "mixes", f"{view.label} takes batch-dependent parameters (input '{view.node.input[index]}')"
            if not any(a.index == expected for a in state.axes):
                where = ", ".join(str(a.index) for a in state.axes) or ", ".join(map(str, state.irregular))
                return "mixes", (f"{view.label} treats axis {expected} of '{view.node.input[index]}' as the batch, "
                                 f"but the batch is on axis {where}")
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


def batch_flow(
    model: onnx.ModelProto, shapes: dict[str, tuple[int, ...]], axes: dict[str, int] | None = None
) -> BatchFlow:
    """Follow the batch axis from the inputs to the outputs.

    ``shapes``: a concrete shape for every input (at any batch); the batch dim of the batched
    inputs is replaced by two probe sizes. ``axes``: batched input -> its batch axis (default:
    from the dim names, inputs whose axis is unknown left out). For a fixed-batch model that is
    where a batch would go.
    """
    specs = model_inputs(model)
    if axes is None:
        axes = {k: v for k, v in batch_axes(specs).items() if v is not None and v >= 0}
    axes = {k: v for k, v in axes.items() if shapes.get(k) is not None and v < len(shapes[k])}
    batched = list(axes)
    flow = BatchFlow(batched)
    if not batched:
        flow.notes.append("no input has a batch axis (no dynamic or size-1 leading dim)")
        return flow
    try:
        probe_a = _infer(model, specs, shapes, axes, _PROBE_A)
        probe_b = _infer(model, specs, shapes, axes, _PROBE_B)
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
            finding = Finding(node_label(node), node.op_type, kind, message, kind in ("mixes", "reduces", "fixes"))
            flow.findings.append(finding)
        upstream = next((culprit.get(node.input[i]) for i in batched_ins if culprit.get(node.input[i])), None)
        for name, state in zip(node.output, outs):
            if name and state is not None and state.batched and not state.framed:
                culprit[name] = upstream or finding
    for output in model.graph.output:
        state = states.get(output.name)
        if state is None:
            flow.outputs[output.name] = "unknown (shape inference could not follow)"
            continue
        flow.outputs[output.name] = state.describe()
        if state.batched and not state.framed:
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
            node_label(node), node.op_type, "fixes",
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
    model: onnx.ModelProto, specs: list[InputSpec], shapes: dict[str, tuple[int, ...]], axes: dict[str, int], batch: int
) -> dict[str, tuple[int | None, ...] | None]:
    """Shape inference without the weights, with the batched inputs at ``batch`` on their axis."""
    probe = {spec.name: _with_dim(tuple(shapes[spec.name]), axes[spec.name], batch) if spec.name in axes
             else tuple(shapes[spec.name]) for spec in specs}
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
    output_axes: dict[str, int] = field(default_factory=dict)  # output -> the axis holding its frames

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def frame_test(
    runtime: Runtime, inputs: dict[str, np.ndarray], axes: dict[str, int], changed: list[dict[str, np.ndarray]],
    atol: float | None = None, rtol: float | None = None,
) -> FrameTest:
    """Run the three dynamic tests. ``axes``: batched input -> its batch axis; ``changed[j]``: a
    replacement for the batched inputs' frame j (the batch axis dropped)."""
    first = next(iter(axes))
    n = inputs[first].shape[axes[first]]
    test = FrameTest(n)
    full = _run(runtime, inputs, f"batch {n}", test)
    frames = [_run(runtime, frame, "batch 1", test) for frame in split_frames(inputs, axes, n)]
    if full is None or any(f is None for f in frames):
        return test
    for name, value in full.items():
        one = frames[0][name].shape
        axis = frame_axis(value.shape, one, n)
        if axis is None:
            test.lost.append(name)
            test.failures.append(
                f"batch axis lost in output '{name}': shape {list(one)} at batch 1, {list(value.shape)} at batch {n}"
            )
            continue
        test.output_axes[name] = axis
        test.alone[name] = []
        for i, frame in enumerate(frames):
            comparison = compare_arrays(name, frame[name], np.take(value, [i], axis=axis), atol=atol, rtol=rtol)
            test.alone[name].append(comparison.max_abs or 0.0)
            if not comparison.ok:
                test.failures.append(
                    f"output '{name}': frame {i} run alone differs from its slice of the batch-{n} run "
                    f"(max abs error {comparison.max_abs:.3g}, {comparison.mismatches} of {comparison.size} elements)"
                )
    _perturb(runtime, inputs, axes, changed, full, test, atol, rtol)
    return test


def fixed_batch_test(
    runtime: Runtime, inputs: dict[str, np.ndarray], axes: dict[str, int], changed: list[dict[str, np.ndarray]],
    atol: float | None = None, rtol: float | None = None,
) -> FrameTest:
    """A model exported at a fixed batch N > 1 cannot run a frame alone, but changing frame j with
    the others unchanged still proves that frames are independent: no re-batching needed.

    An output holds its frames on axis 0 when that is N, else on its first axis of size N."""
    first = next(iter(axes))
    n = inputs[first].shape[axes[first]]
    test = FrameTest(n)
    full = _run(runtime, inputs, f"its fixed batch {n}", test)
    if full is None:
        return test
    for name, value in full.items():
        axis = next((a for a, d in enumerate(value.shape) if d == n), None)
        if axis is None:
            test.lost.append(name)
            test.failures.append(f"batch axis lost in output '{name}': shape {list(value.shape)} has no axis of size {n}")
        else:
            test.output_axes[name] = axis
    _perturb(runtime, inputs, axes, changed, full, test, atol, rtol)
    return test


def _perturb(
    runtime: Runtime, inputs: dict[str, np.ndarray], axes: dict[str, int], changed: list[dict[str, np.ndarray]],
    full: dict[str, np.ndarray], test: FrameTest, atol: float | None, rtol: float | None,
) -> None:
    """Change frame j of every batched input, each j in turn: no other frame of any output may move."""
    n = test.batch
    for j in range(n):
        perturbed = {k: v.copy() if k in axes else v for k, v in inputs.items()}
        for k, axis in axes.items():
            index = [slice(None)] * perturbed[k].ndim
            index[axis] = j
            perturbed[k][tuple(index)] = changed[j][k]
        out = _run(runtime, perturbed, f"batch {n} with frame {j} changed", test)
        if out is None:
            return
        row = [0.0] * n
        for name, axis in test.output_axes.items():
            for i in range(n):
                comparison = compare_arrays(
                    name, np.take(out[name], [i], axis=axis), np.take(full[name], [i], axis=axis), atol=atol, rtol=rtol
                )
                row[i] = max(row[i], comparison.max_abs or 0.0)
                if i != j and not comparison.ok:
                    test.failures.append(
                        f"output '{name}': changing frame {j} changes frame {i} (max abs {comparison.max_abs:.3g})"
                    )
        test.influence.append(row)


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
    axes: dict[str, int | None] | None = None,
) -> Check:
    """Static batch flow for every model; the frame test where the model has frames to test.

    ``shapes``: the concrete input shapes parity used (the static analysis reuses their
    non-batch dims). ``provided``: arrays from ``--inputs``; batched ones are cycled to N frames.
    ``axes``: input -> batch axis (default: from the dim names; UNKNOWN raises OnnxfitError).
    Which test runs:

    1. no input has a batch axis (time-major: ``[sequence_length, 576]`` with its LSTM state):
       nothing to test, a note says so;
    2. a symbolic batch: the full frame test at batch N (default 4);
    3. a batch fixed to N > 1: the perturbation test at N (``fixed_batch_test``);
    4. a batch fixed to 1: only the static analysis, naming what blocks ``--dynamic-batch``;
    5. fixed dims that differ across inputs (a frame [1, 257] with a cache [2, 1, 16]): no batch
       to test, a note names ``--batch-axis``.
    """
    axes = known_batch_axes(specs, batch_axes(specs) if axes is None else axes)
    batched = {s.name: axes[s.name] for s in specs if s.dims and axes.get(s.name) is not None}
    if not batched:
        return _no_batch_axis(specs)
    dims = {name: next(s.dims[axis] for s in specs if s.name == name) for name, axis in batched.items()}
    dynamic = {k: v for k, v in batched.items() if not isinstance(dims[k], int)}
    if not dynamic and len(set(dims.values())) > 1:
        return _fixed_batch_disagrees(dims, batched)
    flow = batch_flow(model, shapes, batched)
    details: dict = {"static": flow.to_dict(), "notes": list(flow.notes), "batch_axes": batched}
    culprit = next((f.message for f in flow.findings if f.blocking), None) or next(iter(flow.lost.values()), None)
    if dynamic:
        batched, n, test_fn = dynamic, batch or DEFAULT_BATCH, frame_test
    else:
        n = max(dims.values())
        batched, test_fn = {k: v for k, v in batched.items() if dims[k] == n}, fixed_batch_test
        if n == 1:
            return _fixed_batch_one(specs, batched, flow, details)
    provided = dict(provided or {})
    # Batched arrays from --inputs are cycled to N frames; the rest is generated at batch N.
    provided = {k: take_frames(v, batched[k], n) if k in batched else v for k, v in provided.items()}
    # --input-shape fixes the other dims; the batch dim of batched inputs is the test's N.
    input_shapes = {k: _with_dim(v, batched[k], n) if k in batched else v for k, v in (input_shapes or {}).items()}
    inputs, _ = make_inputs(specs, n, input_shapes, provided, seed, axes)
    batch_shapes = {k: v.shape for k, v in inputs.items() if k in batched}
    changed = [generate_inputs([s for s in specs if s.name in batched], batch_shapes, seed + 1 + j) for j in range(n)]
    changed = [{k: np.take(v, j, axis=batched[k]) for k, v in c.items()} for j, c in enumerate(changed)]
    test = test_fn(runtime, inputs, batched, changed, atol, rtol)
    details.update(dynamic=bool(dynamic), batch=n, runtime=runtime.name, frames=test.to_dict())
    if not dynamic:
        details["notes"].insert(0, f"batch fixed to {n}: frames tested by changing one frame at a time at batch {n}")
    ok = test.ok
    if ok and flow.problems:
        details["notes"].append(
            f"static analysis flags {len(flow.problems)} issue(s) the run at batch {n} did not show: "
            + "; ".join(flow.problems)
        )
    if ok:
        summary = f"frames independent at {'' if dynamic else 'fixed '}batch {n} on {runtime.name}"
    else:
        summary = test.failures[0]
        if culprit is not None:
            summary += f"; static analysis: {culprit}"
    details["failures"] = test.failures
    return Check("contamination", ok, summary, details)


def _no_batch_axis(specs: list[InputSpec]) -> Check:
    """Time-major models (and models without any batch) have no frames to keep apart: not a failure."""
    time_major = [s for s in specs if s.dims and isinstance(s.dims[0], str) and TIME_NAME.search(s.dims[0])]
    if time_major:
        summary = "no batch axis: time-major"
        spec = time_major[0]
        note = (f"input '{spec.name}' {list(spec.dims)} leads with time: its steps feed one another (recurrent state) "
                f"by design, so there are no frames to keep apart")
    else:
        summary = "no batch axis"
        note = "no input has a batch axis (--batch-axis NAME=AXIS names one)"
    return Check("contamination", True, summary, {"dynamic": False, "notes": [note], "batch_axes": {}})


def _fixed_batch_disagrees(dims: dict[str, int], batched: dict[str, int]) -> Check:
    """Static inputs whose guessed batch dims differ (data [1, 257], cache [2, 1, 16]): some of
    those dims are layers or directions, not frames, so there is no batch to test frames on."""
    listed = ", ".join(f"{name}: {dims[name]} (axis {axis})" for name, axis in batched.items())
    note = (f"inputs disagree on a fixed batch dim ({listed}): some of these dims are not a batch, so frames "
            f"are not tested (--batch-axis NAME=AXIS or NAME=none says where each input's batch is)")
    return Check("contamination", True, "fixed batch dims disagree: frames not tested",
                 {"dynamic": False, "notes": [note], "batch_axes": batched})


def _fixed_batch_one(specs: list[InputSpec], batched: dict[str, int], flow: BatchFlow, details: dict) -> Check:
    blockers = flow.problems
    fixed_text = ", ".join(f"{k}: 1" for k in batched)
    details["dynamic"] = False
    details["notes"].insert(0, f"batch fixed ({fixed_text}): the model cannot be batched as is")
    if blockers:
        details["notes"].append("nodes that block --dynamic-batch: " + "; ".join(blockers))
    elif flow.batched_inputs:
        details["notes"].append("no node blocks --dynamic-batch: making the input batch dim symbolic should work")
    summary = "fixed batch 1: cannot be batched" + (f"; {len(blockers)} node(s) block --dynamic-batch" if blockers else "")
    return Check("contamination", True, summary, details)


def _with_dim(shape: tuple[int, ...], axis: int, value: int) -> tuple[int, ...]:
    return (*shape[:axis], value, *shape[axis + 1:])
