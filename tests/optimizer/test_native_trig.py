"""native-functions rule 5: a quadrant-reduced Taylor sine and cosine (FacePhys's NPU-friendly
form, Floors and all) is written again compactly, a sine and a cosine of one value sharing the
reduction, within float noise of the model's own approximation on ONNX Runtime."""

from __future__ import annotations

import math

import numpy as np
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper

from onnxfit.app.optimize import optimize_model
from tests.conftest import make_model, run_ort, tensor_info


class Chain:
    """Writes element-wise nodes with scalar constants: ``op("Mul", "x", 0.5)``."""

    def __init__(self):
        self.nodes, self.inits, self.count = [], [], 0

    def op(self, op, *args):
        names = []
        for a in args:
            if isinstance(a, str):
                names.append(a)
            else:
                names.append(f"k{len(self.inits)}")
                self.inits.append(numpy_helper.from_array(np.asarray(a, np.float32), names[-1]))
        self.count += 1
        out = f"v{self.count}"
        self.nodes.append(helper.make_node(op, names, [out]))
        return out

    def sine(self, x, c4=1 / 120):
        """FacePhys's sin: Taylor sin (degree 5) or cos (degree 4) of r, chosen by q's parity."""
        q = self.op("Floor", self.op("Add", self.op("Mul", x, 2 / math.pi), 0.5))
        r = self.op("Sub", x, self.op("Mul", q, math.pi / 2))
        p = self.op("Sub", q, self.op("Mul", 2.0, self.op("Floor", self.op("Mul", q, 0.5))))
        m4 = self.op("Sub", q, self.op("Mul", 4.0, self.op("Floor", self.op("Mul", q, 0.25))))
        sign = self.op("Sub", 1.0, self.op("Mul", 2.0, self.op("Floor", self.op("Mul", m4, 0.5))))
        lead = self.op("Add", r, self.op("Mul", p, self.op("Sub", 1.0, r)))
        c2 = self.op("Add", -1 / 6, self.op("Mul", p, -1 / 3))
        c4 = self.op("Add", c4, self.op("Mul", p, 1 / 30))
        r2 = self.op("Mul", r, r)
        poly = self.op("Add", 1.0, self.op("Mul", r2, self.op("Add", c2, self.op("Mul", r2, c4))))
        return self.op("Mul", self.op("Mul", sign, lead), poly)


def sincos_model(c4=1 / 120):
    chain = Chain()
    x = chain.op("Mul", "u", 3.0)
    sin = chain.sine(x, c4)
    cos = chain.sine(chain.op("Add", x, math.pi / 2), c4)
    chain.nodes += [helper.make_node("Identity", [sin], ["s"]), helper.make_node("Identity", [cos], ["c"])]
    return make_model(chain.nodes, [tensor_info("u", [4, 256])], [tensor_info("s", [4, 256]), tensor_info("c", [4, 256])],
                      chain.inits, opset=13)


def feeds():
    return {"u": np.random.default_rng(0).uniform(-4, 4, (4, 256)).astype(np.float32)}


@pytest.mark.parametrize("target, version", [("cpu", None), ("coreml", "1.32")])
def test_a_taylor_sine_and_cosine_share_one_compact_reduction_within_float_noise(target, version):
    model = sincos_model()
    result = optimize_model(model, target=target, passes=["native-functions"], ort_version=version)
    ops = [n.op_type for n in result.model.graph.node]
    assert len(ops) <= (0.5 if "Mod" in ops else 0.55) * len(model.graph.node)  # 12 float nodes for Mod's 4
    assert ops.count("Floor") == (1 if "Mod" in ops else 3)  # one reduction for both; Mod where the EP runs it
    for expected, actual in zip(run_ort(model, feeds()), run_ort(result.model, feeds())):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)
    assert any("written compactly" in note for r in result.reports for note in r.notes)


@pytest.mark.parametrize("target, version", [("cpu", None), ("coreml", "1.32")])
def test_the_compact_form_keeps_nan_and_inf_inputs_nan_like_the_model(target, version):
    model = sincos_model()
    result = optimize_model(model, target=target, passes=["native-functions"], ort_version=version)
    special = {"u": np.array([[np.nan, np.inf, -np.inf, 1e30] * 64] * 4, np.float32)}
    options = ort.SessionOptions()
    session = ort.InferenceSession(result.model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    for expected, actual in zip(run_ort(model, special), session.run(None, special)):
        assert np.array_equal(np.isnan(expected), np.isnan(actual))


def test_a_polynomial_that_is_not_taylor_stays_as_the_model_wrote_it():
    model = sincos_model(c4=1 / 100)  # a coefficient no Taylor series has: the form would move it
    result = optimize_model(model, target="cpu", passes=["native-functions"])
    assert len(result.model.graph.node) == len(model.graph.node)


def test_exact_leaves_taylor_sines_alone():
    model = sincos_model()
    result = optimize_model(model, target="cpu", exact=True)
    assert sum(n.op_type == "Floor" for n in result.model.graph.node) == 8
