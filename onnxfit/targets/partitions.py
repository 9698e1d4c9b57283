"""Partition count of a model on a target EP: real where the EP is installed, estimated elsewhere.

Why: an EP that leaves nodes to the CPU splits the graph and pays a device round trip at every
border (inswapper on CoreML: 14 partitions, 55 ms; 1 partition, 27 ms). This module gives that
number before and after `optimize`, on any machine.

- Real: an InferenceSession with the EP (and the CPU EP as fallback) at log level VERBOSE; ORT's
  session log states the placement ("Node(s) placed on [EP]. Number of nodes: n" followed by
  "  OpType (name)" lines). The log is written by C++ to file descriptor 2, so it is captured at the
  fd level. A compiling EP (CoreML, OpenVINO, TensorRT, NNAPI) shows one fused node per partition;
  for a kernel EP (CPU, CUDA, ...) the placed nodes are grouped the way ORT's partitioner groups
  supported nodes (`ort_partition_groups`), the CPU EP included: a CPU-only session is 1 partition.
  (`optimized_model_filepath` cannot be used for this: ORT refuses to save a graph with compiled
  nodes.)
- Estimated: ORT's own basic (level 1) optimizations are applied first with the CPU EP, because
  that is the graph an EP sees when ORT partitions (constant folding has already removed static
  Shape chains, Identity nodes, ...). The optimized graph is written with its initializers in an
  external file and read back without them, then shape-inferred once; the EP profile (targets/)
  judges every node and groups the supported ones with the EP's own algorithm.

An EP that claims nodes and then fails to compile them (the OpenVINO EP on If nodes whose outputs
have a dynamic rank, onnxruntime#23757) is a finding about the EP, not bad input: the CPU EP
loaded the same model a moment before. The report then carries `compile_error`, one line naming
the node, and `partitions` 0 (no session runs on the EP). The estimate predicts the failures a
profile knows (`compile_failure`: OpenVINO's dynamic-rank If) and reports them the same way.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import onnx

from onnxfit.errors import OnnxfitError, first_line, node_label
from onnxfit.model import load_model
from onnxfit.targets.presets import get_target
from onnxfit.targets.profiles import PROFILES, PROVIDER_OPTIONS, profile_for
from onnxfit.targets.support import GraphFacts, ort_partition_groups
from onnxfit.targets.placement import (
    CPU_EP,
    SessionFailed,
    captured_stderr,
    compile_failure,
    labelled,
    parse_placement_log,
    session_placement,
    session_source,
    walk_order,
    without_cpp_frames,
)
from onnxfit.versions import OrtRelease, Version, installed_ort_version

__all__ = [
    "PartitionReport",
    "UnsupportedNode",
    "count_partitions",
    "estimate_partitions",
    "real_partitions",
    "prepare_graph",
    "parse_placement_log",
    "compile_failure",
]

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class UnsupportedNode:
    name: str
    op: str
    reason: str


@dataclass
class PartitionReport:
    """Partitions of one model on one target; `source` says whether the figure is real or estimated."""

    model: str
    target: str
    ep: str
    source: str  # "real" or "estimated"
    ort_version: str
    partitions: int
    nodes_on_ep: int
    total_nodes: int
    partition_sizes: list[int] = field(default_factory=list)
    unsupported: list[UnsupportedNode] = field(default_factory=list)
    profile: str | None = None
    # One line, set when the EP claimed nodes but failed to compile them: no session runs on it.
    compile_error: str | None = None

    @property
    def is_real(self) -> bool:
        return self.source == "real"

    @property
    def compiled(self) -> bool:
        return self.compile_error is None

    def to_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------------------- public API


def count_partitions(
    model_or_path: onnx.ModelProto | str | os.PathLike,
    target: str,
    ort_version: OrtRelease | str | None = None,
    ep: str | None = None,
) -> PartitionReport:
    """Partitions of a model on `target`: real if its EP runs here (or `ep` is given), else estimated.

    `ort_version` (``OrtRelease(1, 26)`` or "1.26") asks about another ONNX Runtime release than the installed one, which
    only an estimate can answer. `ep` forces a real placement with that provider name.
    """
    preset = get_target(target)
    version = OrtRelease.parse(ort_version) or installed_ort_version()
    if not isinstance(model_or_path, onnx.ModelProto):
        load_model(model_or_path, lazy_weights=True)  # one clear error for a bad file, before ORT sees it
    if ep is not None:
        return real_partitions(model_or_path, target, ep)
    available = _available_providers()
    same_release = version == installed_ort_version()
    if preset.ep in available and same_release:
        return real_partitions(model_or_path, target, preset.ep)
    profile = profile_for(target)
    if profile is None:
        raise OnnxfitError(
            f"target '{target}' needs {preset.ep}, which this onnxruntime does not have "
            f"(available: {', '.join(available)}), and onnxfit has no support profile to estimate it; "
            f"estimates exist for: {', '.join(PROFILES)}"
        )
    return estimate_partitions(model_or_path, target, version)


def estimate_partitions(model_or_path, target: str, version: Version) -> PartitionReport:
    """Apply the target's support profile to ORT's level-1 optimized graph and group like the EP."""
    preset = get_target(target)
    profile = profile_for(target)
    if profile is None:
        raise OnnxfitError(f"no support profile for target '{target}'")
    graph = prepare_graph(model_or_path)
    verdicts = profile.judge_graph(graph, version)
    supported = [v.supported for v in verdicts]
    groups = profile.partitions(graph, supported) if graph.nodes else []
    # An EP bug the profile knows: the EP claims the nodes and the session then throws.
    predict = getattr(profile, "compile_failure", None)
    failure = predict(graph, groups) if predict is not None else None
    if failure is not None:
        return PartitionReport(
            model=_model_label(model_or_path), target=target, ep=preset.ep, source="estimated",
            ort_version=f"{version[0]}.{version[1]}", partitions=0, nodes_on_ep=0, total_nodes=len(graph.nodes),
            profile=profile.name, compile_error=failure,
        )
    placed = {i for g in groups for i in g}
    unsupported = [
        UnsupportedNode(v.node, v.op, v.reason or "supported, but its partition is dropped by the EP")
        for v in verdicts
        if v.index not in placed
    ]
    return PartitionReport(
        model=_model_label(model_or_path),
        target=target,
        ep=preset.ep,
        source="estimated",
        ort_version=f"{version[0]}.{version[1]}",
        partitions=len(groups),
        nodes_on_ep=len(placed),
        total_nodes=len(graph.nodes),
        partition_sizes=[len(g) for g in groups],
        unsupported=unsupported,
        profile=profile.name,
    )


def real_partitions(model_or_path, target: str, ep: str) -> PartitionReport:
    """Placement reported by a real InferenceSession with `ep` (CPU as fallback)."""
    available = _available_providers()
    if ep not in available:
        raise OnnxfitError(f"execution provider '{ep}' is not available here (available: {', '.join(available)})")
    graph = prepare_graph(model_or_path)
    version = installed_ort_version()
    options = PROVIDER_OPTIONS.get(target, {}) if ep == get_target(target).ep else {}
    about = {"model": _model_label(model_or_path), "target": target, "ep": ep, "source": "real",
             "ort_version": f"{version[0]}.{version[1]}"}
    try:
        placement = session_placement(model_or_path, ep, options)
    except SessionFailed as failed:
        # The CPU EP loaded this model in prepare_graph: the EP, not the model, is at fault.
        return PartitionReport(
            **about,
            partitions=0,
            nodes_on_ep=0,
            total_nodes=len(graph.nodes),
            compile_error=compile_failure(ep, failed.message, graph.model),
        )
    placement = labelled(placement, graph)
    groups, nodes_on_ep, sizes = _ep_partitions(graph, placement.get(ep, []), placement, ep)
    labels = {node_label(node) for node in graph.nodes}
    unsupported = [
        UnsupportedNode(name, op, f"placed on {placed_ep}")
        for placed_ep, nodes in placement.items()
        if placed_ep != ep
        for op, name in nodes
        if name in labels  # device copies ORT inserted are not model nodes
    ]
    return PartitionReport(
        **about,
        partitions=len(groups),
        nodes_on_ep=nodes_on_ep,
        total_nodes=len(graph.nodes),
        partition_sizes=sizes,
        unsupported=unsupported,
        profile=None,
    )


# Nodes ORT inserts after partitioning to move tensors between devices; not model nodes.
_DEVICE_COPIES = frozenset({"MemcpyFromHost", "MemcpyToHost"})


def _ep_partitions(graph: GraphFacts, on_ep, placement, ep: str) -> tuple[list, int, list[int]]:
    """(partitions, nodes on the EP, partition sizes) from the nodes a session placed on `ep`.

    A kernel EP (CPU, CUDA, ROCm, DirectML, ...) runs the model's own nodes, which keep their
    names (nodes of If/Loop bodies are left out: the If node stands for them): they are grouped as ORT's partitioner groups supported nodes (a connected run on one
    EP is one partition, every border is a device round trip). A compiling EP (CoreML, OpenVINO,
    TensorRT, NNAPI) shows one fused node per partition instead.
    """
    index = {node_label(node): i for i, node in enumerate(graph.nodes)}
    placed = [(op, name) for op, name in on_ep if op not in _DEVICE_COPIES]
    if any(name in index for _, name in placed):
        supported = [False] * len(graph.nodes)
        for _, name in placed:
            if name in index:
                supported[index[name]] = True
        # Other entries are nodes of If/Loop bodies (partitioned inside their own graph: the If
        # node stands for them) or nodes the session fused for this EP (the CUDA EP's session
        # fuses HardSigmoid * x into HardSwish): then the top-level nodes no EP lists are the
        # ones fused into them, on this EP.
        inner = {node_label(node) for node in walk_order(graph.graph)}
        if any(name not in inner for _, name in placed):
            listed = {name for nodes in placement.values() for _, name in nodes}
            for label, i in index.items():
                supported[i] = supported[i] or label not in listed
        groups = ort_partition_groups(graph, supported)
        return groups, sum(supported), [len(g) for g in groups]
    others = sum(1 for placed_ep, nodes in placement.items() if placed_ep != ep for _, name in nodes if name in index)
    nodes_on_ep = max(len(graph.nodes) - others, 0) if placed else 0
    # The log names fused nodes only: the size of one partition is known, of several not.
    return placed, nodes_on_ep, [nodes_on_ep] if len(placed) == 1 else []


# ------------------------------------------------------------------------ graph preparation


def prepare_graph(model_or_path) -> GraphFacts:
    """ORT level-1 optimized, shape-inferred skeleton of the model (initializer data left on disk)."""
    import onnxruntime as ort

    if not isinstance(model_or_path, onnx.ModelProto) and not Path(model_or_path).is_file():
        raise OnnxfitError(f"{model_or_path}: no such file")
    with tempfile.TemporaryDirectory(prefix="onnxfit-partitions-") as tmp:
        optimized = Path(tmp) / "optimized.onnx"
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(optimized)
        options.log_severity_level = 4  # FATAL only: a failure is reported below as one line
        # Big initializers go to a side file and are not read back: rules need names, dtypes and
        # dims of weights, and values only of small tensors (pads, axes, scales, shapes).
        options.add_session_config_entry("session.optimized_model_external_initializers_file_name", "optimized.data")
        options.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
        try:
            # ORT's default logger (warnings, colored, several lines) writes to fd 2 regardless
            # of the session's level; keep it off the user's terminal.
            with captured_stderr() as captured:
                ort.InferenceSession(session_source(model_or_path, tmp), options, providers=[CPU_EP])
            captured.read()
            skeleton = onnx.load(str(optimized), load_external_data=False)
        except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
            reason = without_cpp_frames(first_line(exc))
            if isinstance(model_or_path, onnx.ModelProto):
                raise OnnxfitError(f"ONNX Runtime cannot load the model: {reason}") from None
            raise OnnxfitError(f"{model_or_path}: ONNX Runtime cannot load the model: {reason}") from None
    ir_version = skeleton.ir_version
    # ORT saves the initializers it made (folded weights) without listing them as inputs, which
    # onnx's inference ignores below IR 4: infer as IR 4, judge as the IR the model has.
    skeleton.ir_version = max(ir_version, 4)
    try:
        skeleton = onnx.shape_inference.infer_shapes(skeleton, strict_mode=False, data_prop=True)
    except (onnx.shape_inference.InferenceError, ValueError) as exc:
        log.warning("shape inference failed (%s); using the shapes ONNX Runtime recorded", first_line(exc))
    skeleton.ir_version = ir_version
    return GraphFacts(skeleton)


def _model_label(model_or_path) -> str:
    if isinstance(model_or_path, onnx.ModelProto):
        return model_or_path.graph.name or "<model>"
    return str(model_or_path)


def _available_providers() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())
