import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from onnxfit.optimizer import PassContext, get_passes, run_passes
from tests.conftest import assert_same_outputs, make_model, op_count, random_feeds, tensor_info


def _gather_model(axis, opset, index_as="initializer", data_shape=(2, 5, 4)):
    nodes, inits = [], []
    if index_as == "initializer":
        inits.append(helper.make_tensor("idx", TensorProto.INT64, [], [1]))
    else:
        nodes.append(helper.make_node("Constant", [], ["idx"], value=helper.make_tensor("v", TensorProto.INT64, [], [-1])))
    nodes.append(helper.make_node("Gather", ["x", "idx"], ["y"], axis=axis))
    out_shape = list(data_shape)
    del out_shape[axis]
    return make_model(nodes, [tensor_info("x", list(data_shape))], [tensor_info("y", out_shape)], inits, opset=opset)


def _run(model, opset):
    return run_passes(model, get_passes(["scalar-gather"]), PassContext(opset=opset)).model


@pytest.mark.parametrize("opset", [11, 13, 17])
@pytest.mark.parametrize("axis", [0, 1, 2, -1, -3])
@pytest.mark.parametrize("index_as", ["initializer", "constant-node"])
def test_scalar_gather_becomes_1d_gather_and_squeeze_bit_exact(opset, axis, index_as):
    model = _gather_model(axis, opset, index_as)
    rewritten = _run(model, opset)
    onnx.checker.check_model(rewritten)
    assert op_count(rewritten, "Squeeze") == 1
    gather = next(n for n in rewritten.graph.node if n.op_type == "Gather")
    # Constant indices (initializer or Constant node) become a [1] initializer; no Unsqueeze.
    shapes = {t.name: list(t.dims) for t in rewritten.graph.initializer}
    assert shapes[gather.input[1]] == [1]
    assert op_count(rewritten, "Unsqueeze") == 0 and op_count(rewritten, "Constant") == 0
    assert_same_outputs(model, rewritten, random_feeds(model), exact=True)


@pytest.mark.parametrize("opset", [11, 13, 17])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_dynamic_scalar_index_is_unsqueezed_and_bit_exact_for_every_index(opset, axis):
    data_shape = (2, 5, 4)
    out_shape = list(data_shape)
    del out_shape[axis]
    model = make_model([helper.make_node("Gather", ["x", "i"], ["y"], axis=axis)],
                       [tensor_info("x", list(data_shape)), tensor_info("i", [], TensorProto.INT64)],
                       [tensor_info("y", out_shape)], opset=opset)
    result = run_passes(model, get_passes(["scalar-gather"]), PassContext(opset=opset))
    report = result.reports[0]
    assert (report.changed, report.rewritten, report.added, report.removed) == (True, 1, 2, 0)  # Unsqueeze, Squeeze
    assert op_count(result.model, "Unsqueeze") == 1 and op_count(result.model, "Squeeze") == 1
    x = np.random.default_rng(0).standard_normal(data_shape).astype(np.float32)
    length = data_shape[axis]
    for index in range(-length, length):
        assert_same_outputs(model, result.model, {"x": x, "i": np.array(index, np.int64)}, exact=True)


def test_gather_with_1d_indices_is_left_alone():
    init = helper.make_tensor("idx", TensorProto.INT64, [2], [0, 1])
    model = make_model([helper.make_node("Gather", ["x", "idx"], ["y"], axis=1)],
                       [tensor_info("x", [2, 3])], [tensor_info("y", [2, 2])], [init])
    result = run_passes(model, get_passes(["scalar-gather"]), PassContext(opset=17))
    assert not result.changed
    assert result.model is model


def test_scalar_gather_inside_if_branch_is_rewritten():
    idx = helper.make_tensor("idx", TensorProto.INT64, [], [2])
    branch_nodes = [helper.make_node("Gather", ["x", "idx_b"], ["g"], axis=1)]
    then_graph = helper.make_graph(branch_nodes, "then", [], [tensor_info("g", [2])],
                                   [helper.make_tensor("idx_b", TensorProto.INT64, [], [2])])
    else_graph = helper.make_graph([helper.make_node("ReduceMax", ["x"], ["m"], axes=[1], keepdims=0)], "else", [],
                                   [tensor_info("m", [2])])
    nodes = [helper.make_node("If", ["cond"], ["y"], then_branch=then_graph, else_branch=else_graph)]
    model = make_model(nodes, [tensor_info("x", [2, 4]), tensor_info("cond", [], TensorProto.BOOL)],
                       [tensor_info("y", [2])], [idx], opset=13)
    rewritten = _run(model, 13)
    assert op_count(rewritten, "Squeeze") == 1
    for cond in (True, False):
        feeds = {"x": np.random.default_rng(1).standard_normal((2, 4)).astype(np.float32), "cond": np.array(cond)}
        assert_same_outputs(model, rewritten, feeds)


# ------------------------------------------- the target EP's release decides what is rewritten


def _optimize(model, version, target="coreml"):
    from onnxfit.app.optimize import optimize_model

    return optimize_model(model, target, passes=["scalar-gather", "split-to-slice"], ort_version=version)


@pytest.mark.parametrize("batch", [1, "n"])
def test_coreml_1_27_keeps_scalar_gather_on_static_data_only(batch):
    from tests.targets.corpus import split11_scalar_gather

    model = split11_scalar_gather(batch)
    old, new, unknown = _optimize(model, (1, 26)), _optimize(model, (1, 27)), _optimize(model, None)
    assert op_count(old.model, "Squeeze") == 1 and op_count(unknown.model, "Squeeze") == 1
    # From 1.27 the EP squeezes itself when 'data' is fully static; a symbolic batch still needs the rewrite.
    assert op_count(new.model, "Squeeze") == (0 if batch == 1 else 1)
    feeds = random_feeds(model, shapes={"x": [2, 4, 8]} if batch == "n" else None)
    for result in (old, new, unknown):
        assert_same_outputs(model, result.model, feeds, exact=True)


def test_nnapi_takes_constant_scalar_gather_and_cpu_target_rewrites_everything():
    model = _gather_model(1, 13)
    nnapi = _optimize(model, (1, 26), target="nnapi")
    assert op_count(nnapi.model, "Squeeze") == 0 and "the target EP takes it" in nnapi.reports[0].notes[0]
    # No support profile for the CPU target: nothing is known to be taken, so the pass rewrites.
    assert op_count(_optimize(model, (1, 32), target="cpu").model, "Squeeze") == 1


@pytest.mark.parametrize("installed, rewritten", [((1, 32), [0, 0]), ((1, 26), [1, 1])])
def test_prepare_uses_the_installed_onnxruntime_release(tmp_path, monkeypatch, installed, rewritten):
    """prepare() names the installed onnxruntime: at 1.32 the CoreML EP takes the opset-11 Split
    and the scalar Gather, so both stay; at 1.26 it takes neither, so both are rewritten."""
    from onnxfit.app import job
    from onnxfit.app.prepare import prepare_entry
    from tests.targets.corpus import split11_scalar_gather

    monkeypatch.setattr(job, "installed_ort_version", lambda: installed)
    path = tmp_path / "m.onnx"
    onnx.save(split11_scalar_gather(), path)
    entry = prepare_entry(path, target="coreml", cache_dir=tmp_path / "cache")
    chosen = [r for r in entry.meta["passes"] if r["name"] in ("scalar-gather", "split-to-slice")]
    assert [r["rewritten"] for r in chosen] == rewritten
    assert all(any("target EP takes it" in n for n in r["notes"]) == (not r["rewritten"]) for r in chosen)


def _shape_chain_model(index, dims):
    """``y = Sigmoid(Reshape(r, [-1, Shape(r)[index]]))``, ``r = Relu(x)``: the shape chain of an
    audio encoder's frames, with symbolic dims. ONNX Runtime fuses it into a Reshape of constant
    shape when ``index`` names the dim the Reshape copies (``[-1, 0]`` form), else computes it."""
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Shape", ["r"], ["s"]),
             helper.make_node("Gather", ["s", "i"], ["g"], axis=0), helper.make_node("Unsqueeze", ["g", "ax"], ["u"]),
             helper.make_node("Concat", ["minus_one", "u"], ["shape"], axis=0),
             helper.make_node("Reshape", ["r", "shape"], ["flat"]), helper.make_node("Sigmoid", ["flat"], ["y"])]
    inits = [helper.make_tensor("i", TensorProto.INT64, [], [index]), helper.make_tensor("ax", TensorProto.INT64, [1], [0]),
             helper.make_tensor("minus_one", TensorProto.INT64, [1], [-1])]
    return make_model(nodes, [tensor_info("x", dims)], [tensor_info("y", ["rows", "cols"])], inits)


@pytest.mark.parametrize("target", ["coreml", "nnapi"])
@pytest.mark.parametrize("version", [None, (1, 20), (1, 26), (1, 32)])
@pytest.mark.parametrize("index, dims, folded", [(1, [1, "T", 64], True), (0, ["N", "T", 64], False)],
                         ids=["fused-by-ort", "computed"])
def test_scalar_gather_leaves_shape_math_ort_folds_and_never_worsens_the_estimate(target, version, index, dims,
                                                                                 folded):
    from onnxfit.app.optimize import optimize_model
    from onnxfit.targets.partitions import estimate_partitions

    from onnxfit.targets.presets import get_target

    model = _shape_chain_model(index, dims)
    # reshape-own-shape would write the [-1, 0] form itself, leaving scalar-gather nothing to decide
    passes = [p for p in get_target(target).passes if p != "reshape-own-shape"]
    result = optimize_model(model, target=target, ort_version=version, passes=passes)
    (report,) = [r for r in result.reports if r.name == "scalar-gather"]
    if folded:
        assert report.rewritten == 0 and any("folds at load" in s for s in report.skipped), report
    estimate = version or (1, 20)
    before, after = (estimate_partitions(m, target, estimate) for m in (model, result.model))
    assert after.partitions <= before.partitions, (before.partitions, after.partitions, report)
    feeds = {"x": np.random.default_rng(0).standard_normal([1, 5, 64]).astype(np.float32)}
    assert_same_outputs(model, result.model, feeds, exact=True)
