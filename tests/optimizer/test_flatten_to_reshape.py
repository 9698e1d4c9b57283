import pytest
from onnx import helper, numpy_helper

from onnxfit.optimizer import PassContext, get_passes, run_passes
from tests.conftest import assert_same_outputs, make_model, op_count, random_feeds, tensor_info


def _flatten(shape, axis, opset=13):
    model = make_model([helper.make_node("Flatten", ["x"], ["y"], axis=axis, name="flat")],
                       [tensor_info("x", shape)], [tensor_info("y", None)], opset=opset)
    return model


def _run(model, opset=13):
    return run_passes(model, get_passes(["flatten-to-reshape"]), PassContext(opset=opset))


@pytest.mark.parametrize("axis", [0, 1, 2, 3, -1, -3])
def test_flatten_becomes_reshape_bit_exact(axis):
    model = _flatten([2, 3, 4, 5], axis)
    result = _run(model)
    assert result.reports[0].rewritten == 1
    assert op_count(result.model, "Flatten") == 0 and op_count(result.model, "Reshape") == 1
    assert_same_outputs(model, result.model, random_feeds(model))


def test_symbolic_batch_stays_dynamic():
    model = _flatten(["batch", 8, 2, 2], 1)
    result = _run(model)
    shape = next(t for t in result.model.graph.initializer if t.name.endswith("_shape"))
    assert numpy_helper.to_array(shape).tolist() == [-1, 32]
    for batch in (1, 3):
        assert_same_outputs(model, result.model, random_feeds(model, shapes={"x": [batch, 8, 2, 2]}))


def test_symbolic_dims_on_both_sides_are_reported():
    model = _flatten(["n", 4, "h"], 1)
    result = _run(model)
    assert not result.changed
    assert "symbolic" in result.reports[0].skipped[0]
