"""One value for what describes a model's inputs (ModelInputs) and one typed ONNX Runtime release
(OrtRelease), built once from the CLI or the API and passed through optimize, prepare, session and
verify alike."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

import onnxfit
from onnxfit.app.job import OptimizeJob
from onnxfit.app.prepare import prepare_entry
from onnxfit.cli import app
from onnxfit.errors import OnnxfitError
from onnxfit.model_inputs import ModelInputs
from onnxfit.versions import OrtRelease
from tests.verify.test_real_batch_semantics import STATE_FEEDS, _state_net


def test_cli_strings_and_api_dicts_give_the_same_value():
    strings = ModelInputs.parse(["x=1x3x8x8"], ["state=1", "sr=none"], ["sr=16000"], ["w"])
    dicts = ModelInputs.parse({"x": (1, 3, 8, 8)}, {"state": 1, "sr": None}, {"sr": 16000}, ["w"])
    for value in (strings, dicts):
        assert value.shapes == {"x": (1, 3, 8, 8)}
        assert value.batch_axes == {"state": 1, "sr": None}
        assert value.fixed["sr"].tolist() == 16000
        assert value.keep == ("w",)


@pytest.mark.parametrize("axes", [{"state": -1}, {"state": "1"}, {"state": True}, ["state=x"]])
def test_a_bad_batch_axis_fails_the_same_way_from_the_api_and_the_cli(axes):
    with pytest.raises(OnnxfitError, match="non-negative integer or (none|None)"):
        ModelInputs.parse(batch_axes=axes)


def test_model_inputs_and_the_separate_keywords_are_not_both_taken():
    with pytest.raises(OnnxfitError, match="drop input_shapes"):
        OptimizeJob.create(None, target="cpu", inputs=ModelInputs.parse({"x": (1, 4)}), input_shapes={"x": (2, 4)})


def test_ort_release_is_parsed_once_and_compares_as_a_tuple():
    release = OrtRelease.parse("1.25.1")
    assert release == (1, 25) and release < (1, 26) and str(release) == "1.25"
    assert OrtRelease.parse((1, 25)) == release and OrtRelease.parse(release) is release
    assert OptimizeJob.create(None, target="coreml", ort_version="1.25").ort_version == release
    with pytest.raises(OnnxfitError, match="bad --ort-version 'latest'"):
        OrtRelease.parse("latest")


def test_optimize_verify_passes_the_batch_axes_on(tmp_path):
    """The state's batch dim has no name: verify's frame test needs --batch-axis state=1, which
    optimize had (without it the contamination check does not run)."""
    model = tmp_path / "state.onnx"
    onnx.save(_state_net(None, [2, None, 4]), model)
    result = CliRunner().invoke(app, ["optimize", str(model), "-o", str(tmp_path / "out.onnx"), "--target", "cpu",
                                      "--dynamic-batch", "--batch-axis", "state=1", "--verify", "--no-partitions",
                                      "--json"])
    assert result.exit_code == 0, result.output
    checks = {c["name"]: c for c in json.loads(result.output)["models"][0]["verify"]["checks"]}
    contamination = checks["contamination"]
    assert contamination["ok"] and contamination["ran"], contamination["summary"]
    assert contamination["details"]["batch_axes"] == {"x": 0, "state": 1}


def test_prepare_and_session_take_the_same_value_as_optimize(tmp_path):
    model = tmp_path / "state.onnx"
    onnx.save(_state_net(None, [2, None, 4]), model)
    inputs = ModelInputs.parse(batch_axes=["state=1"])
    entry = prepare_entry(model, target="cpu", dynamic_batch=True, cache_dir=tmp_path / "cache", model_inputs=inputs)
    assert entry.meta["key"]["batch_axes"] == {"state": 1}
    assert prepare_entry(model, target="cpu", dynamic_batch=True, cache_dir=tmp_path / "cache",
                         batch_axes={"state": 1}).hit
    session = onnxfit.session(model, target="cpu", dynamic_batch=True, cache_dir=tmp_path / "cache",
                              model_inputs=inputs)
    assert session.plan.prepared["hit"]
    feeds = {"x": np.ones((3, 4), np.float32), "state": np.zeros((2, 3, 4), np.float32)}
    y, _ = session.run(None, feeds)
    assert y.shape == (3, 4)


def test_verify_batch_axis_is_the_old_spelling_of_batch_axes():
    model = _state_net(None, [2, None, 4])
    with pytest.warns(DeprecationWarning, match="batch_axes"):
        report = onnxfit.verify(model, inputs=STATE_FEEDS, batch_axis=["state=1"])
    assert report.ok
    assert onnxfit.verify(model, inputs=STATE_FEEDS, model_inputs=ModelInputs.parse(batch_axes={"state": 1})).ok
