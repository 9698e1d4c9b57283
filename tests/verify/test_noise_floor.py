"""The frame test judges differences against the runtime's own noise floor.

``BatchRounding`` stands in for a runtime whose kernels change with the batch size (cuDNN with TF32
on picks other algorithms per batch: YOLOv8n's frame 0 alone differed from its batch-16 slice by
0.097): above batch 1 it rounds every float output to 7 mantissa bits, beyond verify's fp32
tolerance. The GPU case itself cannot run here; the mechanism is the same on any runtime."""

from __future__ import annotations

import numpy as np
from onnx import helper

from onnxfit.verification.contamination import contamination_check
from onnxfit.verification.frame_test import NOISE_FACTOR, frame_test
from onnxfit.verification.inputs import make_inputs, model_inputs
from onnxfit.verification.runtimes import OrtRuntime
from tests.conftest import make_model, tensor_info
from tests.models import conv_net, softmax_mixing_net


class BatchRounding:
    """ONNX Runtime CPU, with float outputs rounded to ``bits`` mantissa bits whenever the batch is above 1."""

    def __init__(self, model, bits: int = 7):
        self.inner, self.bits, self.name = OrtRuntime(model), bits, "batch-rounding"

    def run(self, inputs):
        outputs = self.inner.run(inputs)
        if max(v.shape[0] for v in inputs.values() if v.ndim) == 1:
            return outputs
        return {k: _round(v, self.bits) if v.dtype == np.float32 else v for k, v in outputs.items()}


def _round(value: np.ndarray, bits: int) -> np.ndarray:
    mantissa, exponent = np.frexp(value)
    return np.ldexp(np.round(mantissa * 2**bits) / 2**bits, exponent).astype(value.dtype)


def _check(model, runtime):
    specs = model_inputs(model)
    feeds, _ = make_inputs(specs, 1)
    return contamination_check(model, runtime, specs, {k: v.shape for k, v in feeds.items()})


def test_batch_dependent_rounding_fails_the_plain_tolerance_but_not_the_noise_floor():
    model = conv_net()
    runtime = BatchRounding(model)
    specs = model_inputs(model)
    inputs, _ = make_inputs(specs, 4)
    alone = [runtime.run({"x": inputs["x"][i:i + 1]})["y"] for i in range(4)]
    batched = runtime.run(inputs)["y"]
    worst = max(float(np.max(np.abs(alone[i] - batched[i:i + 1]))) for i in range(4))
    assert worst > 1e-4 + 1e-3 * float(np.max(np.abs(batched))), "the rounding must exceed fp32 tolerance"

    check = _check(model, runtime)
    assert check.ok and check.ran, check.summary
    frames = check.details["frames"]
    assert 0 < frames["excused"]["y"] <= NOISE_FACTOR * frames["noise"]["y"]
    assert any("within 4x the runtime's own noise floor" in n for n in check.details["notes"])


def test_a_model_that_mixes_frames_still_fails_on_the_noisy_runtime():
    model = softmax_mixing_net()
    check = _check(model, BatchRounding(model))
    assert not check.ok and any("changing frame 0 changes frame" in f for f in check.details["failures"])


def test_a_model_that_scales_by_its_batch_size_is_not_excused_as_noise():
    """y = x * batch: frames never meet, but frame 0 alone is 1/4 of its slice at batch 4; the
    'floor' that copies measure is as large as the output, so it excuses nothing."""
    nodes = [helper.make_node("Shape", ["x"], ["s"], start=0, end=1), helper.make_node("Cast", ["s"], ["f"], to=1),
             helper.make_node("Mul", ["x", "f"], ["y"])]
    model = make_model(nodes, [tensor_info("x", ["N", 3])], [tensor_info("y", ["N", 3])], opset=17)
    check = _check(model, BatchRounding(model))
    assert not check.ok and "frame 0 run alone differs from its slice of the batch-4 run" in check.summary


def test_an_exact_runtime_measures_no_floor_it_does_not_need():
    model = conv_net()
    runtime = OrtRuntime(model)
    specs = model_inputs(model)
    inputs, _ = make_inputs(specs, 4)
    changed = [{"x": np.full((3, 16, 16), j, np.float32)} for j in range(4)]
    test = frame_test(runtime, inputs, {"x": 0}, changed)
    assert test.ok and test.noise == {} and test.excused == {}


class Rounding:
    """A runtime whose numerics are coarser than fp32 at every batch (TF32-like): ``for_model`` gives
    the same runtime for another model, which is how verify measures its deviation on the reference."""

    def __init__(self, model, bits: int = 7, reference_bits: int | None = None):
        self.inner, self.bits, self.name = OrtRuntime(model), bits, "rounding"
        self.reference_bits = bits if reference_bits is None else reference_bits

    def for_model(self, model):
        return Rounding(model, self.reference_bits)

    def run(self, inputs):
        return {k: _round(v, self.bits) if v.dtype == np.float32 else v for k, v in self.inner.run(inputs).items()}


def test_parity_on_a_coarse_runtime_is_judged_against_its_deviation_on_the_reference_model():
    from onnxfit.verification import verify

    model, reference = conv_net(), conv_net()
    plain = verify(model, runtimes=[Rounding(model)])  # no reference model: nothing to measure the runtime by
    assert not plain.check("parity").ok
    report = verify(model, reference, runtimes=[Rounding(model)])
    parity = report.check("parity")
    assert parity.ok, parity.summary
    (entry,) = [c for c in parity.details["comparisons"] if c["runtime"] == "rounding"]
    assert entry["outputs"][0]["noise_floor"] > 0
    assert any("within 4x the deviation rounding shows on the reference model itself" in n
               for n in parity.details["notes"])
    # A model far worse on the runtime than the reference model is there still fails.
    worse = verify(model, reference, runtimes=[Rounding(model, bits=3, reference_bits=12)])
    assert not worse.check("parity").ok


def test_per_frame_parity_against_a_batch_1_reference_is_judged_against_its_first_frame():
    """A repaired model at batch 4 against its batch-1 export (YOLOv8n on CUDA with TF32 on): the
    runtime's deviation is measured on the reference model's first frame."""
    from onnxfit.verification import verify

    model, reference = conv_net(), conv_net()
    for value in (*reference.graph.input, *reference.graph.output):
        value.type.tensor_type.shape.dim[0].dim_value = 1
    report = verify(model, reference, batch=4, runtimes=[Rounding(model)])
    parity = report.check("parity")
    assert parity.ok, parity.summary
    (entry,) = [c for c in parity.details["comparisons"] if c["runtime"] == "rounding"]
    assert entry["outputs"][0]["noise_floor"] > 0
    worse = verify(model, reference, batch=4, runtimes=[Rounding(model, bits=3, reference_bits=12)])
    assert not worse.check("parity").ok


def test_an_ort_runtime_given_as_an_object_is_measured_on_the_reference_with_its_own_options():
    """verify(..., runtimes=[OrtRuntime(model, "CUDAExecutionProvider", provider_options={"use_tf32": 0})]):
    its deviation on the reference model comes from the same EP and options."""
    model, reference = conv_net(), conv_net()
    runtime = OrtRuntime(model, name="ort-custom", provider_options={})
    again = runtime.for_model(reference)
    assert (again.model, again.provider, again.name, again.provider_options) == (reference, runtime.provider,
                                                                                "ort-custom", {})
