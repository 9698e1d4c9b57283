"""Which EP support profile and EP options stand for each target preset.

The profile gives the estimate (any machine); the provider options give the real placement when
the target's EP is present in the running onnxruntime. `ep_acceptor` asks the same profile about one
node while a pass runs, so a rewrite is skipped exactly where the estimate says the EP takes the
node at the named release (one source of truth for both).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import onnx
from onnx import helper, numpy_helper

from onnxfit.graphs import iter_graphs
from onnxfit.shapes import weightless_copy
from onnxfit.targets.coreml import MLPROGRAM, NEURALNETWORK
from onnxfit.targets.cuda import CUDA
from onnxfit.targets.nnapi import NNAPI
from onnxfit.targets.openvino import OPENVINO
from onnxfit.targets.tensorrt import TENSORRT
from onnxfit.targets.support import GraphFacts, Profile
from onnxfit.versions import Version

__all__ = ["OLDEST_PROFILED", "PROFILES", "PROVIDER_OPTIONS", "ep_acceptor", "inferred_types", "profile_for"]

log = logging.getLogger(__name__)

PROFILES: dict[str, Profile] = {
    "coreml": MLPROGRAM,
    "coreml-nn": NEURALNETWORK,
    "nnapi": NNAPI,
    "openvino": OPENVINO,
    "cuda": CUDA,
    "tensorrt": TENSORRT,
}

# Options a real session passes to the target's EP, so the real figure is for the same configuration.
PROVIDER_OPTIONS: dict[str, dict[str, str]] = {
    "coreml": {"ModelFormat": "MLProgram"},
    "coreml-nn": {"ModelFormat": "NeuralNetwork"},
    "openvino": {"device_type": "CPU"},
}


def profile_for(target_name: str) -> Profile | None:
    return PROFILES.get(target_name)


# The oldest ONNX Runtime release the profiles were read from: what "any release" can rely on.
OLDEST_PROFILED = (1, 20)


def ep_acceptor(graph, target: str, opset: int, ort_version: Version | None,
                inferred: Callable[[], dict[str, onnx.TypeProto]] | None = None) -> Callable[[object], bool]:
    """``takes(node)``: True when `target`'s EP, in ONNX Runtime `ort_version`, takes that node of
    the onnx-graphsurgeon `graph` as it is.

    Each node is judged alone, as the estimate judges it after ORT's level-1 optimizations: inputs
    known before run time (initializers, Constant nodes, folded chains) count as initializers,
    the others as values with their dtype and shape; dtypes and shapes the graph does not carry
    come from one weightless onnx shape inference, run on first use (``inferred``: a caller that
    already holds one passes it). Unknown version, or a target without a profile: nothing is taken
    (rewrite for the oldest release).
    """
    profile = profile_for(target)
    if profile is None or ort_version is None:
        return lambda node: False
    version = tuple(ort_version)
    types: dict[str, onnx.TypeProto] | None = None

    def takes(node) -> bool:
        nonlocal types
        if any(hasattr(v, "nodes") and hasattr(v, "inputs") for v in node.attrs.values()):
            return False  # subgraph attributes: not a node these rules read
        if types is None:
            types = inferred() if inferred is not None else inferred_types(graph)
        facts = GraphFacts(_single_node_model(node, opset, types)).node_facts(0)
        return profile.judge(facts, version).supported

    return takes


def inferred_types(graph) -> dict[str, onnx.TypeProto]:
    """Tensor name -> type from one weightless onnx shape inference of the graph and its subgraphs."""
    from onnxfit._graphsurgeon import export_graph  # deferred: partition counts run without graph-surgeon

    try:
        light = weightless_copy(export_graph(graph))
        light = onnx.shape_inference.infer_shapes(light, strict_mode=False, data_prop=True)
    except Exception as exc:  # noqa: BLE001 - onnx raises several types; judge with what the graph has
        log.info("shape inference for the EP rules failed: %s", exc)
        return {}
    return {vi.name: vi.type for g in iter_graphs(light.graph) for vi in (*g.input, *g.value_info, *g.output)}


def _single_node_model(node, opset: int, inferred: dict[str, onnx.TypeProto]) -> onnx.ModelProto:
    import onnx_graphsurgeon as gs  # deferred, as constant_value's module imports it

    from onnxfit.optimizer.constants import constant_value

    initializers, inputs = [], []
    for tensor in node.inputs:
        if not tensor.name:
            continue
        value = constant_value(tensor, opset)
        if value is not None:
            initializers.append(numpy_helper.from_array(np.asarray(value), tensor.name))
        elif isinstance(tensor, gs.Constant):
            # A weight: rules read its name, dtype and dims, never its data (as in the estimate,
            # which leaves large initializers on disk).
            stub = onnx.TensorProto(name=tensor.name, data_type=_proto_dtype(tensor.dtype), dims=tensor.shape)
            stub.data_location = onnx.TensorProto.EXTERNAL
            initializers.append(stub)
        else:
            inputs.append(_value_info(tensor, inferred))
    outputs = [_value_info(t, inferred) for t in node.outputs if t.name]
    attrs = {k: v for k, v in node.attrs.items() if v is not None}
    proto = helper.make_node(node.op, [t.name for t in node.inputs], [t.name for t in node.outputs],
                             name=node.name, domain=node.domain or "", **attrs)
    graph = helper.make_graph([proto], "node", inputs, outputs, initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _proto_dtype(dtype) -> int:
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype)) if dtype is not None else onnx.TensorProto.UNDEFINED


def _value_info(tensor, inferred: dict[str, onnx.TypeProto]) -> onnx.ValueInfoProto:
    """The tensor's dtype and shape as the graph has them, else as inference found them."""
    known = inferred.get(tensor.name)
    if (tensor.dtype is None or tensor.shape is None) and known is not None and known.HasField("tensor_type"):
        info = onnx.ValueInfoProto(name=tensor.name)
        info.type.CopyFrom(known)
        return info
    if tensor.shape is None:
        return helper.make_tensor_value_info(tensor.name, _proto_dtype(tensor.dtype), None)
    dims = [int(d) if isinstance(d, (int, np.integer)) and d > 0 else None for d in tensor.shape]
    return helper.make_tensor_value_info(tensor.name, _proto_dtype(tensor.dtype), dims)
