"""reflect-pad: Pad(reflect|edge|wrap) -> Slice + Concat, bit-exact against ONNX Runtime CPU.

ONNX Runtime (1.32 here) runs every form tested, wrap included from opset 19, so it is the oracle
throughout; negative pads could not use onnx.reference anyway (its Pad rejects them).
"""

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

from onnxfit.optimizer import PassContext, get_passes, run_passes
from onnxfit.optimizer.passes.reflect_pad import _MAX_ROW_SLICES, Pads, Skip, _matches
from tests.conftest import assert_same_outputs, make_model, op_count, random_feeds, tensor_info


def _pad_node(mode, opset, pads, axes=None, pads_name="pads", name="pad"):
    """A Pad node in the form ``opset`` requires: attribute before 11, inputs from 11."""
    if opset < 11:
        return helper.make_node("Pad", ["x"], ["y"], name=name, mode=mode, pads=pads)
    inputs = ["x", pads_name] + (["", "axes"] if axes is not None else [])
    return helper.make_node("Pad", inputs, ["y"], name=name, mode=mode)


def _padded_shape(shape, pads, axes):
    """The Pad's output shape; symbolic dims stay unnamed."""
    rank, n = len(shape), len(pads) // 2
    out = list(shape)
    for axis, b, e in zip(axes if axes is not None else range(rank), pads[:n], pads[n:]):
        out[axis] = shape[axis] + b + e if isinstance(shape[axis], int) else None
    return out


def _pad_model(shape, pads, mode, opset, axes=None, pads_as="initializer"):
    nodes, inits = [], []
    if opset >= 11:
        if pads_as == "initializer":
            inits.append(helper.make_tensor("pads", TensorProto.INT64, [len(pads)], pads))
        elif pads_as == "constant-node":
            nodes.append(helper.make_node("Constant", [], ["pads"], value=helper.make_tensor(
                "v", TensorProto.INT64, [len(pads)], pads)))
        elif pads_as == "cast-concat":
            # What Paddle/TF exporters write: int32 halves, cast and joined at run time.
            half = len(pads) // 2
            inits += [helper.make_tensor("begin32", TensorProto.INT32, [half], pads[:half]),
                      helper.make_tensor("end32", TensorProto.INT32, [half], pads[half:])]
            nodes += [helper.make_node("Cast", ["begin32"], ["begin64"], to=TensorProto.INT64),
                      helper.make_node("Cast", ["end32"], ["end64"], to=TensorProto.INT64),
                      helper.make_node("Concat", ["begin64", "end64"], ["pads"], axis=0)]
    if axes is not None:
        inits.append(helper.make_tensor("axes", TensorProto.INT64, [len(axes)], axes))
    nodes.append(_pad_node(mode, opset, pads, axes))
    inputs = [tensor_info("x", list(shape))]
    if pads_as == "graph-input":
        inputs.append(tensor_info("pads", [len(pads)], TensorProto.INT64))
    outputs = [tensor_info("y", _padded_shape(shape, pads, axes))]
    return make_model(nodes, inputs, outputs, inits, opset=opset)


def _run(model, opset):
    return run_passes(model, get_passes(["reflect-pad"]), PassContext(opset=opset))


def _assert_rewritten_bit_exact(model, opset, shapes=None, seeds=(0, 1)):
    result = _run(model, opset)
    rewritten = result.model
    onnx.checker.check_model(rewritten)
    assert op_count(rewritten, "Pad") == 0
    assert result.reports[0].rewritten == 1 and not result.reports[0].skipped
    for seed in seeds:
        assert_same_outputs(model, rewritten, random_feeds(model, seed=seed, shapes=shapes), exact=True)
    return rewritten


# --- decoding every opset form, without building graphs -------------------------------------

def _gs_pad(mode, inputs, **attrs):
    return gs.Node("Pad", name="p", attrs={"mode": mode, **attrs}, inputs=inputs, outputs=[gs.Variable("y")])


def _gs_int64(name, values):
    return gs.Constant(name, np.asarray(values, dtype=np.int64))


def test_matches_decodes_pads_attribute_at_opset_10():
    node = _gs_pad("reflect", [gs.Variable("x", shape=(1, 3, 8, 8))], pads=[0, 0, 1, 2, 0, 0, 3, 4])
    assert _matches(node, 10) == Pads("reflect", (0, 1, 2, 3), (0, 0, 1, 2), (0, 0, 3, 4), (1, 3, 8, 8))


def test_matches_decodes_pads_input_at_opset_11_with_symbolic_dims():
    node = _gs_pad("reflect", [gs.Variable("x", shape=("n", 3, "h", "w")), _gs_int64("pads", [0, 0, 2, 2, 0, 0, 2, 2])])
    assert _matches(node, 11) == Pads("reflect", (0, 1, 2, 3), (0, 0, 2, 2), (0, 0, 2, 2), (None, 3, None, None))


def test_matches_normalizes_negative_axes_at_opset_18():
    node = _gs_pad("edge", [gs.Variable("x", shape=(2, 3, 4)), _gs_int64("pads", [1, 2, 3, 4]), gs.Variable(""),
                            _gs_int64("axes", [-1, 0])])
    assert _matches(node, 18) == Pads("edge", (2, 0), (1, 2), (3, 4), (4, 2))


def test_matches_keeps_negative_axes_of_unknown_rank_and_refuses_mixed_signs():
    pads = _gs_int64("pads", [1, 1, 1, 1])
    node = _gs_pad("edge", [gs.Variable("x"), pads, gs.Variable(""), _gs_int64("axes", [-1, -2])])
    assert _matches(node, 18) == Pads("edge", (-1, -2), (1, 1), (1, 1), (None, None))
    mixed = _gs_pad("edge", [gs.Variable("x"), pads, gs.Variable(""), _gs_int64("axes", [-1, 3])])
    assert "mix signs" in _matches(mixed, 18).reason


@pytest.mark.parametrize(("mode", "opset"), [("constant", 11), ("constant", 10)])
def test_matches_leaves_constant_mode_to_other_passes(mode, opset):
    inputs = [gs.Variable("x", shape=(2, 3))] + ([_gs_int64("pads", [1, 1, 1, 1])] if opset >= 11 else [])
    assert _matches(_gs_pad(mode, inputs, **({} if opset >= 11 else {"pads": [1, 1, 1, 1]})), opset) is None


@pytest.mark.parametrize(("node", "opset", "reason"), [
    (_gs_pad("reflect", [gs.Variable("x", shape=(2, 3)), gs.Variable("pads", shape=(4,))]), 11, "run time"),
    (_gs_pad("reflect", [gs.Variable("x", shape=(2, 3)), _gs_int64("pads", [0, 3, 0, 0])]), 11, "pad < size"),
    (_gs_pad("reflect", [gs.Variable("x", shape=(2, 1)), _gs_int64("pads", [0, 0, 0, 1])]), 11, "pad < size"),
    (_gs_pad("reflect", [gs.Variable("x", shape=(2, 5)), _gs_int64("pads", [0, -3, 0, 2])]), 11, "pad < size"),
    (_gs_pad("edge", [gs.Variable("x", shape=(0, 3)), _gs_int64("pads", [1, 0, 0, 0])]), 11, "empty"),
    (_gs_pad("wrap", [gs.Variable("x", shape=(2, "w")), _gs_int64("pads", [0, 2, 0, 0])]), 19, "unknown size"),
    (_gs_pad("wrap", [gs.Variable("x", shape=(2, 3)), _gs_int64("pads", [0, 1, 0, 0])]), 18, "opset >= 19"),
    (_gs_pad("edge", [gs.Variable("x", shape=(2, 3))], pads=[0, 1, 0, 0]), 3, "Concat from opset 4"),
    (_gs_pad("edge", [gs.Variable("x", shape=(2, 3)), _gs_int64("pads", [1, 1])]), 11, "rank-2"),
    (_gs_pad("edge", [gs.Variable("x", shape=(2, 3)), _gs_int64("pads", [1, 1, 1, 1]), gs.Variable(""),
                      _gs_int64("axes", [1, -1])]), 18, "repeat"),
    (_gs_pad("edge", [gs.Variable("x", shape=(2, 3)), _gs_int64("pads", [1, 1]), gs.Variable(""),
                      gs.Variable("axes", shape=(1,))]), 18, "axes are computed"),
])
def test_matches_says_why_it_skips(node, opset, reason):
    match = _matches(node, opset)
    assert isinstance(match, Skip) and reason in match.reason


# --- every opset form, differential on ONNX Runtime ------------------------------------------

@pytest.mark.parametrize("opset", [4, 10])
@pytest.mark.parametrize("mode", ["reflect", "edge"])
def test_reflect_pad_attribute_pads_at_opsets_4_to_10_is_bit_exact(mode, opset):
    model = _pad_model((1, 3, 6, 7), [0, 0, 2, 1, 0, 0, 1, 3], mode, opset)
    _assert_rewritten_bit_exact(model, opset)


@pytest.mark.parametrize("opset", [11, 13, 17])
@pytest.mark.parametrize("mode", ["reflect", "edge"])
def test_reflect_pad_input_pads_is_bit_exact(mode, opset):
    model = _pad_model((1, 3, 6, 7), [0, 0, 3, 1, 0, 0, 1, 2], mode, opset)
    _assert_rewritten_bit_exact(model, opset)


@pytest.mark.parametrize("mode", ["reflect", "edge"])
def test_reflect_pad_axes_input_with_negative_axes_at_opset_18_is_bit_exact(mode):
    model = _pad_model((2, 3, 5, 6), [2, 1, 1, 2], mode, opset=18, axes=[-1, -3])
    _assert_rewritten_bit_exact(model, 18)


@pytest.mark.parametrize("pads", [[0, 0, 1, 2, 0, 0, 2, 1], [0, 1, 5, 9, 0, 2, 4, 11]])
def test_reflect_pad_wrap_at_opset_19_is_bit_exact_also_past_the_axis_size(pads):
    model = _pad_model((1, 3, 4, 5), pads, "wrap", opset=19)
    _assert_rewritten_bit_exact(model, 19)


def test_reflect_pad_wrap_with_axes_at_opset_19_is_bit_exact():
    model = _pad_model((2, 3, 4, 5), [3, 1, 0, 2], "wrap", opset=19, axes=[-2, 1])
    _assert_rewritten_bit_exact(model, 19)


@pytest.mark.parametrize("mode", ["reflect", "edge"])
def test_reflect_pad_asymmetric_pads_on_channel_and_batch_axes_is_bit_exact(mode):
    model = _pad_model((3, 4, 2, 2), [2, 0, 0, 0, 1, 3, 0, 0], mode, opset=13)
    _assert_rewritten_bit_exact(model, 13)


@pytest.mark.parametrize(("shape", "pads"), [((4, 5, 6), [1, 0, 2, 2, 3, 1]),
                                             ((2, 3, 4, 5, 6), [0, 1, 2, 3, 4, 1, 2, 1, 2, 3])])
@pytest.mark.parametrize("mode", ["reflect", "edge", "wrap"])
def test_reflect_pad_3d_and_5d_inputs_are_bit_exact(mode, shape, pads):
    model = _pad_model(shape, pads, mode, opset=19)
    _assert_rewritten_bit_exact(model, 19)


@pytest.mark.parametrize("pads_as", ["constant-node", "cast-concat"])
@pytest.mark.parametrize("mode", ["reflect", "edge"])
def test_reflect_pad_pads_from_constant_node_or_cast_concat_chain_is_bit_exact(mode, pads_as):
    model = _pad_model((1, 2, 5, 5), [0, 0, 2, 1, 0, 0, 1, 2], mode, opset=13, pads_as=pads_as)
    _assert_rewritten_bit_exact(model, 13)


@pytest.mark.parametrize("mode", ["reflect", "edge", "wrap"])
def test_reflect_pad_negative_pads_crop_like_onnx_runtime(mode):
    # ORT crops first and pads the cropped tensor: reflect [-1, 2] on 0..4 gives 1 2 3 4 3 2.
    model = _pad_model((3, 6, 5), [-1, 2, -1, 1, -2, 2], mode, opset=19)
    _assert_rewritten_bit_exact(model, 19)


def test_reflect_pad_crop_only_becomes_one_slice():
    model = _pad_model((3, 6), [0, -2, -1, 0], "reflect", opset=13)
    rewritten = _assert_rewritten_bit_exact(model, 13)
    assert [n.op_type for n in rewritten.graph.node] == ["Slice"]


def test_reflect_pad_all_zero_pads_becomes_identity():
    model = _pad_model((3, 6), [0, 0, 0, 0], "reflect", opset=13)
    rewritten = _assert_rewritten_bit_exact(model, 13)
    assert [n.op_type for n in rewritten.graph.node] == ["Identity"]


@pytest.mark.parametrize("mode", ["reflect", "edge"])
def test_reflect_pad_symbolic_spatial_dims_is_bit_exact_for_several_sizes(mode):
    model = _pad_model(("n", 2, "h", "w"), [0, 0, 3, 2, 0, 0, 1, 3], mode, opset=17)
    rewritten = _run(model, 17).model
    assert op_count(rewritten, "Pad") == 0
    for seed, (n, h, w) in enumerate([(1, 4, 4), (2, 7, 5), (1, 16, 9)]):
        feeds = random_feeds(model, seed=seed, shapes={"x": (n, 2, h, w)})
        assert_same_outputs(model, rewritten, feeds, exact=True)


def _slice_steps(model):
    values = {t.name: onnx.numpy_helper.to_array(t).tolist() for t in model.graph.initializer}
    return [values[n.input[4]] for n in model.graph.node if n.op_type == "Slice" and len(n.input) > 4]


def test_reflect_pad_small_pads_use_one_step_one_slice_per_row():
    model = _pad_model((1, 1, 16, 16), [0, 0, _MAX_ROW_SLICES, 0, 0, 0, 0, 1], "reflect", opset=13)
    rewritten = _assert_rewritten_bit_exact(model, 13)
    assert op_count(rewritten, "Slice") == _MAX_ROW_SLICES + 1
    assert _slice_steps(rewritten) == []


@pytest.mark.parametrize(("begin", "end"), [(10, 11), (15, 15)])
def test_reflect_pad_large_pads_use_one_reversed_slice_per_side(begin, end):
    # (15, 15) on 16 rows reaches row 0 from the end side: the reversed Slice must include it.
    model = _pad_model((1, 1, 16, 16), [0, 0, begin, 0, 0, 0, 0, end], "reflect", opset=13)
    rewritten = _assert_rewritten_bit_exact(model, 13)
    assert op_count(rewritten, "Slice") == 2
    assert _slice_steps(rewritten) == [[-1], [-1]]


def test_reflect_pad_large_pads_before_opset_10_use_one_slice_per_row():
    # Slice-1 has no steps, so reversal is one row per Slice.
    model = _pad_model((1, 1, 16, 16), [0, 0, 0, 6, 0, 0, 0, 5], "reflect", opset=9)
    rewritten = _assert_rewritten_bit_exact(model, 9)
    assert op_count(rewritten, "Slice") == 11


# --- what stays -------------------------------------------------------------------------------

def test_reflect_pad_shared_pads_initializer_stays_for_its_other_user():
    pads = helper.make_tensor("pads", TensorProto.INT64, [4], [1, 2, 1, 2])
    nodes = [_pad_node("reflect", 13, None, name="reflect"),
             helper.make_node("Pad", ["x", "pads"], ["z"], name="zero", mode="constant")]
    model = make_model(nodes, [tensor_info("x", [4, 5])], [tensor_info("y", [6, 9]), tensor_info("z", [6, 9])],
                       [pads], opset=13)
    rewritten = _run(model, 13).model
    assert [t.name for t in rewritten.graph.initializer].count("pads") == 1
    assert [n.name for n in rewritten.graph.node if n.op_type == "Pad"] == ["zero"]
    assert_same_outputs(model, rewritten, random_feeds(model), exact=True)


def test_reflect_pad_constant_mode_is_left_alone_and_not_reported():
    model = _pad_model((2, 3), [1, 1, 1, 1], "constant", opset=13)
    result = _run(model, 13)
    assert not result.changed and result.reports[0].skipped == []


def test_reflect_pad_runtime_pads_are_skipped_and_reported():
    model = _pad_model((2, 3), [1, 1, 1, 1], "reflect", opset=13, pads_as="graph-input")
    result = _run(model, 13)
    assert not result.changed
    assert result.model is model
    assert result.reports[0].skipped == ["pad: pads are computed at run time"]


def test_reflect_pad_pad_not_smaller_than_axis_is_skipped_and_reported():
    model = _pad_model((2, 3), [0, 3, 0, 0], "reflect", opset=13)
    result = _run(model, 13)
    assert not result.changed
    assert "reflect needs pad < size" in result.reports[0].skipped[0]


# --- subgraphs ---------------------------------------------------------------------------------

def test_reflect_pad_inside_if_branch_is_rewritten():
    then_graph = helper.make_graph(
        [helper.make_node("Pad", ["x", "pads_b"], ["p"], mode="reflect")], "then", [], [tensor_info("p", [4, 9])],
        [helper.make_tensor("pads_b", TensorProto.INT64, [4], [1, 2, 1, 2])])
    else_graph = helper.make_graph(
        [helper.make_node("Pad", ["x", "pads_b2"], ["q"], mode="edge")], "else", [], [tensor_info("q", [4, 9])],
        [helper.make_tensor("pads_b2", TensorProto.INT64, [4], [0, 0, 2, 4])])
    nodes = [helper.make_node("If", ["cond"], ["y"], then_branch=then_graph, else_branch=else_graph)]
    model = make_model(nodes, [tensor_info("x", [2, 5]), tensor_info("cond", [], TensorProto.BOOL)],
                       [tensor_info("y", [4, 9])], opset=13)
    result = _run(model, 13)
    assert result.reports[0].rewritten == 2
    assert op_count(result.model, "Pad") == 0
    onnx.checker.check_model(result.model)
    for cond in (True, False):
        feeds = {"x": np.random.default_rng(1).standard_normal((2, 5)).astype(np.float32), "cond": np.array(cond)}
        assert_same_outputs(model, result.model, feeds, exact=True)


# --- property: random ranks, axes, amounts, opsets and modes -----------------------------------

@st.composite
def _pad_cases(draw):
    opset = draw(st.integers(11, 19))
    mode = draw(st.sampled_from(["reflect", "edge"] + (["wrap"] if opset >= 19 else [])))
    rank = draw(st.integers(1, 5))
    shape = draw(st.lists(st.integers(2 if mode == "reflect" else 1, 5), min_size=rank, max_size=rank))
    axes = sorted(draw(st.sets(st.integers(0, rank - 1), min_size=1, max_size=rank)))
    # Symbolic dims exercise the size-relative Slice indices; wrap then repeats at most one row.
    symbolic = draw(st.booleans())

    def amount(size):
        high = {"reflect": size - 1, "edge": 4, "wrap": 1 if symbolic else 2 * size}[mode]
        return draw(st.integers(0, high))

    begin = [amount(shape[a]) for a in axes]
    end = [amount(shape[a]) for a in axes]
    # From opset 18 half the cases name their axes, some negatively; the rest pad every axis.
    if opset >= 18 and draw(st.booleans()):
        axes_input, pads = [a - rank if draw(st.booleans()) else a for a in axes], begin + end
    else:
        axes_input, full_begin, full_end = None, [0] * rank, [0] * rank
        for a, b, e in zip(axes, begin, end):
            full_begin[a], full_end[a] = b, e
        pads = full_begin + full_end
    return shape, symbolic, pads, mode, opset, axes_input


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_pad_cases())
def test_reflect_pad_random_graphs_are_bit_exact(case):
    shape, symbolic, pads, mode, opset, axes = case
    declared = [f"d{i}" for i in range(len(shape))] if symbolic else shape
    model = _pad_model(declared, pads, mode, opset, axes=axes)
    _assert_rewritten_bit_exact(model, opset, shapes={"x": shape}, seeds=(0,))


def test_target_that_runs_reflect_natively_keeps_last_two_axis_reflect_pads():
    """prepare() on onnxruntime >= 1.26 with CoreML: reflect on H/W stays, edge is still rewritten."""
    from onnxfit.app.optimize import optimize_model

    pads = helper.make_tensor("pads", TensorProto.INT64, [8], [0, 0, 1, 1, 0, 0, 1, 1])
    nodes = [helper.make_node("Pad", ["x", "pads"], ["r"], mode="reflect", name="reflect_hw"),
             helper.make_node("Pad", ["r", "pads"], ["y"], mode="edge", name="edge_hw")]
    model = make_model(nodes, [tensor_info("x", [1, 2, 4, 4])], [tensor_info("y", [1, 2, 8, 8])], [pads], opset=17)
    old = optimize_model(model, "coreml", passes=["reflect-pad"], ort_version=(1, 25))
    new = optimize_model(model, "coreml", passes=["reflect-pad"], ort_version=(1, 26))
    assert [n.op_type for n in old.model.graph.node].count("Pad") == 0
    assert [n.attribute[0].s for n in new.model.graph.node if n.op_type == "Pad"] == [b"reflect"]
    assert any("reflect_hw" in note for note in new.reports[0].notes)
    feeds = random_feeds(model)
    assert_same_outputs(model, old.model, feeds)
    assert_same_outputs(model, new.model, feeds)


# ------------------------------------------------------------ pads from a chain of constant ops


def _torch_reflect_pad_nodes():
    """torch's F.pad(reflect) export at opset 17: pads from Constant -> ConstantOfShape/Concat ->
    Reshape -> Slice -> Transpose -> Reshape -> Cast."""
    import io
    import warnings

    import torch
    import torch.nn.functional as F

    class _Pad(torch.nn.Module):
        def forward(self, x):
            return F.pad(x, (2, 1, 1, 3), mode="reflect")

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_Pad(), torch.randn(1, 2, 6, 7), buffer, dynamo=False, opset_version=17,
                          input_names=["x"], output_names=["y"])
    return onnx.load_from_string(buffer.getvalue())


def test_torch_reflect_pad_export_with_constant_op_chain_pads_is_rewritten_bit_exact():
    model = _torch_reflect_pad_nodes()
    assert {"ConstantOfShape", "Transpose", "Slice"} <= {n.op_type for n in model.graph.node}
    result = run_passes(model, get_passes(["reflect-pad"]), PassContext(opset=17))
    onnx.checker.check_model(result.model)
    assert op_count(result.model, "Pad") == 0 and result.reports[0].rewritten == 1
    assert_same_outputs(model, result.model, random_feeds(model), exact=True)


def test_torch_reflect_pad_chain_inside_an_if_branch_is_rewritten_bit_exact():
    exported = _torch_reflect_pad_nodes()
    then_graph = helper.make_graph(list(exported.graph.node), "then", [], [tensor_info("y", None)])
    else_graph = helper.make_graph([helper.make_node("Identity", ["x"], ["e"])], "else", [], [tensor_info("e", None)])
    model = make_model([helper.make_node("If", ["cond"], ["out"], then_branch=then_graph, else_branch=else_graph)],
                       [tensor_info("x", [1, 2, 6, 7]), tensor_info("cond", [], TensorProto.BOOL)],
                       [tensor_info("out", None)], opset=17)
    result = run_passes(model, get_passes(["reflect-pad"]), PassContext(opset=17))
    assert op_count(result.model, "Pad") == 0 and result.reports[0].rewritten == 1
    for cond in (True, False):
        feeds = random_feeds(model)
        feeds["cond"] = np.array(cond)
        assert_same_outputs(model, result.model, feeds, exact=True)


def test_pads_from_the_shape_of_a_constant_are_constant():
    # Older torch exports read the pads Constant's shape: Shape(Constant) -> Gather -> Sub ->
    # ConstantOfShape -> Concat. No graph input reaches it, so the pads are known.
    n = helper.make_node
    nodes = [n("Constant", [], ["p2"], value=helper.make_tensor("pv", TensorProto.INT64, [2], [3, 2])),
             n("Shape", ["p2"], ["ps"]), n("Constant", [], ["four"], value=helper.make_tensor("f", TensorProto.INT64, [1], [4])),
             n("Sub", ["four", "ps"], ["rest"]), n("ConstantOfShape", ["rest"], ["zeros"],
                                                    value=helper.make_tensor("z", TensorProto.INT64, [1], [0])),
             n("Concat", ["zeros", "p2"], ["pads4"], axis=0),  # pads [0, 0, 3, 2]: 3 rows after axis 0, 2 after axis 1
             n("Pad", ["x", "pads4"], ["y"], mode="reflect")]
    model = make_model(nodes, [tensor_info("x", [5, 6])], [tensor_info("y", None)], opset=17)
    result = run_passes(model, get_passes(["reflect-pad"]), PassContext(opset=17))
    assert op_count(result.model, "Pad") == 0 and result.reports[0].rewritten == 1
    assert_same_outputs(model, result.model, random_feeds(model), exact=True)


def test_silero_vad_stft_reflect_pad_is_rewritten_by_reflect_pad_alone(zoo_model):
    from onnxfit.model import load_model
    from onnxfit.app.optimize import optimize_model

    model = load_model(zoo_model("silero_vad_16k_op15"))
    result = optimize_model(model, "coreml", passes=["reflect-pad"])
    assert op_count(result.model, "Pad") == 0 and result.reports[0].rewritten == 1
    feeds = random_feeds(model, shapes={"input": (1, 512), "state": (2, 1, 128)})
    feeds["sr"] = np.array(16000, dtype=np.int64)
    assert_same_outputs(model, result.model, feeds, exact=True)
