"""Regressions of the real-model issue on zoo models, one per symptom that no generic zoo test pins."""

from __future__ import annotations

import numpy as np
import onnx

import onnxfit
from onnxfit.app.optimize import optimize
from tests.conftest import run_ort


def test_resize_sizes_from_shape_chains_with_a_dynamic_batch(zoo_model, tmp_path):
    """SLANet (Paddle2ONNX) upsamples its FPN to another feature's size: Resize ``sizes`` =
    Concat(Shape(x)[:2], Shape(y)[2:]). ``--dynamic-batch --input-shape`` keeps Paddle's ``-1``
    batch symbolic, folds each exact upsample to constant scales, names the one it leaves
    (61/31 is no float32 ratio) and the frames stay independent."""
    source = zoo_model("slanet_table")
    result = optimize(source, tmp_path / "slanet.onnx", target="coreml", dynamic_batch=True,
                      input_shapes={"x": (1, 3, 488, 488)})
    model = onnx.load(result.output)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [3, 488, 488]
    initializers = {t.name for t in model.graph.initializer}
    resizes = [n for n in model.graph.node if n.op_type == "Resize"]
    with_scales = [n for n in resizes if len(n.input) == 3 and n.input[2] in initializers]
    assert len(resizes) == 3 and len(with_scales) == 2
    fold = next(r for r in result.pipeline.reports if r.name == "fold-shapes")
    assert any("61/31" in s for s in fold.skipped)
    rng = np.random.default_rng(0)
    frames = rng.standard_normal((2, 3, 488, 488)).astype(np.float32)
    together = run_ort(result.output, {"x": frames})
    alone = [run_ort(result.output, {"x": frames[j:j + 1]}) for j in range(2)]
    original = run_ort(source, {"x": frames[:1]})
    for k, out in enumerate(together):
        for j in range(2):
            np.testing.assert_allclose(out[j:j + 1], alone[j][k], atol=1e-5, rtol=1e-4)
        np.testing.assert_allclose(alone[0][k], original[k], atol=1e-5, rtol=1e-4)


def test_external_data_export_through_every_target(zoo_model, tmp_path):
    """GTCRN re-saved as model.onnx + model.onnx.data (what torch's dynamo exporter writes): the
    passes read its weights from the data file (they once read them through onnx, which refuses
    the absolute location the lazy loader keeps), and each target's result, written elsewhere,
    computes what the original computes."""
    from tests.optimizer.conformance import TARGETS_TRIED
    from tests.zoo.manifest import by_name

    source = tmp_path / "export" / "model.onnx"
    source.parent.mkdir()
    onnx.save(onnx.load(zoo_model("gtcrn_simple")), source, save_as_external_data=True, location="model.onnx.data")
    feeds = by_name("gtcrn_simple").feeds(1)
    expected = run_ort(source, feeds)
    for target in TARGETS_TRIED:
        (tmp_path / target).mkdir()
        result = optimize(source, tmp_path / target / "model.onnx", target=target)
        assert result.pipeline.changed and (tmp_path / target / "model.onnx.data").exists()
        for e, a in zip(expected, run_ort(result.output, feeds)):
            np.testing.assert_allclose(a, e, rtol=1e-4, atol=1e-5)


def test_more_partitions_than_the_original_come_with_a_reason(zoo_model, tmp_path):
    """ddddocr's quantized CRNN on NNAPI at a fixed input shape: the passes put about 70 more nodes
    on the EP, split into more partitions; the result says so instead of only showing 25 -> 44."""
    from onnxfit.app.flow import run_job
    from onnxfit.app.job import OptimizeJob

    job = OptimizeJob.create(zoo_model("crnn_ddddocr_quantized"), tmp_path / "crnn.onnx", target="nnapi",
                             input_shapes={"input1": (1, 1, 64, 128)}, ort_version="1.32", partitions=True)
    parts = run_job(job).to_dict()["partitions"]
    assert parts["after"]["partitions"] > parts["before"]["partitions"]
    assert parts["after"]["nodes_on_ep"] > parts["before"]["nodes_on_ep"]
    assert parts["why_more"].startswith(f"{parts['after']['nodes_on_ep'] - parts['before']['nodes_on_ep']} more node(s)")


def test_ml_only_classifier_verifies_its_sequence_of_maps(zoo_model):
    """onnxruntime's logreg_iris imports only ai.onnx.ml and answers class scores as a sequence of
    maps (ZipMap): verify compares them row by row on every runtime and passes; partitions counts it."""
    from typer.testing import CliRunner

    from onnxfit.cli import app

    report = onnxfit.verify(zoo_model("logreg_iris"))
    assert report.ok, [c.summary for c in report.checks]
    outputs = {o["name"]: o for o in report.check("parity").details["comparisons"][0]["outputs"]}
    assert outputs["probabilities"]["shape"] == [3, 3] and outputs["probabilities"]["mismatches"] == 0
    result = CliRunner().invoke(app, ["partitions", str(zoo_model("logreg_iris")), "--target", "coreml"])
    assert result.exit_code == 0, result.output
