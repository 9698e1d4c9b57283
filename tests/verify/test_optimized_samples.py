"""End to end: optimized sample models verify against their originals."""

from pathlib import Path

import pytest

from onnxfit import optimize, verify

WEIGHTS = Path(__file__).resolve().parents[2] / "weights"


def test_scrfd_like_after_dynamic_batch_passes_per_frame_against_batch1_original(tmp_path):
    out = tmp_path / "scrfd_batch.onnx"
    result = optimize(WEIGHTS / "scrfd_like.onnx", out, target="cpu", dynamic_batch=True)
    assert any(r.name == "dynamic-batch" and r.changed for r in result.pipeline.reports)
    report = verify(out, reference=WEIGHTS / "scrfd_like.onnx", batch=4)
    assert report.ok, report.to_dict()
    assert {c.name for c in report.checks} >= {"parity", "contamination"}
    assert report.check("contamination").ok


def test_scrfd_like_original_names_the_reshapes_that_block_batching():
    report = verify(WEIGHTS / "scrfd_like.onnx")
    contamination = report.check("contamination")
    assert contamination.ok  # fixed batch 1 passes, with a note
    assert "Reshape" in str(contamination.to_dict() if hasattr(contamination, "to_dict") else contamination.details)


@pytest.mark.parametrize("name", ["inswapper_like", "gfpgan_like", "scrfd_like"])
def test_coreml_optimized_samples_match_originals(tmp_path, name):
    out = tmp_path / f"{name}.onnx"
    optimize(WEIGHTS / f"{name}.onnx", out, target="coreml")
    report = verify(out, reference=WEIGHTS / f"{name}.onnx")
    assert report.ok, report.to_dict()


def _symbolic_hw(source, path):
    """The SCRFD-like sample as real det_10g ships: input [1, 3, h, w]."""
    import onnx

    model = onnx.load(source)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "h", "w"
    for output in model.graph.output:
        output.type.tensor_type.ClearField("shape")
    del model.graph.value_info[:]
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("name", ["inswapper_like", "gfpgan_like", "scrfd_like"])
def test_coreml_partitions_drop_to_one_on_every_sample(tmp_path, name):
    from onnxfit.targets.partitions import count_partitions

    source = WEIGHTS / f"{name}.onnx"
    shapes = None
    if name == "scrfd_like":
        source, shapes = _symbolic_hw(source, tmp_path / "scrfd_hw.onnx"), ["input.1=1x3x640x640"]
    before = count_partitions(source, "coreml", ort_version="1.25")
    out = tmp_path / "out.onnx"
    optimize(source, out, target="coreml", input_shapes=shapes, ort_version=(1, 25))
    after = count_partitions(out, "coreml", ort_version="1.25")
    assert before.partitions > 1 and after.partitions == 1, (before.partitions, after.unsupported)
