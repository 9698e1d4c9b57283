"""ONNX's own operator test models (onnx.backend.test, about 1900) through every rule.

Each model's test inputs are fixed (``--fix-input``), which turns most of its graph into constants:
fold-constants, eliminate-noops, dedupe-nodes and the chain rules fire on nearly every model. The
result must load in ONNX Runtime and give the outputs ONNX Runtime gives for the original on those
inputs: bit for bit, or within float noise where ORT's own fusions round the original differently
(fp16 within 1e-3, its ulp). A refusal is one line (OnnxfitError), never a traceback.
"""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from onnxfit.errors import OnnxfitError
from onnxfit.app.optimize import optimize_model


def _cases():
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = collect_testcases()
    for case in cases:
        if case.model is None or not case.data_sets or _has_optionals(case.model):
            continue  # optional-typed values: a separate open issue (graph-surgeon cannot export them)
        inputs, _ = case.data_sets[0]
        names = [vi.name for vi in case.model.graph.input]
        feeds = {n: v for n, v in zip(names, inputs) if isinstance(v, np.ndarray) and v.dtype != object}
        if len(feeds) == len(names):
            yield case.name, case.model, feeds


def _has_optionals(model: onnx.ModelProto) -> bool:
    from onnxfit.graphs import iter_graphs

    values = [vi for g in iter_graphs(model.graph) for vi in (*g.input, *g.output, *g.value_info)]
    return any(vi.type.HasField("optional_type") or vi.type.HasField("sequence_type") for vi in values) or any(
        n.op_type.startswith("Optional") for g in iter_graphs(model.graph) for n in g.node)


def _run(model: onnx.ModelProto, feeds: dict) -> list:
    options = ort.SessionOptions()
    options.log_severity_level = 4
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def _same(expected: np.ndarray, actual: np.ndarray) -> bool:
    if expected.dtype.kind not in "fc":
        return np.array_equal(expected, actual)
    if np.array_equal(expected, actual, equal_nan=True):
        return True
    loose = expected.dtype == np.float16
    return np.allclose(actual, expected, rtol=1e-3 if loose else 1e-5, atol=1e-3 if loose else 1e-6, equal_nan=True)


@pytest.mark.parametrize("target", ["cpu", "coreml"])
def test_every_operator_test_model_with_fixed_inputs_keeps_its_outputs(target):
    checked, refused, problems = 0, 0, []
    for name, model, feeds in _cases():
        try:
            expected = _run(model, feeds)
        except Exception:  # noqa: BLE001 - ORT itself does not run this test model (training ops, ...)
            continue
        try:
            result = optimize_model(model, target=target, fixed_inputs=feeds)
        except OnnxfitError:
            refused += 1
            continue
        try:
            actual = _run(result.model, {})
        except Exception as exc:  # noqa: BLE001
            problems.append(f"{name}: ONNX Runtime refuses the result ({str(exc).splitlines()[0][:120]})")
            continue
        if not all(_same(e, a) for e, a in zip(expected, actual) if isinstance(e, np.ndarray)):
            problems.append(f"{name}: outputs differ")
        checked += 1
    assert not problems, problems[:10]
    assert checked > 1400 and refused < 20
