"""infer-shapes: shapes past a Reshape with a computed target below opset 14, written as value_info.

onnx's Reshape-5/13 inference gives no output shape when the target is computed, and ONNX Runtime
(which runs the same inference) then knows no rank for anything after it. Every test compares
the rewritten model with the original on ONNX Runtime: only annotations change, so bit-exact.
"""

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import pytest
from onnx import TensorProto, helper

from onnxfit.optimizer import PassContext, get_passes, run_passes
from onnxfit.optimizer.passes.infer_shapes import _fill_dims
from onnxfit.shapes import proto_shape
from onnxfit.targets import get_target
from onnxfit.targets.partitions import estimate_partitions
from onnxfit.versions import installed_ort_version
from tests.conftest import assert_same_outputs, make_model, random_feeds, run_ort, tensor_info


def _const(name, values):
    return helper.make_node("Constant", [], [name], value=helper.make_tensor(name, TensorProto.INT64, [len(values)], values))


def _flatten_head(shape, opset, target="slice"):
    """x -> Relu -> Reshape(Concat(<first two dims of Shape>, [-1])) -> Transpose -> Mul: Paddle2ONNX's
    flatten(2) before a transformer block. ``target`` picks how the two dims are taken."""
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Shape", ["r"], ["s"])]
    if target == "slice":
        nodes += [_const("starts", [0]), _const("ends", [2]), helper.make_node("Slice", ["s", "starts", "ends"], ["dims"])]
    else:  # Gather scalars and Unsqueeze them, as torch exports x.view(x.size(0), x.size(1), -1)
        for i in (0, 1):
            nodes.append(helper.make_node("Constant", [], [f"i{i}"], value=helper.make_tensor(f"i{i}", TensorProto.INT64, [], [i])))
            nodes.append(helper.make_node("Gather", ["s", f"i{i}"], [f"g{i}"], axis=0))
            if opset >= 13:
                nodes += [_const(f"ax{i}", [0]), helper.make_node("Unsqueeze", [f"g{i}", f"ax{i}"], [f"u{i}"])]
            else:
                nodes.append(helper.make_node("Unsqueeze", [f"g{i}"], [f"u{i}"], axes=[0]))
        nodes.append(helper.make_node("Concat", ["u0", "u1"], ["dims"], axis=0))
    nodes += [
        _const("rest", [-1]),
        helper.make_node("Concat", ["dims", "rest"], ["target"], axis=0),
        helper.make_node("Reshape", ["r", "target"], ["flat"], name="flatten"),
        helper.make_node("Transpose", ["flat"], ["t"], perm=[0, 2, 1]),
        helper.make_node("Mul", ["t", "two"], ["y"]),
    ]
    two = helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])
    return make_model(nodes, [tensor_info("x", shape)], [tensor_info("y", None)], [two], opset=opset)


def _run(model, opset):
    return run_passes(model, get_passes(["infer-shapes"]), PassContext(opset=opset))


def _shapes(model):
    return {vi.name: proto_shape(vi) for vi in [*model.graph.value_info, *model.graph.output]}


def _dim_fields(model, name):
    vi = next(v for v in [*model.graph.value_info, *model.graph.output] if v.name == name)
    return [d.WhichOneof("value") for d in vi.type.tensor_type.shape.dim]


@pytest.mark.parametrize("opset,target", [(12, "slice"), (11, "gather"), (13, "gather"), (13, "slice")])
def test_computed_reshape_below_opset_14_gets_rank_and_downstream_shapes(opset, target):
    model = _flatten_head(["N", 8, "H", "W"], opset, target)
    result = _run(model, opset)
    shapes = _shapes(result.model)
    assert shapes["flat"] == ("N", 8, None)
    for name in ("t", "y"):  # onnx names the unknown dim after the Transpose (unk__0): still no size
        assert shapes[name][0] == "N" and not isinstance(shapes[name][1], int) and shapes[name][2] == 8
    assert result.reports[0].rewritten == 3 and "1 Reshape" in result.reports[0].notes[0]
    for feed_shape in ([1, 8, 3, 5], [3, 8, 2, 7]):
        feeds = random_feeds(model, shapes={"x": feed_shape})
        assert_same_outputs(model, result.model, feeds)
        for e, a in zip(run_ort(model, feeds, optimize=True), run_ort(result.model, feeds, optimize=True)):
            assert np.array_equal(e, a)


def test_symbolic_dims_stay_symbolic_and_no_size_is_guessed():
    model = _flatten_head(["N", 8, "H", "W"], 12)
    result = _run(model, 12)
    # N copied from Shape(r)[0] keeps its name; H*W is unknown, neither a number nor a made-up name.
    assert _dim_fields(result.model, "flat") == ["dim_param", "dim_value", None]
    assert [i.type.tensor_type.shape for i in result.model.graph.input] == [i.type.tensor_type.shape
                                                                            for i in model.graph.input]


def test_static_input_computes_the_minus_one():
    model = _flatten_head([2, 8, 4, 5], 12)
    result = _run(model, 12)
    assert _shapes(result.model)["flat"] == (2, 8, 20) and _shapes(result.model)["y"] == (2, 20, 8)
    assert_same_outputs(model, result.model, random_feeds(model))


def test_opset_14_reshape_is_inferred_by_onnx_so_nothing_changes():
    model = _flatten_head(["N", 8, "H", "W"], 14)
    result = _run(model, 14)
    assert not result.changed and result.model is model


def test_failed_inference_leaves_the_graph_as_it_was(monkeypatch):
    # onnx's non-strict inference raises only on what graph-surgeon's import already resolves
    # (an initializer contradicting the graph input of its name) or on a skeleton past protobuf's
    # 2 GB: make it raise here, on the model the other tests rewrite.
    def failing(*args, **kwargs):
        raise onnx.shape_inference.InferenceError("[ShapeInferenceError] (op_type:Reshape): target mismatch")

    graph = gs.import_onnx(_flatten_head(["N", 8, "H", "W"], 12))
    before = gs.export_onnx(graph, do_type_check=False).SerializeToString()
    monkeypatch.setattr(onnx.shape_inference, "infer_shapes", failing)
    report = get_passes(["infer-shapes"])[0].run(graph, PassContext(opset=12))
    assert not report.changed and report.skipped == [
        "onnx shape inference failed ([ShapeInferenceError] (op_type:Reshape): target mismatch); "
        "shapes left as they were"]
    assert gs.export_onnx(graph, do_type_check=False).SerializeToString() == before


def test_known_dims_and_names_win_over_inference():
    assert _fill_dims(["batch", 8, None], ("unk__1", 8, 20)) == ["batch", 8, 20]
    assert _fill_dims([-1, 8, 0], (1, 8, "L")) == [1, 8, "L"]  # Paddle's -1 is no size
    assert _fill_dims([2, 8], (2, 8, 1)) == [2, 8]  # a disagreeing rank is not ours to settle
    assert _fill_dims(None, ("N", None)) == ["N", None]


def test_coreml_estimate_sees_the_written_shapes_and_the_original_stays_truthful():
    model = _flatten_head(["N", 8, "H", "W"], 12)
    version = installed_ort_version()
    before = estimate_partitions(model, "coreml", version)
    # ONNX Runtime knows no rank after the Reshape, so the real EP refuses Transpose and Mul: so
    # must the estimate of the original model.
    assert any("rank unknown" in u.reason for u in before.unsupported)
    after = estimate_partitions(_run(model, 12).model, "coreml", version)
    assert not any("rank unknown" in u.reason for u in after.unsupported)
    assert after.nodes_on_ep > before.nodes_on_ep


def test_ppocr_v4_rec_nodes_reach_the_coreml_ep(zoo_model):
    """PP-OCRv4's recognizer (Paddle2ONNX, opset 12, symbolic batch and width): its transformer
    neck sits after a computed flatten(2), whose outputs ONNX Runtime knows no rank of. With
    infer-shapes they all get one and 'rank unknown' is gone; with symbolic dims the Reshapes stay
    on the CPU (the builder needs static data), which is why no target lists the pass by default."""
    path = zoo_model("ppocr_v4_rec")
    model = onnx.load(path)
    version = installed_ort_version()
    before = estimate_partitions(model, "coreml", version)
    passes = [*get_target("coreml").passes, "infer-shapes"]
    result = run_passes(model, get_passes(passes), PassContext(opset=12, target="coreml"))
    after = estimate_partitions(result.model, "coreml", version)
    assert any("rank unknown" in u.reason for u in before.unsupported)
    assert not any("rank unknown" in u.reason for u in after.unsupported)
    assert after.nodes_on_ep > before.nodes_on_ep
    for shape in ([1, 3, 48, 320], [2, 3, 48, 200]):
        # The coreml list holds fold-batchnorm, which is not bit-exact (its stated tolerance).
        assert_same_outputs(model, result.model, random_feeds(model, shapes={"x": shape}), exact=False)
