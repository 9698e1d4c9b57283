"""simplify: onnxsim as a pass. Every result is compared with the original on ONNX Runtime CPU;
onnxsim folds BatchNormalization into Conv weights, so fused models match within float noise
(atol 1e-5, rtol 1e-5), models where it only removes or folds integer/shape math match exactly."""

from __future__ import annotations

import json
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from onnxfit.cli import app
from onnxfit.errors import OnnxfitError
from onnxfit.model import load_model, save_model
from onnxfit.app.optimize import optimize_model
from onnxfit.optimizer.selection import select_passes
from onnxfit.app.prepare import prepare_entry
from onnxfit.optimizer.passes import simplify as simplify_pass
from tests.conftest import assert_same_outputs, make_model, op_count, random_feeds, run_ort, tensor_info

runner = CliRunner()
INSTALL_LINE = "pip install 'onnxfit[simplify]'"


def _f32(name, array):
    return numpy_helper.from_array(np.asarray(array, dtype=np.float32), name)


def _i64(name, values):
    return numpy_helper.from_array(np.asarray(values, dtype=np.int64), name)


def conv_bn_relu(channels=8, batch="N", weight_elements_scale=1) -> onnx.ModelProto:
    """Conv -> BatchNormalization -> Relu -> Identity -> Identity, then times a constant (2 + 2)."""
    rng = np.random.default_rng(1)
    c_in = 3 * weight_elements_scale
    inits = [_f32("W", rng.standard_normal((channels, c_in, 3, 3))), _f32("B", rng.standard_normal(channels)),
             _f32("scale", rng.random(channels) + 0.5), _f32("bias", rng.standard_normal(channels)),
             _f32("mean", rng.standard_normal(channels)), _f32("var", rng.random(channels) + 0.5),
             _f32("two", [2.0])]
    nodes = [
        helper.make_node("Conv", ["x", "W", "B"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("BatchNormalization", ["c", "scale", "bias", "mean", "var"], ["bn"], name="bn"),
        helper.make_node("Relu", ["bn"], ["r"], name="relu"),
        helper.make_node("Identity", ["r"], ["i1"], name="id1"),
        helper.make_node("Identity", ["i1"], ["i2"], name="id2"),
        helper.make_node("Add", ["two", "two"], ["four"], name="const_add"),
        helper.make_node("Mul", ["i2", "four"], ["y"], name="scale_out"),
    ]
    return make_model(nodes, [tensor_info("x", [batch, c_in, 16, 16])], [tensor_info("y", [batch, channels, 16, 16])],
                      inits)


def simplified(model, **kwargs) -> onnx.ModelProto:
    result = optimize_model(model, "cpu", ["simplify"], **kwargs)
    assert result.changed
    return result.model


# ------------------------------------------------------------------------------ built models


def test_conv_bn_relu_fuses_and_matches_within_float_noise():
    model = conv_bn_relu()
    result = optimize_model(model, "cpu", ["simplify"])
    out = result.model
    assert op_count(out, "BatchNormalization") == 0 and op_count(out, "Identity") == 0
    assert op_count(out, "Add") == 0  # the constant 2 + 2 was folded
    report = result.reports[0]
    assert report.name == "simplify" and report.removed >= 4 and report.folded >= 1
    feeds = random_feeds(model, shapes={"x": [3, 3, 16, 16]})
    assert_same_outputs(model, out, feeds, exact=False, atol=1e-5, rtol=1e-5)


def test_constant_subgraph_folds_exactly():
    """Range -> Cast -> Reshape -> Add of constants becomes one initializer; the result is bit-exact."""
    nodes = [
        helper.make_node("Range", ["start", "limit", "delta"], ["r"]),
        helper.make_node("Cast", ["r"], ["rf"], to=TensorProto.FLOAT),
        helper.make_node("Reshape", ["rf", "shape"], ["table"]),
        helper.make_node("Add", ["table", "offset"], ["table2"]),
        helper.make_node("Add", ["x", "table2"], ["y"]),
    ]
    inits = [_i64("start", 0), _i64("limit", 12), _i64("delta", 1), _i64("shape", [3, 4]), _f32("offset", [0.25])]
    model = make_model(nodes, [tensor_info("x", ["N", 3, 4])], [tensor_info("y", ["N", 3, 4])], inits)
    out = simplified(model)
    assert [n.op_type for n in out.graph.node] == ["Add"]
    assert_same_outputs(model, out, random_feeds(model), exact=True)


def test_identity_chains_go_and_output_names_stay():
    """An Identity chain in the middle goes; one that ends in a graph output keeps that name."""
    nodes = [
        helper.make_node("Identity", ["x"], ["a"]),
        helper.make_node("Identity", ["a"], ["b"]),
        helper.make_node("Sigmoid", ["b"], ["s"]),
        helper.make_node("Identity", ["s"], ["out_sigmoid"]),
        helper.make_node("Identity", ["x"], ["out_copy"]),
    ]
    model = make_model(nodes, [tensor_info("x", [2, 5])], [tensor_info("out_sigmoid", [2, 5]),
                                                           tensor_info("out_copy", [2, 5])])
    out = simplified(model)
    assert [o.name for o in out.graph.output] == ["out_sigmoid", "out_copy"]
    assert op_count(out, "Identity") < 4
    assert_same_outputs(model, out, random_feeds(model), exact=True)


def _shape_chain_model() -> onnx.ModelProto:
    """Flatten the last two axes through Shape -> Gather -> Concat -> Reshape (what torch exports)."""
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "i0"], ["n"], axis=0),
        helper.make_node("Gather", ["shape", "i1"], ["c"], axis=0),
        helper.make_node("Concat", ["n", "c", "minus_one"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"]),
    ]
    inits = [_i64("i0", [0]), _i64("i1", [1]), _i64("minus_one", [-1])]
    return make_model(nodes, [tensor_info("x", ["batch", "C", "H", "W"])], [tensor_info("y", ["batch", "C", None])],
                      inits)


def test_shape_chain_folds_at_the_given_input_shape():
    model = _shape_chain_model()
    out = simplified(model, input_shapes={"x": (2, 4, 5, 6)})
    assert op_count(out, "Shape") == 0 and op_count(out, "Gather") == 0
    assert [d.dim_value for d in out.graph.input[0].type.tensor_type.shape.dim] == [2, 4, 5, 6]
    feeds = random_feeds(model, shapes={"x": [2, 4, 5, 6]})
    assert_same_outputs(model, out, feeds, exact=True)


def test_shape_chain_stays_while_shapes_are_symbolic():
    """No fixed shape, nothing to fold: the run-time shape math is what makes the model dynamic."""
    model = _shape_chain_model()
    result = optimize_model(model, "cpu", ["simplify"])
    out = result.model
    assert op_count(out, "Shape") == 1
    for shape in ([1, 2, 3, 4], [3, 5, 2, 2]):
        feeds = random_feeds(model, shapes={"x": shape})
        assert_same_outputs(model, out, feeds, exact=True)


def test_dynamic_batch_stays_symbolic_with_fixed_input_shape():
    """dynamic-batch then simplify with --input-shape: the batch stays symbolic (onnxsim does not
    fold it back into the Reshape), the other dims are fixed and their shape math folded."""
    model = _shape_chain_model()
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1  # exported at batch 1
    result = optimize_model(model, "cpu", ["simplify"], input_shapes={"x": (1, 4, 5, 6)}, dynamic_batch=True)
    assert [r.name for r in result.reports][:2] == ["dynamic-batch", "simplify"]
    out = result.model
    dims = out.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [4, 5, 6]
    single = [random_feeds(model, seed=s, shapes={"x": [1, 4, 5, 6]})["x"] for s in range(3)]
    together = run_ort(out, {"x": np.concatenate(single)})[0]
    for k, frame in enumerate(single):
        np.testing.assert_array_equal(together[k:k + 1], run_ort(model, {"x": frame})[0])


def test_input_order_initializer_order_and_metadata_are_kept():
    """What downstream code relies on survives onnxsim: input order, the last initializer (an unused
    one, as inswapper's emap), metadata_props without onnxsim's own entries, IR version, opset."""
    model = conv_bn_relu()
    model.graph.input.insert(0, tensor_info("unused_first", [1]))
    model.graph.initializer.append(_f32("emap", np.ones((4, 4))))
    model.metadata_props.add(key="author", value="me")
    model.ir_version = 7
    out = simplified(model)
    assert [vi.name for vi in out.graph.input] == ["unused_first", "x"]
    assert out.graph.initializer[-1].name == "emap"
    assert [(p.key, p.value) for p in out.metadata_props] == [("author", "me")]
    assert out.ir_version == 7 and [(o.domain, o.version) for o in out.opset_import] == [("", 17)]


def test_ir3_model_lists_initializers_as_inputs_again():
    """IR 3 requires every initializer to be a graph input: the fused weights are listed too."""
    model = conv_bn_relu(batch=2)
    model.ir_version = 3
    model.graph.input.extend(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
                             for t in model.graph.initializer)
    out = simplified(model)
    onnx.checker.check_model(out)
    listed = {vi.name for vi in out.graph.input}
    assert all(t.name in listed for t in out.graph.initializer)
    assert out.graph.input[0].name == "x"
    assert_same_outputs(model, out, random_feeds(model), exact=False, atol=1e-5, rtol=1e-5)


def test_keep_input_default_stays_overridable():
    """A listed initializer kept with --keep-input is not folded: feeding another value still works."""
    nodes = [helper.make_node("Add", ["two", "two"], ["four"]), helper.make_node("Mul", ["gain", "four"], ["g4"]),
             helper.make_node("Mul", ["x", "g4"], ["y"])]
    model = make_model(nodes, [tensor_info("x", [2, 3]), tensor_info("gain", [1])], [tensor_info("y", [2, 3])],
                       [_f32("two", [2.0]), _f32("gain", [0.5])])
    out = optimize_model(model, "cpu", ["simplify"], keep_inputs=["gain"]).model
    assert op_count(out, "Add") == 0
    assert [vi.name for vi in out.graph.input] == ["x", "gain"] and "gain" in {t.name for t in out.graph.initializer}
    x = random_feeds(model)["x"]
    for feeds in ({"x": x}, {"x": x, "gain": np.array([3.0], np.float32)}):
        np.testing.assert_array_equal(run_ort(out, feeds)[0], run_ort(model, feeds)[0])


def test_over_2gb_model_keeps_large_weights_out_of_onnxsim(tmp_path, monkeypatch):
    """A model that does not fit a protobuf goes to onnxsim without its large weights (lowered limit
    here): they are run-time values to onnxsim, so the Conv using one keeps its BatchNormalization,
    the rest is simplified, and the weight comes back as the same initializer, bytes untouched."""
    monkeypatch.setattr(simplify_pass, "TWO_GB", 0)
    model = conv_bn_relu(channels=128, weight_elements_scale=90)  # W: 128*270*9 floats, over 1 MiB: lazy
    path = tmp_path / "big.onnx"
    onnx.save(model, path)
    lazy = load_model(path, lazy_weights=True)
    result = optimize_model(lazy, "cpu", ["simplify"])
    report = result.reports[0]
    assert any("large weights stayed out of onnxsim" in n for n in report.notes)
    out_path = save_model(result.model, tmp_path / "out.onnx")
    out = onnx.load(out_path)
    assert op_count(out, "BatchNormalization") == 1  # its Conv weight was not there to fuse into
    assert op_count(out, "Identity") == 0 and op_count(out, "Add") == 0
    weights = {t.name: numpy_helper.to_array(t) for t in out.graph.initializer}
    np.testing.assert_array_equal(weights["W"], numpy_helper.to_array(model.graph.initializer[0]))
    assert "W" not in {vi.name for vi in out.graph.input}
    feeds = random_feeds(model, shapes={"x": [1, 270, 16, 16]})
    assert_same_outputs(model, out, feeds, exact=True)


def test_select_passes_puts_simplify_after_dynamic_batch_before_ep_passes():
    assert select_passes("coreml", simplify=True)[0] == "simplify"
    names = select_passes("coreml", dynamic_batch=True, simplify=True)
    assert names == ["dynamic-batch", "simplify", *select_passes("coreml")]
    assert select_passes("cpu", passes=["fold-shapes", "simplify"], simplify=True) == ["fold-shapes", "simplify"]


# ------------------------------------------------------------------------------ failures


def test_onnxsim_raising_is_one_line_naming_the_pass(monkeypatch):
    import onnxsim

    def broken(*args, **kwargs):
        raise RuntimeError("No Op registered for Foo with domain_version of 17\n\n==> Context: Bad node spec")

    monkeypatch.setattr(onnxsim, "simplify", broken)
    with pytest.raises(OnnxfitError) as info:
        optimize_model(conv_bn_relu(), "cpu", ["simplify"])
    message = str(info.value)
    assert message.startswith("simplify: onnxsim failed (No Op registered for Foo") and "\n" not in message


def test_onnxsim_rejecting_its_result_is_an_error(monkeypatch):
    import onnxsim

    monkeypatch.setattr(onnxsim, "simplify", lambda model, **kwargs: (model, False))
    with pytest.raises(OnnxfitError, match="onnxsim rejects its own result"):
        optimize_model(conv_bn_relu(), "cpu", ["simplify"])


def _invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError("traceback from onnxfit") from result.exception
    assert "Traceback" not in result.stdout + result.stderr
    return result


def test_cli_onnxsim_failure_exits_2_and_writes_nothing(tmp_path, monkeypatch):
    import onnxsim

    def broken(*args, **kwargs):
        raise RuntimeError("Nodes in a graph must be topologically sorted\nmore detail")

    monkeypatch.setattr(onnxsim, "simplify", broken)
    source = tmp_path / "m.onnx"
    onnx.save(conv_bn_relu(), source)
    out = tmp_path / "out.onnx"
    result = _invoke("optimize", source, "-o", out, "--simplify", "--target", "cpu")
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "simplify: onnxsim failed" in lines[0]
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


@pytest.mark.parametrize("flag", [["--simplify"], ["--passes", "simplify"]])
def test_cli_without_the_extra_exits_2_naming_it(tmp_path, monkeypatch, flag):
    monkeypatch.setitem(sys.modules, "onnxsim", None)  # as if onnxsim were not installed
    source = tmp_path / "m.onnx"
    onnx.save(conv_bn_relu(), source)
    result = _invoke("optimize", source, "-o", tmp_path / "out.onnx", *flag)
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and INSTALL_LINE in lines[0]
    assert not (tmp_path / "out.onnx").exists()


def test_cli_simplify_flag_runs_first_and_verifies(tmp_path):
    model = conv_bn_relu()
    source, out = tmp_path / "m.onnx", tmp_path / "out.onnx"
    onnx.save(model, source)
    result = _invoke("optimize", source, "-o", out, "--simplify", "--target", "coreml", "--verify", "--json",
                     "--no-partitions")
    assert result.exit_code == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)["models"][0]
    assert report["passes"][0]["name"] == "simplify" and report["passes"][0]["removed"] >= 4
    assert report["verify"]["ok"]
    feeds = random_feeds(model, shapes={"x": [2, 3, 16, 16]})
    assert_same_outputs(model, onnx.load(out), feeds, exact=False, atol=1e-5, rtol=1e-5)


def test_cache_key_includes_simplify(tmp_path):
    source = tmp_path / "m.onnx"
    onnx.save(conv_bn_relu(), source)
    plain = prepare_entry(source, "cpu", cache_dir=tmp_path / "cache")
    simple = prepare_entry(source, "cpu", cache_dir=tmp_path / "cache", simplify=True)
    assert plain.key != simple.key
    assert simple.meta["key"]["passes"][0].startswith("simplify@") and "onnxsim" in simple.meta["key"]
    assert simple.rewritten and op_count(onnx.load(simple.path), "BatchNormalization") == 0
    assert prepare_entry(source, "cpu", cache_dir=tmp_path / "cache", simplify=True).hit


# ------------------------------------------------------------------------------ zoo


@pytest.mark.parametrize("name", ["yolov8n_nudenet", "ppocr_v4_det", "centerface", "shufflenet_ir3", "basic_pitch"])
def test_zoo_optimize_simplify_keeps_outputs(name, zoo_model, tmp_path):
    from tests.zoo.manifest import by_name
    from tests.zoo.test_zoo import assert_same, feeds_for

    source, out = zoo_model(name), tmp_path / f"{name}.onnx"
    result = _invoke("optimize", source, "-o", out, "--simplify", "--target", "coreml", "--json", "--no-partitions")
    assert result.exit_code == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)["models"][0]
    assert report["passes"][0]["name"] == "simplify"
    original = onnx.load(source, load_external_data=False)
    rewritten = onnx.load(out)
    assert [vi.name for vi in rewritten.graph.output] == [vi.name for vi in original.graph.output]
    feeds = feeds_for(by_name(name), original)
    assert_same(run_ort(source, feeds), run_ort(out, feeds))


def test_zoo_dynamic_batch_then_simplify_keeps_frames_independent(zoo_model, tmp_path):
    source, out = zoo_model("centerface"), tmp_path / "centerface.onnx"
    result = _invoke("optimize", source, "-o", out, "--dynamic-batch", "--simplify", "--json", "--no-partitions")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert [p["name"] for p in json.loads(result.stdout)["models"][0]["passes"]][:2] == ["dynamic-batch", "simplify"]
    rewritten = onnx.load(out)
    frames = [random_feeds(rewritten, seed=s, shapes={"input.1": [1, 3, 32, 32]}) for s in range(2)]
    name = rewritten.graph.input[0].name
    together = run_ort(out, {name: np.concatenate([f[name] for f in frames])})
    for k, frame in enumerate(frames):
        for batched, alone in zip(together, run_ort(out, frame)):
            np.testing.assert_allclose(batched[k:k + 1], alone, atol=1e-5, rtol=1e-4)


def test_zoo_onnxsim_failure_on_silero_is_one_line_and_no_output(zoo_model, tmp_path):
    """onnxsim itself rejects silero-vad 16k op15 (an If branch reads a value it then calls unsorted):
    the user gets one line naming the pass and no file."""
    out = tmp_path / "silero.onnx"
    result = _invoke("optimize", zoo_model("silero_vad_16k_op15"), "-o", out, "--simplify", "--target", "cpu")
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "simplify: onnxsim failed" in lines[0]
    assert not out.exists() and not list(tmp_path.iterdir())
