"""Constant values of graph tensors, including those that are constant only after folding.

Exporters rarely hand ops their attributes as plain initializers: torch writes ``Constant`` nodes,
and Paddle/TF write ``Cast``/``Concat``/``Unsqueeze`` chains of constants. Passes ask
``constant_value(tensor)`` and get a numpy array whenever the value is known before run time,
without changing the graph.
"""

from __future__ import annotations

import logging

import numpy as np
import onnx
import onnx_graphsurgeon as gs
from onnx import helper, numpy_helper

from onnxfit.errors import first_line

__all__ = ["OrtRefused", "constant_node_value", "constant_value", "evaluate_node", "is_constant", "node_proto", "run_on_cpu", "static_shape"]

log = logging.getLogger(__name__)

# Ops whose output is constant when every input is; evaluated with onnx.reference.
_FOLDABLE = {
    "Identity", "Cast", "Concat", "Unsqueeze", "Squeeze", "Reshape", "Gather", "Slice", "Flatten",
    "Add", "Sub", "Mul", "Div", "Neg", "Abs", "Floor", "Ceil", "Max", "Min", "Range", "Expand",
    "ConstantOfShape", "Transpose", "Equal", "Where", "Not", "And", "Or", "Less", "Greater",
    "ReduceProd", "ReduceSum", "Size",
}
_MAX_ELEMENTS = 1 << 16  # only small tensors are shape-like; never fold weights (lazy_io.LAZY_THRESHOLD is above this)


def static_shape(tensor: gs.Tensor) -> tuple[int, ...] | None:
    """The tensor's shape if every dim is a known size, else None (a dim_value <= 0 is symbolic)."""
    shape = tensor.shape
    if isinstance(tensor, gs.Constant):
        return tuple(int(d) for d in tensor.shape)
    if shape is None or any(not isinstance(d, (int, np.integer)) or d <= 0 for d in shape):
        return None
    return tuple(int(d) for d in shape)


def is_constant(tensor: gs.Tensor, opset: int | None = None) -> bool:
    return constant_value(tensor, opset) is not None


def constant_value(tensor: gs.Tensor | None, opset: int | None = None, _depth: int = 0) -> np.ndarray | None:
    """The value of ``tensor`` if it is known before run time (small tensors only), else None.

    ``opset`` is the model's default-domain opset (ops such as Squeeze changed form at 13).
    """
    if tensor is None:
        return None
    if isinstance(tensor, gs.Constant):
        if int(np.prod(tensor.shape, dtype=np.int64)) > _MAX_ELEMENTS:
            return None
        return np.asarray(tensor.values)
    if _depth > 64 or len(tensor.inputs) != 1:
        return None
    node = tensor.inputs[0]
    if node.op == "Constant":
        return constant_node_value(node)
    if node.op == "Shape":
        return _shape_value(node, opset, _depth)
    if node.op not in _FOLDABLE or node.domain not in (None, "", "ai.onnx"):  # graph-surgeon imports "" as None
        return None
    inputs = []
    for inp in node.inputs:
        if inp is None or (isinstance(inp, gs.Variable) and inp.name == ""):
            inputs.append(None)
            continue
        value = constant_value(inp, opset, _depth + 1)
        if value is None:
            return None
        inputs.append(value)
    outputs = _evaluate(node, inputs, opset)
    if outputs is None:
        return None
    return outputs[node.outputs.index(tensor)]


def constant_node_value(node: gs.Node) -> np.ndarray | None:
    """The tensor a ``Constant`` node holds (``value``, ``value_float(s)``, ``value_int(s)``), else None."""
    attrs = node.attrs
    if "value" in attrs:
        value = attrs["value"]
        return np.asarray(value.values if isinstance(value, gs.Constant) else value)
    for key, dtype in (("value_float", np.float32), ("value_int", np.int64)):
        if key in attrs:
            return np.asarray(attrs[key], dtype=dtype)
    for key, dtype in (("value_floats", np.float32), ("value_ints", np.int64)):
        if key in attrs:
            return np.asarray(list(attrs[key]), dtype=dtype)
    return None


def _shape_value(node: gs.Node, opset: int | None, depth: int) -> np.ndarray | None:
    shape = static_shape(node.inputs[0])
    if shape is None:
        # Shape of a constant (torch's F.pad export reads the pads Constant's shape): no graph
        # input reaches it, so it is constant even where no shape was inferred.
        value = constant_value(node.inputs[0], opset, depth + 1)
        if value is None:
            return None
        shape = value.shape
    start, end = node.attrs.get("start", 0), node.attrs.get("end", None)
    return np.asarray(shape[start:end], dtype=np.int64)


def evaluate_node(node: gs.Node, inputs: list[np.ndarray | None], opset: int | None) -> list[np.ndarray] | None:
    """``node``'s outputs for the given input values (None for an omitted optional input), or None
    when onnx.reference cannot run it or an output is larger than a shape-sized tensor.

    For passes that fold forward through a graph themselves and keep their own table of values.
    """
    return _evaluate(node, inputs, opset)


def _evaluate(node: gs.Node, inputs: list[np.ndarray | None], opset: int | None) -> list[np.ndarray] | None:
    """Run one node on constant inputs with onnx's reference implementation."""
    from onnx.reference import ReferenceEvaluator

    names = [f"in{i}" if value is not None else "" for i, value in enumerate(inputs)]
    out_names = [f"out{i}" for i in range(len(node.outputs))]
    try:
        proto = node_proto(node, names, out_names)
        if opset is None:
            evaluator = ReferenceEvaluator(proto)
        else:
            graph = helper.make_graph(
                [proto], "fold",
                [helper.make_tensor_value_info(n, to_proto_dtype(v.dtype), v.shape) for n, v in zip(names, inputs) if v is not None],
                [helper.make_tensor_value_info(n, onnx.TensorProto.UNDEFINED, None) for n in out_names],
            )
            evaluator = ReferenceEvaluator(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]))
        feeds = {n: v for n, v in zip(names, inputs) if v is not None}
        results = evaluator.run(None, feeds)
    except Exception as exc:  # noqa: BLE001 - an op we cannot fold stays dynamic; say why in the log
        log.debug("cannot fold %s '%s': %s", node.op, node.name, exc)
        return None
    results = [np.asarray(r) for r in results]
    if any(r.size > _MAX_ELEMENTS for r in results):
        return None
    return results


def node_proto(node: gs.Node, inputs: list[str], outputs: list[str]) -> onnx.NodeProto:
    """``node`` as a NodeProto reading and writing the given names (constant attributes included;
    a tensor-reference attribute raises ValueError)."""
    attrs = {k: _attr_value(v) for k, v in node.attrs.items()}
    return helper.make_node(node.op, inputs, outputs, name=node.name or None, **attrs)


class OrtRefused(Exception):
    """ONNX Runtime cannot build or run the nodes (a type its CPU kernels lack, ...): one line why."""


def run_on_cpu(nodes: list[onnx.NodeProto], opset: int, initializers: list[onnx.TensorProto],
               inputs: dict[str, np.ndarray], outputs: list[str]) -> list[np.ndarray]:
    """The values ONNX Runtime's CPU EP computes for ``outputs`` of ``nodes``, graph optimizations
    off: what the CPU EP computes at run time, bit for bit (fold-constants, native-functions)."""
    import onnxruntime as ort

    declared = [helper.make_tensor_value_info(name, to_proto_dtype(value.dtype), value.shape)
                for name, value in inputs.items()]
    graph = helper.make_graph(nodes, "evaluate", declared, [onnx.ValueInfoProto(name=n) for n in outputs],
                              initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, 10)  # every onnxruntime we support reads IR 10
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 4
    try:
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        return [np.asarray(r) for r in session.run(outputs, inputs)]
    except Exception as exc:  # noqa: BLE001 - ORT raises several types; the caller keeps the nodes
        raise OrtRefused(first_line(exc)[:200]) from None


def _attr_value(value):
    if isinstance(value, gs.Constant):
        return numpy_helper.from_array(np.asarray(value.values))
    if isinstance(value, gs.Tensor):
        raise ValueError("tensor-reference attribute")
    return value


def to_proto_dtype(dtype) -> int:
    return onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
