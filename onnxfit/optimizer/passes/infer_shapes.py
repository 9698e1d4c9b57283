"""infer-shapes: write every tensor's dtype and shape into the model, past where onnx inference stops.

Why: the CoreML and NNAPI builders refuse any node whose input has no known rank, and ONNX Runtime
knows only what onnx's shape inference (at the model's own opset) and the file's ``value_info``
tell it. onnx's Reshape before opset 14 gives no output shape at all when the target shape is
computed (``Concat(Shape(x)[:2], [-1])``, Paddle2ONNX's flatten), so everything after such a
Reshape has no rank: on PP-OCRv4's recognizer that is a quarter of the graph on the CPU. Rules:

1. onnx shape inference (with data propagation) runs on a weightless copy of the graph (small
   initializers keep their values).
2. A Reshape whose output stays unknown while its inputs are known gets its output from the
   target shape: the rank is the target's length, and each dim is read from the target's value
   where it is known element by element. Elements are followed through Shape, Gather, Slice,
   Concat, Unsqueeze, Squeeze, Cast and Identity, so ``Shape(x)[0]`` is x's dim 0 by the name the
   model gave it; ``0`` copies the input dim (``allowzero`` unset); ``-1`` is computed only when
   every other size is a number. Anything else stays an unknown dim: no size is ever guessed.
3. These shapes are handed back to onnx inference as value_info, which then continues past the
   Reshape; rules 1-2 repeat until no Reshape is left to resolve.
4. Every tensor that gains information gets it: an unknown dtype, an unknown rank, or a dim that
   was unknown (or Paddle's ``-1``). Dims the graph already has, graph inputs and symbolic names
   are never replaced, so exporter names and fixed sizes from ``--input-shape`` stay.
5. When onnx inference fails on the model, the graph is left as it was and the report says why.

Exact: only shape annotations are written; no node changes (ONNX Runtime's own optimizations may
then do more, e.g. move Transposes once ranks are known). ``rewritten`` counts the tensors that
got a shape onnx inference, and so ONNX Runtime, does not find; dtypes and shapes it does find are
filled too but are no change on their own. Built on onnx's inference rather than onnxruntime's
symbolic shape inference: that one needs sympy (no dependency of onnxruntime), merges symbolic dims
by assumption, and stops with an assertion on ordinary graphs (ppocr_mobile_v2_cls).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import onnx
import onnx_graphsurgeon as gs
from onnx import helper, numpy_helper
from onnx_graphsurgeon.importers.onnx_importer import get_numpy_type

from onnxfit._graphsurgeon import export_graph
from onnxfit.errors import first_line
from onnxfit.graphs import iter_graphs
from onnxfit.optimizer.pipeline import PassContext, PassReport, register_pass
from onnxfit.shapes import Dim, proto_dim, weightless_copy

__all__ = ["InferShapesPass"]

log = logging.getLogger(__name__)

# An element of a shape vector: a size, a symbolic dim name, or unknown.
Element = int | str | None
_TypeInfo = tuple[int, tuple[Dim, ...] | None]  # onnx elem_type, dims (None: rank unknown)
_INT_TYPES = {onnx.TensorProto.INT64, onnx.TensorProto.INT32}


@register_pass
class InferShapesPass:
    name = "infer-shapes"
    version = 1

    def run(self, graph: gs.Graph, ctx: PassContext) -> PassReport:
        report = PassReport(self.name)
        try:
            types, resolved, beyond = _infer(export_graph(graph))
        except (onnx.shape_inference.InferenceError, ValueError) as exc:
            report.skipped.append(f"onnx shape inference failed ({first_line(exc)}); shapes left as they were")
            report.changed = False
            return report
        # Only shapes ONNX Runtime cannot infer itself count as a change: a model that needs none
        # is left as it was (with no other pass changing it, the pipeline returns it untouched).
        report.rewritten = len(_write_types(graph, types) & beyond)
        report.changed = bool(report.rewritten)
        if report.rewritten:
            report.notes.append(f"{report.rewritten} tensor(s) got a shape onnx inference cannot find, past "
                                f"{resolved} Reshape(s) with a computed shape")
        return report


# ------------------------------------------------------------------------------ inference rounds


def _infer(model: onnx.ModelProto) -> tuple[dict[str, _TypeInfo], int, set[str]]:
    """Tensor name -> (elem_type, dims) over all graphs; how many Reshapes rule 2 resolved; the
    tensors whose dims onnx inference alone does not know."""
    light = weightless_copy(model)
    for output in light.graph.output:
        output.ClearField("type")  # declared shapes (Paddle's -1) must not contradict inference
    seeded: set[str] = set()
    onnx_only = None
    while True:
        inferred = onnx.shape_inference.infer_shapes(light, strict_mode=False, data_prop=True)
        types = _types(inferred)
        if onnx_only is None:
            onnx_only = types
        found = 0
        # Both models hold the same graphs in the same order: seeds go to the graph of their node.
        for seed_graph, graph in zip(iter_graphs(light.graph), iter_graphs(inferred.graph)):
            for node, elem_type, dims in _stuck_reshapes(graph, types):
                if node.output[0] in seeded:
                    continue  # onnx dropped it: one seed per tensor, so the rounds always end
                seeded.add(node.output[0])
                seed_graph.value_info.append(helper.make_tensor_value_info(node.output[0], elem_type, list(dims)))
                found += 1
        if not found:
            beyond = {name for name, (_, dims) in types.items() if _knows_more(onnx_only.get(name, (0, None))[1], dims)}
            return types, len(seeded), beyond


def _knows_more(old: tuple[Dim, ...] | None, new: tuple[Dim, ...] | None) -> bool:
    """A rank where there was none, or a size where there was none (names of unknowns don't count)."""
    if new is None:
        return False
    if old is None or len(old) != len(new):
        return True
    return any(isinstance(n, int) and not isinstance(o, int) for o, n in zip(old, new))


def _types(model: onnx.ModelProto) -> dict[str, _TypeInfo]:
    table: dict[str, _TypeInfo] = {}
    for g in iter_graphs(model.graph):
        for init in g.initializer:
            table[init.name] = (init.data_type, tuple(int(d) for d in init.dims))
        for vi in [*g.input, *g.value_info, *g.output]:
            if not vi.type.HasField("tensor_type"):
                continue
            tensor_type = vi.type.tensor_type
            dims = tuple(proto_dim(d) for d in tensor_type.shape.dim) if tensor_type.HasField("shape") else None
            table[vi.name] = (tensor_type.elem_type, dims)
    return table


def _stuck_reshapes(graph: onnx.GraphProto, types: dict[str, _TypeInfo]) -> Iterator[tuple[onnx.NodeProto, int, tuple]]:
    """Reshapes whose output rank is unknown but follows from the target shape (rule 2):
    each with the output's elem_type and dims."""
    values = _ShapeValues(graph, types)
    for node in graph.node:
        values.learn(node)
        if node.op_type != "Reshape" or node.domain not in ("", "ai.onnx"):
            continue
        out = types.get(node.output[0], (0, None))
        data = types.get(node.input[0], (0, None))
        target = types.get(node.input[1], (0, None))
        if out[1] is not None or data[1] is None or target[1] is None or len(target[1]) != 1:
            continue
        if not isinstance(target[1][0], int):
            continue  # a target of unknown length: the rank is not known either
        allowzero = any(a.name == "allowzero" and a.i for a in node.attribute)
        elements = values.get(node.input[1])
        if elements is None or len(elements) != target[1][0]:
            elements = (None,) * target[1][0]
        yield node, out[0] or data[0], _reshape_dims(data[1], elements, allowzero)


def _reshape_dims(data: tuple[Dim, ...], target: tuple[Element, ...], allowzero: bool) -> tuple[Dim, ...]:
    dims: list[Dim] = []
    for i, e in enumerate(target):
        if isinstance(e, int) and e == 0 and not allowzero:
            dims.append(data[i] if i < len(data) else None)
        elif isinstance(e, int) and e > 0 or isinstance(e, str):
            dims.append(e)
        else:
            dims.append(None)  # -1 (below), 0 with allowzero (an empty tensor), or unknown
    if -1 in target:
        others = [d for i, d in enumerate(dims) if target[i] != -1]
        if all(isinstance(d, int) for d in [*data, *others]):
            dims[target.index(-1)] = int(np.prod(data, dtype=np.int64)) // max(1, int(np.prod(others, dtype=np.int64)))
    return tuple(dims)


# ------------------------------------------------------------------------ shape vector values


class _ShapeValues:
    """1-D (or scalar) integer tensors known element by element: shape math before Reshape."""

    def __init__(self, graph: onnx.GraphProto, types: dict[str, _TypeInfo]):
        self._types = types
        self._values: dict[str, tuple[Element, ...] | Element] = {}
        for init in graph.initializer:  # the weightless copy keeps small ones: targets, starts, axes
            if init.data_type in _INT_TYPES and len(init.dims) <= 1 and init.data_location != onnx.TensorProto.EXTERNAL:
                self._values[init.name] = _ints(numpy_helper.to_array(init))

    def get(self, name: str) -> tuple[Element, ...] | None:
        value = self._values.get(name)
        return value if isinstance(value, tuple) else None

    def learn(self, node: onnx.NodeProto) -> None:
        if node.domain not in ("", "ai.onnx") or not node.output:
            return
        value = self._evaluate(node)
        if value is not None:
            self._values[node.output[0]] = value

    def _evaluate(self, node: onnx.NodeProto):
        op, ins = node.op_type, list(node.input)
        if op == "Constant":
            return _constant_node_value(node)
        if op == "Shape":
            dims = self._types.get(ins[0], (0, None))[1]
            if dims is None:
                return None
            start, end = _attr(node, "start", 0), _attr(node, "end", len(dims))
            return tuple(dims[slice(start, end)])
        if op in ("Identity", "Cast"):
            if op == "Cast" and _attr(node, "to", 0) not in _INT_TYPES:
                return None
            return self._values.get(ins[0])
        if op == "Concat":
            parts = [self._vector(name) for name in ins]
            if any(p is None for p in parts):
                return None
            return tuple(e for p in parts for e in p)
        if op == "Unsqueeze":
            value = self._values.get(ins[0])
            return (value,) if value is not None and not isinstance(value, tuple) else None
        if op == "Squeeze":
            value = self._values.get(ins[0])
            return value[0] if isinstance(value, tuple) and len(value) == 1 else None
        if op == "Gather":
            return self._gather(node)
        if op == "Slice":
            return self._slice(node)
        return None

    def _vector(self, name: str) -> tuple[Element, ...] | None:
        value = self._values.get(name)
        if isinstance(value, tuple):
            return value
        dims = self._types.get(name, (0, None))[1]
        if dims is not None and len(dims) == 1 and isinstance(dims[0], int):
            return (None,) * dims[0]  # length known, elements not
        return None

    def _gather(self, node: onnx.NodeProto):
        data, indices = self.get(node.input[0]), self._values.get(node.input[1])
        if data is None or indices is None or _attr(node, "axis", 0) != 0:
            return None
        picks = indices if isinstance(indices, tuple) else (indices,)
        if not all(isinstance(i, int) and -len(data) <= i < len(data) for i in picks):
            return None
        chosen = tuple(data[i] for i in picks)
        return chosen if isinstance(indices, tuple) else chosen[0]

    def _slice(self, node: onnx.NodeProto):
        data = self.get(node.input[0])
        if data is None:
            return None
        if len(node.input) > 1:  # opset 10+: starts, ends, axes, steps as inputs
            args = [self._values.get(name) if name else None for name in node.input[1:5]]
            args += [None] * (4 - len(args))
            if any(a is not None and not (isinstance(a, tuple) and all(isinstance(e, int) for e in a))
                   for a in args) or args[0] is None or args[1] is None:
                return None
            starts, ends, axes, steps = args
        else:
            starts, ends, axes, steps = _attr(node, "starts", None), _attr(node, "ends", None), _attr(node, "axes", None), None
            if starts is None or ends is None:
                return None
        if (axes is not None and tuple(axes) not in ((0,), (-1,))) or len(starts) != 1:
            return None
        step = steps[0] if steps else 1
        if step == 0:
            return None  # invalid; Python's slice would raise
        # Python's slicing clamps negative and out-of-range bounds the way ONNX's Slice does.
        return tuple(data[slice(_clamp(starts[0]), _clamp(ends[0]), step)])


def _clamp(i: int) -> int:
    # INT64 max/min mean "to the end"; any bound past the vector means the same to a slice.
    return max(min(int(i), 1 << 62), -(1 << 62))


def _constant_node_value(node: onnx.NodeProto):
    for a in node.attribute:
        if a.name == "value" and a.t.data_type in _INT_TYPES and len(a.t.dims) <= 1:
            return _ints(numpy_helper.to_array(a.t))
        if a.name == "value_ints":
            return tuple(int(v) for v in a.ints)
        if a.name == "value_int":
            return int(a.i)
    return None


def _ints(array: np.ndarray):
    return tuple(int(v) for v in array) if array.ndim == 1 else int(array)


def _attr(node: onnx.NodeProto, name: str, default):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


# --------------------------------------------------------------------------------- write back


def _write_types(graph: gs.Graph, types: dict[str, _TypeInfo]) -> set[str]:
    """Fill what each tensor lacks from ``types`` (rule 4); returns the tensors that gained."""
    inputs = {t.name for t in graph.inputs}
    gained = set()
    for g in iter_graphs(graph):
        for tensor in g.tensors().values():
            if not isinstance(tensor, gs.Variable) or tensor.name in inputs or tensor.name not in types:
                continue
            elem_type, dims = types[tensor.name]
            changed = False
            if tensor.dtype is None and elem_type:
                dtype = get_numpy_type(elem_type)
                if dtype is not None:
                    tensor.dtype = dtype
                    changed = True
            if dims is not None:
                merged = _fill_dims(tensor.shape, dims)
                if merged != (list(tensor.shape) if tensor.shape is not None else None):
                    tensor.shape = merged
                    changed = True
            if changed:
                gained.add(tensor.name)
    return gained


def _fill_dims(old, new: tuple[Dim, ...]) -> list[Dim]:
    """Dims the tensor already has win; unknown ones (None, Paddle's -1) take the inferred dim."""
    if old is None or len(old) != len(new):
        return list(new) if old is None else list(old)
    return [n if o is None or (isinstance(o, (int, np.integer)) and o <= 0) else o for o, n in zip(old, new)]
