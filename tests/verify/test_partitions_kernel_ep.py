"""Real partition counts on kernel EPs (CPU, CUDA): the count from placement is ORT's grouping.

A kernel EP lists the model's own nodes by name in ORT's placement log; the partitions are the
groups ORT's partitioner makes of them (`ort_partition_groups` over the level-1 graph). On this
machine the CPU EP is the kernel EP that runs; the CUDA log format (device copies, nodes its
session fused, "All nodes placed") is checked with logs in the exact form onnxruntime-gpu 1.30
writes them.
"""

from __future__ import annotations

import pytest
from onnx import TensorProto, helper

from onnxfit.errors import node_label
from onnxfit.targets.support import ort_partition_groups
from onnxfit.targets.partitions import _ep_partitions, count_partitions, parse_placement_log, prepare_graph
from onnxfit.targets.placement import labelled as label_placement
from tests.conftest import make_model, tensor_info
from tests.targets import corpus

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


def _two_branches(named: bool = True):
    """Two independent chains from one input, each ending in its own output (nameless when asked)."""
    def name(text):
        return text if named else ""

    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name=name("relu_a")),
        helper.make_node("Sigmoid", ["a"], ["ya"], name=name("sigmoid_a")),
        helper.make_node("Tanh", ["x"], ["b"], name=name("tanh_b")),
        helper.make_node("Relu", ["b"], ["yb"], name=name("relu_b")),
    ]
    return make_model(nodes, [tensor_info("x", [1, 4])], [tensor_info("ya", [1, 4]), tensor_info("yb", [1, 4])])


def _with_if():
    """Relu -> If (each branch an Identity/Neg) -> Sigmoid: the branches' nodes are no top-level nodes."""
    then_graph = helper.make_graph([helper.make_node("Identity", ["a"], ["t"], name="then_id")], "then", [],
                                   [tensor_info("t", [1, 4])])
    else_graph = helper.make_graph([helper.make_node("Neg", ["a"], ["e"], name="else_neg")], "else", [],
                                   [tensor_info("e", [1, 4])])
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="relu"),
        helper.make_node("If", ["cond"], ["b"], name="if", then_branch=then_graph, else_branch=else_graph),
        helper.make_node("Sigmoid", ["b"], ["y"], name="sigmoid"),
    ]
    return make_model(nodes, [tensor_info("x", [1, 4]), tensor_info("cond", [], TensorProto.BOOL)],
                      [tensor_info("y", [1, 4])])


MODELS = {
    "conv_chain": corpus.conv_chain,
    "unsupported_in_chain": corpus.unsupported_in_chain,
    "nameless_chain": lambda: corpus.unsupported_in_chain(cut_name=""),
    "two_branches": _two_branches,
    "two_nameless_branches": lambda: _two_branches(named=False),
    "with_if": _with_if,
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_real_cpu_count_is_ort_grouping_of_the_placed_nodes(name):
    model = MODELS[name]()
    report = count_partitions(model, "cpu")
    graph = prepare_graph(model)
    groups = ort_partition_groups(graph, [True] * len(graph.nodes))
    assert report.is_real and report.compile_error is None
    assert (report.partitions, report.nodes_on_ep, report.total_nodes) == (len(groups), len(graph.nodes), len(graph.nodes))
    assert report.partition_sizes == [len(g) for g in groups]


def test_cpu_session_of_a_model_with_subgraphs_is_one_partition_of_its_top_level_nodes():
    report = count_partitions(_with_if(), "cpu")
    assert (report.partitions, report.nodes_on_ep, report.total_nodes) == (1, 3, 3)


def _log(placement: dict[str, list[tuple[str, str]]]) -> str:
    """A placement log as session_state.cc writes it (EPs in name order, as its std::map has them)."""
    prefix = "2026-11-29 13:02:49.1 [V:onnxruntime:, session_state.cc:1383 VerifyEachNodeIsAssignedToAnEp]"
    lines = [f"{prefix} Node placements"]
    for ep in sorted(placement):
        lines.append(f"{prefix}  Node(s) placed on [{ep}]. Number of nodes: {len(placement[ep])}")
        lines += [f"{prefix}   {op} ({name})" for op, name in placement[ep]]
    return "\n".join(lines) + "\n"


def _cuda_report(model, placement):
    graph = prepare_graph(model)
    labelled = label_placement(parse_placement_log(_log(placement)), graph)
    return graph, _ep_partitions(graph, labelled.get(CUDA, []), labelled, CUDA)


def test_cuda_log_with_device_copies_groups_like_ort():
    model = corpus.unsupported_in_chain()
    placement = {
        CUDA: [("Relu", "relu1"), ("Sigmoid", "sigmoid1"), ("Tanh", "tanh1"), ("MemcpyToHost", "Memcpy"),
               ("MemcpyFromHost", "Memcpy_token_1"), ("Relu", "relu2"), ("Sigmoid", "sigmoid2"), ("Tanh", "tanh2")],
        CPU: [("Det", "cut")],
    }
    graph, (groups, on_ep, sizes) = _cuda_report(model, placement)
    supported = [node.name != "cut" for node in graph.nodes]
    assert groups == ort_partition_groups(graph, supported)
    assert (len(groups), on_ep, sizes) == (2, 6, [3, 3])


def test_cuda_log_of_nameless_nodes_maps_them_by_their_labels():
    model = _two_branches(named=False)
    graph = prepare_graph(model)
    labels = [node_label(n) for n in graph.nodes]
    # ORT logs a nameless node as "Relu ()"; the CPU list comes first (EP names in order).
    placement = {CPU: [("Tanh", "")], CUDA: [("Relu", ""), ("Sigmoid", ""), ("Relu", "")]}
    _, (groups, on_ep, _) = _cuda_report(model, placement)
    on_cuda = {labels[i] for g in groups for i in g}
    assert on_ep == 3 and on_cuda == set(labels) - {next(label for label in labels if label.startswith("Tanh"))}


def test_nodes_the_cuda_session_fused_count_on_cuda():
    # The CUDA EP's session fuses HardSigmoid * x into HardSwish: the log names the fused node only.
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("HardSigmoid", ["c"], ["h"], name="hsig", alpha=1 / 6),
        helper.make_node("Mul", ["c", "h"], ["m"], name="mul"),
        helper.make_node("Det", ["m"], ["y"], name="det"),
    ]
    model = make_model(nodes, [tensor_info("x", [1, 1, 2, 2])], [tensor_info("y", [1])],
                       [corpus._weight("w", [1, 1, 3, 3])])
    placement = {CUDA: [("Conv", "conv"), ("HardSwish", "HardSwish.0")], CPU: [("Det", "det")]}
    graph, (groups, on_ep, _) = _cuda_report(model, placement)
    assert on_ep == 3 and len(groups) == 1
    assert {graph.nodes[i].name for i in groups[0]} == {"conv", "hsig", "mul"}


def test_all_nodes_placed_on_cuda_is_one_partition_even_when_the_session_added_nodes():
    model = _with_if()
    text = ("2026-11-29 13:02:50.3 [V:onnxruntime:, session_state.cc:1380 VerifyEachNodeIsAssignedToAnEp]  "
            "All nodes placed on [CUDAExecutionProvider]. Number of nodes: 9\n")
    graph = prepare_graph(model)
    labelled = label_placement(parse_placement_log(text), graph)
    groups, on_ep, sizes = _ep_partitions(graph, labelled[CUDA], labelled, CUDA)
    assert (len(groups), on_ep, sizes) == (1, 3, [3])
