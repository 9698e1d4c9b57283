"""Graph edits the simplification rules share: bypass a node, reuse a value, read a constant.

A node that computes what one of its inputs already holds (Identity, a Cast to the same type, a
chain collapsed into one node) is removed by pointing its consumers at that value. Graph outputs
keep their names: when the node writes one, the value's producer is made to write it instead, so
callers still read the output by its name; when that is not possible (the value is a graph input or
a weight, or lives in an outer graph) the node stays and the rule says why.
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs
from onnx_graphsurgeon.ir.tensor import LazyValues

from onnxfit.graphs import cleanup, disconnect
from onnxfit.lazy_io import is_lazy, read_lazy
from onnxfit.optimizer.rewrite import DEFAULT_DOMAINS, Skip, declared_dtype, is_omitted

__all__ = ["RESHAPE_OPS", "bypass", "bypass_blocked", "cleanup", "constant_array", "consumers", "declared_dtype",
           "disconnect", "is_reshape", "producer", "reduce_axes", "replace_uses", "set_input", "set_inputs", "slice_params",
           "small_constant", "uniform_value"]

# Ops that only rename the dims of the same elements in the same order.
RESHAPE_OPS = ("Reshape", "Squeeze", "Unsqueeze", "Flatten")

# Largest constant a rule reads element by element (pads, perms, shapes, per-channel scales).
_SMALL = 1 << 20


def producer(tensor: gs.Tensor) -> gs.Node | None:
    return tensor.inputs[0] if len(tensor.inputs) == 1 else None


def is_reshape(node: gs.Node | None) -> bool:
    """A default-domain Reshape, Squeeze, Unsqueeze or Flatten."""
    return node is not None and node.op in RESHAPE_OPS and node.domain in DEFAULT_DOMAINS


def reduce_axes(node: gs.Node, opset: int, rank: int | None) -> list[int] | None:
    """A Reduce* node's axes, non-negative and sorted (none given: every axis); None when the rank
    is unknown, the axes are computed at run time, or the node is an Identity
    (``noop_with_empty_axes``)."""
    if rank is None:
        return None
    if opset >= 13:
        axes = node.inputs[1] if len(node.inputs) > 1 and not is_omitted(node.inputs[1]) else None
        given = None if axes is None else small_constant(axes)
        if axes is not None and given is None:
            return None  # computed at run time
    else:
        given = node.attrs.get("axes")
    if given is None or len(given) == 0:
        return None if node.attrs.get("noop_with_empty_axes", 0) else list(range(rank))
    return sorted({int(a) % rank for a in np.asarray(given).reshape(-1)})


def consumers(tensor: gs.Tensor) -> list[gs.Node]:
    return list(tensor.outputs)


def constant_array(tensor: gs.Constant) -> np.ndarray:
    """A constant's values, weights too; a weight lazy_io left on disk is read from there without
    materializing graph-surgeon's copy (its private ``_values``)."""
    lazy = tensor._values
    if isinstance(lazy, LazyValues) and is_lazy(lazy.tensor):
        return read_lazy(lazy.tensor)
    return np.asarray(tensor.values)


def small_constant(tensor: gs.Tensor | None) -> np.ndarray | None:
    """The value of a constant tensor that is small enough to read, else None."""
    if is_omitted(tensor) or not isinstance(tensor, gs.Constant):
        return None
    if int(np.prod(tensor.shape, dtype=np.int64)) > _SMALL:
        return None
    return np.asarray(tensor.values)


_UNIFORM_MAX = 4096  # neutral elements and scalar-like constants are small; weights are not read


def uniform_value(tensor: gs.Tensor | None):
    """The one value every element of a small constant holds (a scalar, or [1, 32] of zeros), else None."""
    if isinstance(tensor, gs.Constant) and int(np.prod(tensor.shape, dtype=np.int64)) > _UNIFORM_MAX:
        return None
    value = small_constant(tensor)
    if value is None or value.size == 0:
        return None
    flat = value.reshape(-1)
    first = flat[0]
    if value.dtype.kind == "f":
        same = np.array_equal(flat, np.full_like(flat, first), equal_nan=True)
        # -0.0 and 0.0 compare equal: both signs count as different values here.
        same = same and bool(np.all(np.signbit(flat) == np.signbit(first)))
    else:
        same = bool(np.all(flat == first))
    return first if same else None


def slice_params(node: gs.Node, opset: int, rank: int | None) -> list[np.ndarray] | None:
    """A Slice's (starts, ends, axes, steps) as int64 arrays in either opset form (attributes
    before 10, inputs after), axes made non-negative with ``rank``; None if any is not constant."""
    if opset < 10:
        starts, ends, axes = (node.attrs.get(k) for k in ("starts", "ends", "axes"))
        steps = None
    else:
        inputs = list(node.inputs) + [None] * (5 - len(node.inputs))
        starts, ends = small_constant(inputs[1]), small_constant(inputs[2])
        axes = None if is_omitted(inputs[3]) else small_constant(inputs[3])
        steps = None if is_omitted(inputs[4]) else small_constant(inputs[4])
        if (axes is None and not is_omitted(inputs[3])) or (steps is None and not is_omitted(inputs[4])):
            return None
    if starts is None or ends is None:
        return None
    starts, ends = np.asarray(starts, np.int64).reshape(-1), np.asarray(ends, np.int64).reshape(-1)
    axes = np.arange(starts.size, dtype=np.int64) if axes is None else np.asarray(axes, np.int64).reshape(-1)
    steps = np.ones(starts.size, np.int64) if steps is None else np.asarray(steps, np.int64).reshape(-1)
    if np.any(axes < 0):
        if rank is None:
            return None
        axes = np.where(axes < 0, axes + rank, axes)
    return [starts, ends, axes, steps]


def set_input(node: gs.Node, index: int, new: gs.Tensor) -> None:
    """``node.inputs[index] = new``, keeping the tensors' reader lists in step by identity.

    graph-surgeon's own assignment removes the node from the old tensor's readers by equality,
    and its nodes compare equal by name, op, attributes and tensors: two nameless Identity nodes
    of one constant in an If branch are "equal", and the wrong one leaves the list.
    """
    old = node.inputs[index]
    if old is new:
        return
    readers = old.outputs
    position = next(k for k, reader in enumerate(readers) if reader is node)
    list.pop(readers, position)
    list.__setitem__(node.inputs, index, new)
    list.append(new.outputs, node)


def set_inputs(node: gs.Node, tensors: list[gs.Tensor]) -> None:
    """Replace all of ``node``'s inputs, by identity (see ``set_input``)."""
    for tensor in node.inputs:
        if tensor is not None:
            readers = tensor.outputs
            list.pop(readers, next(k for k, reader in enumerate(readers) if reader is node))
    list.clear(node.inputs)
    for tensor in tensors:
        list.append(node.inputs, tensor)
        list.append(tensor.outputs, node)


def replace_uses(old: gs.Tensor, new: gs.Tensor) -> None:
    """Every node that reads ``old`` (in this graph or a subgraph) reads ``new`` instead."""
    for node in consumers(old):
        for i, tensor in enumerate(node.inputs):
            if tensor is old:
                set_input(node, i, new)


def bypass_blocked(graph: gs.Graph, node: gs.Node, value: gs.Tensor, outputs: set[int]) -> Skip | None:
    """Why ``node`` cannot be bypassed to ``value`` (see ``bypass``), or None when it can."""
    out = node.outputs[0]
    if len(node.outputs) > 1 and any(t.outputs or id(t) in outputs for t in node.outputs[1:]):
        return Skip("another of its outputs is read")
    if id(out) not in outputs:
        return None
    source = producer(value)
    if (source is None or source not in graph.nodes or id(value) in outputs or isinstance(value, gs.Constant)
            or value in graph.inputs or len(source.outputs) == 0):
        return Skip("its output is a graph output that cannot take another name")
    return None


def bypass(graph: gs.Graph, node: gs.Node, value: gs.Tensor, outputs: set[int]) -> None:
    """Remove ``node``, whose first output holds ``value``: its readers read ``value`` instead.

    When the output is a graph output, ``value``'s producer writes it under the output's name
    instead (the name callers read). ``bypass_blocked`` said it can be done.
    """
    out = node.outputs[0]
    disconnect(node)
    if id(out) not in outputs:
        replace_uses(out, value)
        return
    source = producer(value)
    replace_uses(value, out)
    source.outputs[source.outputs.index(value)] = out
    if out.dtype is None:
        out.dtype = value.dtype
    if out.shape is None:
        out.shape = value.shape

