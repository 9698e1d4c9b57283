"""What ONNX Runtime computes once when it loads a model: the nodes its basic graph optimizations
(level 1, run for every EP: constant folding, Reshape fusion of Shape->Gather->Concat chains)
remove. A rewrite of such a node changes nothing at run time, except that ONNX Runtime may no
longer recognize the pattern: scalar-gather on a fused Reshape's shape chain left Shape, Gather
and Squeeze nodes on the CPU between CoreML partitions."""

from __future__ import annotations

import tempfile
from pathlib import Path

import onnx

from onnxfit.graphs import iter_graphs
from onnxfit.shapes import weightless_copy

__all__ = ["removed_at_load"]


def removed_at_load(model: onnx.ModelProto) -> set[str]:
    """Output names of the nodes ONNX Runtime's basic optimizations remove from ``model`` on CPU;
    empty when ONNX Runtime does not load it (then nothing is known to be folded)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.log_severity_level = 4
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    # ONNX Runtime writes what it optimized only to a file: a temporary one, weights kept apart.
    with tempfile.TemporaryDirectory(prefix="onnxfit-folding-") as tmp:
        options.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
        options.add_session_config_entry("session.optimized_model_external_initializers_file_name", "optimized.data")
        options.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
        try:
            ort.InferenceSession(weightless_copy(model).SerializeToString(), options, providers=["CPUExecutionProvider"])
            optimized = onnx.load(options.optimized_model_filepath, load_external_data=False)
        except Exception:  # noqa: BLE001 - ORT raises its own types; unknown means nothing known folded
            return set()
    return _outputs(model) - _outputs(optimized)


def _outputs(model: onnx.ModelProto) -> set[str]:
    return {name for g in iter_graphs(model.graph) for node in g.node for name in node.output if name}
