"""A model with external data (``model.onnx`` + ``model.onnx.data``, what torch's dynamo exporter
writes) through every target: passes that read its weights (folding, deduplication, folds into
weights) read them from the source file, and the result, written to another directory from
another working directory, loads and computes what the original computed."""

import os

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from onnxfit import optimize
from tests.conftest import make_model, run_ort, tensor_info
from tests.optimizer.conformance import TARGETS_TRIED

RNG = np.random.default_rng(0)


def _weights_model():
    """Conv -> BatchNormalization, Add of two equal 300-element constants (dedupe-nodes reads and
    compares them), a Transpose of a weight, a Reshape to a constant shape and a MatMul + Add
    (matmul-add-to-gemm)."""
    c = lambda name, array: numpy_helper.from_array(np.asarray(array), name)  # noqa: E731
    weights = [c("w", RNG.standard_normal((4, 3, 3, 3)).astype(np.float32)),
               c("scale", RNG.uniform(0.5, 1.5, 4).astype(np.float32)), c("bias", RNG.standard_normal(4).astype(np.float32)),
               c("mean", RNG.standard_normal(4).astype(np.float32)), c("var", RNG.uniform(0.5, 1.5, 4).astype(np.float32)),
               c("shape", np.array([1, 300], np.int64)),
               c("a", np.linspace(0, 1, 300, dtype=np.float32)), c("b", np.linspace(0, 1, 300, dtype=np.float32)),
               c("mt", RNG.standard_normal((300, 8)).astype(np.float32).T.copy()),
               c("mb", RNG.standard_normal(8).astype(np.float32))]
    nodes = [helper.make_node("Conv", ["x", "w"], ["conv"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["conv", "scale", "bias", "mean", "var"], ["bn"]),
             helper.make_node("Slice", ["bn", "starts", "ends", "axes"], ["cut"]),
             helper.make_node("Reshape", ["cut", "shape"], ["flat"]),
             helper.make_node("Add", ["flat", "a"], ["fa"]), helper.make_node("Add", ["fa", "b"], ["fb"]),
             helper.make_node("Transpose", ["mt"], ["m"], perm=[1, 0]),
             helper.make_node("MatMul", ["fb", "m"], ["mm"]), helper.make_node("Add", ["mm", "mb"], ["y"])]
    weights += [c("starts", np.array([0], np.int64)), c("ends", np.array([3], np.int64)),
                c("axes", np.array([1], np.int64))]
    return make_model(nodes, [tensor_info("x", [1, 3, 10, 10])], [tensor_info("y", [1, 8])], weights)


@pytest.fixture
def external_model(tmp_path):
    """The model saved as model.onnx + model.onnx.data, every tensor of 1 KiB or more outside (as
    onnx saves by default; ONNX Runtime needs shape inputs such as Slice's inline)."""
    source = tmp_path / "export"
    source.mkdir()
    model = _weights_model()
    onnx.save(model, source / "model.onnx", save_as_external_data=True, location="model.onnx.data", size_threshold=1024)
    return source / "model.onnx"


@pytest.mark.parametrize("fix", [False, True])
def test_every_target_optimizes_a_model_with_external_data(external_model, tmp_path, monkeypatch, fix):
    feeds = {"x": RNG.standard_normal((1, 3, 10, 10)).astype(np.float32)}
    expected = run_ort(external_model, feeds)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for target in TARGETS_TRIED:
        out = tmp_path / "out" / target / "model.onnx"
        out.parent.mkdir(parents=True)
        result = optimize(os.path.relpath(external_model), out, target=target, fixed_inputs=feeds if fix else None)
        assert result.pipeline.changed
        changed = {r.name for r in result.pipeline.reports if r.changed}
        assert {"dedupe-nodes", "matmul-add-to-gemm"} <= changed, changed
        assert (out.parent / "model.onnx.data").exists()  # the weights stay outside, as the source kept them
        written = onnx.load(out, load_external_data=False)
        locations = {e.value for t in written.graph.initializer for e in t.external_data if e.key == "location"}
        assert all(not os.path.isabs(p) for p in locations), locations
        actual = run_ort(out, {} if fix else feeds)
        np.testing.assert_allclose(actual[0], expected[0], rtol=1e-4, atol=1e-4)
