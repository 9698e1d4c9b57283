"""EP support profiles: the rule machinery shared by targets/coreml.py, nnapi.py and openvino.py.

A profile is data: for each op, a list of `Rule`s, each valid for a range of ONNX Runtime releases
(`since`/`until` are fields, not if-chains), each holding a few small `Check` functions that return
a reason string when the node is rejected and None when it passes. The checks mirror what the EP's
builder code in ONNX Runtime tests (`IsOpSupportedImpl`, `HasSupportedInputsImpl`,
`GetMinSupportedOpSet`); the profile module names the source file per op.

Grouping supported nodes into partitions is the second half of an estimate, and it must be the
EP's own algorithm for the counts to match:
- `ort_partition_groups` replicates `CreateSupportedPartitionNodeGroups` from
  onnxruntime/core/providers/partitioning_utils.cc (CoreML, NNAPI, and most compiling EPs);
- the OpenVINO EP has its own clustering (targets/openvino.py).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from onnxfit.errors import OnnxfitError, node_label
from onnxfit.model import node_inputs_with_subgraphs
from onnxfit.versions import Version, parse_version

__all__ = [
    "GraphFacts",
    "NodeFacts",
    "Check",
    "Rule",
    "Profile",
    "Verdict",
    "ort_partition_groups",
    "const_input",
    "pad_facts",
    "optional_const_input",
    "attr_in",
    "input_rank",
    "input_dtype",
    "format_shape",
    "FLOAT",
    "FLOAT16",
    "INT32",
    "INT64",
    "BOOL",
]


FLOAT = TensorProto.FLOAT
FLOAT16 = TensorProto.FLOAT16
INT32 = TensorProto.INT32
INT64 = TensorProto.INT64
BOOL = TensorProto.BOOL

# Inline initializers up to this size are decoded for rules (pads, axes, scales, shapes are tiny);
# larger ones are known by name, dtype and dims only.
_MAX_DECODED_BYTES = 64 * 1024


# ------------------------------------------------------------------------------ graph facts


class GraphFacts:
    """Shapes, dtypes, constants and edges of one (shape-inferred) graph, computed once.

    Initializers that are also graph inputs can be overridden at run time, so (as in ORT's
    `GetConstantInitializer`) they do not count as constant.
    """

    def __init__(self, model: onnx.ModelProto):
        graph = model.graph
        self.model = model
        self.graph = graph
        self.opsets = {o.domain or "": o.version for o in model.opset_import}
        self.nodes: list[onnx.NodeProto] = list(graph.node)
        graph_input_names = {i.name for i in graph.input}
        self.initializers = {t.name: t for t in graph.initializer}
        # An initializer listed as a graph input can be overridden by a feed, so ORT does not treat
        # it as a constant, but only from IR 4 on: IR < 4 lists every initializer as an input.
        overridable = graph_input_names if model.ir_version >= 4 else set()
        self.constants = {name: t for name, t in self.initializers.items() if name not in overridable}
        self.graph_inputs = [i.name for i in graph.input if i.name not in self.initializers]
        self.graph_outputs = [o.name for o in graph.output]
        self._types: dict[str, onnx.TypeProto] = {}
        for vi in (*graph.input, *graph.value_info, *graph.output):
            if vi.type.HasField("tensor_type"):
                self._types[vi.name] = vi.type
        self._decoded: dict[str, np.ndarray | None] = {}
        self.producer: dict[str, int] = {}
        for index, node in enumerate(self.nodes):
            for name in node.output:
                if name:
                    self.producer[name] = index
        # consumers[i] / producers[i]: distinct node indices on the other end of i's edges
        self.consumers: list[set[int]] = [set() for _ in self.nodes]
        self.producers: list[set[int]] = [set() for _ in self.nodes]
        for index, node in enumerate(self.nodes):
            for name in node_inputs_with_subgraphs(node):
                source = self.producer.get(name)
                if source is not None and source != index:
                    self.consumers[source].add(index)
                    self.producers[index].add(source)

    def shape(self, name: str) -> tuple[int | None, ...] | None:
        """Dims (None where symbolic/unknown), or None when even the rank is unknown."""
        if name in self.initializers:
            return tuple(self.initializers[name].dims)
        t = self._types.get(name)
        if t is None or not t.tensor_type.HasField("shape"):
            return None
        return tuple(d.dim_value if d.HasField("dim_value") else None for d in t.tensor_type.shape.dim)

    def dtype(self, name: str) -> int | None:
        if name in self.initializers:
            return self.initializers[name].data_type
        t = self._types.get(name)
        if t is None:
            return None
        return t.tensor_type.elem_type or None

    def is_const(self, name: str) -> bool:
        return name in self.constants

    def value(self, name: str) -> np.ndarray | None:
        """The value of a small constant initializer, or None (not constant, or too big / external)."""
        if name not in self._decoded:
            tensor = self.constants.get(name)
            decoded = None
            if tensor is not None and tensor.data_location != TensorProto.EXTERNAL:
                if int(np.prod(tensor.dims, dtype=np.int64)) * 8 <= _MAX_DECODED_BYTES:
                    decoded = numpy_helper.to_array(tensor)
            self._decoded[name] = decoded
        return self._decoded[name]

    def node_facts(self, index: int) -> NodeFacts:
        return NodeFacts(self, index)


@dataclass
class NodeFacts:
    """What rules look at for one node: op, opset, attributes and input facts."""

    graph: GraphFacts
    index: int
    node: onnx.NodeProto = field(init=False)
    attrs: dict[str, Any] = field(init=False)

    def __post_init__(self):
        self.node = self.graph.nodes[self.index]
        self.attrs = {a.name: helper.get_attribute_value(a) for a in self.node.attribute}

    @property
    def op(self) -> str:
        return self.node.op_type

    @property
    def domain(self) -> str:
        return "" if self.node.domain == "ai.onnx" else self.node.domain

    @property
    def name(self) -> str:
        """How reports name the node: its name, else its op and first output (``node_label``)."""
        return node_label(self.node)

    @property
    def inputs(self) -> list[str]:
        """Input names; '' for an omitted optional input (trailing omitted ones are dropped)."""
        return list(self.node.input)

    def input(self, i: int) -> str:
        return self.node.input[i] if i < len(self.node.input) else ""

    def attr(self, name: str, default: Any = None) -> Any:
        value = self.attrs.get(name, default)
        return value.decode() if isinstance(value, bytes) else value

    def since_version(self) -> int | None:
        """The opset version where this node's op definition was introduced (ORT's SinceVersion)."""
        opset = self.graph.opsets.get(self.domain)
        if opset is None:
            return None
        try:
            return onnx.defs.get_schema(self.op, opset, self.domain).since_version
        except onnx.defs.SchemaError:
            return None

    def shape(self, i: int) -> tuple[int | None, ...] | None:
        name = self.input(i)
        return self.graph.shape(name) if name else None

    def dtype(self, i: int) -> int | None:
        name = self.input(i)
        return self.graph.dtype(name) if name else None

    def is_const(self, i: int) -> bool:
        name = self.input(i)
        return bool(name) and self.graph.is_const(name)

    def value(self, i: int) -> np.ndarray | None:
        name = self.input(i)
        return self.graph.value(name) if name else None


# ------------------------------------------------------------------------------------ rules

Check = Callable[[NodeFacts], "str | None"]


@dataclass(frozen=True)
class Rule:
    """Support of one op by one EP, for ONNX Runtime releases in [since, until).

    `checks` run in order; the first reason returned rejects the node. `source` names the ORT
    file the rule was read from.
    """

    op: str
    checks: tuple[Check, ...] = ()
    since: str | None = None
    until: str | None = None
    min_opset: int = 1
    domain: str = ""
    source: str = ""

    def applies_to(self, version: Version) -> bool:
        if self.since is not None and version < parse_version(self.since):
            return False
        return self.until is None or version < parse_version(self.until)


@dataclass(frozen=True)
class Verdict:
    index: int
    node: str
    op: str
    supported: bool
    reason: str = ""


GroupFn = Callable[[GraphFacts, Sequence[bool]], list[list[int]]]


@dataclass(frozen=True)
class Profile:
    """What one EP (in one configuration) accepts, and how it groups accepted nodes.

    `node_checks` run on every node before the op's own rule (e.g. CoreML's per-input shape
    checks). `max_rank`, when set, is the highest input rank the EP's builders take: inputs of a
    higher rank are refused after the node checks, and the lower-rank pass lowers element-wise
    regions to it. `group` turns per-node support into partitions, the EP's way.
    """

    name: str
    ep: str
    rules: tuple[Rule, ...]
    node_checks: tuple[Check, ...] = ()
    group: GroupFn | None = None
    description: str = ""
    max_rank: int | None = None

    def rules_for(self, domain: str, op: str) -> list[Rule]:
        return [r for r in self.rules if r.op == op and r.domain == domain]

    def judge(self, facts: NodeFacts, version: Version) -> Verdict:
        def verdict(reason: str = "") -> Verdict:
            return Verdict(facts.index, facts.name, _qualified(facts), not reason, reason)

        rules = self.rules_for(facts.domain, facts.op)
        if not rules:
            return verdict(f"{self.name} has no builder for {_qualified(facts)}")
        applicable = [r for r in rules if r.applies_to(version)]
        if not applicable:
            spans = ", ".join(_span(r) for r in rules)
            return verdict(f"{_qualified(facts)} is supported by {self.name} only in ONNX Runtime {spans}")
        rule = applicable[0]
        since = facts.since_version()
        if since is not None and since < rule.min_opset:
            return verdict(f"opset {since} form of {facts.op} is not supported (needs opset >= {rule.min_opset})")
        for check in (*self.node_checks, self._within_max_rank, *rule.checks):
            reason = check(facts)
            if reason:
                return verdict(reason)
        return verdict()

    def _within_max_rank(self, facts: NodeFacts) -> str | None:
        if self.max_rank is None:
            return None
        for i, name in enumerate(facts.inputs):
            shape = facts.shape(i)
            if shape is not None and len(shape) > self.max_rank:
                return f"input '{name}' has rank {len(shape)} ({self.name} supports rank <= {self.max_rank})"
        return None

    def judge_graph(self, graph: GraphFacts, version: Version) -> list[Verdict]:
        return [self.judge(graph.node_facts(i), version) for i in range(len(graph.nodes))]

    def partitions(self, graph: GraphFacts, supported: Sequence[bool]) -> list[list[int]]:
        return (self.group or ort_partition_groups)(graph, supported)


def _qualified(facts: NodeFacts) -> str:
    return f"{facts.domain}:{facts.op}" if facts.domain else facts.op


def _span(rule: Rule) -> str:
    if rule.since and rule.until:
        return f">= {rule.since} and < {rule.until}"
    if rule.since:
        return f">= {rule.since}"
    return f"< {rule.until}"


# --------------------------------------------------------------------- grouping (ORT core)


def ort_partition_groups(graph: GraphFacts, supported: Sequence[bool]) -> list[list[int]]:
    """ORT's `CreateSupportedPartitionNodeGroups` (partitioning_utils.cc), without QDQ node units.

    A variant of Kahn's topological sort that grows one group per "wave": supported nodes join
    the current group; an unsupported node that consumes an output of the group (it is on the
    group's border) waits for the next wave, because running it would need the group's result
    first. Nodes in a group need not be connected.
    """
    in_degree = [len(p) for p in graph.producers]
    ready = deque(i for i, d in enumerate(in_degree) if d == 0)
    next_wave: deque[int] = deque()
    groups: list[list[int]] = []
    group: list[int] = []
    border: set[int] = set()
    processed = 0
    while ready or next_wave:
        if not ready:
            if group:
                groups.append(group)
            group, border = [], set()
            ready, next_wave = next_wave, deque()
            continue
        index = ready.popleft()
        if not supported[index] and index in border:
            next_wave.append(index)
            continue
        if supported[index]:
            group.append(index)
            border.discard(index)
        for consumer in sorted(graph.consumers[index]):
            if supported[index]:
                border.add(consumer)
            in_degree[consumer] -= 1
            if in_degree[consumer] == 0:
                ready.append(consumer)
        processed += 1
    if group:
        groups.append(group)
    if processed != len(graph.nodes):
        raise OnnxfitError("the graph has a cycle; cannot compute partitions")
    return groups


# ----------------------------------------------------------------- small reusable checks


def format_shape(shape: Sequence[int | None] | None) -> str:
    """Dims as a reason shows them: ``[?, 129, ?]`` (``?`` symbolic, unknown, or Paddle's -1), ``unknown rank``."""
    if shape is None:
        return "unknown rank"
    return "[" + ", ".join("?" if d is None or d < 0 else str(d) for d in shape) + "]"


def const_input(i: int, what: str) -> Check:
    """Input i must be present and a constant initializer (the builder reads its value)."""

    def check(facts: NodeFacts) -> str | None:
        if not facts.input(i):
            return f"input '{what}' is required"
        if not facts.is_const(i):
            return f"input '{what}' must be a constant initializer (it is computed at run time)"
        return None

    return check


def optional_const_input(i: int, what: str) -> Check:
    """If input i is given, it must be a constant initializer."""

    def check(facts: NodeFacts) -> str | None:
        if facts.input(i) and not facts.is_const(i):
            return f"input '{what}', if given, must be a constant initializer"
        return None

    return check


def attr_in(name: str, allowed: Iterable[Any], default: Any) -> Check:
    allowed = tuple(allowed)

    def check(facts: NodeFacts) -> str | None:
        value = facts.attr(name, default)
        if value not in allowed:
            return f"{name}={value!r} is not supported (supported: {', '.join(map(repr, allowed))})"
        return None

    return check


def input_rank(i: int, allowed: Iterable[int], what: str = "input") -> Check:
    allowed = tuple(allowed)

    def check(facts: NodeFacts) -> str | None:
        shape = facts.shape(i)
        if shape is None:
            return f"{what} rank is unknown"
        if len(shape) not in allowed:
            return f"{what} rank {len(shape)} is not supported (supported: {', '.join(map(str, allowed))})"
        return None

    return check


def input_dtype(i: int, allowed: Iterable[int]) -> Check:
    allowed = tuple(allowed)

    def check(facts: NodeFacts) -> str | None:
        if not facts.input(i):
            return None
        dtype = facts.dtype(i)
        if dtype not in allowed:
            names = ", ".join(helper.tensor_dtype_to_string(d).removeprefix("TensorProto.").lower() for d in allowed)
            actual = helper.tensor_dtype_to_string(dtype).removeprefix("TensorProto.").lower() if dtype else "unknown"
            return f"input {i} has dtype {actual} (supported: {names})"
        return None

    return check


def pad_facts(facts: NodeFacts) -> tuple[list[int], list[int], list[int]] | str:
    """Decode Pad-11+ inputs into (begin, end, axes) per padded axis, or a rejection reason."""
    shape = facts.shape(0)
    if shape is None:
        return "input shape is unknown"
    rank = len(shape)
    if not facts.is_const(1):
        return "input 'pads' must be a constant initializer"
    pads = facts.value(1)
    if pads is None:
        return "input 'pads' could not be read"
    pads = [int(p) for p in pads.reshape(-1)]
    if any(p < 0 for p in pads):
        return f"negative pads {pads} are not supported"
    if facts.input(3):
        if not facts.is_const(3):
            return "input 'axes', if given, must be a constant initializer"
        axes = [int(a) % rank for a in facts.value(3).reshape(-1)]
    else:
        axes = list(range(rank))
    if len(pads) != 2 * len(axes):
        return f"pads {pads} do not match {len(axes)} axes"
    return pads[: len(axes)], pads[len(axes) :], axes
