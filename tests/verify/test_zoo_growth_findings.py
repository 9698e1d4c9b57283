"""verify on what the grown zoo exposed, each on a model built here (the zoo test runs the real one):
openWakeWord's tf2onnx embedding model (BatchNormalization at opset 13, no momentum attribute)
and PLCMOS, whose score is a 0-d output."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper

import onnxfit
from onnxfit.verification.parity import compare_arrays
from tests.conftest import make_model, run_ort, tensor_info
from tests.models import const


def _batch_norm_model(opset: int):
    rng = np.random.default_rng(0)
    stats = [const(name, rng.uniform(0.5, 1.5, 4).astype(np.float32)) for name in ("s", "b", "m", "v")]
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], epsilon=1e-3, name="bn")
    return make_model([node], [tensor_info("x", ["N", 4, 3, 3])], [tensor_info("y", ["N", 4, 3, 3])], stats,
                      opset=opset)


def test_batch_norm_without_momentum_skips_onnx_reference_at_opset_13():
    """onnx.reference fills the unset momentum with its default 0.9 and then normalizes with the
    statistics of the batch: ORT (the spec) uses the running mean and variance."""
    model = _batch_norm_model(13)
    x = np.random.default_rng(1).standard_normal((1, 4, 3, 3)).astype(np.float32)
    from onnx.reference import ReferenceEvaluator

    assert not np.allclose(ReferenceEvaluator(model).run(None, {"x": x})[0], run_ort(model, {"x": x})[0], atol=1e-2)
    report = onnxfit.verify(model)
    assert report.ok, [c.summary for c in report.checks]
    assert "onnx-reference" not in report.runtimes
    assert any("onnx-reference not run: BatchNormalization (opset 13)" in n
               for n in report.check("parity").details["notes"])


def test_batch_norm_at_opset_15_still_runs_onnx_reference():
    report = onnxfit.verify(_batch_norm_model(15))
    assert report.ok and "onnx-reference" in report.runtimes


def test_scalar_output_is_compared_without_a_traceback():
    """A 0-d output (a mean score) through every default runtime and the frame test."""
    nodes = [helper.make_node("ReduceMean", ["x"], ["y"], keepdims=0, name="mean")]
    model = make_model(nodes, [tensor_info("x", ["N", 8])], [tensor_info("y", [])], opset=17)
    report = onnxfit.verify(model)
    assert report.check("parity").ok, report.check("parity").summary
    same = compare_arrays("y", np.array(1.5, np.float32), np.array(1.5, np.float32))
    assert same.ok and same.max_abs == 0.0 and same.shape == []
    off = compare_arrays("y", np.array(1.5, np.float32), np.array(2.5, np.float32))
    assert not off.ok and off.mismatches == 1 and off.max_abs == 1.0


def _zipmap_model(scale: float = 1.0):
    """Class scores as a sequence of maps (ZipMap, what sklearn converters emit; logreg_iris)."""
    seq_of_maps = helper.make_sequence_type_proto(
        helper.make_map_type_proto(TensorProto.INT64, helper.make_tensor_type_proto(TensorProto.FLOAT, [])))
    nodes = [helper.make_node("Mul", ["x", "k"], ["scores"], name="scale"),
             helper.make_node("ZipMap", ["scores"], ["probabilities"], domain="ai.onnx.ml", classlabels_int64s=[0, 1, 2],
                              name="zipmap")]
    model = make_model(nodes, [tensor_info("x", [3, 3])], [helper.make_value_info("probabilities", seq_of_maps)],
                       [const("k", np.array(scale, np.float32))])
    model.opset_import.append(helper.make_opsetid("ai.onnx.ml", 1))
    return model


def test_sequence_of_maps_output_is_compared_row_by_row():
    report = onnxfit.verify(_zipmap_model())
    assert report.ok, [c.summary for c in report.checks]
    outputs = report.check("parity").details["comparisons"][0]["outputs"]
    assert outputs[0]["shape"] == [3, 3]
    differs = onnxfit.verify(_zipmap_model(1.5), reference=_zipmap_model())
    assert not differs.check("parity").ok
