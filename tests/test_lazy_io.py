"""Lazy weights: a skeleton load plus a streaming save gives back the same model, byte for byte."""

import numpy as np
import onnx
from onnx import helper, numpy_helper

from onnxfit import lazy_io
from onnxfit.model import load_model, save_model
from tests.conftest import make_model, run_ort, tensor_info


def _model():
    rng = np.random.default_rng(0)
    big = numpy_helper.from_array(rng.standard_normal((1024, 256)).astype(np.float32), "big")  # 1 MiB: lazy
    small = numpy_helper.from_array(np.ones(256, np.float32), "small")
    unused = numpy_helper.from_array(rng.standard_normal((512, 512)).astype(np.float32), "emap")  # lazy, last
    nodes = [helper.make_node("MatMul", ["x", "big"], ["m"]), helper.make_node("Add", ["m", "small"], ["y"])]
    model = make_model(nodes, [tensor_info("x", [2, 1024])], [tensor_info("y", [2, 256])], [big, small, unused])
    helper.set_model_props(model, {"k": "v"})
    return model


def test_skeleton_holds_no_weight_bytes_and_saves_identically(tmp_path):
    source = tmp_path / "m.onnx"
    onnx.save(_model(), source)
    skeleton = load_model(source, lazy_weights=True)
    assert [t.name for t in lazy_io.lazy_tensors(skeleton)] == ["big", "emap"]
    assert skeleton.ByteSize() < 4096
    out = save_model(skeleton, tmp_path / "out.onnx")
    assert onnx.load(out) == onnx.load(source)
    x = np.ones((2, 1024), np.float32)
    assert np.array_equal(run_ort(onnx.load(out), {"x": x})[0], run_ort(onnx.load(source), {"x": x})[0])


def test_external_data_source_and_external_data_output(tmp_path):
    source = tmp_path / "ext.onnx"
    save_model(_model(), source, external_data=True)
    skeleton = load_model(source, lazy_weights=True)
    assert len(lazy_io.lazy_tensors(skeleton)) >= 2
    single = save_model(skeleton, tmp_path / "single.onnx")
    split = save_model(load_model(source, lazy_weights=True), tmp_path / "split.onnx", external_data=True)
    reference = load_model(source)
    for path in (single, split):
        loaded = load_model(path)
        assert {t.name: numpy_helper.to_array(t).tobytes() for t in loaded.graph.initializer} == \
            {t.name: numpy_helper.to_array(t).tobytes() for t in reference.graph.initializer}
    assert (tmp_path / "split.onnx.data").exists()


def test_materialize_reads_bytes_back(tmp_path):
    source = tmp_path / "m.onnx"
    onnx.save(_model(), source)
    model = lazy_io.materialize(load_model(source, lazy_weights=True))
    assert not lazy_io.lazy_tensors(model)
    assert model == onnx.load(source)


def test_optimize_on_the_lazy_path_reads_every_constant_a_pass_may_need(tmp_path):
    """Regression: a 65,536-element weight (256 KiB) is small enough for constant_value to read."""
    from onnxfit import optimize

    weight = numpy_helper.from_array(np.full((256, 256), 0.5, np.float32), "w")
    big = numpy_helper.from_array(np.ones((256, 2048), np.float32), "big")  # 2 MiB: lazy
    nodes = [helper.make_node("Add", ["x", "w"], ["a"]), helper.make_node("MatMul", ["a", "big"], ["y"])]
    model = make_model(nodes, [tensor_info("x", [256, 256])], [tensor_info("y", None)], [weight, big])
    source = tmp_path / "m.onnx"
    onnx.save(model, source)
    optimize(source, tmp_path / "out.onnx", target="coreml", input_shapes={"x": (256, 256)})
    x = np.ones((256, 256), np.float32)
    assert np.array_equal(run_ort(onnx.load(tmp_path / "out.onnx"), {"x": x})[0], run_ort(model, {"x": x})[0])
