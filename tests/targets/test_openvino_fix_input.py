"""silero_vad with ``--fix-input sr=16000`` and its shapes loads whole on the real OpenVINO EP
(runs in .venv-openvino); as exported, the EP fails to compile its If nodes (onnxruntime#23757)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from onnxfit.app.optimize import optimize
from onnxfit.targets.partitions import count_partitions

pytestmark = pytest.mark.openvino_ep


def test_fixed_sample_rate_compiles_as_one_openvino_partition(zoo_model, tmp_path):
    source = zoo_model("silero_vad")
    assert not count_partitions(source, "openvino").compiled
    result = optimize(source, tmp_path / "vad.onnx", target="openvino", fixed_inputs={"sr": 16000},
                      input_shapes={"input": (1, 576), "state": (2, 1, 128)})
    report = count_partitions(result.output, "openvino")
    assert report.is_real and report.compiled
    assert report.partitions == 1 and report.nodes_on_ep == report.total_nodes
    feeds = {"input": np.random.default_rng(0).uniform(-1, 1, (1, 576)).astype(np.float32),
             "state": np.zeros((2, 1, 128), np.float32)}
    cpu = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"])
    expected = cpu.run(None, {**feeds, "sr": np.array(16000, np.int64)})
    openvino = ort.InferenceSession(str(result.output), providers=["OpenVINOExecutionProvider"])
    for e, a in zip(expected, openvino.run(None, feeds)):
        np.testing.assert_allclose(a, e, rtol=1e-3, atol=1e-4)  # OpenVINO's CPU plugin kernels differ slightly
