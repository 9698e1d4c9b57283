"""Values of shape math, learned node by node: fully known tensors and shape vectors known element
by element (``Shape(x)`` of ``[N, 8, 20, 20]`` knows its last three elements). fold-shapes folds
with them (its rules 3-3c); inline-if decides Ifs with them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from onnxfit.optimizer.constants import constant_value, evaluate_node
from onnxfit.shapes import Dim

__all__ = ["DEFAULT_DOMAINS", "Dims", "KnownValues", "MAX_ELEMENTS", "element_count", "is_empty", "shape_dims"]

# Ops evaluated with onnx.reference once every input is known: the arithmetic of shape math.
_EVALUATED = frozenset({
    "Identity", "Cast", "Concat", "Unsqueeze", "Squeeze", "Reshape", "Gather", "Slice", "Flatten",
    "Add", "Sub", "Mul", "Div", "Mod", "Neg", "Abs", "Floor", "Ceil", "Round", "Max", "Min", "Range",
    "Expand", "ConstantOfShape", "Equal", "Where", "Not", "And", "Or", "Less", "Greater",
    "ReduceProd", "ReduceSum", "ReduceMax", "ReduceMin",
    # Moves and exact arithmetic on folded grids (YOLOv8's anchors: Range -> Add -> Expand ->
    # Transpose -> Unsqueeze), which ONNX Runtime's level-1 folding would also fold.
    "Transpose", "Tile", "LessOrEqual", "GreaterOrEqual", "Xor", "Sign", "Relu", "Clip", "Sqrt", "Reciprocal",
})
# Ops that only move elements: they can carry partly known shape vectors (fold-shapes rule 3).
_SELECTING = frozenset({"Identity", "Gather", "Slice", "Concat", "Unsqueeze", "Squeeze", "Reshape"})
DEFAULT_DOMAINS = (None, "", "ai.onnx")  # graph-surgeon imports "" as None
MAX_ELEMENTS = 1 << 16  # a shape-sized tensor; anything larger is data and stays computed
_INT_TYPES = {onnx.TensorProto.INT8, onnx.TensorProto.INT16, onnx.TensorProto.INT32, onnx.TensorProto.INT64,
               onnx.TensorProto.UINT8, onnx.TensorProto.UINT16, onnx.TensorProto.UINT32, onnx.TensorProto.UINT64}


def element_count(shape) -> int:
    if shape is None or any(not isinstance(d, (int, np.integer)) for d in shape):
        return -1
    return int(np.prod(shape, dtype=np.int64))


@dataclass(frozen=True)
class Dims:
    """A rank-0 or rank-1 integer tensor known element by element (fold-shapes rule 3)."""

    elements: tuple[Dim, ...]
    scalar: bool
    dtype: np.dtype

    def value(self) -> np.ndarray | None:
        if not all(isinstance(e, int) for e in self.elements):
            return None
        value = np.asarray(self.elements, dtype=self.dtype)
        return value.reshape(()) if self.scalar else value


class KnownValues:
    """Values (and partly known shape vectors) of tensors, learned node by node in graph order."""

    def __init__(self, opset: int):
        self.opset = opset
        self.values: dict[str, np.ndarray] = {}
        self.dims: dict[str, Dims] = {}

    def value(self, tensor: gs.Tensor) -> np.ndarray | None:
        if tensor.name in self.values:
            return self.values[tensor.name]
        if isinstance(tensor, gs.Constant) or (tensor.inputs and tensor.inputs[0].op == "Constant"):
            return constant_value(tensor, self.opset)
        return None

    def vector(self, tensor: gs.Tensor) -> Dims | None:
        """``tensor`` as a partly known integer vector or scalar, if it is one."""
        if tensor.name in self.dims:
            return self.dims[tensor.name]
        value = self.value(tensor)
        if value is None or value.ndim > 1 or not np.issubdtype(value.dtype, np.integer):
            return None
        return Dims(tuple(int(v) for v in value.reshape(-1)), value.ndim == 0, value.dtype)

    def learn(self, node: gs.Node) -> None:
        if node.domain not in DEFAULT_DOMAINS or len(node.outputs) != 1:
            return
        out = node.outputs[0]
        if node.op in ("Shape", "Size"):
            dims = shape_dims(node)
            if dims is not None:
                self._store(out, dims)
            return
        if node.op in _EVALUATED and element_count(out.shape) <= MAX_ELEMENTS:
            inputs = [None if is_empty(t) else self.value(t) for t in node.inputs]
            if all(v is not None for v, t in zip(inputs, node.inputs) if not is_empty(t)):
                results = evaluate_node(node, inputs, self.opset)
                if results is not None:
                    self.values[out.name] = results[0]
                    return
        if node.op == "Equal":
            decided = self._equal(node)
            if decided is not None:
                self.values[out.name] = decided
            return
        dims = self._select(node) if node.op in _SELECTING else self._cast(node) if node.op == "Cast" else None
        if dims is not None:
            self._store(out, dims)

    def _equal(self, node: gs.Node) -> np.ndarray | None:
        """Rule 3c: Equal of a partly known shape vector, decided where every pair is: a dim (never
        negative) is not -1, the ``expand(-1, ...)`` marker torch compares a shape with."""
        a, b = (self.vector(t) for t in node.inputs[:2])
        if a is None or b is None or a.scalar != b.scalar or len(a.elements) != len(b.elements):
            return None
        decided = []
        for x, y in zip(a.elements, b.elements):
            if isinstance(x, int) and isinstance(y, int):
                decided.append(x == y)
            elif isinstance(x, int) != isinstance(y, int) and min(v for v in (x, y) if isinstance(v, int)) < 0:
                decided.append(False)
            else:
                return None
        value = np.array(decided, dtype=bool)
        return value.reshape(()) if a.scalar else value

    def forget(self, tensor: gs.Tensor) -> None:
        """Drop what is known of ``tensor`` and of the computed tensors it was derived from."""
        if isinstance(tensor, gs.Constant) or (tensor.name not in self.values and tensor.name not in self.dims):
            return
        self.values.pop(tensor.name, None)
        self.dims.pop(tensor.name, None)
        for producer in tensor.inputs:
            if producer.op != "Constant":
                for source in producer.inputs:
                    self.forget(source)

    def _store(self, tensor: gs.Tensor, dims: Dims) -> None:
        value = dims.value()
        if value is not None:
            self.values[tensor.name] = value
        else:
            self.dims[tensor.name] = dims

    def _select(self, node: gs.Node) -> Dims | None:
        """Run an element-moving op on element indices instead of values, then map them back."""
        data = list(node.inputs) if node.op == "Concat" else node.inputs[:1]
        vectors = [self.vector(t) for t in data]
        if any(v is None for v in vectors):
            return None
        rest = [None if is_empty(t) else self.value(t) for t in node.inputs[len(data):]]
        if any(v is None and not is_empty(t) for v, t in zip(rest, node.inputs[len(data):])):
            return None
        elements: list[Dim] = []
        indices = []
        for v in vectors:
            index = np.arange(len(elements), len(elements) + len(v.elements), dtype=np.int64)
            indices.append(index.reshape(()) if v.scalar else index)
            elements.extend(v.elements)
        results = evaluate_node(node, [*indices, *rest], self.opset)
        if results is None or results[0].ndim > 1:
            return None
        picked = results[0]
        return Dims(tuple(elements[i] for i in picked.reshape(-1)), picked.ndim == 0, vectors[0].dtype)

    def _cast(self, node: gs.Node) -> Dims | None:
        # Integer -> integer casts keep sizes as they are; to float, only fully known values fold.
        vector = self.vector(node.inputs[0])
        if vector is None or node.attrs.get("to") not in _INT_TYPES:
            return None
        dtype = onnx.helper.tensor_dtype_to_np_dtype(node.attrs["to"])
        return Dims(vector.elements, vector.scalar, dtype)


def shape_dims(node: gs.Node) -> Dims | None:
    shape = node.inputs[0].shape
    if shape is None:
        return None
    dims = [int(d) if isinstance(d, (int, np.integer)) and d > 0 else (d if isinstance(d, str) and d else None)
            for d in shape]
    if node.op == "Size":
        return Dims((int(np.prod(dims)),), True, np.dtype(np.int64)) if element_count(dims) >= 0 else None
    # Shape's start/end (opset 15) count from the back when negative and clamp, as Python slicing.
    dims = dims[node.attrs.get("start", 0):node.attrs.get("end", None)]
    return Dims(tuple(dims), False, np.dtype(np.int64))


def is_empty(tensor: gs.Tensor | None) -> bool:
    return tensor is None or (isinstance(tensor, gs.Variable) and tensor.name == "")
