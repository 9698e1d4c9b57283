"""rnn-step: LSTM and GRU over a sequence of length 1 -> the cell's math in plain ops.

Streaming models (voice-activity detectors, trackers) call their LSTM or GRU on one time step per
call and carry the state between calls. The CoreML EP has no LSTM/GRU builder (neither format) and
NNAPI has none either, so the recurrent node and everything around it fall back to the CPU and
split the model into partitions. One step of the cell is MatMul, Add, Sigmoid, Tanh, Mul and
Slice/Squeeze/Unsqueeze/Concat, which every mobile EP takes. Rules:

1. The sequence length (axis 0 of X for ``layout`` 0, axis 1 for ``layout`` 1) must be known to be
   1: from the graph's shapes (fold-shapes writes them, ``--input-shape`` fixes them) or, where
   those do not say, from one run of onnx shape inference with ``ctx.input_shapes``.
2. Gate orders as the ONNX spec: LSTM ``i, o, f, c`` in W, R and B (``Wb`` then ``Rb``) and
   ``i, o, f`` in the peepholes P; GRU ``z, r, h``, with ``linear_before_reset`` 0
   (``(r * H) @ Rh``) and 1 (``r * (H @ Rh + Rbh)``).
3. Directions forward, reverse and bidirectional: over one step reverse is forward with that
   direction's weights; bidirectional runs direction 0 and direction 1 side by side.
4. B, initial_h, initial_c and P may each be absent (zeros): the terms they would add are left out.
   Constant weights become pre-transposed constants (W_d^T, R_d^T) and the two biases one constant;
   weights computed at run time are sliced and transposed by nodes instead.
5. Outputs Y (``[1, dirs, batch, hidden]``, or ``[batch, 1, dirs, hidden]`` for layout 1), Y_h and
   Y_c keep their tensors; only those the graph reads are computed. The batch stays as it is
   (symbolic or not): no shape in the rewrite names it.
6. Left alone and reported in ``skipped``: a sequence length that is not known to be 1, a
   ``sequence_lens`` input that is not the constant 1 for every batch entry, ``clip``,
   ``input_forget``, activations other than the defaults (``activations``, ``activation_alpha``,
   ``activation_beta``), RNN (not rewritten), and weights whose hidden size cannot be read.
Exact math; float rounding differs from ONNX Runtime's fused kernel (its GEMMs accumulate in
another order): outputs agree within 1e-5 absolute in float32 (tested per form). Nodes inside
If/Loop/Scan bodies are rewritten too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from onnxfit._graphsurgeon import export_graph
from onnxfit.errors import node_label
from onnxfit.optimizer import nodes
from onnxfit.optimizer.constants import constant_value
from onnxfit.graphs import iter_graphs
from onnxfit.optimizer.pipeline import PassContext, PassReport, register_pass
from onnxfit.optimizer.rewrite import DEFAULT_DOMAINS, Skip, is_omitted
from onnxfit.shapes import Dim, dims_text, infer_shapes

__all__ = ["RnnPlan", "RnnStepPass", "Skip"]

log = logging.getLogger(__name__)

# Default activations of one direction (f, g, h): the only ones rewritten.
_ACTIVATIONS = {"LSTM": ("sigmoid", "tanh", "tanh"), "GRU": ("sigmoid", "tanh")}
_GATES = {"LSTM": 4, "GRU": 3}

Value = np.ndarray | gs.Tensor  # a constant known here, or a tensor computed at run time


@dataclass(frozen=True)
class RnnPlan:
    """A decoded LSTM/GRU node of one time step."""

    op: str  # "LSTM" or "GRU"
    directions: int  # 1, or 2 for bidirectional
    hidden: int
    layout: int  # 0: [seq, batch, ...]; 1: [batch, seq, ...]
    linear_before_reset: bool = False  # GRU only

    @property
    def seq_axis(self) -> int:
        return self.layout

    @property
    def state_axis(self) -> int:
        """The directions axis of initial_h/initial_c and Y_h/Y_c."""
        return self.layout


@register_pass
class RnnStepPass:
    name = "rnn-step"
    version = 1

    def run(self, graph: gs.Graph, ctx: PassContext) -> PassReport:
        report = PassReport(self.name, changed=False)
        found = [(g, n) for g in iter_graphs(graph) for n in g.nodes
                 if n.op in ("LSTM", "GRU", "RNN") and n.domain in DEFAULT_DOMAINS]
        if not found:
            return report
        lengths = _sequence_lengths(graph, [n for _, n in found], ctx)
        for g, node in found:
            plan = _matches(node, ctx.opset, lengths.get(node.inputs[0].name))
            if isinstance(plan, Skip):
                report.skipped.append(f"{node.op} '{node_label(node)}': {plan.reason}")
                log.debug("rnn-step skips '%s': %s", node_label(node), plan.reason)
                continue
            _rewrite(g, node, plan, ctx.opset)
            report.rewritten += 1
            report.changed = True
        return report


# ------------------------------------------------------------------------------------- matching


def _sequence_lengths(graph: gs.Graph, rnns: list[gs.Node], ctx: PassContext) -> dict[str, Dim]:
    """X's name -> its sequence dim, from the graph's shapes or, where they do not say, inference.

    Inference runs once, on the graph as it is before any rewrite, with ``ctx.input_shapes`` unless
    the batch is to stay dynamic (the graph inputs then already say what is fixed).
    """
    lengths: dict[str, Dim] = {}
    unknown = []
    for node in rnns:
        x = node.inputs[0]
        axis = int(node.attrs.get("layout", 0))
        dim = x.shape[axis] if x.shape is not None and len(x.shape) == 3 else None
        lengths[x.name] = int(dim) if isinstance(dim, (int, np.integer)) and dim > 0 else dim
        if not isinstance(lengths[x.name], int):
            unknown.append((x.name, axis))
    if unknown:
        overrides = {} if ctx.dynamic_batch else ctx.input_shapes
        inferred = infer_shapes(export_graph(graph), overrides)
        for name, axis in unknown:
            shape = inferred.get(name)
            if shape is not None and len(shape) == 3 and isinstance(shape[axis], int):
                lengths[name] = shape[axis]
    return lengths


def _matches(node: gs.Node, opset: int, seq_length: Dim) -> RnnPlan | Skip:
    """Decode an LSTM/GRU node of one time step, or say why it is not rewritten exactly."""
    if node.op not in _GATES:
        return Skip(f"{node.op} is not rewritten (only LSTM and GRU)")
    attrs = node.attrs
    direction = _text(attrs.get("direction", "forward"))
    if direction not in ("forward", "reverse", "bidirectional"):
        return Skip(f"unknown direction '{direction}'")
    directions = 2 if direction == "bidirectional" else 1
    layout = int(attrs.get("layout", 0))
    if seq_length != 1:
        shape = node.inputs[0].shape
        x = f"X {dims_text(shape)}" if shape is not None else "X has no shape"
        if isinstance(seq_length, int):
            return Skip(f"sequence length {seq_length} ({x}): only a single time step is rewritten")
        return Skip(f"sequence length not known to be 1 ({x}); fix the input shape with --input-shape "
                    "if the model runs one step per call")
    if "clip" in attrs:
        return Skip(f"clip={attrs['clip']} is not rewritten")
    if int(attrs.get("input_forget", 0)):
        return Skip("input_forget=1 is not rewritten")
    for key in ("activation_alpha", "activation_beta"):
        if list(attrs.get(key, [])):
            return Skip(f"{key} {list(attrs[key])} is not rewritten")
    defaults = _ACTIVATIONS[node.op]
    activations = [_text(a).lower() for a in attrs.get("activations", [])]
    if activations and activations != list(defaults) * (len(activations) // len(defaults)):
        return Skip(f"activations {activations} are not the defaults {list(defaults)}")
    if _present(node, 4):
        lens = constant_value(node.inputs[4], opset)
        if lens is None or not np.all(lens == 1):
            return Skip("sequence_lens is given and not the constant 1 for every batch entry")
    hidden = _hidden_size(node)
    if hidden is None:
        return Skip("hidden_size is not given and R's shape is unknown")
    return RnnPlan(node.op, directions, hidden, layout, bool(int(attrs.get("linear_before_reset", 0))))


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _present(node: gs.Node, index: int) -> bool:
    return len(node.inputs) > index and not is_omitted(node.inputs[index])


def _hidden_size(node: gs.Node) -> int | None:
    if "hidden_size" in node.attrs:
        return int(node.attrs["hidden_size"])
    shape = node.inputs[2].shape  # R: [directions, gates * hidden, hidden]
    if shape is not None and len(shape) == 3 and isinstance(shape[2], (int, np.integer)):
        return int(shape[2])
    return None


def _is_read(tensor: gs.Tensor, graph: gs.Graph) -> bool:
    # Consumers include nodes of subgraphs that read the tensor from the outer scope.
    return bool(tensor.name) and (bool(tensor.outputs) or tensor in graph.outputs)


# ------------------------------------------------------------------------------------- rewriting


class _Builder:
    """Adds nodes for one rewritten node; folds arithmetic of constants in numpy (rule 4)."""

    def __init__(self, graph: gs.Graph, opset: int, base: str, dtype):
        self.graph, self.opset, self.base, self.dtype = graph, opset, base, dtype

    def tensor(self, value: Value, what: str) -> gs.Tensor:
        if isinstance(value, np.ndarray):
            return gs.Constant(nodes.unique_name(self.graph, f"{self.base}_{what}"), np.ascontiguousarray(value))
        return value

    def op(self, op: str, what: str, *inputs: Value, output: gs.Variable | None = None, **attrs) -> gs.Variable:
        tensors = [self.tensor(v, f"{what}_in{i}") for i, v in enumerate(inputs)]
        outputs = [output] if output is not None else None
        return nodes.add_node(self.graph, op, f"{self.base}_{what}", tensors, attrs, outputs=outputs).outputs[0]

    def add(self, a: Value | None, b: Value | None, what: str) -> Value | None:
        """a + b, where None is a term that is zero (an absent bias or state)."""
        if a is None or b is None:
            return b if a is None else a
        if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
            return a + b  # both biases in the model's dtype, as ORT adds them once
        return self.op("Add", what, a, b)

    def mul(self, a: Value | None, b: Value | None, what: str) -> Value | None:
        if a is None or b is None:
            return None
        return self.op("Mul", what, a, b)

    def matmul(self, x: Value | None, w_t: Value, what: str) -> Value | None:
        return None if x is None else self.op("MatMul", what, x, w_t)

    def columns(self, x: Value | None, start: int, stop: int, what: str) -> Value | None:
        """x[:, start:stop] of a [batch, n] tensor."""
        if x is None:
            return None
        return nodes.slice_(self.graph, x, [start], [stop], [1], self.opset, f"{self.base}_{what}")

    def weight(self, value: Value | None, direction: int, start: int, stop: int, what: str,
               transpose: bool = False) -> Value | None:
        """value[direction, start:stop] (transposed if asked) of a W, R, B or P input."""
        if value is None:
            return None
        if isinstance(value, np.ndarray):
            part = value[direction, start:stop]
            return part.T if transpose else part
        sliced = nodes.slice_(self.graph, value, [direction, start], [direction + 1, stop], [0, 1], self.opset,
                              f"{self.base}_{what}_slice")
        part = nodes.squeeze(self.graph, sliced, [0], self.opset, f"{self.base}_{what}")
        return self.op("Transpose", f"{what}_t", part, perm=[1, 0]) if transpose else part

    def state(self, value: gs.Tensor | None, plan: RnnPlan, direction: int, what: str) -> gs.Tensor | None:
        """initial_h / initial_c of one direction as [batch, hidden]."""
        if value is None:
            return None
        axis = plan.state_axis
        if plan.directions > 1:
            value = nodes.slice_(self.graph, value, [direction], [direction + 1], [axis], self.opset,
                                 f"{self.base}_{what}_slice")
        return nodes.squeeze(self.graph, value, [axis], self.opset, f"{self.base}_{what}")

    def stack(self, parts: list[gs.Tensor], axes: list[int], concat_axis: int, output: gs.Variable,
              what: str) -> None:
        """Unsqueeze each direction's [batch, hidden] at ``axes`` and join them into ``output``."""
        if len(parts) == 1:
            nodes.unsqueeze(self.graph, parts[0], axes, self.opset, f"{self.base}_{what}", output=output)
            return
        expanded = [nodes.unsqueeze(self.graph, p, axes, self.opset, f"{self.base}_{what}{d}")
                    for d, p in enumerate(parts)]
        nodes.concat(self.graph, expanded, concat_axis, f"{self.base}_{what}", output=output)


def _input_value(node: gs.Node, index: int, opset: int) -> Value | None:
    """A weight input as numpy when it is constant, else its tensor; None when absent."""
    if not _present(node, index):
        return None
    tensor = node.inputs[index]
    if isinstance(tensor, gs.Constant):
        return np.asarray(tensor.values)
    value = constant_value(tensor, opset)
    return value if value is not None else tensor


def _dtype(node: gs.Node, w: Value) -> np.dtype:
    """The cell's float type (for GRU's constant 1): W's, else X's; float32 is LSTM/GRU's usual one."""
    if isinstance(w, np.ndarray):
        return w.dtype
    dtype = node.inputs[0].dtype or w.dtype
    return np.dtype(dtype) if dtype is not None else np.dtype(np.float32)


def _rewrite(graph: gs.Graph, node: gs.Node, plan: RnnPlan, opset: int) -> None:
    """Replace ``node`` by one time step of its cell. Gates whose only use was a zero term are
    left dead and go at the pipeline's cleanup."""
    x = node.inputs[0]
    w, r, b = (_input_value(node, i, opset) for i in (1, 2, 3))
    initial = [node.inputs[i] if _present(node, i) else None for i in (5, 6)]
    peepholes = _input_value(node, 7, opset) if plan.op == "LSTM" else None
    outputs = list(node.outputs) + [None] * (3 - len(node.outputs))
    read = [o if o is not None and _is_read(o, graph) else None for o in outputs]
    build = _Builder(graph, opset, node.name or plan.op.lower(), _dtype(node, w))
    # Detach first, so each output Variable can take its new producer as its only one.
    node.inputs.clear()
    node.outputs.clear()
    graph.nodes.remove(node)

    x_t = nodes.squeeze(graph, x, [plan.seq_axis], opset, f"{build.base}_x")
    hs, cs = [], []
    for d in range(plan.directions):
        h_prev = build.state(initial[0], plan, d, f"h{d}")
        if plan.op == "LSTM":
            c_prev = build.state(initial[1], plan, d, f"c{d}")
            h, c = _lstm_step(build, plan, d, x_t, w, r, b, peepholes, h_prev, c_prev)
            cs.append(c)
        else:
            h = _gru_step(build, plan, d, x_t, w, r, b, h_prev)
        hs.append(h)

    y, y_h, y_c = read
    if y is not None:  # [1, dirs, batch, hidden] / [batch, 1, dirs, hidden]
        build.stack(hs, [0, 1] if plan.layout == 0 else [1, 2], 1 if plan.layout == 0 else 2, y, "y")
    if y_h is not None:  # [dirs, batch, hidden] / [batch, dirs, hidden]
        build.stack(hs, [plan.state_axis], plan.state_axis, y_h, "y_h")
    if y_c is not None and plan.op == "LSTM":
        build.stack(cs, [plan.state_axis], plan.state_axis, y_c, "y_c")


def _lstm_step(build: _Builder, plan: RnnPlan, d: int, x_t, w, r, b, p, h_prev, c_prev):
    """One LSTM step of direction ``d``: gates i, o, f, c (spec order), returns (H_t, C_t)."""
    n = plan.hidden
    w_t = build.weight(w, d, 0, 4 * n, f"w{d}", transpose=True)
    r_t = build.weight(r, d, 0, 4 * n, f"r{d}", transpose=True) if h_prev is not None else None
    bias = build.add(build.weight(b, d, 0, 4 * n, f"wb{d}"), build.weight(b, d, 4 * n, 8 * n, f"rb{d}"), f"b{d}")
    # ORT's order: X @ W^T, then += H @ R^T, then the summed biases.
    gates = build.add(build.add(build.matmul(x_t, w_t, f"xw{d}"), build.matmul(h_prev, r_t, f"hr{d}"), f"xwhr{d}"),
                      bias, f"gates{d}")
    p_i, p_o, p_f = (build.weight(p, d, k * n, (k + 1) * n, f"p{'iof'[k]}{d}") for k in range(3))

    def gate(k: int, peephole, state, what: str):
        pre = build.columns(gates, k * n, (k + 1) * n, f"{what}{d}_pre")
        return build.add(pre, build.mul(peephole, state, f"{what}{d}_peephole"), f"{what}{d}_pre_p")

    i = build.op("Sigmoid", f"i{d}", gate(0, p_i, c_prev, "i"))
    c_tilde = build.op("Tanh", f"ctilde{d}", gate(3, None, None, "c"))
    forget = None
    if c_prev is not None:  # f only scales C_{t-1}: a zero state makes it irrelevant
        forget = build.mul(build.op("Sigmoid", f"f{d}", gate(2, p_f, c_prev, "f")), c_prev, f"fc{d}")
    c_t = build.add(forget, build.mul(i, c_tilde, f"ic{d}"), f"c{d}_t")
    o = build.op("Sigmoid", f"o{d}", gate(1, p_o, c_t, "o"))
    h_t = build.mul(o, build.op("Tanh", f"tanh_c{d}", c_t), f"h{d}_t")
    return h_t, c_t


def _gru_step(build: _Builder, plan: RnnPlan, d: int, x_t, w, r, b, h_prev):
    """One GRU step of direction ``d``: gates z, r, h (spec order), returns H_t."""
    n = plan.hidden
    w_t = build.weight(w, d, 0, 3 * n, f"w{d}", transpose=True)
    xw = build.matmul(x_t, w_t, f"xw{d}")
    wb = [build.weight(b, d, k * n, (k + 1) * n, f"wb{'zrh'[k]}{d}") for k in range(3)]
    rb = [build.weight(b, d, (3 + k) * n, (4 + k) * n, f"rb{'zrh'[k]}{d}") for k in range(3)]
    hr_zr = None
    if h_prev is not None:
        hr_zr = build.matmul(h_prev, build.weight(r, d, 0, 2 * n, f"rzr{d}", transpose=True), f"hr_zr{d}")
    r_h = build.weight(r, d, 2 * n, 3 * n, f"rh{d}", transpose=True) if h_prev is not None else None

    def gate(k: int) -> Value:
        pre = build.add(build.columns(xw, k * n, (k + 1) * n, f"xw{'zr'[k]}{d}"),
                        build.columns(hr_zr, k * n, (k + 1) * n, f"hr{'zr'[k]}{d}"), f"{'zr'[k]}{d}_xh")
        return build.op("Sigmoid", f"{'zr'[k]}{d}", build.add(pre, build.add(wb[k], rb[k], f"b{'zr'[k]}{d}"),
                                                              f"{'zr'[k]}{d}_pre"))

    z, reset = gate(0), gate(1)
    xw_h = build.columns(xw, 2 * n, 3 * n, f"xwh{d}")
    if plan.linear_before_reset:
        recurrent = build.mul(reset, build.add(build.matmul(h_prev, r_h, f"hrh{d}"), rb[2], f"hrh{d}_b"), f"rh{d}")
        pre_h = build.add(build.add(xw_h, recurrent, f"h{d}_xh"), wb[2], f"h{d}_pre")
    else:
        recurrent = build.matmul(build.mul(reset, h_prev, f"rh{d}"), r_h, f"rhr{d}")
        pre_h = build.add(build.add(xw_h, recurrent, f"h{d}_xh"), build.add(wb[2], rb[2], f"bh{d}"), f"h{d}_pre")
    h_tilde = build.op("Tanh", f"htilde{d}", pre_h)
    one_minus_z = build.op("Sub", f"one_minus_z{d}", np.ones(1, dtype=build.dtype), z)
    return build.add(build.mul(one_minus_z, h_tilde, f"zh{d}"), build.mul(z, h_prev, f"zhprev{d}"), f"h{d}_t")
