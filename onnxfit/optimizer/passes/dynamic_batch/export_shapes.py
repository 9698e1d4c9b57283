"""Where the batch starts (each input's batch axis, the export batch) and every tensor's shape there.

The rules need static per-frame shapes; onnx shape inference at the export batch gives them, with
Shape chains it does not follow evaluated here and inference run again.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx.numpy_helper
import onnx_graphsurgeon as gs

from onnxfit._graphsurgeon import export_graph
from onnxfit.batch_axes import UNKNOWN, input_batch_axes
from onnxfit.errors import OnnxfitError
from onnxfit.optimizer.constants import constant_value, evaluate_node
from onnxfit.optimizer.passes.dynamic_batch.walk import absent
from onnxfit.optimizer.pipeline import PassContext
from onnxfit.shapes import infer_shapes, proto_dim

__all__ = ["batch_seeds", "export_batch", "shape_value", "shapes_at_export_batch"]


def _gs_dim(d):
    return int(d) if isinstance(d, (int, np.integer)) else (d or None)


def batch_seeds(graph: gs.Graph, overrides: dict[str, int | None]) -> list[tuple[gs.Variable, int]]:
    """Graph inputs that carry frames -> their batch axis, read from the dim names (rule 1) unless
    ``--batch-axis`` says (``overrides``)."""
    dims = {x.name: None if x.shape is None else [_gs_dim(d) for d in x.shape] for x in graph.inputs}
    for name, axis in overrides.items():
        if name not in dims:
            raise OnnxfitError(f"--batch-axis {name}=...: '{name}' is not a model input (inputs: {', '.join(dims)})")
        if axis is not None and (dims[name] is None or axis >= len(dims[name])):
            raise OnnxfitError(f"--batch-axis {name}={axis}: input '{name}' has dims {dims[name]}")
    axes = {**input_batch_axes(dims), **overrides}
    seeds = []
    for x in graph.inputs:
        axis = axes.get(x.name)
        if axis == UNKNOWN:
            raise OnnxfitError(f"input '{x.name}' {dims[x.name]}: its dims do not say which axis holds the batch; "
                               f"pass --batch-axis {x.name}=AXIS (or name that dim 'batch')")
        if axis is not None:
            seeds.append((x, axis))
    return seeds


def export_batch(graph: gs.Graph, seeds: list[tuple[gs.Variable, int]]) -> int:
    """The batch the model was exported at: 1 when symbolic; every fixed one must agree."""
    fixed = {x.name: int(x.shape[b]) for x, b in seeds if isinstance(x.shape[b], (int, np.integer))
             and x.shape[b] > 0}
    if len(set(fixed.values())) > 1:
        (a, na), (c, nc) = sorted(fixed.items(), key=lambda item: item[1])[:1] + sorted(
            fixed.items(), key=lambda item: -item[1])[:1]
        raise OnnxfitError(f"input '{c}' has a batch of {nc} but input '{a}' has {na}; the batch cannot be "
                           "made dynamic")
    return next(iter(fixed.values()), 1)


def shapes_at_export_batch(graph: gs.Graph, seeds: list[tuple[gs.Variable, int]], batch: int,
                            ctx: PassContext) -> dict[str, tuple]:
    """Every tensor's shape at the export batch (1 when symbolic), from onnx shape inference.

    Repairs need static per-frame shapes; inference at a fixed batch gives them even when the
    model's batch is already symbolic, and ``--input-shape`` (``ctx.input_shapes``) fixes the other
    symbolic dims. Shape chains that onnx's data propagation does not follow (a Cast in the
    chain, a Resize ``sizes`` built from Shape -> Gather -> Unsqueeze -> Concat) are evaluated
    here and inference runs again with their values. Symbolic dims count as unknown.
    """
    model = export_graph(graph)
    # graph-surgeon does not list initializers as inputs, which IR 3 requires: infer as IR 4.
    model.ir_version = max(model.ir_version, 4)
    declared = {vi.name: [proto_dim(d) for d in vi.type.tensor_type.shape.dim] for vi in model.graph.input}
    fixed_inputs = {}
    for x, b in seeds:
        dims = list(ctx.input_shapes.get(x.name) or declared.get(x.name) or [])
        if len(dims) != len(declared.get(x.name) or []):
            dims = declared[x.name]
        dims[b] = batch
        fixed_inputs[x.name] = dims
    table = _known(infer_shapes(model, fixed_inputs))
    producers = {o: n for n in model.graph.node for o in n.output}
    for _ in range(8):  # each round resolves one more level of shape chains after a Resize/Reshape
        values = _unresolved_shape_values(graph, table, ctx.opset, producers)
        if not values:
            break
        for name, value in values.items():
            model.graph.initializer.append(onnx.numpy_helper.from_array(value.astype(np.int64), name))
            # The tensor is now an initializer; its producer must not write it twice.
            node = producers.pop(name)
            node.output[list(node.output).index(name)] = f"{name}__dynamic_batch_probe"
        table = _known(infer_shapes(model, fixed_inputs))
    return table


def _known(shapes: dict) -> dict[str, tuple]:
    return {name: tuple(d if isinstance(d, int) else None for d in shape)
            for name, shape in shapes.items() if shape is not None}


def _unresolved_shape_values(graph: gs.Graph, table: dict[str, tuple], opset: int,
                             producers: dict) -> dict[str, np.ndarray]:
    """Values of shape inputs (Reshape shape, Resize sizes, ...) that inference did not follow."""
    found = {}
    for node in graph.nodes:
        spots = _SHAPE_INPUTS.get(node.op, ())
        if not spots or all(o.name in table and None not in table[o.name] for o in node.outputs):
            continue
        for i in spots:
            t = node.inputs[i] if len(node.inputs) > i else None
            if absent(t) or isinstance(t, gs.Constant) or t.name not in producers or t.name in found:
                continue
            value = shape_value(t, table, opset)
            if value is not None and value.dtype.kind in "iu":
                found[t.name] = value
    return found


# Inputs whose value decides an output shape.
_SHAPE_INPUTS = {"Reshape": (1,), "Expand": (1,), "ConstantOfShape": (0,), "Tile": (1,), "Resize": (3,),
                 "Upsample": (), "Slice": (1, 2, 3, 4), "Range": (0, 1, 2), "Pad": (1,)}


def shape_value(t, table: dict[str, tuple], opset: int, depth: int = 0) -> np.ndarray | None:
    """The value of a small tensor computed from shapes in ``table`` (Shape chains), else None."""
    if absent(t) or depth > 64:
        return None
    value = constant_value(t, opset)
    if value is not None or not isinstance(t, gs.Variable) or len(t.inputs) != 1:
        return value
    node = t.inputs[0]
    if node.op == "Shape":
        shape = table.get(node.inputs[0].name)
        if shape is None or None in shape:
            return None
        return np.asarray(shape[node.attrs.get("start", 0):node.attrs.get("end")], dtype=np.int64)
    if node.op not in _SHAPE_MATH:
        return None
    values = [None if absent(i) else shape_value(i, table, opset, depth + 1) for i in node.inputs]
    if any(v is None and not absent(i) for v, i in zip(values, node.inputs)):
        return None
    outputs = evaluate_node(node, values, opset)
    return None if outputs is None else outputs[node.outputs.index(t)]


_SHAPE_MATH = {"Gather", "Slice", "Concat", "Unsqueeze", "Squeeze", "Cast", "Reshape", "Identity", "Mul", "Div",
               "Add", "Sub", "Floor", "Ceil", "ReduceProd", "Max", "Min", "Neg", "Abs", "Range", "Where",
               "Equal", "ConstantOfShape", "Expand"}
