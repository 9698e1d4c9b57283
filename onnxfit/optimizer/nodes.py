"""Builders for the few ops passes insert, in the form the model's opset requires.

Slice, Squeeze and Unsqueeze moved attributes to inputs (Slice at 10, Squeeze/Unsqueeze at 13);
passes call these builders and never spell out opset differences themselves.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx_graphsurgeon as gs

from onnxfit.graphs import iter_graphs

__all__ = ["share_name_registry", "int64_constant", "add_node", "slice_", "concat", "squeeze", "unsqueeze", "unique_name"]


def unique_name(graph: gs.Graph, base: str) -> str:
    """A tensor/node name not used in ``graph`` yet (graph-surgeon does not check this for us)."""
    taken = _names(graph)
    name, i = base, 0
    while name in taken:
        i += 1
        name = f"{base}_{i}"
    taken.add(name)
    return name


def _names(graph: gs.Graph) -> set[str]:
    """Every node and tensor name in the model: shared by a graph and its subgraphs.

    ``run_passes`` installs one set for the whole model (``share_name_registry``); a graph used
    on its own gets a set collected from itself and its subgraphs on first use.
    """
    names = graph.__dict__.get("_onnxfit_names")  # not getattr: gs.Graph.__getattr__ logs misses
    if names is None:
        names = share_name_registry(graph)
    return names


def share_name_registry(root: gs.Graph) -> set[str]:
    """Collect the names of ``root`` and all subgraphs into one set that they all share."""
    graphs = list(iter_graphs(root))
    names: set[str] = set()
    for g in graphs:
        names.update(n.name for n in g.nodes)
        names.update(g.tensors().keys())
    for g in graphs:
        g.__dict__["_onnxfit_names"] = names
    return names


def int64_constant(graph: gs.Graph, base: str, values) -> gs.Constant:
    return gs.Constant(unique_name(graph, base), np.asarray(values, dtype=np.int64))


def add_node(graph: gs.Graph, op: str, base: str, inputs: list, attrs: dict | None = None, n_outputs: int = 1,
             outputs: list[gs.Variable] | None = None) -> gs.Node:
    """Append a node named ``base`` (made unique) with fresh output Variables unless given."""
    name = unique_name(graph, base)
    if outputs is None:
        outputs = [gs.Variable(unique_name(graph, f"{name}_out{i}" if n_outputs > 1 else f"{name}_out"))
                   for i in range(n_outputs)]
    node = gs.Node(op=op, name=name, inputs=list(inputs), outputs=list(outputs), attrs=attrs or {})
    graph.nodes.append(node)
    return node


def slice_(graph: gs.Graph, x: gs.Tensor, starts: Sequence[int], ends: Sequence[int], axes: Sequence[int],
           opset: int, base: str, steps: Sequence[int] | None = None, output: gs.Variable | None = None) -> gs.Variable:
    """``x[starts:ends]`` along ``axes``: attributes before opset 10, constant inputs after."""
    outputs = [output] if output is not None else None
    if opset < 10:
        if steps is not None and any(s != 1 for s in steps):
            raise ValueError("Slice steps need opset >= 10")
        attrs = {"starts": list(map(int, starts)), "ends": list(map(int, ends)), "axes": list(map(int, axes))}
        return add_node(graph, "Slice", base, [x], attrs, outputs=outputs).outputs[0]
    inputs = [x, int64_constant(graph, f"{base}_starts", starts), int64_constant(graph, f"{base}_ends", ends),
              int64_constant(graph, f"{base}_axes", axes)]
    if steps is not None:
        inputs.append(int64_constant(graph, f"{base}_steps", steps))
    return add_node(graph, "Slice", base, inputs, outputs=outputs).outputs[0]


def concat(graph: gs.Graph, inputs: list[gs.Tensor], axis: int, base: str,
           output: gs.Variable | None = None) -> gs.Variable:
    outputs = [output] if output is not None else None
    return add_node(graph, "Concat", base, inputs, {"axis": int(axis)}, outputs=outputs).outputs[0]


def squeeze(graph: gs.Graph, x: gs.Tensor, axes: Sequence[int], opset: int, base: str,
            output: gs.Variable | None = None) -> gs.Variable:
    outputs = [output] if output is not None else None
    if opset < 13:
        return add_node(graph, "Squeeze", base, [x], {"axes": list(map(int, axes))}, outputs=outputs).outputs[0]
    return add_node(graph, "Squeeze", base, [x, int64_constant(graph, f"{base}_axes", axes)],
                    outputs=outputs).outputs[0]


def unsqueeze(graph: gs.Graph, x: gs.Tensor, axes: Sequence[int], opset: int, base: str,
              output: gs.Variable | None = None) -> gs.Variable:
    outputs = [output] if output is not None else None
    if opset < 13:
        return add_node(graph, "Unsqueeze", base, [x], {"axes": list(map(int, axes))}, outputs=outputs).outputs[0]
    return add_node(graph, "Unsqueeze", base, [x, int64_constant(graph, f"{base}_axes", axes)],
                    outputs=outputs).outputs[0]
