"""What a real ONNX Runtime session did with a model: node placement per EP, and compile failures.

Why a module of its own: ORT states placement only in its verbose session log, written by C++ to
file descriptor 2, and reports an EP's compile failure as a multi-line C++ dump. Reading both
takes log parsing (``parse_placement_log``), fd-level capture (``captured_stderr``) and message
clean-up (``compile_failure``); partitions.py turns the result into partition counts.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path

import onnx

from onnxfit.errors import OnnxfitError, node_label
from onnxfit.graphs import attribute_graphs
from onnxfit.targets.support import GraphFacts

__all__ = ["CPU_EP", "parse_placement_log", "compile_failure", "session_placement", "SessionFailed", "labelled",
           "captured_stderr", "session_source", "walk_order", "without_cpp_frames"]

CPU_EP = "CPUExecutionProvider"


def session_source(model_or_path, tmp: str) -> str | bytes:
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


def session_placement(model_or_path, ep: str, ep_options: dict[str, str]) -> dict[str, list[tuple[str, str]]]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 0  # VERBOSE: the placement lines are logged at this level only
    # Level 1 only: the graph the EPs partition; later levels rewrite CPU nodes after partitioning.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    providers = [(ep, ep_options)] if ep == CPU_EP else [(ep, ep_options), CPU_EP]
    with tempfile.TemporaryDirectory(prefix="onnxfit-placement-") as tmp:
        source = session_source(model_or_path, tmp)
        with captured_stderr() as captured:
            try:
                ort.InferenceSession(source, options, providers=providers)
            except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
                failed = SessionFailed(str(exc))
            else:
                failed = None
        text = captured.read()  # the log of a failed session is dropped: the exception says it all
    if failed is not None:
        raise failed
    return parse_placement_log(text)


class SessionFailed(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def labelled(placement: dict[str, list[tuple[str, str]]], graph: GraphFacts) -> dict[str, list[tuple[str, str]]]:
    """Name the nameless nodes of ORT's placement log as reports do (``node_label``).

    ORT lists every node of the model, subgraph nodes included, in its own walk: a graph's nodes
    in index order, each followed by the nodes of its subgraphs (`walk_order`). It logs a
    nameless node as "Relu ()"; nameless nodes of one op are matched to that walk's nameless
    nodes of that op in order. "All nodes placed on [X]" lists no nodes at all; when X holds as
    many nodes as the walk, they are the walk's nodes.
    """
    walk = walk_order(graph.graph)
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


def walk_order(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """Nodes in the order ORT's placement log lists them: each node, then its subgraphs' nodes."""
    order = []
    for node in graph.node:
        order.append(node)
        for attribute in node.attribute:
            for subgraph in attribute_graphs(attribute):
                order.extend(walk_order(subgraph))
    return order


# ------------------------------------------------------------------------ compile failures

# "Operation name: X" (OpenVINO) names the tensor or node where compilation stopped.
_OPERATION = re.compile(r"\s*Operation name:\s*(?P<name>\S+)\s*$")
_EP_TAG = re.compile(r"\[[\w-]+-EP\] ")
_ORT_PREFIX = re.compile(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ")
# "/src/x.h:370 ns::Type ns::Class::Method(const std::string&) ": where ORT threw, not why.
_CPP_FRAME = re.compile(r"/\S+\.(?:h|cc|cpp):\d+ (?:[^()]*\([^()]*\)\S*\s)?")


def without_cpp_frames(text: str) -> str:
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


class captured_stderr:
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


