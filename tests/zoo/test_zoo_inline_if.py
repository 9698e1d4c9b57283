"""--fix-input and inline-if on the real silero-vad exports: no If left, the state carried equal."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from onnxfit.app.optimize import optimize
from onnxfit.targets.partitions import estimate_partitions
from onnxfit.versions import parse_version
from tests.conftest import op_count, run_ort

SHAPES = {"input": (1, 576), "state": (2, 1, 128)}


def _stream(path, chunks: int, sr: int | None) -> list[np.ndarray]:
    """Run ``chunks`` VAD calls, feeding each call the state the previous one returned."""
    model = onnx.load(path)
    takes_sr = any(i.name == "sr" for i in model.graph.input)
    rng = np.random.default_rng(0)
    state = np.zeros((2, 1, 128), np.float32)
    probabilities = []
    for _ in range(chunks):
        feeds = {"input": rng.uniform(-1, 1, (1, 576)).astype(np.float32), "state": state}
        if takes_sr:
            feeds["sr"] = np.array(sr, np.int64)
        probability, state = run_ort(path, feeds)
        probabilities.append(probability)
    return probabilities


@pytest.mark.parametrize("target", ["coreml", "openvino", "cpu"])
def test_fix_input_sr_removes_every_if_of_silero_vad(zoo_model, tmp_path, target):
    """silero_vad.onnx (spox): 25 nested Ifs on ``sr`` and on shapes; ``sr`` fixed and the shapes
    given, no If and no ``sr`` input is left, and 4 chunks with the state carried match."""
    source = zoo_model("silero_vad")
    assert op_count(onnx.load(source), "If") == 25
    result = optimize(source, tmp_path / "vad.onnx", target=target, fixed_inputs={"sr": 16000}, input_shapes=SHAPES)
    new = onnx.load(result.output)
    assert op_count(new, "If") == 0
    assert [i.name for i in new.graph.input] == ["input", "state"]
    for expected, actual in zip(_stream(source, 4, 16000), _stream(result.output, 4, None)):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


def test_sr_alone_leaves_only_the_ifs_on_the_chunk_length(zoo_model, tmp_path):
    """Without shapes the Ifs that test the time axis stay (torch's squeeze on a dynamic dim)."""
    source = zoo_model("silero_vad")
    result = optimize(source, tmp_path / "vad.onnx", target="cpu", fixed_inputs={"sr": 16000})
    new = onnx.load(result.output)
    assert 0 < op_count(new, "If") < 25
    for expected, actual in zip(_stream(source, 3, 16000), _stream(result.output, 3, None)):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


def test_shape_decided_ifs_do_not_add_coreml_partitions(zoo_model, tmp_path):
    """silero_vad_16k_op15: its LSTM-cell If is decided by the state's partly known shape, but
    inlining it would expose Ifs on the chunk length as CPU islands: held, the estimate does not
    grow; with the shapes given every If goes."""
    source = zoo_model("silero_vad_16k_op15")
    version = parse_version("1.32")
    before = estimate_partitions(source, "coreml", version).partitions
    held = optimize(source, tmp_path / "held.onnx", target="coreml")
    assert estimate_partitions(held.output, "coreml", version).partitions <= before
    fixed = optimize(source, tmp_path / "fixed.onnx", target="coreml", input_shapes=SHAPES)
    assert op_count(onnx.load(fixed.output), "If") == 0
    assert estimate_partitions(fixed.output, "coreml", version).partitions <= before
    for out in (held.output, fixed.output):
        for expected, actual in zip(_stream(source, 3, 16000), _stream(out, 3, 16000)):
            np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


def test_shapes_a_branch_cannot_take_are_refused_with_the_input_to_fix(zoo_model, tmp_path):
    """silero_vad's 8 kHz branch cannot take 576-sample chunks: with the shapes fixed, ONNX Runtime
    would refuse to load the result (the original fails the same way), so nothing is written and
    the error names the input that picks the branch."""
    from onnxfit.errors import OnnxfitError

    out = tmp_path / "vad.onnx"
    with pytest.raises(OnnxfitError, match=r"--fix-input sr=VALUE; nothing was written"):
        optimize(zoo_model("silero_vad"), out, target="coreml", input_shapes=SHAPES)
    assert not out.exists()
