"""CoreML/NNAPI estimates against ONNX Runtime's own usability checker.

Equal wherever the checker's op lists agree with the EP code; each documented disagreement
(below for CoreML, the targets/nnapi.py docstring for NNAPI) has its own test.

Where ORT's usability checker (onnxruntime.tools.mobile_helpers.usability_checker, driven by
coreml_supported_{mlprogram,neuralnetwork}_ops.md) disagrees with the CoreML profile
(targets/coreml.py):
1. MLProgram Pad: the .md has no Pad row (the list lags pad_op_builder.cc, which supports
   MLProgram); the checker calls every Pad unsupported, this profile applies the builder's rules.
2. MLProgram Gather: no row in the .md either; gather_op_builder.cc supports MLProgram and rejects
   scalar (rank-0) indices (upstream issue #28180). The checker calls every Gather unsupported.
3. The checker only looks at op types (plus rank <= 5 and, with fixed sizes required, static
   shapes); it does not check the caveats it prints (constant inputs, modes, 2D-only pools and
   convs, dtypes). This profile checks them, so a node the checker counts as supported can be
   unsupported here, with the reason listed.
4. The checker requires every input of a node to have a fixed shape (it runs with
   require_fixed_input_sizes=True); the CoreML EP itself accepts symbolic dims by default.
5. NeuralNetwork Unsqueeze: the .md has Squeeze but no Unsqueeze row; op_builder_factory.cc
   registers the Squeeze builder for both, so Unsqueeze is supported here.
6. The checker counts an omitted optional input ('' as in Resize(X, '', '', sizes)) as a value
   without a fixed shape and rejects the node; ORT's IsInputSupported skips inputs that do not
   exist. (Applies to its NNAPI check too.)
7. The checker links producers to consumers in one pass over graph.node, so it needs the nodes in
   topological order; ORT's C++ builds edges for any order. onnxfit groups over real edges.
The fidelity tests compare on models where none of these apply, and test each one apart.
"""

from __future__ import annotations

import pytest
from onnxruntime.tools.mobile_helpers import usability_checker

from onnxfit.targets.openvino import ort_topological_order
from onnxfit.targets.partitions import estimate_partitions, prepare_graph
from tests.targets import corpus

CHECKERS = {
    "coreml": lambda m: usability_checker.check_coreml_partitions(m, True, "coreml_supported_mlprogram_ops.md"),
    "coreml-nn": lambda m: usability_checker.check_coreml_partitions(m, True, "coreml_supported_neuralnetwork_ops.md"),
    "nnapi": lambda m: usability_checker.check_nnapi_partitions(m, True),
}
AGREEING = ["conv_chain", "unsupported_in_chain", "two_cuts", "conv_into_unsupported", "trailing_single_node",
            "single_node_between_cuts"]
VERSION = (1, 32)


def _checker(model, target):
    """The checker's (partitions, supported nodes) on the same level-1 graph, nodes in topological order."""
    graph = prepare_graph(model)
    ordered = [graph.nodes[i] for i in ort_topological_order(graph)]
    skeleton = graph.model
    del skeleton.graph.node[:]
    skeleton.graph.node.extend(ordered)
    info = CHECKERS[target](skeleton)
    return info.num_partitions, info.num_supported_nodes


def _estimate(model, target, version=VERSION):
    report = estimate_partitions(model, target, version)
    return report.partitions, report.nodes_on_ep


@pytest.mark.parametrize("target", list(CHECKERS))
@pytest.mark.parametrize("name", AGREEING)
def test_estimate_equals_usability_checker(name, target):
    model = corpus.built_corpus()[name]
    assert _estimate(model, target) == _checker(model, target)


@pytest.mark.parametrize("target", ["coreml", "nnapi"])
@pytest.mark.parametrize("name", ["unsupported_on_branch", "three_pieces"])
def test_estimate_equals_usability_checker_with_unsqueeze_and_reduce(name, target):
    model = corpus.built_corpus()[name]
    assert _estimate(model, target) == _checker(model, target)


def test_disagreement_neuralnetwork_unsqueeze_missing_from_checker_list():
    model = corpus.three_pieces()
    assert _checker(model, "coreml-nn") == (3, 6)
    assert _estimate(model, "coreml-nn") == (3, 7)  # Unsqueeze has a NeuralNetwork builder


def test_disagreement_mlprogram_pad_missing_from_checker_list():
    from onnx import helper

    from tests.conftest import make_model, tensor_info

    # Pad feeds a Relu, not a Conv, so ORT's level-1 PadFusion cannot fold it away.
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="relu1"),
             helper.make_node("Pad", ["a", "pads"], ["b"], name="pad1", mode="constant"),
             helper.make_node("Relu", ["b"], ["y"], name="relu2")]
    pads = helper.make_tensor("pads", 7, [8], [0, 0, 1, 1, 0, 0, 1, 1])
    model = make_model(nodes, [tensor_info("x", [1, 3, 4, 4])], [tensor_info("y", [1, 3, 6, 6])], [pads])
    assert _checker(model, "coreml") == (2, 2)
    assert _estimate(model, "coreml") == (1, 3)


def test_disagreement_checker_ignores_reflect_caveat():
    model = corpus.reflect_pad("reflect")
    assert _checker(model, "coreml-nn") == (1, 4)
    assert _estimate(model, "coreml-nn") == (2, 3)


def test_disagreement_checker_ignores_dtypes():
    model = corpus.float64_island()
    assert _checker(model, "coreml") == (1, 9)
    assert _estimate(model, "coreml") == (2, 8)  # float64 Relu and the Cast back are refused


def test_disagreement_checker_treats_missing_optional_input_as_dynamic():
    from onnx import helper

    from tests.conftest import make_model, tensor_info

    nodes = [helper.make_node("Relu", ["x"], ["a"], name="relu1"),
             helper.make_node("Resize", ["a", "", "scales"], ["b"], name="resize1", mode="nearest",
                              coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
             helper.make_node("Relu", ["b"], ["y"], name="relu2")]
    scales = helper.make_tensor("scales", 1, [4], [1, 1, 2, 2])
    model = make_model(nodes, [tensor_info("x", [1, 3, 4, 4])], [tensor_info("y", [1, 3, 8, 8])], [scales])
    assert _checker(model, "coreml-nn") == (2, 2)
    assert _estimate(model, "coreml-nn") == (1, 3)
