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
import re
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import onnx

from onnxfit.errors import OnnxfitError, first_line, node_label
from onnxfit.graphs import attribute_graphs
from onnxfit.model import load_model
from onnxfit.targets.presets import get_target
from onnxfit.targets.profiles import PROFILES, PROVIDER_OPTIONS, profile_for
from onnxfit.targets.support import GraphFacts, ort_partition_groups
from onnxfit.versions import Version, installed_ort_version, parse_version

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

CPU_EP = "CPUExecutionProvider"


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
    ort_version: str | None = None,
    ep: str | None = None,
) -> PartitionReport:
    """Partitions of a model on `target`: real if its EP runs here (or `ep` is given), else estimated.

    `ort_version` ("1.26") asks about another ONNX Runtime release than the installed one, which
    only an estimate can answer. `ep` forces a real placement with that provider name.
    """
    preset = get_target(target)
    version = parse_version(ort_version) if ort_version else installed_ort_version()
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
        placement = _session_placement(model_or_path, ep, options)
    except _SessionFailed as failed:
        # The CPU EP loaded this model in prepare_graph: the EP, not the model, is at fault.
        return PartitionReport(
            **about,
            partitions=0,
            nodes_on_ep=0,
            total_nodes=len(graph.nodes),
            compile_error=compile_failure(ep, failed.message, graph.model),
        )
    placement = _labelled(placement, graph)
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
        inner = {node_label(node) for node in _walk_order(graph.graph)}
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
            with _captured_stderr() as captured:
                ort.InferenceSession(_session_source(model_or_path, tmp), options, providers=[CPU_EP])
            captured.read()
            skeleton = onnx.load(str(optimized), load_external_data=False)
        except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
            reason = _without_cpp_frames(first_line(exc))
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


def _session_source(model_or_path, tmp: str) -> str | bytes:
    if isinstance(model_or_path, onnx.ModelProto):
        if model_or_path.ByteSize() < 2**31 - 1:
            return model_or_path.SerializeToString()
        path = Path(tmp) / "input.onnx"
        onnx.save_model(model_or_path, str(path), save_as_external_data=True, location="input.data")
        return str(path)
    path = Path(model_or_path)
    if not path.is_file():
        raise OnnxfitError(f"{path}: no such file")
    return str(path)


def _model_label(model_or_path) -> str:
    if isinstance(model_or_path, onnx.ModelProto):
        return model_or_path.graph.name or "<model>"
    return str(model_or_path)


def _available_providers() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


# ---------------------------------------------------------------------------- real placement

_PLACED = re.compile(r"(?:All nodes|Node\(s\)) placed on \[(?P<ep>[^\]]+)\]\. Number of nodes: (?P<n>\d+)")
_NODE = re.compile(r"VerifyEachNodeIsAssignedToAnEp\]\s{2,}(?P<op>\S+) \((?P<name>.*)\)\s*$")


def parse_placement_log(text: str) -> dict[str, list[tuple[str, str]]]:
    """{ep: [(op_type, node_name), ...]} from ORT's verbose session log.

    Lines look like (session_state.cc, VerifyEachNodeIsAssignedToAnEp):
        ... VerifyEachNodeIsAssignedToAnEp]  Node(s) placed on [OpenVINOExecutionProvider]. Number of nodes: 2
        ... VerifyEachNodeIsAssignedToAnEp]   OpenVINO-EP-subgraph_1 (OpenVINOExecutionProvider_OpenVINO-EP-subgraph_1_0)
    "All nodes placed on [X]" appears when one EP took everything. The count line is checked
    against the listed names so that a changed log format fails loudly instead of miscounting.
    """
    placement: dict[str, list[tuple[str, str]]] = {}
    counts: dict[str, int] = {}
    current: str | None = None
    for line in text.splitlines():
        placed = _PLACED.search(line)
        if placed:
            ep, n = placed.group("ep"), int(placed.group("n"))
            if line[placed.start() :].startswith("All nodes"):
                # One EP took everything and ORT lists no names: n (fused) nodes, unnamed.
                placement[ep] = [("", "")] * n
                current = None
            else:
                current = ep
                counts[ep] = n
                placement.setdefault(ep, [])
            continue
        node = _NODE.search(line)
        if node and current is not None:
            placement[current].append((node.group("op"), node.group("name")))
        elif "VerifyEachNodeIsAssignedToAnEp" not in line:
            current = None
    if not placement:
        raise OnnxfitError("ONNX Runtime's session log has no node placement lines; cannot read the real placement")
    for ep, n in counts.items():
        if len(placement[ep]) != n:
            raise OnnxfitError(f"ONNX Runtime's placement log lists {len(placement[ep])} nodes for {ep}, expected {n}")
    return placement


def _session_placement(model_or_path, ep: str, ep_options: dict[str, str]) -> dict[str, list[tuple[str, str]]]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 0  # VERBOSE: the placement lines are logged at this level only
    # Level 1 only: the graph the EPs partition; later levels rewrite CPU nodes after partitioning.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    providers = [(ep, ep_options)] if ep == CPU_EP else [(ep, ep_options), CPU_EP]
    with tempfile.TemporaryDirectory(prefix="onnxfit-placement-") as tmp:
        source = _session_source(model_or_path, tmp)
        with _captured_stderr() as captured:
            try:
                ort.InferenceSession(source, options, providers=providers)
            except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
                failed = _SessionFailed(str(exc))
            else:
                failed = None
        text = captured.read()  # the log of a failed session is dropped: the exception says it all
    if failed is not None:
        raise failed
    return parse_placement_log(text)


class _SessionFailed(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _labelled(placement: dict[str, list[tuple[str, str]]], graph: GraphFacts) -> dict[str, list[tuple[str, str]]]:
    """Name the nameless nodes of ORT's placement log as reports do (``node_label``).

    ORT lists every node of the model, subgraph nodes included, in its own walk: a graph's nodes
    in index order, each followed by the nodes of its subgraphs (`_walk_order`). It logs a
    nameless node as "Relu ()"; nameless nodes of one op are matched to that walk's nameless
    nodes of that op in order. "All nodes placed on [X]" lists no nodes at all; when X holds as
    many nodes as the walk, they are the walk's nodes.
    """
    walk = _walk_order(graph.graph)
    nameless: dict[str, list[str]] = {}
    for node in walk:
        if not node.name:
            nameless.setdefault(node.op_type, []).append(node_label(node))
    taken: dict[str, int] = {}
    labelled = {}
    for ep, nodes in placement.items():
        if nodes and set(nodes) == {("", "")}:
            # One EP holds every node (its count may differ from the walk's where the session's
            # own optimizations fused or added nodes).
            labelled[ep] = [(node.op_type, node_label(node)) for node in walk]
            continue
        entries = []
        for op, name in nodes:
            if not name and op and nameless.get(op):
                position = taken.get(op, 0)
                taken[op] = position + 1
                labels = nameless[op]
                name = labels[position] if position < len(labels) else f"{op} (unnamed)"
            entries.append((op, name))
        labelled[ep] = entries
    return labelled


def _walk_order(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """Nodes in the order ORT's placement log lists them: each node, then its subgraphs' nodes."""
    order = []
    for node in graph.node:
        order.append(node)
        for attribute in node.attribute:
            for subgraph in attribute_graphs(attribute):
                order.extend(_walk_order(subgraph))
    return order


# ------------------------------------------------------------------------ compile failures

# "Operation name: X" (OpenVINO) names the tensor or node where compilation stopped.
_OPERATION = re.compile(r"\s*Operation name:\s*(?P<name>\S+)\s*$")
_EP_TAG = re.compile(r"\[[\w-]+-EP\] ")
_ORT_PREFIX = re.compile(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ")
# "/src/x.h:370 ns::Type ns::Class::Method(const std::string&) ": where ORT threw, not why.
_CPP_FRAME = re.compile(r"/\S+\.(?:h|cc|cpp):\d+ (?:[^()]*\([^()]*\)\S*\s)?")


def _without_cpp_frames(text: str) -> str:
    return _CPP_FRAME.sub("", text)


# C++ frames and checks that precede the cause: "Exception from src/...:53:", "Check '...' failed at ...".
_NOISE = re.compile(r"^(Exception from \S+:\d+:|Check '.*' failed at \S+:)$")

# Known EP bugs, as data: (EP, op of the failing node, text in the cause) -> what to add.
_KNOWN_FAILURES = (
    ("OpenVINOExecutionProvider", "If", "dynamic rank",
     "onnxruntime#23757: the OpenVINO EP cannot compile If nodes whose outputs have a dynamic rank"),
)


def compile_failure(ep: str, message: str, model: onnx.ModelProto | None = None) -> str:
    """One line from the multi-line C++ exception of a failed EP session, naming the node.

    The cause is the last line that is not a C++ location; "Operation name: X" is resolved to
    the node that produces (or is named) X in `model`, subgraphs included.
    """
    lines = [_ORT_PREFIX.sub("", line.strip()) for line in message.splitlines()]
    lines = [line for line in lines if line and not _NOISE.match(line)]
    cause = lines[-1] if lines else "no reason given"
    # A one-line message still carries C++ frames ("file.cc:136 Signature(...)"): keep what the
    # EP itself said, after its tag.
    cause = _EP_TAG.split(cause)[-1].removeprefix("Unexpected: ").strip()
    where = ""
    operation = _OPERATION.search(cause)
    if operation:
        name = operation.group("name")
        cause = cause[: operation.start()].rstrip().rstrip(".")
        node = _find_node(model, name) if model is not None else None
        if node is None:
            where = f" at '{name}'"
        elif node.name == name or name not in node.output:
            where = f" at node '{node_label(node)}' ({node.op_type})"
        else:
            where = f" at node '{node_label(node)}' ({node.op_type}, output '{name}')"
        for known_ep, op, text, note in _KNOWN_FAILURES:
            if node is not None and ep == known_ep and node.op_type == op and text in cause:
                cause += f" ({note})"
    return f"{ep} failed to compile the model{where}: {cause}"


def _find_node(model: onnx.ModelProto, name: str) -> onnx.NodeProto | None:
    """The node named `name` or producing a tensor named `name`, searching subgraphs too."""
    graphs = [model.graph]
    while graphs:
        graph = graphs.pop(0)
        for node in graph.node:
            if node.name == name or name in node.output:
                return node
            for attribute in node.attribute:
                graphs.extend(attribute_graphs(attribute))
    return None


class _captured_stderr:
    """Redirect file descriptor 2 (where ORT's C++ logger writes) into a temporary file."""

    def __enter__(self):
        sys.stderr.flush()
        self._file = tempfile.TemporaryFile(mode="w+b")
        self._saved = os.dup(2)
        os.dup2(self._file.fileno(), 2)
        return self

    def __exit__(self, *exc_info):
        sys.stderr.flush()
        os.dup2(self._saved, 2)
        os.close(self._saved)
        return False

    def read(self) -> str:
        self._file.seek(0)
        text = self._file.read().decode("utf-8", errors="replace")
        self._file.close()
        return text


# ------------------------------------------------------------------------ verify integration


def partitions_check(target: str, ort_version: str | None = None):
    """A verify check: the model must run as one partition on ``target``, and (with a reference)
    in no more partitions than the reference."""
    from onnxfit.verify.report import Check

    def check(ctx) -> Check:
        report = count_partitions(ctx.source, target, ort_version)
        details = {"model": report.to_dict()}
        if report.compile_error is not None:
            return Check("partitions", False, report.compile_error, details)
        problems = []
        if report.partitions > 1:
            problems.append(f"{report.partitions} partitions on {target} (want 1)")
        if ctx.reference_source is not None:
            reference = count_partitions(ctx.reference_source, target, ort_version)
            details["reference"] = reference.to_dict()
            if reference.compile_error is None and report.partitions > reference.partitions:
                problems.append(f"more partitions than the reference ({report.partitions} > {reference.partitions})")
        figure = f"{report.partitions} partition(s), {report.nodes_on_ep}/{report.total_nodes} nodes on {report.ep} " \
                 f"({report.source}, onnxruntime {report.ort_version})"
        if report.unsupported:
            first = report.unsupported[0]
            figure += f"; first node left off: {first.name} ({first.op}: {first.reason})"
        return Check("partitions", not problems, "; ".join(problems) or figure, details)

    return check
