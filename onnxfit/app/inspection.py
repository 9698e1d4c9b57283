"""`onnxfit.inspect`: what a model is, and what in it the passes target.

Findings name nodes so the user can see *why* an EP will split the graph before optimizing:
reflect/edge/wrap Pads (reflect-pad), Splits (split-to-slice), scalar-index Gathers
(scalar-gather), Shape-computing chains (fold-shapes), Reshapes that hardcode or swallow the
batch (dynamic-batch), BatchNormalizations (fold-batchnorm) and initializers listed as graph
inputs (initializer-inputs).
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import onnx
import onnx_graphsurgeon as gs

from onnxfit._graphsurgeon import import_graph  # also quiets its logger

from onnxfit.batch_ops import reshape_target_problem
from onnxfit.errors import OnnxfitError, node_label
from onnxfit.graphs import default_opset, imports_default_opset, iter_graphs, op_histogram
from onnxfit.model import load_model
from onnxfit.optimizer.constants import constant_value
from onnxfit.optimizer.passes.flatten_to_reshape import FlattenToReshapePass
from onnxfit.optimizer.passes.reflect_pad import ReflectPadPass, pad_mode
from onnxfit.optimizer.passes.scalar_gather import ScalarGatherPass
from onnxfit.optimizer.passes.split_to_slice import SplitToSlicePass
from onnxfit.optimizer.pipeline import PassContext, get_passes, run_passes
from onnxfit.optimizer.rewrite import find
from onnxfit.shapes import proto_shape
from onnxfit.targets.presets import SIMPLIFICATION_RULES

__all__ = ["inspect_model", "inspect"]


def _dims(value_info: onnx.ValueInfoProto) -> list | None:
    """Dims (size, dim name, or "?"); [] for a scalar, None when even the rank is unknown."""
    shape = proto_shape(value_info)  # Paddle's dim_value -1 is "any", not a size
    return None if shape is None else [d if d is not None else "?" for d in shape]


def _io(values, skip: set[str]) -> list[dict]:
    return [
        {"name": v.name, "dtype": onnx.helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type).name
         if v.type.tensor_type.elem_type else "unknown", "shape": _dims(v)}
        for v in values if v.name not in skip
    ]


def inspect(path: str | os.PathLike) -> dict:
    """Load ``path`` and describe it (see ``inspect_model``)."""
    path = Path(path)
    report = inspect_model(load_model(path))
    report["model"] = str(path)
    report["file_size"] = path.stat().st_size
    return report


def inspect_model(model: onnx.ModelProto) -> dict:
    """Opset, inputs/outputs with shapes, op histogram and findings, as one JSON-able dict."""
    # None for ai.onnx.ml or training ops only: no default-domain node, nothing a rule looks at.
    opset = default_opset(model) if imports_default_opset(model) else None
    initializers = {t.name for t in model.graph.initializer}
    graph = import_graph(model)
    return {
        "ir_version": model.ir_version,
        "opset": opset,
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "inputs": _io(model.graph.input, initializers),
        "outputs": _io(model.graph.output, set()),
        "initializers": len(model.graph.initializer),
        "nodes": sum(op_histogram(model).values()),
        "ops": dict(sorted(op_histogram(model).items(), key=lambda kv: (-kv[1], kv[0]))),
        "findings": _findings(graph, opset or 0) | {
            "initializer_inputs": _initializer_inputs(model),
            "simplifications": _simplifications(model) if opset else []},
    }


def _simplifications(model: onnx.ModelProto) -> list[dict]:
    """What the simplification rules would remove, rule by rule: they run in memory on the model
    (every target runs them; the result is not kept)."""
    try:
        result = run_passes(model, get_passes(SIMPLIFICATION_RULES), PassContext(opset=default_opset(model)))
    except OnnxfitError as exc:
        return [{"node": "-", "detail": f"not run: {exc}", "pass": "simplification rules"}]
    return [{"node": f"{r.removed - r.added} node(s)", "removes": r.removed, "adds": r.added, "pass": r.name}
            for r in result.reports if r.removed > r.added]


def _findings(graph: gs.Graph, opset: int) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {"pads": [], "splits": [], "scalar_gathers": [], "flattens": [], "shape_chains": [],
                                    "batch_reshapes": [], "batchnorms": []}
    _rule_findings(graph, opset, found)
    for g in iter_graphs(graph):
        for node in g.nodes:
            if node.op == "Shape":
                found["shape_chains"].append({"node": node_label(node), "feeds": sorted(_shape_consumers(node)),
                                              "pass": "fold-shapes"})
            elif node.op == "BatchNormalization":
                producer = node.inputs[0].inputs[0].op if len(node.inputs[0].inputs) == 1 else "graph input"
                found["batchnorms"].append({"node": node_label(node), "after": producer, "pass": "fold-batchnorm"})
            elif node.op == "Reshape":
                problem = _batch_problem(node, opset)
                if problem:
                    found["batch_reshapes"].append({"node": node_label(node), "shape": problem[0], "problem": problem[1],
                                                    "pass": "dynamic-batch"})
    return found


def _initializer_inputs(model: onnx.ModelProto) -> list[dict]:
    """One finding when weights are listed as graph inputs: ORT takes them for overridable (IR >= 4)."""
    initializers = {t.name for t in model.graph.initializer}
    listed = sum(1 for vi in model.graph.input if vi.name in initializers)
    if not listed:
        return []
    return [{"node": "graph inputs", "initializers": listed, "ir_version": model.ir_version,
             "pass": "initializer-inputs"}]


def _rule_findings(graph: gs.Graph, opset: int, found: dict[str, list[dict]]) -> None:
    """What the node-local passes would take up, found by their own ``match`` (rewritten or skipped)."""
    ctx = PassContext(opset=opset)
    for _, node, _ in find(ReflectPadPass(), graph, ctx):
        found["pads"].append({"node": node_label(node), "mode": pad_mode(node), "pass": "reflect-pad"})
    for _, node, _ in find(SplitToSlicePass(), graph, ctx):
        found["splits"].append({"node": node_label(node), "outputs": len(node.outputs), "pass": "split-to-slice"})
    for _, node, _ in find(ScalarGatherPass(), graph, ctx):
        found["scalar_gathers"].append({"node": node_label(node), "pass": "scalar-gather"})
    for _, node, _ in find(FlattenToReshapePass(), graph, ctx):
        found["flattens"].append({"node": node_label(node), "axis": node.attrs.get("axis", 1),
                                  "pass": "flatten-to-reshape"})


def _shape_consumers(node: gs.Node) -> set[str]:
    """The non-shape ops a Shape output eventually feeds (Resize, Reshape, Expand, ...)."""
    shape_math = {"Gather", "Slice", "Unsqueeze", "Squeeze", "Concat", "Cast", "Add", "Sub", "Mul", "Div",
                  "Floor", "Ceil", "Range", "Identity"}
    seen: set[int] = set()  # by identity: nameless nodes all share the name ''
    targets: set[str] = set()
    frontier = list(node.outputs)
    while frontier:
        tensor = frontier.pop()
        for consumer in tensor.outputs:
            if id(consumer) in seen:
                continue
            seen.add(id(consumer))
            if consumer.op in shape_math:
                frontier.extend(consumer.outputs)
            else:
                targets.add(consumer.op)
    return targets


def _batch_problem(node: gs.Node, opset: int) -> tuple[list[int], str] | None:
    shape = constant_value(node.inputs[1], opset)
    if shape is None or shape.ndim != 1 or shape.size == 0:
        return None
    target = [int(v) for v in shape]
    data_rank = len(node.inputs[0].shape) if node.inputs[0].shape is not None else None
    # The batch-op table says what a Reshape target does to the batch; dynamic-batch repairs the same.
    problem = reshape_target_problem(target, data_rank)
    return None if problem is None else (target, problem)


def summary_counts(report: dict) -> Counter:
    return Counter({key: len(items) for key, items in report["findings"].items()})
