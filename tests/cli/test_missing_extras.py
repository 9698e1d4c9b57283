"""A plain `pip install onnxfit` (no extras): every verb that needs an extra exits 2 with one line
naming it, never a traceback. The extra's modules are hidden from a subprocess (``sys.modules[name]
= None`` is how Python reports a module that is not installed: import raises ModuleNotFoundError,
``importlib.util.find_spec`` returns None)."""

import subprocess
import sys

import onnx
import pytest

from tests.models import scalar_gather_model

_RUN_WITHOUT = """
import runpy, sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None
sys.argv = ["onnxfit", *sys.argv[2:]]
runpy.run_module("onnxfit", run_name="__main__")
"""


def onnxfit_without(modules, *args):
    return subprocess.run([sys.executable, "-c", _RUN_WITHOUT, ",".join(modules), *map(str, args)],
                          capture_output=True, text=True)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    directory = tmp_path_factory.mktemp("extras")
    model = directory / "gather.onnx"
    onnx.save(scalar_gather_model(batch=2), model)
    return {"model": model, "dir": directory}


@pytest.fixture(scope="module")
def torch_files(files):
    """EFM3 files and a torch checkpoint, made here with torch (then hidden from the commands)."""
    torch = pytest.importorskip("torch")
    from onnxfit.exporters.efm3 import make_sample
    from onnxfit.exporters.mobilefacenet import MobileFaceNet
    from onnxfit.exporters.mobilefacenet_arch import ARCHS

    directory = files["dir"]
    bin_path, onnx_path = make_sample(directory, "nano")
    checkpoint = directory / "facex.pt"
    torch.save(MobileFaceNet(ARCHS["nano"]).state_dict(), checkpoint)
    module = directory / "net.py"
    module.write_text("import torch\n\ndef build():\n    return torch.nn.Conv2d(3, 4, 3)\n")
    return {**files, "bin": bin_path, "onnx": onnx_path, "pt": checkpoint, "module": module}


def _assert_names_extra(result, extra, written=None):
    text = result.stderr + result.stdout
    assert result.returncode == 2, text
    assert "Traceback" not in text
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert f"pip install 'onnxfit[{extra}]'" in lines[0], text
    assert written is None or not written.exists()


@pytest.mark.parametrize("command", [
    lambda f: ["export", "torch", f"{f['module']}:build", "-s", "1x3x8x8", "-o", f["dir"] / "net.onnx"],
    lambda f: ["export", "efm3", f["pt"], "-o", f["dir"] / "from_pt.bin"],
    lambda f: ["efm3", "verify", f["bin"], "--torch"],
    lambda f: ["efm3", "verify", f["bin"]],
], ids=["export-torch", "export-efm3-from-checkpoint", "efm3-verify-torch", "efm3-verify-default"])
def test_command_needing_torch_names_the_torch_extra(torch_files, command):
    args = command(torch_files)
    written = args[args.index("-o") + 1] if "-o" in args else None
    _assert_names_extra(onnxfit_without(["torch", "onnxscript"], *args), "torch", written)


def test_efm3_verify_against_onnx_needs_no_torch(torch_files):
    result = onnxfit_without(["torch", "onnxscript"], "efm3", "verify", torch_files["bin"], "--onnx",
                             torch_files["onnx"])
    assert result.returncode == 0, result.stderr
    assert "PASS" in result.stdout


@pytest.mark.parametrize("runtime", ["openvino", "planned-openvino"])
def test_verify_runtime_openvino_without_its_ep_names_the_openvino_extra(files, runtime):
    # This environment has no OpenVINO EP (the openvino_ep tests run in their own venv).
    import onnxruntime as ort

    if "OpenVINOExecutionProvider" in ort.get_available_providers():
        pytest.skip("the OpenVINO EP is installed here")
    _assert_names_extra(onnxfit_without([], "verify", files["model"], "--runtime", runtime), "openvino")


def test_optimize_simplify_without_onnxsim_names_the_simplify_extra(files):
    out = files["dir"] / "simplified.onnx"
    _assert_names_extra(onnxfit_without(["onnxsim"], "optimize", files["model"], "-o", out, "--simplify"),
                        "simplify", out)


def test_plain_verbs_run_without_any_extra(files):
    hidden = ["torch", "onnxscript", "onnxsim", "openvino"]
    out = files["dir"] / "plain.onnx"
    assert onnxfit_without(hidden, "optimize", files["model"], "-o", out, "--target", "coreml").returncode == 0
    result = onnxfit_without(hidden, "verify", out, "--reference", files["model"])
    assert result.returncode == 0, result.stderr + result.stdout
    assert "all checks passed" in result.stdout


def test_verify_runtime_of_an_ep_this_build_lacks_names_the_ep(files):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime build has the CUDA EP")
    result = onnxfit_without([], "verify", files["model"], "--runtime", "ort-cuda")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "runtime 'ort-cuda' needs ONNX Runtime's CUDAExecutionProvider, which this onnxruntime build lacks" in \
        " ".join(result.stderr.split())
