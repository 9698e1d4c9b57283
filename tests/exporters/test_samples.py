"""The committed sample models in weights/: they load, run, carry the patterns the passes target,
and are exactly what onnxfit.exporters.samples builds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from onnxfit.exporters import samples
from tests.conftest import random_feeds, run_ort

WEIGHTS = Path(__file__).resolve().parents[2] / "weights"

# name -> ({input: shape}, {output: shape}) as documented in weights/README.md
SHAPES = {
    "inswapper_like": ({"target": (1, 3, 128, 128), "source": (1, 512)}, {"output": (1, 3, 128, 128)}),
    "scrfd_like": (
        {"input.1": (1, 3, 320, 320)},
        {
            f"{kind}_{stride}": ((320 // stride) ** 2, columns)
            for kind, columns in (("score", 2), ("bbox", 4), ("kps", 10))
            for stride in (8, 16, 32)
        },
    ),
    "gfpgan_like": ({"input": (1, 3, 128, 128)}, {"output": (1, 3, 128, 128)}),
}


def _load(name: str) -> onnx.ModelProto:
    return onnx.load(WEIGHTS / f"{name}.onnx")


def _constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    """Values of initializers and Constant node outputs, by tensor name."""
    values = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values


def _producers(graph: onnx.GraphProto) -> dict[str, onnx.NodeProto]:
    return {out: node for node in graph.node for out in node.output}


def _upstream_ops(graph: onnx.GraphProto, name: str) -> set[str]:
    """Op types of every node that the tensor ``name`` depends on."""
    producers, ops, stack, seen = _producers(graph), set(), [name], set()
    while stack:
        node = producers.get(stack.pop())
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        ops.add(node.op_type)
        stack.extend(node.input)
    return ops


@pytest.mark.parametrize("name", list(samples.SAMPLES))
def test_sample_is_a_small_valid_opset17_model_that_runs_on_onnxruntime_with_documented_shapes(name):
    path = WEIGHTS / f"{name}.onnx"
    assert path.stat().st_size < 5 * 2**20
    model = _load(name)
    onnx.checker.check_model(model, full_check=True)
    assert model.ir_version <= 9
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 17)]
    assert model.producer_name == "pytorch"

    inputs, outputs = SHAPES[name]
    assert {i.name: tuple(d.dim_value for d in i.type.tensor_type.shape.dim) for i in model.graph.input} == inputs
    results = run_ort(model, random_feeds(model))
    assert [o.name for o in model.graph.output] == list(outputs)
    for (output, shape), value in zip(outputs.items(), results):
        assert value.shape == shape, output
        assert np.isfinite(value).all() and value.std() > 0, output


def test_inswapper_like_keeps_a_512x512_emap_as_last_initializer_unused_by_any_node():
    model = _load("inswapper_like")
    emap = model.graph.initializer[-1]
    assert emap.name == "emap"
    assert numpy_helper.to_array(emap).shape == (512, 512)
    assert all("emap" not in node.input for node in model.graph.node)


def test_inswapper_like_has_at_least_six_reflect_pads():
    pads = [n for n in _load("inswapper_like").graph.node if n.op_type == "Pad"]
    modes = [onnx.helper.get_attribute_value(a).decode() for n in pads for a in n.attribute if a.name == "mode"]
    assert len(pads) >= 6
    assert modes == ["reflect"] * len(pads)


def test_scrfd_like_resize_sizes_come_from_shape_gather_chains():
    graph = _load("scrfd_like").graph
    resizes = [n for n in graph.node if n.op_type == "Resize"]
    assert len(resizes) == 2  # top-down FPN: stride 32 -> 16 -> 8
    for resize in resizes:
        assert {"Shape", "Gather"} <= _upstream_ops(graph, resize.input[3])


def test_scrfd_like_heads_flatten_the_batch_with_reshape_minus_one_k():
    graph = _load("scrfd_like").graph
    constants, producers = _constants(graph), _producers(graph)
    assert len(graph.output) == 9
    for output in graph.output:
        reshape = producers[output.name]
        assert reshape.op_type == "Reshape"
        assert producers[reshape.input[0]].op_type == "Transpose"
        columns = {"score": 2, "bbox": 4, "kps": 10}[output.name.split("_")[0]]
        assert constants[reshape.input[1]].tolist() == [-1, columns]


def test_gfpgan_like_has_splits_with_sizes_as_input_and_scalar_index_gathers():
    graph = _load("gfpgan_like").graph
    constants = _constants(graph)
    splits = [n for n in graph.node if n.op_type == "Split"]
    assert len(splits) >= 2
    for split in splits:
        assert len(split.input) == 2 and constants[split.input[1]].ndim == 1
    scalar_gathers = [n for n in graph.node if n.op_type == "Gather" and constants[n.input[1]].ndim == 0]
    assert len(scalar_gathers) >= 3


@pytest.mark.parametrize("name", list(samples.SAMPLES))
def test_rebuilding_a_sample_reproduces_the_committed_file(name):
    committed = _load(name)
    rebuilt = samples.SAMPLES[name]()
    feeds = random_feeds(committed, seed=1)
    for expected, actual in zip(run_ort(committed, feeds), run_ort(rebuilt, feeds)):
        np.testing.assert_allclose(actual, expected, atol=1e-6, rtol=0)
    # Same torch version: the exporter is deterministic, so the bytes match too. A different
    # torch may reorder or rename nodes; then only the numbers above have to match.
    if rebuilt.producer_version == committed.producer_version:
        assert rebuilt.SerializeToString() == (WEIGHTS / f"{name}.onnx").read_bytes()


def test_builders_do_not_disturb_the_callers_torch_rng():
    import torch

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    samples.build_scrfd_like(width=2, size=64)
    assert torch.equal(torch.rand(3), expected)


def test_width_scales_the_model_and_keeps_its_interface():
    small = samples.build_gfpgan_like(width=4)
    large = samples.build_gfpgan_like(width=8)
    size = lambda m: sum(numpy_helper.to_array(t).nbytes for t in m.graph.initializer)  # noqa: E731
    assert size(large) > 2 * size(small)
    assert [i.name for i in small.graph.input] == [i.name for i in large.graph.input]
    assert run_ort(small, random_feeds(small))[0].shape == (1, 3, 128, 128)


def test_build_samples_writes_every_sample_into_the_directory_as_committed(tmp_path):
    paths = samples.build_samples(tmp_path / "out")
    assert {name: p.name for name, p in paths.items()} == {name: f"{name}.onnx" for name in samples.SAMPLES}
    for path in paths.values():
        written = onnx.load(path)
        committed = onnx.load(WEIGHTS / path.name)
        assert [i.name for i in written.graph.initializer] == [i.name for i in committed.graph.initializer]
        if written.producer_version == committed.producer_version:
            assert path.read_bytes() == (WEIGHTS / path.name).read_bytes()
