"""native-functions rule 6: a range-reduced polynomial exp whose truncation error is above float
noise becomes ``Exp(x - c * d^m)``, closer to the model's own values than the plain ``Exp``."""

from __future__ import annotations

import numpy as np

from onnxfit.app.optimize import optimize_model
from tests.conftest import make_model, run_ort, tensor_info
from tests.optimizer.test_lean_rules import exp_by_hand

X = np.linspace(-8, 8, 4001, dtype=np.float32)


def model_of(degree):
    body, inits = exp_by_hand("x", "y", degree=degree)
    return make_model(body, [tensor_info("x", [X.size])], [tensor_info("y", [X.size])], inits)


def largest_relative_difference(a, b):
    return float(np.max(np.abs(a.astype(np.float64) / b.astype(np.float64) - 1)))


def test_a_degree_5_exp_gets_its_error_term_and_stays_within_float_noise_of_the_model():
    model = model_of(5)
    result = optimize_model(model, target="cpu", passes=["native-functions"])
    ops = [n.op_type for n in result.model.graph.node]
    assert ops == ["Mul", "Round", "Sub", "Pow", "Mul", "Sub", "Exp"]
    expected = run_ort(model, {"x": X})[0]
    corrected = largest_relative_difference(run_ort(result.model, {"x": X})[0], expected)
    plain = largest_relative_difference(np.exp(X.astype(np.float64)), expected)
    assert plain > 2e-6  # the polynomial's truncation error: what a plain Exp would change
    assert corrected <= plain / 2 and corrected < 1e-6
    note = " ".join(next(r for r in result.reports if r.name == "native-functions").notes)
    assert "Exp(x - c*d^6)" in note


def test_a_degree_7_exp_is_within_float_noise_and_stays_a_plain_exp():
    result = optimize_model(model_of(7), target="cpu", passes=["native-functions"])
    assert [n.op_type for n in result.model.graph.node] == ["Exp"]


def test_the_rounding_follows_what_the_target_ep_runs():
    # NNAPI's profile has Floor but no Round: Floor(t + 0.5). CoreML's MLProgram at 1.20 runs
    # neither Round nor Floor nor Ceil: the plain Exp stays.
    model = model_of(5)
    nnapi = optimize_model(model, target="nnapi", ort_version="1.32", passes=["native-functions"]).model
    assert [n.op_type for n in nnapi.graph.node] == ["Mul", "Add", "Floor", "Sub", "Pow", "Mul", "Sub", "Exp"]
    expected = run_ort(model, {"x": X})[0]
    assert largest_relative_difference(run_ort(nnapi, {"x": X})[0], expected) < 1e-6
    coreml = optimize_model(model, target="coreml", ort_version="1.20", passes=["native-functions"]).model
    assert [n.op_type for n in coreml.graph.node] == ["Exp"]
