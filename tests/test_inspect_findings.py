"""inspect lists what each node-local pass would take up, found by the pass's own match."""

from __future__ import annotations

from onnx import helper

from onnxfit.app.inspection import inspect_model
from onnxfit.app.optimize import optimize_model
from tests.conftest import make_model, tensor_info


def test_flatten_is_a_finding_until_flatten_to_reshape_rewrites_it():
    model = make_model([helper.make_node("Flatten", ["x"], ["f"], name="flat", axis=1),
                        helper.make_node("Relu", ["f"], ["y"], name="act")],
                       [tensor_info("x", [1, 3, 4, 4])], [tensor_info("y", [1, 48])])
    assert inspect_model(model)["findings"]["flattens"] == [{"node": "flat", "axis": 1, "pass": "flatten-to-reshape"}]
    rewritten = optimize_model(model, "coreml").model
    assert inspect_model(rewritten)["findings"]["flattens"] == []


def test_inspect_lists_what_each_simplification_rule_would_remove():
    from onnx import helper

    from onnxfit.app.inspection import inspect_model
    from tests.conftest import make_model, tensor_info

    model = make_model([helper.make_node("Identity", ["x"], ["a"]), helper.make_node("Relu", ["a"], ["b"]),
                        helper.make_node("Relu", ["a"], ["c"]), helper.make_node("Add", ["b", "c"], ["y"])],
                       [tensor_info("x", [3])], [tensor_info("y", [3])])
    found = {item["pass"]: item["removes"] for item in inspect_model(model)["findings"]["simplifications"]}
    assert found == {"eliminate-noops": 1, "dedupe-nodes": 1}
