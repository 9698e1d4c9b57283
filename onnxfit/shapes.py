"""Shape inference without weights: every tensor's shape, for passes and checks that need them.

onnx's shape inference serializes the whole model (a 2 GB protobuf limit, and a copy of every
weight). Shapes need only the weights' dtypes and dims, and the *values* of small constants
(reshape targets, axes, scales). So inference runs on a light copy: the nodes, the inputs (with
shapes overridden where asked), small initializers as they are, and large ones as graph inputs of
the same name, dtype and dims. The model itself is never modified.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence

import onnx
from onnx import helper

from onnxfit.errors import first_line
from onnxfit.graphs import iter_graphs
from onnxfit.lazy_io import is_lazy

__all__ = ["Dim", "dims_text", "infer_shapes", "proto_dim", "proto_shape", "setting_inputs_deciding_ifs", "weightless_copy"]

log = logging.getLogger(__name__)

Dim = int | str | None  # a number, a symbolic name, or unknown
_KEEP_ELEMENTS = 4096  # initializers up to this size keep their values (shape math reads them)


def infer_shapes(
    model: onnx.ModelProto,
    input_shapes: Mapping[str, Sequence[Dim]] | None = None,
    known: Sequence[onnx.ValueInfoProto] = (),
    elem_types: dict[str, int] | None = None,
) -> dict[str, tuple[Dim, ...] | None]:
    """Tensor name -> inferred shape (also inside subgraphs); None where inference knows no shape.

    ``input_shapes`` replaces the declared shapes of those inputs (e.g. batch 1, or a probe batch).
    Stale value_info and declared output shapes are dropped so they cannot contradict inference;
    ``known`` value_info (shapes the caller proved, where inference finds none) is given to it.
    ``elem_types``, when given, receives each tensor's inferred element type.
    Returns {} (and logs why) when onnx's inference fails on the model.
    """
    light = weightless_copy(model, input_shapes)
    for output in light.graph.output:
        output.ClearField("type")
    light.graph.value_info.extend(known)
    try:
        inferred = onnx.shape_inference.infer_shapes(light, strict_mode=False, data_prop=True)
    except (onnx.shape_inference.InferenceError, ValueError) as exc:
        log.warning("onnx shape inference failed: %s", first_line(exc))
        return {}
    table: dict[str, tuple[Dim, ...] | None] = {}
    for g in iter_graphs(inferred.graph):
        for vi in [*g.input, *g.value_info, *g.output]:
            if elem_types is not None and vi.type.tensor_type.elem_type:
                elem_types[vi.name] = vi.type.tensor_type.elem_type
            shape = proto_shape(vi)
            if shape is not None:
                table[vi.name] = shape
            else:
                table.setdefault(vi.name, None)
    return table


def weightless_copy(
    model: onnx.ModelProto, input_shapes: Mapping[str, Sequence[Dim]] | None = None
) -> onnx.ModelProto:
    """The model without its large (or lazy) weights: they become graph inputs of the same name,
    dtype and dims. Small initializers keep their values. Valid ONNX, so the checker and shape
    inference run on it at the cost of the graph, not the weights."""
    input_shapes = input_shapes or {}
    graph = onnx.GraphProto(name=model.graph.name, doc_string=model.graph.doc_string)
    graph.node.extend(model.graph.node)
    declared = set()
    for vi in model.graph.input:
        declared.add(vi.name)
        if vi.name in input_shapes:
            graph.input.append(helper.make_tensor_value_info(vi.name, vi.type.tensor_type.elem_type,
                                                             list(input_shapes[vi.name])))
        else:
            graph.input.append(vi)
    for init in model.graph.initializer:
        if math.prod(init.dims) <= _KEEP_ELEMENTS and not is_lazy(init):
            graph.initializer.append(init)
        elif init.name not in declared:
            graph.input.append(helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
    graph.output.extend(model.graph.output)
    light = helper.make_model(graph, opset_imports=model.opset_import, ir_version=model.ir_version)
    light.functions.extend(model.functions)
    return light


def proto_dim(dim: onnx.TensorShapeProto.Dimension) -> Dim:
    """A TensorShapeProto dimension as a number, a symbolic name, or None (unknown).

    A dim_value <= 0 is symbolic, not a size: Paddle writes ``dim_value: -1`` for "any".
    """
    if dim.HasField("dim_value") and dim.dim_value > 0:
        return int(dim.dim_value)
    return dim.dim_param or None


def proto_shape(value_info: onnx.ValueInfoProto) -> tuple[Dim, ...] | None:
    """A value_info's dims (``proto_dim`` each), or None when it has no tensor shape at all."""
    tensor_type = value_info.type.tensor_type
    if not value_info.type.HasField("tensor_type") or not tensor_type.HasField("shape"):
        return None
    return tuple(proto_dim(d) for d in tensor_type.shape.dim)


def dims_text(dims) -> str:
    """``[batch, 3, ?, 640]``: symbolic dims by name, unknown ones as ``?``."""
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


_SETTING_MAX_ELEMENTS = 4  # scalars and tiny vectors: settings a caller fixes, not data


def setting_inputs_deciding_ifs(model: onnx.ModelProto) -> dict[str, int]:
    """Small inputs (scalars, tiny vectors) from which an If condition is computed: name -> Ifs."""
    initializers = {t.name for t in model.graph.initializer}
    settings = []
    for value_info in model.graph.input:
        dims = proto_shape(value_info)
        if value_info.name in initializers or dims is None:
            continue
        if all(isinstance(d, int) for d in dims) and _elements(dims) <= _SETTING_MAX_ELEMENTS:
            settings.append(value_info.name)
    if not settings:
        return {}
    producers = {}
    for graph in iter_graphs(model.graph):
        for node in graph.node:
            for output in node.output:
                producers[output] = node
    counts: dict[str, int] = {}
    for graph in iter_graphs(model.graph):
        for node in graph.node:
            if node.op_type == "If":
                for name in _sources(node.input[0], producers, set(settings)):
                    counts[name] = counts.get(name, 0) + 1
    return counts


def _sources(tensor: str, producers: dict, wanted: set[str]) -> set[str]:
    """The ``wanted`` graph inputs ``tensor`` is computed from (through any ops)."""
    found, stack, seen = set(), [tensor], set()
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in wanted:
            found.add(name)
        node = producers.get(name)
        if node is not None:
            stack.extend(i for i in node.input if i)
    return found


def _elements(dims: list[int]) -> int:
    total = 1
    for d in dims:
        total *= d
    return total
