"""export_torch: a SCRFD-like module exported with both exporters gives, per frame, the same answer
at batch 1 and batch 16, matches torch, and exporter failures are one short OnnxfitError.

What the exporters and passes produce for the SCRFD head ``permute(0, 2, 3, 1).reshape(-1, 2)``
(measured with torch 2.13, onnxscript 0.7): both exporters write ``Reshape(x, [-1, 2])`` with the
input batch symbolic, i.e. an output ``[N*H*W, 2]`` with the frames merged into the rows (dynamo
names it ``64*batch``). The dynamic-batch pass rewrites that Reshape to ``[-1, H*W, 2]``, so the
saved model's outputs are ``[batch, H*W, k]``: a leading batch axis, the same elements in the same
order as torch's ``[N*H*W, k]``. Dynamo builds at opset 18 and converts down to 17; both files
are saved at IR 8.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from onnxfit.errors import CheckFailed, OnnxfitError
from onnxfit.exporters.torch_onnx import export_torch, load_factory

SIZE = 32
# Two FPN levels (strides 8 and 16): rows per frame of each head output.
ROWS = {8: (SIZE // 8) ** 2, 16: (SIZE // 16) ** 2}
OUTPUTS = ["score_8", "score_16", "bbox_8", "bbox_16"]


class ScrfdLike(nn.Module):
    """A tiny SCRFD: strided conv backbone, top-down FPN, heads that flatten the batch into rows."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.ReLU(), nn.Conv2d(4, 8, 3, 2, 1), nn.ReLU())
        self.stage8 = nn.Sequential(nn.Conv2d(8, 8, 3, 2, 1), nn.ReLU())
        self.stage16 = nn.Sequential(nn.Conv2d(8, 8, 3, 2, 1), nn.ReLU())
        self.scores = nn.ModuleList(nn.Conv2d(8, 2, 1) for _ in range(2))
        self.bboxes = nn.ModuleList(nn.Conv2d(8, 4, 1) for _ in range(2))

    def forward(self, image):
        p8 = self.stage8(self.stem(image))
        p16 = self.stage16(p8)
        # Upsample to the lateral's own size, as mmdet's FPN does (shape-derived Resize sizes).
        p8 = p8 + F.interpolate(p16, size=p8.shape[2:], mode="nearest")
        levels = (p8, p16)
        scores = [torch.sigmoid(s(f)).permute(0, 2, 3, 1).reshape(-1, 2) for s, f in zip(self.scores, levels)]
        bboxes = [b(f).permute(0, 2, 3, 1).reshape(-1, 4) for b, f in zip(self.bboxes, levels)]
        return (*scores, *bboxes)


def _scrfd_like() -> ScrfdLike:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return ScrfdLike().eval()


def _shapes(tensors) -> dict[str, tuple]:
    return {name: t.shape for name, t in tensors.items()}


def _session(path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module", params=["dynamo", "torchscript"])
def exported(request, tmp_path_factory):
    module = _scrfd_like()
    path = tmp_path_factory.mktemp(request.param) / "scrfd_like.onnx"
    result = export_torch(module, torch.zeros(1, 3, SIZE, SIZE), path, exporter=request.param, output_names=OUTPUTS)
    return module, path, result


def test_export_gives_every_output_a_leading_symbolic_batch_axis(exported):
    _, path, result = exported
    model = onnx.load(path)
    assert (result.opset, result.ir_version) == (17, 8)
    assert model.ir_version == 8 and [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [17]
    assert _shapes(result.inputs) == {"image": ("batch", 3, SIZE, SIZE)}
    expected = {f"{kind}_{s}": ("batch", ROWS[s], k) for kind, k in (("score", 2), ("bbox", 4)) for s in (8, 16)}
    assert _shapes(result.outputs) == expected
    assert {t.dtype for t in [*result.inputs.values(), *result.outputs.values()]} == {"float32"}
    assert [o.name for o in model.graph.output] == OUTPUTS
    dynamic_batch = next(r for r in result.passes if r.name == "dynamic-batch")
    assert dynamic_batch.rewritten >= len(OUTPUTS)  # the four merging Reshapes at least
    # fold-shapes turned the FPN's shape-derived Resize sizes into constant scales.
    assert "Shape" not in {n.op_type for n in model.graph.node}


def test_each_frame_at_batch_16_equals_that_frame_run_alone(exported):
    _, path, _ = exported
    session = _session(path)
    frames = np.random.default_rng(1).uniform(-1, 1, (16, 3, SIZE, SIZE)).astype(np.float32)
    batched = session.run(None, {"image": frames})
    for i in range(16):
        alone = session.run(None, {"image": frames[i : i + 1]})
        for name, whole, one in zip(OUTPUTS, batched, alone):
            assert one.shape == (1, *whole.shape[1:])
            np.testing.assert_allclose(whole[i : i + 1], one, atol=1e-6, rtol=0, err_msg=f"{name}, frame {i}")


def test_onnx_runtime_matches_torch_within_1e_4(exported):
    module, path, result = exported
    assert all(v <= 1e-4 for v in result.parity_max_abs().values()), result.parity_max_abs()
    # Independently of the exporter's own check: torch's merged rows are the ONNX frames in order.
    frames = np.random.default_rng(2).uniform(-1, 1, (16, 3, SIZE, SIZE)).astype(np.float32)
    onnx_out = _session(path).run(None, {"image": frames})
    with torch.no_grad():
        torch_out = [t.numpy() for t in module(torch.from_numpy(frames))]
    for name, a, t in zip(OUTPUTS, onnx_out, torch_out):
        assert t.shape == (a.shape[0] * a.shape[1], a.shape[2])
        np.testing.assert_allclose(a, t.reshape(a.shape), atol=1e-4, rtol=0, err_msg=name)


def test_verify_report_has_passing_parity_and_contamination_at_batch_4(exported):
    _, _, result = exported
    checks = {c.name: c for c in result.verify.checks}
    assert checks["parity"].ok and checks["contamination"].ok
    assert checks["contamination"].details["batch"] == 4
    document = json.loads(json.dumps(result.to_dict()))
    assert document["verify"]["ok"]
    assert document["inputs"] == [{"name": "image", "dtype": "float32", "shape": ["batch", 3, SIZE, SIZE]}]
    assert document["outputs"][0] == {"name": "score_8", "dtype": "float32", "shape": ["batch", ROWS[8], 2]}


def test_no_dynamic_batch_keeps_batch_1_and_torch_output_shapes(tmp_path):
    path = tmp_path / "fixed.onnx"
    result = export_torch(_scrfd_like(), torch.zeros(1, 3, SIZE, SIZE), path, dynamic_batch=False,
                          exporter="torchscript", output_names=OUTPUTS)
    assert result.inputs["image"].shape == (1, 3, SIZE, SIZE)
    assert result.outputs["score_8"].shape == (ROWS[8], 2)
    assert [r.name for r in result.passes] == ["fold-shapes"]
    assert result.verify.ok


class PaddedConv(nn.Module):
    """CREPE's layer: F.pad then an unpadded Conv. The exporter folds the Pad into the Conv's pads."""

    def __init__(self, mode="constant"):
        super().__init__()
        self.mode = mode
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, image):
        return self.conv(F.pad(image, (1, 2, 1, 2), mode=self.mode))


def _padded_conv(mode="constant") -> PaddedConv:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return PaddedConv(mode).eval()


def test_dynamo_export_whose_pad_the_optimizer_folded_is_converted_down_to_opset_17(tmp_path):
    # torch's converter runs before its optimizer and has no 18 -> 17 adapter for Pad: it gave up
    # on a model that, once optimized, holds no Pad at all.
    result = export_torch(_padded_conv(), torch.zeros(1, 3, 8, 8), tmp_path / "padded.onnx")
    model = onnx.load(tmp_path / "padded.onnx")
    assert (result.opset, result.notes) == (17, [])
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [17]
    assert "Pad" not in {n.op_type for n in model.graph.node} and result.verify.ok


def test_dynamo_export_that_keeps_a_pad_18_stays_at_18_with_a_note_saying_why(tmp_path):
    result = export_torch(_padded_conv("reflect"), torch.zeros(1, 3, 8, 8), tmp_path / "reflect.onnx")
    assert result.opset == 18 and result.verify.ok
    assert result.notes == ["the dynamo exporter could not convert to opset 17 (No Adapter To Version 17 for Pad); "
                            "the model has opset 18"]


# ------------------------------------------------------------------------------ failures


class DataDependentBranch(nn.Module):
    def forward(self, x):
        if x.sum() > 0:
            return x * 2
        return x - 1


class Svd(nn.Module):
    def forward(self, x):
        return torch.linalg.svd(x)[1]


class Noisy(nn.Module):
    """Exports fine, but ONNX Runtime draws other random numbers than torch: parity must fail."""

    def forward(self, x):
        return x + torch.rand_like(x)


def test_export_that_differs_from_torch_raises_check_failed_and_writes_nothing(tmp_path):
    path = tmp_path / "noisy.onnx"
    with pytest.raises(CheckFailed, match=r"noisy.onnx: parity check failed: output 'output' differs from torch"):
        export_torch(Noisy(), torch.zeros(1, 3, 4, 4), path, dynamic_batch=False, exporter="torchscript")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
@pytest.mark.parametrize(("module", "fragment"), [(Svd(), "linalg_svd"), (DataDependentBranch(), "data-dependent")])
def test_export_failure_is_one_short_onnxfit_error_and_writes_nothing(tmp_path, exporter, module, fragment):
    path = tmp_path / "out.onnx"
    with pytest.raises(OnnxfitError) as caught:
        export_torch(module, torch.randn(1, 3, 4, 4), path, exporter=exporter)
    message = str(caught.value)
    assert message.startswith(f"torch export ({exporter}) of {type(module).__name__} failed: ")
    assert fragment in message and "\n" not in message and len(message) < 500, message
    assert not path.exists() and list(tmp_path.iterdir()) == []


def test_unknown_exporter_and_wrong_example_shape_are_user_errors(tmp_path):
    with pytest.raises(OnnxfitError, match="unknown exporter 'jit'"):
        export_torch(_scrfd_like(), torch.zeros(1, 3, SIZE, SIZE), tmp_path / "a.onnx", exporter="jit")
    with pytest.raises(OnnxfitError, match=r"ScrfdLike fails on inputs of shape 1x1x32x32: RuntimeError: .*channels"):
        export_torch(_scrfd_like(), torch.zeros(1, 1, SIZE, SIZE), tmp_path / "a.onnx", exporter="torchscript")


def test_load_factory_takes_a_dotted_module_or_a_py_path(tmp_path, monkeypatch):
    (tmp_path / "my_factories.py").write_text("class Model:\n    @staticmethod\n    def build():\n        return 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_factory("my_factories:Model.build")() == 42
    assert load_factory(f"{tmp_path / 'my_factories.py'}:Model.build")() == 42
    with pytest.raises(OnnxfitError, match="has no attribute 'missing'"):
        load_factory("my_factories:missing")


# ----------------------------------------------------------------------------------- CLI

FACTORY_FILE = """
    import torch
    from torch import nn

    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 2, 3, 2, 1)

        def forward(self, image):
            return self.conv(image).permute(0, 2, 3, 1).reshape(-1, 2)

    def build():
        torch.manual_seed(0)
        return Head()

    def not_a_module():
        return "head"
"""


def onnxfit(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "onnxfit", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def test_cli_exports_a_factory_from_a_py_file_as_json(tmp_path):
    (tmp_path / "models.py").write_text(textwrap.dedent(FACTORY_FILE))
    result = onnxfit("export", "torch", "models.py:build", "--input-shape", "1x3x16x16", "-o", "head.onnx",
                     "--exporter", "torchscript", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["inputs"] == [{"name": "image", "dtype": "float32", "shape": ["batch", 3, 16, 16]}]
    assert document["outputs"] == [{"name": "output", "dtype": "float32", "shape": ["batch", 64, 2]}]
    assert document["verify"]["ok"] and max(document["parity_max_abs"].values()) <= 1e-4
    assert onnx.load(tmp_path / "head.onnx").graph.output[0].name == "output"


def test_cli_table_shows_each_input_and_output_with_dtype_and_shape(tmp_path):
    # rich used to take "[batch, 3, 16, 16]" for a markup tag and print an empty cell.
    (tmp_path / "models.py").write_text(textwrap.dedent(FACTORY_FILE))
    result = subprocess.run(
        [sys.executable, "-m", "onnxfit", "export", "torch", "models.py:build", "--input-shape", "1x3x16x16",
         "-o", "head.onnx", "--exporter", "torchscript"],
        capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "COLUMNS": "160"},
    )
    assert result.returncode == 0, result.stderr
    rows = dict(re.findall(r"│ ((?:input|output) \S+)\s+│ (.+?)\s+│", result.stdout))
    assert rows == {"input image": "float32 [batch, 3, 16, 16]", "output output": "float32 [batch, 64, 2]"}, result.stdout


@pytest.mark.parametrize(("spec", "fragment"), [
    ("models.py", "expected MODULE:FACTORY"),
    ("models.py:missing", "models.py has no attribute 'missing'"),
    ("nowhere.py:build", "nowhere.py: no such file"),
    ("no_such_package.models:build", "no module named 'no_such_package'"),
    ("models.py:not_a_module", "returned a str, not a torch.nn.Module"),
])
def test_cli_bad_module_factory_exits_2_with_one_line(tmp_path, monkeypatch, spec, fragment):
    # In-process (typer's runner): these fail before any export, a subprocess per case only adds start-up.
    from typer.testing import CliRunner

    from onnxfit.cli import app

    (tmp_path / "models.py").write_text(textwrap.dedent(FACTORY_FILE))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["export", "torch", spec, "--input-shape", "1x3x16x16", "-o", "out.onnx"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], result.stderr
    assert result.stdout == "" and not (tmp_path / "out.onnx").exists()
