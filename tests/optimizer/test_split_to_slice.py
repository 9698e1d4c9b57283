import numpy as np
import onnx
import onnx_graphsurgeon as gs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from onnxfit.optimizer import PassContext, get_passes, run_passes
from onnxfit.optimizer.passes.split_to_slice import Skip, SplitPlan, decode_split
from tests.conftest import assert_same_outputs, make_model, op_count, random_feeds, run_ort, tensor_info


def _split_model(shape, axis, opset, n, sizes=None, sizes_as="attribute", num_outputs=None, outputs=None):
    """x -> Split -> every output is a graph output (names y0..y{n-1} unless ``outputs`` is given)."""
    outputs = outputs or [f"y{i}" for i in range(n)]
    nodes, inits, inputs = [], [], ["x"]
    attrs = {"axis": axis}
    if num_outputs is not None:
        attrs["num_outputs"] = num_outputs
    if sizes is not None and sizes_as == "attribute":
        attrs["split"] = list(sizes)
    elif sizes is not None and sizes_as == "initializer":
        inits.append(helper.make_tensor("sizes", TensorProto.INT64, [len(sizes)], list(sizes)))
        inputs.append("sizes")
    elif sizes is not None and sizes_as == "constant-node":
        nodes.append(helper.make_node("Constant", [], ["sizes"],
                                      value=helper.make_tensor("v", TensorProto.INT64, [len(sizes)], list(sizes))))
        inputs.append("sizes")
    nodes.append(helper.make_node("Split", inputs, outputs, name="split", **attrs))
    # Symbolic output dims: the checker wants a shape, and ORT checks the produced one anyway.
    graph_outputs = [tensor_info(o, [f"{o}_d{j}" for j in range(len(shape))]) for o in outputs if o]
    return make_model(nodes, [tensor_info("x", list(shape))], graph_outputs, inits, opset=opset)


def _run(model, opset):
    return run_passes(model, get_passes(["split-to-slice"]), PassContext(opset=opset))


def _assert_rewritten_bit_exact(model, opset, n_slices):
    result = _run(model, opset)
    rewritten = result.model
    onnx.checker.check_model(rewritten)
    assert op_count(rewritten, "Split") == 0
    assert op_count(rewritten, "Slice") == n_slices
    assert result.reports[0].skipped == []
    assert_same_outputs(model, rewritten, random_feeds(model), exact=True)
    return result


@pytest.mark.parametrize("axis", [0, 1, 2, -1, -3])
def test_split_attribute_sizes_at_opset_11_is_bit_exact(axis):
    shape = [6, 6, 6]
    model = _split_model(shape, axis, 11, 3, sizes=[1, 2, 3], sizes_as="attribute")
    result = _assert_rewritten_bit_exact(model, 11, 3)
    assert result.reports[0].rewritten == 1 and result.reports[0].added == 3 and result.reports[0].removed == 1


@pytest.mark.parametrize("opset", [13, 17])
@pytest.mark.parametrize("sizes_as", ["initializer", "constant-node"])
@pytest.mark.parametrize("axis", [1, -1])
def test_split_input_sizes_at_opset_13_and_17_are_bit_exact(opset, sizes_as, axis):
    model = _split_model([2, 7, 7], axis, opset, 3, sizes=[4, 0, 3], sizes_as=sizes_as)
    _assert_rewritten_bit_exact(model, opset, 3)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_split_into_one_to_five_outputs_is_bit_exact(n):
    sizes = list(range(1, n + 1))
    model = _split_model([3, sum(sizes)], 1, 13, n, sizes=sizes, sizes_as="initializer")
    _assert_rewritten_bit_exact(model, 13, n)


@pytest.mark.parametrize("opset", [11, 13])
def test_equal_split_without_sizes_uses_the_axis_length(opset):
    model = _split_model([1, 8, 3, 3], 1, opset, 4)
    _assert_rewritten_bit_exact(model, opset, 4)


def test_equal_split_with_num_outputs_at_opset_18_is_bit_exact():
    model = _split_model([1, 8, 3], -2, 18, 2, num_outputs=2)
    _assert_rewritten_bit_exact(model, 18, 2)


@pytest.mark.parametrize("length, n, expected", [(7, 3, (3, 3, 1)), (2, 3, (1, 1, 0)), (6, 4, (2, 2, 2, 0)), (10, 4, (3, 3, 3, 1))])
def test_num_outputs_uneven_last_chunk_is_smaller_like_onnx_runtime(length, n, expected):
    model = _split_model([2, length], 1, 18, n, num_outputs=n)
    node = gs.import_onnx(model).nodes[0]
    assert decode_split(node, 18) == SplitPlan(axis=1, sizes=expected)
    _assert_rewritten_bit_exact(model, 18, n)


def test_num_outputs_with_negative_last_chunk_is_skipped_as_onnx_runtime_rejects_it():
    # ceil(5 / 4) = 2 per chunk leaves -1 for the last: ORT fails at run time, so do not rewrite.
    model = _split_model([5], 0, 18, 4, num_outputs=4)
    result = _run(model, 18)
    assert not result.changed
    assert "negative last chunk" in result.reports[0].skipped[0]


def test_split_sizes_folded_from_a_concat_of_constants_are_used():
    nodes = [
        helper.make_node("Constant", [], ["a"], value=helper.make_tensor("va", TensorProto.INT64, [1], [2])),
        helper.make_node("Constant", [], ["b"], value=helper.make_tensor("vb", TensorProto.INT64, [1], [6])),
        helper.make_node("Concat", ["a", "b"], ["sizes"], axis=0),
        helper.make_node("Split", ["x", "sizes"], ["y0", "y1"], axis=1),
    ]
    model = make_model(nodes, [tensor_info("x", [2, 8])], [tensor_info("y0", [2, 2]), tensor_info("y1", [2, 6])], opset=13)
    _assert_rewritten_bit_exact(model, 13, 2)


def test_split_sizes_computed_at_run_time_are_left_alone_and_reported():
    nodes = [helper.make_node("Split", ["x", "sizes"], ["y0", "y1"], axis=0, name="sft_split")]
    model = make_model(nodes, [tensor_info("x", [4, 2]), tensor_info("sizes", [2], TensorProto.INT64)],
                       [tensor_info("y0", ["a", 2]), tensor_info("y1", ["b", 2])], opset=13)
    result = _run(model, 13)
    assert not result.changed
    assert result.model is model
    assert result.reports[0].skipped == ["Split 'sft_split': split sizes 'sizes' are computed at run time"]


def test_equal_split_on_unknown_axis_length_is_left_alone_and_reported():
    model = _split_model([2, "C"], 1, 13, 2)
    result = _run(model, 13)
    assert not result.changed
    assert "equal split needs the length of axis 1" in result.reports[0].skipped[0]


def test_explicit_sizes_do_not_need_a_known_axis_length():
    model = _split_model(["N", "C"], -1, 13, 2, sizes=[1, 3], sizes_as="initializer")
    result = _run(model, 13)
    assert op_count(result.model, "Split") == 0
    assert_same_outputs(model, result.model, random_feeds(model, shapes={"x": (3, 4)}), exact=True)


def test_sizes_that_do_not_add_up_to_the_axis_length_are_skipped():
    model = _split_model([2, 5], 1, 11, 2, sizes=[2, 2], sizes_as="attribute")
    result = _run(model, 11)
    assert not result.changed
    assert "do not add up to length 5" in result.reports[0].skipped[0]


def test_unused_outputs_empty_name_or_no_consumer_are_fine():
    nodes = [
        helper.make_node("Split", ["x", "sizes"], ["a", "", "c"], axis=1),
        helper.make_node("Relu", ["c"], ["y"]),
        helper.make_node("Split", ["x"], ["p", "q"], axis=0, num_outputs=2),  # nobody reads p or q
    ]
    inits = [helper.make_tensor("sizes", TensorProto.INT64, [3], [1, 2, 3])]
    model = make_model(nodes, [tensor_info("x", [4, 6])], [tensor_info("a", [4, 1]), tensor_info("y", [4, 3])], inits,
                       opset=18)
    result = _run(model, 18)
    onnx.checker.check_model(result.model)
    assert op_count(result.model, "Split") == 0
    assert op_count(result.model, "Slice") == 2  # only a and c are read; cleanup drops the rest
    # ONNX Runtime 1.32 CPU segfaults on a Split with an empty-named output, so the original cannot
    # run there: compare with onnx.reference on the original and with numpy slicing.
    x = random_feeds(model)["x"]
    expected = ReferenceEvaluator(model).run(None, {"x": x})
    actual = run_ort(result.model, {"x": x})
    for e, a, by_hand in zip(expected, actual, [x[:, :1], np.maximum(x[:, 3:], 0)]):
        assert np.array_equal(e, a) and np.array_equal(a, by_hand)


def test_split_inside_if_branch_is_rewritten():
    then_graph = helper.make_graph(
        [helper.make_node("Split", ["x"], ["a", "b"], axis=1, split=[1, 3]),
         helper.make_node("Mul", ["a", "b"], ["t"])], "then", [], [tensor_info("t", [2, 3])])
    else_graph = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [], [tensor_info("e", [2, 4])])
    nodes = [helper.make_node("If", ["cond"], ["y"], then_branch=then_graph, else_branch=else_graph)]
    model = make_model(nodes, [tensor_info("x", [2, 4]), tensor_info("cond", [], TensorProto.BOOL)],
                       [tensor_info("y", ["r", "c"])], opset=11)
    rewritten = _run(model, 11).model
    assert op_count(rewritten, "Split") == 0
    assert op_count(rewritten, "Slice") == 2
    for cond in (True, False):
        feeds = {"x": np.random.default_rng(1).standard_normal((2, 4)).astype(np.float32), "cond": np.array(cond)}
        assert_same_outputs(model, rewritten, feeds, exact=True)


def test_matches_decodes_every_opset_form():
    def node(model):
        return gs.import_onnx(model).nodes[-1]

    assert decode_split(node(_split_model([4, 6], -1, 11, 2, sizes=[2, 4])), 11) == SplitPlan(1, (2, 4))
    assert decode_split(node(_split_model([4, 6], 0, 13, 2, sizes=[1, 3], sizes_as="constant-node")), 13) == \
        SplitPlan(0, (1, 3))
    assert decode_split(node(_split_model([4, 6], 1, 13, 3)), 13) == SplitPlan(1, (2, 2, 2))
    assert decode_split(node(_split_model([4, 7], 1, 18, 2, num_outputs=2)), 18) == SplitPlan(1, (4, 3))
    assert decode_split(node(_split_model([4, 7], 1, 13, 2)), 13) == \
        Skip("length 7 of axis 1 does not split evenly into 2 outputs")
    assert decode_split(node(_split_model([4, "W"], 1, 18, 2, num_outputs=2)), 18) == \
        Skip("num_outputs split needs the length of axis 1, which is not known")


@st.composite
def _split_cases(draw):
    opset = draw(st.integers(11, 18))
    rank = draw(st.integers(1, 4))
    shape = draw(st.lists(st.integers(1, 6), min_size=rank, max_size=rank))
    axis = draw(st.integers(-rank, rank - 1))
    length = shape[axis]
    forms = ["explicit", "equal"] + (["num_outputs"] if opset >= 18 else [])
    form = draw(st.sampled_from(forms))
    if form == "explicit":
        n = draw(st.integers(1, 5))
        # n - 1 cut points anywhere in [0, length]: sizes add up to the length, zeros allowed.
        cuts = sorted(draw(st.lists(st.integers(0, length), min_size=n - 1, max_size=n - 1)))
        sizes = [b - a for a, b in zip([0, *cuts], [*cuts, length])]
        return opset, shape, axis, n, sizes, None
    if form == "equal":
        n = draw(st.sampled_from([d for d in range(1, 6) if length % d == 0]))
        return opset, shape, axis, n, None, (n if opset >= 18 else None)
    n = draw(st.sampled_from([d for d in range(1, 6) if _ceil_div(length, d) * (d - 1) <= length]))
    return opset, shape, axis, n, None, n


def _ceil_div(a, b):
    return -(-a // b)


@settings(max_examples=60, deadline=None)
@given(_split_cases())
def test_property_split_to_slice_is_bit_exact_for_random_splits(case):
    opset, shape, axis, n, sizes, num_outputs = case
    sizes_as = "attribute" if opset < 13 else "initializer"
    model = _split_model(shape, axis, opset, n, sizes=sizes, sizes_as=sizes_as, num_outputs=num_outputs)
    _assert_rewritten_bit_exact(model, opset, n)


# ------------------------------------------- the target EP's release decides what is rewritten


@pytest.mark.parametrize(("version", "slices"), [(None, 2), ((1, 20), 2), ((1, 26), 2), ((1, 27), 0), ((1, 32), 0)])
def test_coreml_takes_opset11_split_from_1_27(version, slices):
    from onnxfit.app.optimize import optimize_model
    from tests.targets.corpus import split11_scalar_gather

    model = split11_scalar_gather()
    result = optimize_model(model, "coreml", passes=["split-to-slice"], ort_version=version)
    assert op_count(result.model, "Slice") == slices
    assert op_count(result.model, "Split") == (1 if slices == 0 else 0)
    assert_same_outputs(model, result.model, random_feeds(model), exact=True)


def test_coreml_1_27_still_rewrites_a_split_it_refuses():
    """Per node: the 1.27 builder needs a static split axis, so sizes on a symbolic axis are still
    rewritten (the sizes are constant, so the Slices are exact)."""
    from onnxfit.app.optimize import optimize_model

    model = _split_model([4, "m"], 1, 11, 2, sizes=(1, 3))
    result = optimize_model(model, "coreml", passes=["split-to-slice"], ort_version=(1, 27))
    assert op_count(result.model, "Slice") == 2
    assert_same_outputs(model, result.model, random_feeds(model, shapes={"x": [4, 4]}), exact=True)
