"""Runtimes: one interface over ONNX Runtime (optimized or not, any EP), onnx.reference and torch."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper

from onnxfit.errors import OnnxfitError
from onnxfit.verification.runtimes import (
    REFERENCE,
    OrtRuntime,
    ReferenceRuntime,
    Runtime,
    TorchRuntime,
    available_runtimes,
    default_runtimes,
    make_runtime,
    runtime_name,
)
from tests.conftest import make_model, tensor_info
from tests.models import B, W, const, conv_net


def test_runtime_names_derive_from_the_provider():
    assert runtime_name("CPUExecutionProvider") == "ort-cpu"
    assert runtime_name("OpenVINOExecutionProvider") == "openvino"
    assert runtime_name("CUDAExecutionProvider") == "ort-cuda"
    assert runtime_name("CoreMLExecutionProvider") == "ort-coreml"


def test_available_runtimes_follow_this_onnxruntime_build():
    names = available_runtimes()
    assert list(names)[:3] == [REFERENCE, "ort-cpu", "onnx-reference"]
    assert "ort-azure" not in names  # a remote-endpoint EP cannot run a model locally
    for provider in ort.get_available_providers():
        if provider != "AzureExecutionProvider":
            assert runtime_name(provider) in names


def test_unknown_runtime_name_lists_the_available_ones():
    with pytest.raises(OnnxfitError, match=r"unknown runtime 'tensorrt' \(available: ort-cpu-noopt, ort-cpu, onnx-reference"):
        make_runtime("tensorrt", conv_net())


def test_every_runtime_agrees_on_a_conv_net_and_returns_outputs_by_name():
    model = conv_net()
    x = np.random.default_rng(1).uniform(-1, 1, (2, 3, 16, 16)).astype(np.float32)
    results = {name: make_runtime(name, model).run({"x": x}) for name in (REFERENCE, "ort-cpu", "onnx-reference")}
    for name, outputs in results.items():
        assert list(outputs) == ["y"] and outputs["y"].shape == (2, 2), name
        np.testing.assert_allclose(outputs["y"], results[REFERENCE]["y"], atol=1e-5, rtol=1e-5)
    assert isinstance(make_runtime("ort-cpu", model), Runtime) and isinstance(ReferenceRuntime(model), Runtime)


def test_reference_runtime_has_graph_optimizations_disabled():
    runtime = make_runtime(REFERENCE, conv_net())
    assert isinstance(runtime, OrtRuntime)
    assert runtime.optimization_level == ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    assert make_runtime("ort-cpu", conv_net()).optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL


def test_runtimes_load_a_model_from_its_path(tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(conv_net(), path)
    x = np.zeros((1, 3, 16, 16), np.float32)
    from_path = OrtRuntime(path).run({"x": x})["y"]
    np.testing.assert_array_equal(from_path, OrtRuntime(conv_net()).run({"x": x})["y"])
    np.testing.assert_allclose(ReferenceRuntime(path).run({"x": x})["y"], from_path, atol=1e-6)


def test_default_runtimes_add_onnx_reference_only_for_small_models():
    assert default_runtimes(conv_net())[:3] == [REFERENCE, "ort-cpu", "onnx-reference"]
    big = np.zeros((6 * 2**20,), np.float32)  # 24 MB: above the 20 MB limit of the slow interpreter
    model = make_model(
        [helper.make_node("Add", ["x", "big"], ["y"])], [tensor_info("x", ["N", 6 * 2**20])],
        [tensor_info("y", ["N", 6 * 2**20])], [const("big", big)],
    )
    assert "onnx-reference" not in default_runtimes(model)
    assert ("openvino" in default_runtimes(model)) == ("OpenVINOExecutionProvider" in ort.get_available_providers())


def test_torch_runtime_matches_the_same_conv_net_built_in_onnx():
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
            self.conv.weight.data = torch.from_numpy(W)
            self.conv.bias.data = torch.from_numpy(B)

        def forward(self, x):
            return torch.relu(self.conv(x)), x.mean()

    model = make_model(
        [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["y"]),
         helper.make_node("ReduceMean", ["x"], ["m"], keepdims=0)],
        [tensor_info("x", [1, 3, 8, 8])], [tensor_info("y", [1, 4, 8, 8]), tensor_info("m", [])],
        [const("w", W), const("b", B)],
    )
    x = np.random.default_rng(2).uniform(-1, 1, (1, 3, 8, 8)).astype(np.float32)
    torch_out = TorchRuntime(Net(), ["x"], ["y", "m"]).run({"x": x})
    onnx_out = make_runtime(REFERENCE, model).run({"x": x})
    assert list(torch_out) == ["y", "m"]
    for name in ("y", "m"):
        np.testing.assert_allclose(torch_out[name], onnx_out[name], atol=1e-5, rtol=1e-4)
    assert list(TorchRuntime(Net(), ["x"]).run({"x": x})) == ["output_0", "output_1"]


def test_verify_accepts_a_torch_runtime_next_to_named_ones():
    import torch

    from onnxfit.verification import verify

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU())
    net[0].weight.data, net[0].bias.data = torch.from_numpy(W), torch.from_numpy(B)
    model = make_model(
        [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["y"])],
        [tensor_info("x", ["N", 3, 8, 8])], [tensor_info("y", ["N", 4, 8, 8])], [const("w", W), const("b", B)],
    )
    report = verify(model, runtimes=[TorchRuntime(net, ["x"], ["y"])])
    assert report.runtimes == [REFERENCE, "torch"] and report.ok, report.check("parity").summary
