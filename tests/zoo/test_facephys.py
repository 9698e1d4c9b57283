"""FacePhys (tests/zoo/facephys: tf2onnx, 2499 tiny ops, 46 states carried from frame to frame):
the simplification rules on a real fragmented model, checked over 300 streamed frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from onnxfit.app.optimize import optimize_model
from onnxfit.targets.partitions import estimate_partitions

MODEL = Path(__file__).parent / "facephys" / "model.onnx"
FRAMES = 300


@pytest.fixture(scope="module")
def facephys():
    return onnx.load(MODEL)


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def stream(model: onnx.ModelProto, frames: int = FRAMES, seed: int = 0) -> list[list[np.ndarray]]:
    """Every output of every frame, the states fed back as the next frame's state inputs."""
    session = _session(model)
    states = [i for i in session.get_inputs() if i.name.startswith("state_in")]
    carried = {i.name: np.zeros(i.shape, np.float32) for i in states}
    rng = np.random.default_rng(seed)
    outputs = []
    for _ in range(frames):
        feed = {"input": rng.random((1, 1, 36, 36, 3), dtype=np.float32), "dt": np.array([1 / 30], np.float32)}
        result = session.run(None, {**feed, **carried})
        carried = {i.name: result[k + 1] for k, i in enumerate(states)}
        outputs.append(result)
    return outputs


def worst_difference(expected, actual, which: slice) -> float:
    """Largest difference of the chosen outputs over all frames, relative to each output's range."""
    worst = 0.0
    for index in range(len(expected[0]))[which]:
        e = np.stack([frame[index] for frame in expected])
        a = np.stack([frame[index] for frame in actual])
        worst = max(worst, float(np.max(np.abs(e - a)) / max(float(np.max(np.abs(e))), 1e-6)))
    return worst


@pytest.fixture(scope="module")
def original_stream(facephys):
    return stream(facephys)


def test_exact_rules_keep_facephys_bit_exact_over_300_frames(facephys, original_stream):
    result = optimize_model(facephys, target="cpu", exact=True)
    assert len(result.model.graph.node) <= 0.85 * len(facephys.graph.node)
    actual = stream(result.model)
    assert worst_difference(original_stream, actual, slice(None)) == 0.0


def test_default_rules_take_facephys_to_under_half_of_its_nodes_within_float_noise(facephys, original_stream):
    result = optimize_model(facephys, target="cpu")
    ops = [n.op_type for n in result.model.graph.node]
    assert len(ops) <= 0.5 * len(facephys.graph.node)
    assert ops.count("Exp") == 20 and ops.count("Round") == 20 and "Not" not in ops  # exps (rule 6), selects
    assert ops.count("Floor") == 10  # one reduction per sine/cosine pair (rule 5 of native-functions)
    assert ops.count("Gemm") == 11  # dense-conv-to-gemm: the per-pixel Denses but the 3-channel first one
    actual = stream(result.model)
    # The pulse and every one of the 46 states within 1e-5 of its range over 300 frames (measured:
    # pulse 2.4e-6, states 3.4e-6). With a plain Exp for the exps, one state drifted to 1.2e-5.
    assert worst_difference(original_stream, actual, slice(0, 1)) <= 1e-5
    assert worst_difference(original_stream, actual, slice(1, None)) <= 1e-5


def test_facephys_runs_whole_on_coreml_at_ort_1_32(facephys):
    before = estimate_partitions(facephys, "coreml", (1, 32))
    result = optimize_model(facephys, target="coreml", ort_version=(1, 32))
    after = estimate_partitions(result.model, "coreml", (1, 32))
    assert before.partitions > 100
    assert after.partitions == 1 and after.nodes_on_ep == after.total_nodes
