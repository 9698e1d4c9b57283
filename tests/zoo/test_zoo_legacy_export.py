"""Opset 10 / IR 5: the published MTCNN weights through torch's TorchScript exporter at opset 10.

No PyPI package we found ships an opset-10 ONNX file (2019-era exports; see docs/zoo.md's
notes), so the zoo covers opset 10 the way such files were made: facenet-pytorch's published
PNet and ONet state_dicts exported with the TorchScript exporter at opset 10 (IR 5). ONet's
``x.view(x.shape[0], -1)`` becomes the legacy Shape -> Gather -> Unsqueeze -> Concat -> Reshape
chain. Every verb the ONNX zoo runs runs on these files too (the same test functions).
"""

from __future__ import annotations

from dataclasses import replace

import onnx
import pytest
import torch

from onnxfit.exporters.torch_onnx import export_torch
from tests.zoo import test_zoo, torch_models
from tests.zoo.manifest import by_name

EXPORTS = {
    "mtcnn_pnet_opset10": ("mtcnn_pnet_torch", "mtcnn_pnet", (1, 3, 24, 30)),
    "mtcnn_onet_opset10": ("mtcnn_onet_torch", "mtcnn_onet", (1, 3, 48, 48)),
}
ENTRIES = [replace(by_name(zoo), name=name, kind="onnx", exporter="torch 2.13 TorchScript exporter, opset 10")
           for name, (zoo, _, _) in EXPORTS.items()]


@pytest.fixture(scope="module")
def paths(zoo_model, tmp_path_factory):
    """Export each published model once (the zoo fetch gives the weights)."""
    folder = tmp_path_factory.mktemp("legacy-exports")
    exported = {}
    for name, (zoo, factory, example) in EXPORTS.items():
        zoo_model(zoo)
        module = getattr(torch_models, factory)()
        path = folder / f"{name}.onnx"
        export_torch(module, torch.zeros(example), path, opset=10, exporter="torchscript")
        exported[name] = path
    return exported


def test_exports_are_opset_10_ir_5(paths):
    for path in paths.values():
        model = onnx.load(path)
        assert (model.ir_version, model.opset_import[0].version) == (5, 10)
    onet = onnx.load(paths["mtcnn_onet_opset10"])
    assert [n.op_type for n in onet.graph.node if n.op_type in ("Shape", "Gather", "Unsqueeze", "Concat", "Reshape")] == \
        ["Shape", "Gather", "Unsqueeze", "Concat", "Reshape"]


@pytest.mark.parametrize("entry", ENTRIES, ids=test_zoo._ids(ENTRIES))
def test_inspect(entry, paths):
    test_zoo.test_inspect(entry, paths)


@pytest.mark.parametrize("target", test_zoo.ESTIMATED)
@pytest.mark.parametrize("entry", ENTRIES, ids=test_zoo._ids(ENTRIES))
def test_partitions(entry, target, paths):
    test_zoo.test_partitions(entry, target, paths)


@pytest.mark.parametrize("entry", ENTRIES, ids=test_zoo._ids(ENTRIES))
def test_optimize_every_target_keeps_outputs(entry, paths, tmp_path):
    test_zoo.test_optimize_every_target_keeps_outputs(entry, paths, tmp_path)


@pytest.mark.parametrize("entry", ENTRIES, ids=test_zoo._ids(ENTRIES))
def test_dynamic_batch_keeps_frames_independent(entry, paths, tmp_path):
    test_zoo.test_dynamic_batch_keeps_frames_independent(entry, paths, tmp_path)


@pytest.mark.parametrize("entry", ENTRIES, ids=test_zoo._ids(ENTRIES))
def test_verify_alone_and_against_original(entry, paths, tmp_path):
    test_zoo.test_verify_alone_and_against_original(entry, paths, tmp_path)
