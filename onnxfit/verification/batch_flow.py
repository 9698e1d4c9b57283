"""Static batch flow: which axis of every tensor holds the frames, and the first node that mixes them.

onnx shape inference at two batch sizes tells which axis of every tensor scales with the batch
(a dim that is 3c at batch 3 and 5c at batch 5 holds c frames' worth of data per frame). What
each op does with that axis comes from the batch-op table (``onnxfit.batch_ops``), the one that
``dynamic-batch`` rewrites with: ops that combine values along axes, contract them or have a batch
axis of their own are judged by it, the others by what their output shapes say (the batch
vanished, merged, split off or moved). Works on fixed-batch models too: for a model whose batch
is fixed to 1 the blocking findings are what stops ``--dynamic-batch``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import onnx
from onnx import helper, numpy_helper

from onnxfit.batch_ops import (
    BATCH_OPS,
    Flow,
    OpBatch,
    combined_axes,
    contracted_axes,
    frame_axes,
    per_frame_problem,
    slice_keeps_axis,
)
from onnxfit.errors import first_line, node_label
from onnxfit.shapes import infer_shapes, weightless_copy
from onnxfit.verification.inputs import InputSpec, batch_axes, model_inputs

__all__ = ["Axis", "BatchFlow", "Finding", "batch_flow", "with_dim"]

# Two batch sizes for shape inference: a dim that is 3c at the first and 5c at the second holds
# c frames' worth of data per frame. Odd, distinct, and unlike the 1s and 2s models hard-code.
_PROBE_A, _PROBE_B = 3, 5


# Small integer initializers hold shapes, axes and indices that shape inference must read;
# everything else is handed over as a typed input so that weights are not copied.
_KEEP_INT_ELEMENTS = 4096


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

    def has_input(self, index: int) -> bool:
        return index < len(self.node.input) and bool(self.node.input[index])

    def constant(self, index: int) -> np.ndarray | None:
        if index < len(self.node.input) and self.node.input[index] in self.constants:
            return self.constants[self.node.input[index]]
        return None


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
        if not batched_ins or _flow(node) is Flow.SHAPE:
            continue
        outs = [states.get(t) for t in node.output]
        view = _NodeView(node, _attributes(node), ins, [_rank(probe_a.get(t)) for t in node.input], constants, opset)
        # The table judges from the inputs alone: it holds even where the probes broke inference.
        verdict = _table_verdict(view)
        if verdict is None and any(o is None for o, t in zip(outs, node.output) if t):
            finding = _unknown_output(view, batched_ins, flow, stopped)
            if finding:
                flow.findings.append(finding)
            continue
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


def _flow(node: onnx.NodeProto) -> Flow | None:
    rule = BATCH_OPS.get(node.op_type) if node.domain in ("", "ai.onnx") else None
    return None if rule is None else rule.flow


def _table_verdict(view: _NodeView) -> tuple[str, str] | None:
    """What the batch-op table says of the node, for the ops that can mix frames without any
    shape telling; the others (elementwise, reshapes, per-axis amounts) are left to the shapes."""
    rule = BATCH_OPS.get(view.node.op_type) if view.node.domain in ("", "ai.onnx") else None
    if rule is None:
        return None
    if rule.flow is Flow.ALONG_AXES:
        return _along_axes(view, rule)
    if rule.flow is Flow.PER_FRAME:
        return _per_frame(view, rule)
    if rule.flow is Flow.CONTRACTS:
        return _contracts(view)
    if view.node.op_type == "Slice":
        return _slice(view)
    return None


def _batched(state: _State | None) -> bool:
    return state is not None and state.batched


def _along_axes(view: _NodeView, rule: OpBatch) -> tuple[str, str] | None:
    """The op combines values along the axes it names; the batch must not be one of them."""
    for index in rule.params:
        if index < len(view.inputs) and _batched(view.inputs[index]):
            return "mixes", f"{view.label} takes batch-dependent parameters (input '{view.node.input[index]}')"
    aligned = [i for i in rule.aligned if i < len(view.inputs)]
    if any(_batched(view.inputs[i]) for i in aligned):
        where = {i: tuple(a.index for a in view.inputs[i].axes) if _batched(view.inputs[i]) else None for i in aligned}
        if len(set(where.values())) > 1:
            index = next(i for i in aligned if where[i] != where[aligned[0]])
            return "mixes", (f"{view.label} needs '{view.node.input[index]}' to carry the batch like "
                             f"'{view.node.input[aligned[0]]}'")
    data, rank = view.inputs[0], view.ranks[0]
    if not _batched(data) or rank is None or rank == 0:
        return None
    used = combined_axes(rule, view, rank)
    if used is None:
        return None
    for axis in data.axes:
        if axis.index in used:
            merged = f" (merged: N*{axis.factor})" if axis.factor > 1 else ""
            return rule.kind, f"{view.label} {rule.verb} the batch axis {axis.index}{merged} of '{view.node.input[0]}'"
    return None


def _per_frame(view: _NodeView, rule: OpBatch) -> tuple[str, str] | None:
    """The op treats one axis of some inputs as the batch (N of NCHW); the batch must be there."""
    expected = frame_axes(rule, view.attrs)
    for index, state in enumerate(view.inputs):
        if not _batched(state):
            continue
        if index not in expected:
            return "mixes", f"{view.label} takes batch-dependent parameters (input '{view.node.input[index]}')"
        if not any(a.index == expected[index] for a in state.axes):
            where = ", ".join(str(a.index) for a in state.axes) or ", ".join(map(str, state.irregular))
            return "mixes", (f"{view.label} treats axis {expected[index]} of '{view.node.input[index]}' as the batch, "
                             f"but the batch is on axis {where}")
    problem = per_frame_problem(view.node.op_type, view.attrs)
    return ("mixes", f"{view.label} {problem}") if problem else None


def _slice(view: _NodeView) -> tuple[str, str] | None:
    """A Slice must take all of the batch axis in order; reversed or cut, frames trade places."""
    data, rank = view.inputs[0], view.ranks[0]
    if not _batched(data) or rank is None:
        return None
    for axis in data.axes:
        if slice_keeps_axis(view, rank, axis.index) is False:
            return "mixes", f"{view.label} selects frames on the batch axis {axis.index} of '{view.node.input[0]}'"
    return None


def _contracts(view: _NodeView) -> tuple[str, str] | None:
    """MatMul/Gemm sum over one axis of each operand; the batch must not be that axis. Gemm's bias
    C broadcasts to the output [M, N]: batched, it must carry the batch on the output's batch axis
    (rows for a batched A, columns for a batched B)."""
    contracted = contracted_axes(view.node.op_type, view.attrs, view.ranks)
    for index in (0, 1):
        state = view.inputs[index] if index < len(view.inputs) else None
        if state is not None and any(a.index == contracted[index] for a in state.axes):
            return "mixes", (
                f"{view.label} sums over the batch axis {contracted[index]} of '{view.node.input[index]}' "
                f"(its contracted axis)"
            )
    bias = view.inputs[2] if view.node.op_type == "Gemm" and len(view.inputs) > 2 else None
    if _batched(bias) and view.ranks[2] is not None:
        output_axis = 0 if _batched(view.inputs[0]) else 1 if _batched(view.inputs[1]) else None
        on_output = {a.index + 2 - view.ranks[2] for a in bias.axes}
        if output_axis is not None and on_output != {output_axis}:
            return "mixes", f"{view.label} adds a bias batched on another axis than its output's batch axis"
    return None


def _unknown_output(view: _NodeView, batched_ins: list[int], flow: BatchFlow, stopped: set[str]) -> Finding | None:
    node = view.node
    if node.op_type == "Reshape":
        target = view.constant(1)
        shown = f"target shape {target.tolist()}" if target is not None else "its target shape"
        return Finding(
            node_label(node), node.op_type, "fixes",
            f"{view.label} hard-codes the batch size ({shown} cannot hold another batch size)", True,
        )
    if node.op_type == "Squeeze":
        # Inference fails only where an axis it drops grew with the probe batch: it was the batch.
        return Finding(node_label(node), node.op_type, "fixes",
                       f"{view.label} drops the batch axis of '{node.input[0]}' (an axis of size 1 only at batch 1)",
                       True)
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
    """Shape inference without the weights, with the batched inputs at ``batch`` on their axis.

    onnx's data propagation follows Shape chains only through the opset-13 forms of its ops: the
    shapes that Reshape/Expand/ConstantOfShape/Tile read from ``Concat(Shape(x)[0], ...)`` at
    older opsets (the batch that ``dynamic-batch`` takes at run time) are evaluated here at the
    probe and inference runs again with their values, a few rounds deep.
    """
    probe = {spec.name: with_dim(tuple(shapes[spec.name]), axes[spec.name], batch) if spec.name in axes
             else tuple(shapes[spec.name]) for spec in specs}
    light = None
    for _ in range(_SHAPE_ROUNDS):
        table = {name: None if shape is None else tuple(d if isinstance(d, int) else None for d in shape)
                 for name, shape in infer_shapes(light or model, probe).items()}
        values = _shape_chain_values(light or model, table)
        if not values:
            break
        light = light or weightless_copy(model)
        producers = {o: n for n in light.graph.node for o in n.output}
        for name, value in values.items():
            light.graph.initializer.append(numpy_helper.from_array(value, name))
            node = producers[name]  # the value is an initializer now: its producer must not write it too
            node.output[list(node.output).index(name)] = f"{name}__batch_flow_probe"
    for node in model.graph.node:
        for name in node.output:
            table.setdefault(name, None)
    return table


_SHAPE_ROUNDS = 8
# Inputs whose value decides an output shape.
_SHAPE_INPUTS = {"Reshape": (1,), "Expand": (1,), "ConstantOfShape": (0,), "Tile": (1,)}


def _shape_chain_values(model: onnx.ModelProto, table: dict[str, tuple | None]) -> dict[str, np.ndarray]:
    """Values of the shape inputs of ops whose output inference left unknown, computed from the
    shapes in ``table`` through Shape -> Gather/Slice/Concat/Unsqueeze/Squeeze/Cast chains."""
    producers = {o: n for n in model.graph.node for o in n.output}
    constants = _constants(model)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
    found: dict[str, np.ndarray] = {}
    for node in model.graph.node:
        spots = _SHAPE_INPUTS.get(node.op_type, ())
        if not spots or all(table.get(o) is not None and None not in table[o] for o in node.output if o):
            continue
        for i in spots:
            name = node.input[i] if i < len(node.input) else ""
            if name and name in producers and name not in found:
                value = _chain_value(name, producers, constants, table, opset, 0)
                if value is not None:
                    found[name] = value
    return found


def _chain_value(name: str, producers: dict, constants: dict, table: dict, opset: int, depth: int) -> np.ndarray | None:
    """The int64 value of ``name`` when a Shape chain computes it from shapes known in ``table``."""
    if name in constants:
        return np.asarray(constants[name], dtype=np.int64)
    node = producers.get(name)
    if node is None or depth > 32:
        return None
    op, attrs = node.op_type, _attributes(node)
    if op == "Shape":
        shape = table.get(node.input[0])
        if shape is None or None in shape:
            return None
        return np.asarray(shape[attrs.get("start", 0):attrs.get("end")], dtype=np.int64)
    args = [_chain_value(i, producers, constants, table, opset, depth + 1) if i else None for i in node.input]
    if any(a is None for a, i in zip(args, node.input) if i) or not args or args[0] is None:
        return None
    x = args[0]
    if op in ("Identity", "Cast"):
        return x
    if op == "Concat":
        return np.concatenate([np.atleast_1d(a) for a in args], axis=attrs.get("axis", 0))
    if op == "Gather":
        return np.take(x, args[1], axis=attrs.get("axis", 0))
    if op in ("Unsqueeze", "Squeeze"):
        axes = attrs.get("axes") if opset < 13 else (args[1].tolist() if len(args) > 1 else None)
        if op == "Squeeze":
            return np.squeeze(x, axis=None if axes is None else tuple(axes))
        for a in sorted(int(a) % (x.ndim + len(axes)) for a in axes):
            x = np.expand_dims(x, a)
        return x
    if op == "Slice":
        if opset < 10:
            starts, ends, axes, steps = attrs["starts"], attrs["ends"], attrs.get("axes"), None
        else:
            starts, ends = args[1], args[2]
            axes = args[3] if len(args) > 3 and args[3] is not None else None
            steps = args[4] if len(args) > 4 and args[4] is not None else None
        index = [slice(None)] * x.ndim
        for j, axis in enumerate(range(len(starts)) if axes is None else axes):
            index[int(axis)] = slice(int(starts[j]), int(ends[j]), None if steps is None else int(steps[j]))
        return x[tuple(index)]
    return None


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


def with_dim(shape: tuple[int, ...], axis: int, value: int) -> tuple[int, ...]:
    return (*shape[:axis], value, *shape[axis + 1:])
