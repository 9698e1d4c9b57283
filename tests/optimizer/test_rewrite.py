"""The match/rewrite driver: domain, opset range, skips and notes, one place for every rule."""

import numpy as np
import onnx_graphsurgeon as gs
from onnx import TensorProto, helper

from onnxfit.optimizer import PassContext, get_passes, run_passes
from onnxfit.optimizer.passes.split_to_slice import SplitToSlicePass
from onnxfit.optimizer.rewrite import Skip, find, is_omitted
from tests.conftest import assert_same_outputs, make_model, op_count, random_feeds, tensor_info


def _splits(domain=""):
    """An even Split and one whose sizes are computed at run time (skipped), in ``domain``."""
    nodes = [helper.make_node("Split", ["x"], ["a", "b"], axis=1, domain=domain, name="even"),
             helper.make_node("Split", ["x", "sizes"], ["c", "d"], axis=1, domain=domain, name="uneven"),
             helper.make_node("Concat", ["a", "b", "c", "d"], ["y"], axis=1)]
    return make_model(nodes, [tensor_info("x", [2, 4]), tensor_info("sizes", [2], TensorProto.INT64)],
                      [tensor_info("y", [2, 8])], opset=13)


def test_driver_rewrites_matches_and_reports_skips_once_per_node():
    model = _splits()
    result = run_passes(model, get_passes(["split-to-slice"]), PassContext(opset=13))
    report = result.reports[0]
    assert (report.changed, report.rewritten) == (True, 1)
    assert report.skipped == ["Split 'uneven': split sizes 'sizes' are computed at run time"]
    assert op_count(result.model, "Split") == 1 and op_count(result.model, "Slice") == 2
    feeds = random_feeds(model) | {"sizes": np.array([1, 3], np.int64)}
    assert_same_outputs(model, result.model, feeds, exact=True)


def test_find_lists_plans_and_skips_without_editing_the_graph():
    graph = gs.import_onnx(_splits())
    found = [(node.name, plan) for _, node, plan in find(SplitToSlicePass(), graph, PassContext(opset=13))]
    assert [name for name, _ in found] == ["even", "uneven"]
    assert found[0][1].sizes == (2, 2) and isinstance(found[1][1], Skip)
    assert [n.op for n in graph.nodes] == ["Split", "Split", "Concat"]


def test_nodes_of_another_domain_are_not_the_rules_job():
    graph = gs.import_onnx(_splits(domain="com.example"))
    assert list(find(SplitToSlicePass(), graph, PassContext(opset=13))) == []


def test_a_rule_leaves_opsets_outside_its_range_alone():
    # Reshape takes its shape as an input from opset 5: flatten-to-reshape starts there.
    model = make_model([helper.make_node("Flatten", ["x"], ["y"], axis=1)], [tensor_info("x", [2, 3, 4])],
                       [tensor_info("y", [2, 12])], opset=4)
    result = run_passes(model, get_passes(["flatten-to-reshape"]), PassContext(opset=4))
    assert not result.changed and result.reports[0].skipped == [] and result.model is model
    model5 = make_model(list(model.graph.node), list(model.graph.input), list(model.graph.output), opset=5)
    assert op_count(run_passes(model5, get_passes(["flatten-to-reshape"]), PassContext(opset=5)).model, "Reshape") == 1


def test_is_omitted_is_an_absent_or_empty_named_input():
    assert is_omitted(None) and is_omitted(gs.Variable.empty())
    assert not is_omitted(gs.Variable("x")) and not is_omitted(gs.Constant("c", np.zeros(1, np.int64)))
