"""The simplification rules (fold-constants, eliminate-noops, dedupe-nodes, select-to-where,
native-functions): each removes what it says, keeps the interface, and is checked against ONNX
Runtime: bit-exact for exact rules, within the stated tolerance otherwise."""

from __future__ import annotations

import math

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from onnxfit.app.optimize import optimize_model
from onnxfit.optimizer.selection import select_passes
from tests.conftest import assert_same_outputs, make_model, op_count, random_feeds, tensor_info

LEAN = ["fold-constants", "eliminate-noops", "dedupe-nodes", "select-to-where", "native-functions"]


def const(name, value):
    return numpy_helper.from_array(np.asarray(value), name)


def constant_node(out, value):
    return helper.make_node("Constant", [], [out], value=numpy_helper.from_array(np.asarray(value)))


def lean(model, passes=LEAN, target="cpu"):
    return optimize_model(model, target=target, passes=passes)


def nodes(model):
    return sum(op_count(model, op) for op in {n.op_type for n in model.graph.node})


# ------------------------------------------------------------------------------ fold-constants

def test_constant_nodes_become_initializers_and_weight_arithmetic_is_folded_bit_exact():
    w = np.random.default_rng(0).standard_normal((4, 4)).astype(np.float32)
    model = make_model([
        constant_node("scale", np.float32(0.37)),
        helper.make_node("Mul", ["w", "scale"], ["ws"]),
        helper.make_node("Transpose", ["ws"], ["wt"], perm=[1, 0]),
        helper.make_node("MatMul", ["x", "wt"], ["y"]),
    ], [tensor_info("x", [2, 4])], [tensor_info("y", [2, 4])], [const("w", w)])
    result = lean(model, ["fold-constants"])
    assert [n.op_type for n in result.model.graph.node] == ["MatMul"]
    assert_same_outputs(model, result.model, random_feeds(model))


def test_a_small_generator_of_a_huge_tensor_stays_a_generator():
    model = make_model([
        helper.make_node("ConstantOfShape", ["shape"], ["big"], value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0])),
        helper.make_node("Add", ["x", "big"], ["y"]),
    ], [tensor_info("x", [512, 1024])], [tensor_info("y", [512, 1024])], [const("shape", np.array([512, 1024], np.int64))])
    result = lean(model, ["fold-constants"])
    assert op_count(result.model, "ConstantOfShape") == 1
    assert_same_outputs(model, result.model, random_feeds(model))


def test_dequantize_linear_of_constant_weights_is_kept_for_the_qdq_kernels():
    model = make_model([
        helper.make_node("DequantizeLinear", ["wq", "s", "z"], ["w"]),
        helper.make_node("MatMul", ["x", "w"], ["y"]),
    ], [tensor_info("x", [2, 4])], [tensor_info("y", [2, 4])],
        [const("wq", np.arange(16, dtype=np.int8).reshape(4, 4)), const("s", np.float32(0.1)), const("z", np.int8(0))])
    result = lean(model, ["fold-constants"])
    assert op_count(result.model, "DequantizeLinear") == 1


def test_a_constant_graph_output_keeps_its_node():
    model = make_model([constant_node("c", np.float32([1, 2])), helper.make_node("Relu", ["x"], ["y"])],
                       [tensor_info("x", [2])], [tensor_info("y", [2]), tensor_info("c", [2])])
    result = lean(model, ["fold-constants"])
    assert [o.name for o in result.model.graph.output] == ["y", "c"]
    assert_same_outputs(model, result.model, random_feeds(model))


# ------------------------------------------------------------------------------ eliminate-noops

def test_noops_are_removed_bit_exact():
    model = make_model([
        helper.make_node("Identity", ["x"], ["a"]),
        helper.make_node("Cast", ["a"], ["b"], to=TensorProto.FLOAT),
        helper.make_node("Transpose", ["b"], ["c"], perm=[0, 1, 2]),
        helper.make_node("Mul", ["c", "one"], ["d"]),
        helper.make_node("Sub", ["d", "zero"], ["e"]),
        helper.make_node("Dropout", ["e"], ["f"]),
        helper.make_node("Reshape", ["f", "same"], ["g"]),
        helper.make_node("Relu", ["g"], ["y"]),
    ], [tensor_info("x", [2, 3, 4])], [tensor_info("y", [2, 3, 4])],
        [const("one", np.float32(1)), const("zero", np.zeros((1, 4), np.float32)),
         const("same", np.array([2, 3, -1], np.int64))])
    result = lean(model, ["eliminate-noops"])
    assert [n.op_type for n in result.model.graph.node] == ["Relu"]
    assert_same_outputs(model, result.model, random_feeds(model))


def test_a_noop_that_writes_a_graph_output_keeps_the_output_name():
    model = make_model([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Identity", ["r"], ["y"])],
                       [tensor_info("x", [3])], [tensor_info("y", [3])])
    result = lean(model, ["eliminate-noops"])
    assert [n.op_type for n in result.model.graph.node] == ["Relu"]
    assert result.model.graph.node[0].output[0] == "y"
    assert_same_outputs(model, result.model, random_feeds(model))


def test_identity_from_a_graph_input_to_an_output_stays():
    model = make_model([helper.make_node("Identity", ["x"], ["y"])], [tensor_info("x", [3])], [tensor_info("y", [3])])
    result = lean(model, ["eliminate-noops"])
    assert op_count(result.model, "Identity") == 1


def test_broadcasting_neutral_elements_that_widen_the_shape_stay():
    model = make_model([helper.make_node("Mul", ["x", "ones"], ["y"])], [tensor_info("x", [3])],
                       [tensor_info("y", [2, 3])], [const("ones", np.ones((2, 3), np.float32))])
    assert op_count(lean(model, ["eliminate-noops"]).model, "Mul") == 1


# ------------------------------------------------------------------------------ dedupe-nodes

def test_duplicate_nodes_and_constants_are_computed_once_bit_exact():
    model = make_model([
        helper.make_node("Mul", ["x", "s1"], ["a"]),
        helper.make_node("Mul", ["x", "s2"], ["b"]),  # s2 == s1: the same node once constants merge
        helper.make_node("Exp", ["a"], ["ea"]),
        helper.make_node("Exp", ["b"], ["eb"]),
        helper.make_node("Add", ["ea", "eb"], ["y"]),
    ], [tensor_info("x", [4])], [tensor_info("y", [4])],
        [const("s1", np.float32(0.5)), const("s2", np.float32(0.5))])
    result = lean(model, ["dedupe-nodes"])
    assert [n.op_type for n in result.model.graph.node] == ["Mul", "Exp", "Add"]
    assert_same_outputs(model, result.model, random_feeds(model))


def test_duplicates_inside_an_if_branch_are_merged():
    def branch(name):
        return helper.make_graph([helper.make_node("Neg", ["x"], [f"{name}a"]), helper.make_node("Neg", ["x"], [f"{name}b"]),
                                  helper.make_node("Add", [f"{name}a", f"{name}b"], [f"{name}o"])],
                                 name, [], [tensor_info(f"{name}o", [3])])
    model = make_model([helper.make_node("If", ["c"], ["y"], then_branch=branch("t"), else_branch=branch("e"))],
                       [tensor_info("c", [], TensorProto.BOOL), tensor_info("x", [3])], [tensor_info("y", [3])])
    result = lean(model, ["dedupe-nodes"])
    assert op_count(result.model, "Neg") == 2
    for cond in (True, False):
        feeds = {"c": np.array(cond), "x": np.float32([1, -2, 3])}
        assert_same_outputs(model, result.model, feeds)


# ------------------------------------------------------------------------------ select-to-where

def lowered_select(dtype=TensorProto.INT64):
    """tf2onnx's select(c, a, b) on integers: Cast(c) * a + Cast(Not(c)) * b."""
    return make_model([
        helper.make_node("Less", ["f", "zero"], ["c"]),
        helper.make_node("Not", ["c"], ["nc"]),
        helper.make_node("Cast", ["c"], ["ci"], to=dtype),
        helper.make_node("Cast", ["nc"], ["nci"], to=dtype),
        helper.make_node("Mul", ["ci", "a"], ["ta"]),
        helper.make_node("Mul", ["b", "nci"], ["tb"]),
        helper.make_node("Add", ["tb", "ta"], ["y"]),
    ], [tensor_info("f", [2, 5]), tensor_info("a", [2, 5], dtype), tensor_info("b", [1, 5], dtype)],
        [tensor_info("y", [2, 5], dtype)], [const("zero", np.float32(0))])


def test_integer_select_arithmetic_becomes_one_where_bit_exact():
    model = lowered_select()
    result = lean(model, ["select-to-where"])
    assert op_count(result.model, "Where") == 1 and op_count(result.model, "Mul") == 0
    assert op_count(result.model, "Not") == 0 and op_count(result.model, "Cast") == 0
    for seed in range(3):
        assert_same_outputs(model, result.model, random_feeds(model, seed))


def test_a_float_select_stays_because_zero_times_inf_is_nan():
    model = lowered_select(TensorProto.FLOAT)
    assert op_count(lean(model, ["select-to-where"]).model, "Where") == 0


# ------------------------------------------------------------------------------ native-functions

def exp_by_hand(x="x", y="y", degree=7):
    """exp(x) as NPU exports write it: k = floor(x*log2e + 0.5), r = x - k*ln2, 2^k * poly(r)."""
    coeffs = [1 / math.factorial(i) for i in range(degree + 1)]
    nodes = [helper.make_node("Mul", [x, "log2e"], ["t"]), helper.make_node("Add", ["t", "half"], ["t2"]),
             helper.make_node("Floor", ["t2"], ["k"]), helper.make_node("Mul", ["k", "ln2"], ["kl"]),
             helper.make_node("Sub", [x, "kl"], ["r"]), helper.make_node("Pow", ["two", "k"], ["p2"])]
    inits = [const("log2e", np.float32(1 / math.log(2))), const("half", np.float32(0.5)),
             const("ln2", np.float32(math.log(2))), const("two", np.float32(2))]
    acc = f"c{degree}"
    inits.append(const(acc, np.float32(coeffs[degree])))
    for i in range(degree - 1, -1, -1):
        inits.append(const(f"c{i}", np.float32(coeffs[i])))
        nodes += [helper.make_node("Mul", [acc, "r"], [f"m{i}"]), helper.make_node("Add", [f"m{i}", f"c{i}"], [f"a{i}"])]
        acc = f"a{i}"
    nodes.append(helper.make_node("Mul", [acc, "p2"], [y]))
    return nodes, inits


def test_a_hand_written_exp_becomes_exp_within_the_stated_tolerance():
    body, inits = exp_by_hand("x", "e")
    model = make_model([*body, helper.make_node("Relu", ["e"], ["y"])], [tensor_info("x", [2, 8])],
                       [tensor_info("y", [2, 8])], inits)
    result = lean(model, ["native-functions"])
    assert [n.op_type for n in result.model.graph.node] == ["Exp", "Relu"]
    feeds = {"x": np.linspace(-8, 8, 16, dtype=np.float32).reshape(2, 8)}
    assert_same_outputs(model, result.model, feeds, exact=False, atol=1e-6, rtol=1e-5)
    assert "Exp" in " ".join(next(r for r in result.reports if r.name == "native-functions").notes)


def test_a_region_that_is_no_native_function_stays():
    model = make_model([helper.make_node("Floor", ["x"], ["f"]), helper.make_node("Sub", ["x", "f"], ["y"])],
                       [tensor_info("x", [4])], [tensor_info("y", [4])])
    assert op_count(lean(model, ["native-functions"]).model, "Floor") == 1


def test_exact_leaves_out_the_rules_that_change_rounding():
    names = select_passes("cpu", exact=True)
    assert "native-functions" not in names and "fold-batchnorm" not in names
    assert "fold-constants" in names and "dedupe-nodes" in names
    body, inits = exp_by_hand()
    model = make_model(body, [tensor_info("x", [4])], [tensor_info("y", [4])], inits)
    result = optimize_model(model, target="cpu", exact=True)
    assert op_count(result.model, "Floor") == 1


# ------------------------------------------------------------------------------ the rounds

def test_rules_run_to_a_fixpoint_and_report_once_per_rule():
    # Identity hides a duplicate: dedupe merges only after eliminate-noops removed the Identity.
    model = make_model([
        helper.make_node("Identity", ["x"], ["xi"]),
        helper.make_node("Neg", ["x"], ["a"]),
        helper.make_node("Neg", ["xi"], ["b"]),
        helper.make_node("Add", ["a", "b"], ["y"]),
    ], [tensor_info("x", [3])], [tensor_info("y", [3])])
    result = lean(model, ["dedupe-nodes", "eliminate-noops"])
    assert [n.op_type for n in result.model.graph.node] == ["Neg", "Add"]
    assert [r.name for r in result.reports] == ["dedupe-nodes", "eliminate-noops"]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(["Identity", "Neg", "Cast", "MulOne", "Abs", "Transpose"]), min_size=1, max_size=8),
       st.integers(0, 2**16))
def test_exact_rules_are_bit_exact_on_random_chains(ops, seed):
    nodes, inits, last = [], [const("one", np.float32(1))], "x"
    for i, op in enumerate(ops):
        out = f"v{i}"
        if op == "MulOne":
            nodes.append(helper.make_node("Mul", [last, "one"], [out]))
        elif op == "Cast":
            nodes.append(helper.make_node("Cast", [last], [out], to=TensorProto.FLOAT))
        elif op == "Transpose":
            nodes.append(helper.make_node("Transpose", [last], [out], perm=[0, 1]))
        else:
            nodes.append(helper.make_node(op, [last], [out]))
        # every other value is read twice, by the chain and by a duplicate of the next node
        last = out
    nodes.append(helper.make_node("Neg", [last], ["y"]))
    nodes.append(helper.make_node("Neg", [last], ["z"]))
    model = make_model(nodes, [tensor_info("x", [3, 4])], [tensor_info("y", [3, 4]), tensor_info("z", [3, 4])], inits)
    result = optimize_model(model, target="cpu", exact=True)
    assert_same_outputs(model, result.model, random_feeds(model, seed))
    assert nodes_of(result.model) <= len(nodes)


def nodes_of(model):
    return len(model.graph.node)


@pytest.mark.parametrize("target", ["cpu", "cuda", "coreml", "nnapi"])
def test_every_target_runs_the_simplification_rules(target):
    names = select_passes(target)
    assert all(rule in names for rule in LEAN)


# ------------------------------------------------------------------------------ chains

def test_reshape_squeeze_unsqueeze_chains_become_one_reshape_bit_exact():
    model = make_model([
        helper.make_node("Reshape", ["x", "s1"], ["a"]),
        helper.make_node("Unsqueeze", ["a", "ax"], ["b"]),
        helper.make_node("Squeeze", ["b", "ax"], ["c"]),
        helper.make_node("Reshape", ["c", "s2"], ["y"]),
    ], [tensor_info("x", [2, 3, 4])], [tensor_info("y", [4, 6])],
        [const("s1", np.array([6, 4], np.int64)), const("ax", np.array([0], np.int64)),
         const("s2", np.array([4, -1], np.int64))])
    result = lean(model, ["reshape-chains"])
    assert [n.op_type for n in result.model.graph.node] == ["Reshape"]
    assert_same_outputs(model, result.model, random_feeds(model))


@pytest.mark.parametrize("last", ["Reshape", "Squeeze"])
def test_an_elementwise_op_between_reshapes_runs_on_the_first_input_bit_exact(last):
    # tf2onnx's time-distributed activation, and dense-conv-to-gemm's Gemm -> Reshape -> Clip -> Reshape.
    tail = (helper.make_node("Reshape", ["c", "s2"], ["y"]) if last == "Reshape"
            else helper.make_node("Squeeze", ["c", "ax"], ["y"]))
    model = make_model([
        helper.make_node("Reshape", ["x", "s1"], ["a"]),
        helper.make_node("Clip", ["a", "lo", "hi"], ["c"]),
        tail,
    ], [tensor_info("x", [6, 4])], [tensor_info("y", [2, 3, 4])],
        [const("s1", np.array([1, 2, 3, 4], np.int64)), const("s2", np.array([2, 3, 4], np.int64)),
         const("ax", np.array([0], np.int64)), const("lo", np.array(-0.5, np.float32)),
         const("hi", np.array(0.5, np.float32))])
    result = lean(model, ["reshape-chains"])
    assert [n.op_type for n in result.model.graph.node] == ["Clip", "Reshape"]
    assert result.model.graph.node[0].input[0] == "x"
    assert_same_outputs(model, result.model, random_feeds(model))


@pytest.mark.parametrize("case", ["bound is computed", "op read twice", "binary op"])
def test_an_op_between_reshapes_that_is_not_alone_on_each_element_keeps_its_chain(case):
    inputs = ["a", "lo", "hi"]
    inits = [const("s1", np.array([1, 2, 3, 4], np.int64)), const("s2", np.array([2, 3, 4], np.int64)),
             const("lo", np.array(-0.5, np.float32)), const("hi", np.array(0.5, np.float32))]
    extra, outputs = [], [tensor_info("y", [2, 3, 4])]
    op = "Clip"
    if case == "bound is computed":
        extra = [helper.make_node("Neg", ["hi"], ["lo"])]
        del inits[2]
    elif case == "op read twice":
        outputs.append(tensor_info("c", [1, 2, 3, 4]))
    else:
        op, inputs = "Add", ["a", "a"]
    model = make_model([*extra, helper.make_node("Reshape", ["x", "s1"], ["a"]), helper.make_node(op, inputs, ["c"]),
                        helper.make_node("Reshape", ["c", "s2"], ["y"])], [tensor_info("x", [6, 4])], outputs, inits)
    result = lean(model, ["reshape-chains"])
    assert op_count(result.model, "Reshape") == 2
    assert_same_outputs(model, result.model, random_feeds(model))


def test_a_reshape_that_copies_a_dim_with_zero_keeps_its_chain():
    model = make_model([
        helper.make_node("Reshape", ["x", "s1"], ["a"]),
        helper.make_node("Reshape", ["a", "s2"], ["y"]),
    ], [tensor_info("x", [2, 12])], [tensor_info("y", [3, 8])],
        [const("s1", np.array([3, 8], np.int64)), const("s2", np.array([0, -1], np.int64))])
    assert op_count(lean(model, ["reshape-chains"]).model, "Reshape") == 2


def test_transpose_pairs_compose_or_cancel_bit_exact():
    model = make_model([
        helper.make_node("Transpose", ["x"], ["a"], perm=[0, 2, 3, 1]),
        helper.make_node("Transpose", ["a"], ["b"], perm=[0, 3, 1, 2]),  # cancels the first
        helper.make_node("Relu", ["b"], ["r"]),
        helper.make_node("Transpose", ["r"], ["c"], perm=[1, 0, 2, 3]),
        helper.make_node("Transpose", ["c"], ["y"], perm=[0, 1, 3, 2]),
    ], [tensor_info("x", [2, 3, 4, 5])], [tensor_info("y", [3, 2, 5, 4])])
    result = lean(model, ["transpose-chains"])
    assert [n.op_type for n in result.model.graph.node] == ["Relu", "Transpose"]
    assert_same_outputs(model, result.model, random_feeds(model))


# ------------------------------------------------------------------------------ folds into weights

def test_per_channel_mul_and_add_after_conv_fold_into_its_weights_within_1e5():
    rng = np.random.default_rng(1)
    model = make_model([
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Mul", ["c", "scale"], ["m"]),
        helper.make_node("Add", ["shift", "m"], ["y"]),
    ], [tensor_info("x", [1, 3, 8, 8])], [tensor_info("y", [1, 4, 8, 8])],
        [const("w", rng.standard_normal((4, 3, 3, 3)).astype(np.float32)),
         const("scale", rng.standard_normal((4, 1, 1)).astype(np.float32)),
         const("shift", rng.standard_normal((1, 4, 1, 1)).astype(np.float32))])
    result = lean(model, ["fold-into-conv"])
    assert [n.op_type for n in result.model.graph.node] == ["Conv"]
    assert result.model.graph.node[0].output[0] == "y"
    assert_same_outputs(model, result.model, random_feeds(model), exact=False)


def test_a_mul_across_spatial_positions_is_not_folded():
    model = make_model([
        helper.make_node("Conv", ["x", "w"], ["c"]),
        helper.make_node("Mul", ["c", "scale"], ["y"]),
    ], [tensor_info("x", [1, 3, 4, 4])], [tensor_info("y", [1, 4, 4, 4])],
        [const("w", np.ones((4, 3, 1, 1), np.float32)), const("scale", np.ones((1, 4, 4), np.float32))])
    assert op_count(lean(model, ["fold-into-conv"]).model, "Mul") == 1


def test_matmul_with_constant_bias_becomes_gemm_within_1e5():
    rng = np.random.default_rng(2)
    model = make_model([
        helper.make_node("MatMul", ["x", "w"], ["m"]),
        helper.make_node("Add", ["m", "b"], ["y"]),
    ], [tensor_info("x", [5, 4])], [tensor_info("y", [5, 3])],
        [const("w", rng.standard_normal((4, 3)).astype(np.float32)), const("b", rng.standard_normal(3).astype(np.float32))])
    result = lean(model, ["matmul-add-to-gemm"])
    assert [n.op_type for n in result.model.graph.node] == ["Gemm"]
    assert_same_outputs(model, result.model, random_feeds(model), exact=False)


def test_a_batched_matmul_stays_a_matmul():
    model = make_model([
        helper.make_node("MatMul", ["x", "w"], ["m"]),
        helper.make_node("Add", ["m", "b"], ["y"]),
    ], [tensor_info("x", [2, 5, 4])], [tensor_info("y", [2, 5, 3])],
        [const("w", np.ones((4, 3), np.float32)), const("b", np.ones(3, np.float32))])
    assert op_count(lean(model, ["matmul-add-to-gemm"]).model, "Gemm") == 0


def test_constant_operand_chains_combine_their_constants_within_1e6():
    model = make_model([
        helper.make_node("Mul", ["x", "c1"], ["a"]),
        helper.make_node("Mul", ["c2", "a"], ["b"]),
        helper.make_node("Add", ["b", "c3"], ["c"]),
        helper.make_node("Sub", ["c", "c4"], ["y"]),
    ], [tensor_info("x", [2, 4])], [tensor_info("y", [2, 4])],
        [const("c1", np.float32(0.5)), const("c2", np.float32([1, 2, 3, 4])), const("c3", np.float32(0.25)),
         const("c4", np.float32(1.5))])
    result = lean(model, ["constant-chains"])
    assert [n.op_type for n in result.model.graph.node] == ["Mul", "Add"]
    assert_same_outputs(model, result.model, random_feeds(model), exact=False, atol=1e-6, rtol=1e-6)


# ------------------------------------------------------------------------------ floor-to-ceil (CoreML)

def floor_model():
    return make_model([helper.make_node("Floor", ["x"], ["f"]), helper.make_node("Add", ["f", "x"], ["y"])],
                      [tensor_info("x", [1, 8])], [tensor_info("y", [1, 8])])


def test_floor_becomes_negated_ceil_where_coreml_takes_ceil_bit_exact():
    model = floor_model()
    result = optimize_model(model, target="coreml", passes=["floor-to-ceil"], ort_version=(1, 32))
    assert op_count(result.model, "Floor") == 0 and op_count(result.model, "Ceil") == 1
    feeds = {"x": np.array([[-2.5, -1.0, -0.0, 0.0, 0.5, 1.5, np.inf, -np.inf]], np.float32)}
    assert_same_outputs(model, result.model, feeds)
    assert_same_outputs(model, result.model, random_feeds(model))


@pytest.mark.parametrize("target,version", [("coreml", (1, 26)), ("cpu", (1, 32)), ("nnapi", (1, 32))])
def test_floor_stays_where_the_ep_takes_it_or_takes_no_ceil(target, version):
    result = optimize_model(floor_model(), target=target, passes=["floor-to-ceil"], ort_version=version)
    assert op_count(result.model, "Floor") == 1


# ------------------------------------------------------------------------------ more chains

def test_slices_of_slices_on_other_axes_become_one_slice_bit_exact():
    def ints(name, values):
        return const(name, np.array(values, np.int64))
    model = make_model([
        helper.make_node("Slice", ["x", "s0", "e", "a2", "st"], ["rows"]),
        helper.make_node("Slice", ["rows", "s0", "e", "a3", "st"], ["y0"]),
        helper.make_node("Slice", ["rows", "s1", "e", "am1", "st"], ["y1"]),
    ], [tensor_info("x", [1, 3, 8, 8])], [tensor_info("y0", [1, 3, 4, 4]), tensor_info("y1", [1, 3, 4, 4])],
        [ints("s0", [0]), ints("s1", [1]), ints("e", [2**62]), ints("a2", [2]), ints("a3", [3]), ints("am1", [-1]),
         ints("st", [2])])
    result = lean(model, ["slice-chains"])
    assert op_count(result.model, "Slice") == 2
    assert_same_outputs(model, result.model, random_feeds(model))


def test_slices_on_the_same_axis_stay_two():
    model = make_model([
        helper.make_node("Slice", ["x", "s", "e", "a"], ["a1"]),
        helper.make_node("Slice", ["a1", "s", "e", "a"], ["y"]),
    ], [tensor_info("x", [8])], [tensor_info("y", [4])],
        [const("s", np.array([1], np.int64)), const("e", np.array([6], np.int64)), const("a", np.array([0], np.int64))])
    assert op_count(lean(model, ["slice-chains"]).model, "Slice") == 2


def test_a_reshape_to_its_own_leading_dims_gets_a_constant_target_bit_exact():
    # Paddle2ONNX's flatten: Reshape(x, Concat(Cast(Slice(Cast(Shape(x)))), [-1])), batch symbolic
    model = make_model([
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Cast", ["s"], ["s32"], to=TensorProto.INT32),
        helper.make_node("Slice", ["s32", "zero", "one", "zero"], ["n32"]),
        helper.make_node("Cast", ["n32"], ["n"], to=TensorProto.INT64),
        helper.make_node("Concat", ["n", "minus_one"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"]),
    ], [tensor_info("x", ["N", 4, 1, 1])], [tensor_info("y", ["N", 4])],
        [const("zero", np.array([0], np.int64)), const("one", np.array([1], np.int64)),
         const("minus_one", np.array([-1], np.int64))])
    result = lean(model, ["reshape-own-shape"])
    assert [n.op_type for n in result.model.graph.node] == ["Reshape"]
    for batch in (1, 3):
        assert_same_outputs(model, result.model, random_feeds(model, shapes={"x": [batch, 4, 1, 1]}))


@pytest.mark.parametrize("opset", [11, 13])
def test_torch_view_of_its_own_leading_dims_gets_a_constant_target_bit_exact(opset):
    # torch: x.view(x.size(0), x.size(1), -1) = Reshape(x, Concat(Unsqueeze(Gather(Shape(x), i)), ..., -1))
    unsqueeze = (lambda i, o: helper.make_node("Unsqueeze", [i], [o], axes=[0])) if opset < 13 else \
        (lambda i, o: helper.make_node("Unsqueeze", [i, "axis0"], [o]))
    model = make_model([
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "i0"], ["d0"], axis=0),
        helper.make_node("Gather", ["s", "i1"], ["d1"], axis=0),
        unsqueeze("d0", "u0"), unsqueeze("d1", "u1"),
        helper.make_node("Concat", ["u0", "u1", "minus_one"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"]),
    ], [tensor_info("x", ["N", "T", 4, 8])], [tensor_info("y", ["N", "T", 32])],
        [const("i0", np.array(0, np.int64)), const("i1", np.array(1, np.int64)),
         const("axis0", np.array([0], np.int64)), const("minus_one", np.array([-1], np.int64))], opset=opset)
    result = lean(model, ["reshape-own-shape"])
    assert [n.op_type for n in result.model.graph.node] == ["Reshape"]
    for n, t in ((1, 3), (2, 5)):
        assert_same_outputs(model, result.model, random_feeds(model, shapes={"x": [n, t, 4, 8]}))


def test_nested_concats_on_one_axis_become_one_concat_bit_exact():
    # tf.concat in a loop: c2 = Concat(x2, Concat(x1, x0)); axis -1 and 2 are one axis at rank 3
    model = make_model([
        helper.make_node("Concat", ["x1", "x0"], ["c1"], axis=-1),
        helper.make_node("Concat", ["x2", "c1"], ["c2"], axis=2),
        helper.make_node("Concat", ["c2", "w"], ["y"], axis=1),  # another axis: stays
    ], [*(tensor_info(f"x{i}", [1, 2, 3]) for i in range(3)), tensor_info("w", [1, 2, 9])], [tensor_info("y", None)])
    result = lean(model, ["concat-chains"])
    concats = [n for n in result.model.graph.node if n.op_type == "Concat"]
    assert [list(n.input) for n in concats] == [["x2", "x1", "x0"], ["c2", "w"]]
    assert_same_outputs(model, result.model, random_feeds(model))
    # an inner Concat another node reads too stays
    shared = make_model([
        helper.make_node("Concat", ["x1", "x0"], ["c1"], axis=0),
        helper.make_node("Concat", ["x2", "c1"], ["y"], axis=0),
        helper.make_node("Relu", ["c1"], ["z"]),
    ], [tensor_info(f"x{i}", [1, 2]) for i in range(3)], [tensor_info("y", None), tensor_info("z", None)])
    assert op_count(lean(shared, ["concat-chains"]).model, "Concat") == 2


def test_a_reshape_target_known_but_for_one_entry_gets_minus_one_bit_exact():
    # jax2tf (magika): Reshape(h, Cast(Concat(Shape(bytes)[0:1], 512, 256))), h computed from bytes
    model = make_model([
        helper.make_node("Shape", ["bytes"], ["s"]),
        helper.make_node("Cast", ["s"], ["s32"], to=TensorProto.INT32),
        helper.make_node("Slice", ["s32", "zero", "one", "zero"], ["n"]),
        helper.make_node("Concat", ["n", "c8", "c4"], ["t32"], axis=0),
        helper.make_node("Cast", ["t32"], ["target"], to=TensorProto.INT64),
        helper.make_node("Reshape", ["h", "target"], ["y"]),
    ], [tensor_info("bytes", ["N", 32]), tensor_info("h", ["M", 32])], [tensor_info("y", ["N", 8, 4])],
        [const("zero", np.array([0], np.int64)), const("one", np.array([1], np.int64)),
         const("c8", np.array([8], np.int32)), const("c4", np.array([4], np.int32))])
    result = lean(model, ["fold-shapes"])  # fold-shapes rule 3d
    assert [n.op_type for n in result.model.graph.node] == ["Reshape"]
    assert list(numpy_helper.to_array(result.model.graph.initializer[-1])) == [-1, 8, 4]
    for batch in (1, 3):
        assert_same_outputs(model, result.model, random_feeds(model, shapes={"bytes": [batch, 32], "h": [batch, 32]}))
    # Two run-time entries, or one beside a -1: -1 cannot stand for both.
    two = make_model([
        helper.make_node("Shape", ["h"], ["s"]),
        helper.make_node("Slice", ["s", "zero", "one", "zero"], ["n"]),
        helper.make_node("Concat", ["n", "n", "minus_one"], ["target"], axis=0),
        helper.make_node("Reshape", ["h", "target"], ["y"]),
    ], [tensor_info("h", ["M", 32])], [tensor_info("y", None)],
        [const("zero", np.array([0], np.int64)), const("one", np.array([1], np.int64)),
         const("minus_one", np.array([-1], np.int64))])
    assert op_count(lean(two, ["fold-shapes"]).model, "Shape") == 1


def test_a_reshape_that_moves_a_dim_of_its_shape_keeps_its_shape_math():
    model = make_model([
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Slice", ["s", "one", "two", "zero"], ["c"]),
        helper.make_node("Concat", ["c", "minus_one"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"]),
    ], [tensor_info("x", ["N", 4])], [tensor_info("y", [4, "M"])],
        [const("zero", np.array([0], np.int64)), const("one", np.array([1], np.int64)),
         const("two", np.array([2], np.int64)), const("minus_one", np.array([-1], np.int64))])
    assert op_count(lean(model, ["reshape-own-shape"]).model, "Shape") == 1


def test_a_transpose_that_moves_only_unit_dims_becomes_a_reshape_bit_exact():
    model = make_model([helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0, 2]),
                        helper.make_node("Relu", ["t"], ["y"])],
                       [tensor_info("x", [1, 5, 16])], [tensor_info("y", [5, 1, 16])])
    result = lean(model, ["transpose-to-reshape"])
    assert op_count(result.model, "Transpose") == 0 and op_count(result.model, "Reshape") == 1
    assert_same_outputs(model, result.model, random_feeds(model))


def test_a_transpose_that_moves_data_stays():
    model = make_model([helper.make_node("Transpose", ["x"], ["y"], perm=[0, 2, 1])],
                       [tensor_info("x", [1, 5, 16])], [tensor_info("y", [1, 16, 5])])
    assert op_count(lean(model, ["transpose-to-reshape"]).model, "Transpose") == 1


# ------------------------------------------------------------------------------ ops CoreML lacks

def test_sum_becomes_adds_in_input_order_where_coreml_takes_add_bit_exact():
    model = make_model([helper.make_node("Sum", ["a", "b", "c"], ["y"])],
                       [tensor_info("a", [1, 4]), tensor_info("b", [1, 4]), tensor_info("c", [1, 4])],
                       [tensor_info("y", [1, 4])])
    result = optimize_model(model, target="coreml", passes=["sum-to-add"], ort_version=(1, 32))
    assert op_count(result.model, "Sum") == 0 and op_count(result.model, "Add") == 2
    for seed in range(3):
        assert_same_outputs(model, result.model, random_feeds(model, seed))
    assert op_count(optimize_model(model, target="cpu", passes=["sum-to-add"], ort_version=(1, 32)).model, "Sum") == 1


def test_neg_becomes_mul_by_minus_one_where_coreml_takes_mul_bit_exact():
    model = make_model([helper.make_node("Neg", ["x"], ["y"])], [tensor_info("x", [1, 6])], [tensor_info("y", [1, 6])])
    result = optimize_model(model, target="coreml", passes=["neg-to-mul"], ort_version=(1, 32))
    assert [n.op_type for n in result.model.graph.node] == ["Mul"]
    assert_same_outputs(model, result.model, {"x": np.array([[-1.5, -0.0, 0.0, 2.0, np.inf, -np.inf]], np.float32)})


def test_with_no_ort_version_a_replacement_must_hold_for_the_oldest_release():
    sums = make_model([helper.make_node("Sum", ["a", "b"], ["y"])], [tensor_info("a", [1, 4]), tensor_info("b", [1, 4])],
                      [tensor_info("y", [1, 4])])
    assert op_count(optimize_model(sums, target="coreml", passes=["sum-to-add"]).model, "Add") == 1
    # Ceil only from ORT 1.27 on: for any release the Floor stays.
    assert op_count(optimize_model(floor_model(), target="coreml", passes=["floor-to-ceil"]).model, "Floor") == 1


def test_neg_of_a_value_without_a_declared_dtype_takes_the_inferred_one():
    model = make_model([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Neg", ["r"], ["y"])],
                       [tensor_info("x", [1, 6])], [tensor_info("y", [1, 6])])
    result = optimize_model(model, target="coreml", passes=["neg-to-mul"], ort_version=(1, 32))
    assert [n.op_type for n in result.model.graph.node] == ["Relu", "Mul"]
    assert_same_outputs(model, result.model, random_feeds(model))


@pytest.mark.parametrize("target", ["cpu", "coreml"])
def test_types_numpy_lacks_pass_through_every_rule(target):
    # bfloat16 values and constants: graph-surgeon gives their dtype as an onnx enum
    model = make_model([
        helper.make_node("Cast", ["x"], ["b"], to=TensorProto.BFLOAT16),
        helper.make_node("Identity", ["b"], ["i"]),
        helper.make_node("Cast", ["i"], ["y"], to=TensorProto.FLOAT),
    ], [tensor_info("x", [2, 3])], [tensor_info("y", [2, 3])])
    result = optimize_model(model, target=target)
    assert op_count(result.model, "Identity") == 0
    assert_same_outputs(model, result.model, random_feeds(model))
    # ONNX Runtime's CPU EP has no bfloat16 Mul: the rules must still read such a graph
    with_mul = make_model([
        helper.make_node("Cast", ["x"], ["b"], to=TensorProto.BFLOAT16),
        helper.make_node("Mul", ["b", "one"], ["m"]),
        helper.make_node("Mul", ["m", "one"], ["m2"]),
        helper.make_node("Cast", ["m2"], ["y"], to=TensorProto.FLOAT),
    ], [tensor_info("x", [2, 3])], [tensor_info("y", [2, 3])], [helper.make_tensor("one", TensorProto.BFLOAT16, [], [1.0])])
    assert op_count(optimize_model(with_mul, target=target).model, "Cast") == 2


def generated_conv_weights(shape=(128, 64, 3, 3)):
    """ONNX's "light" test models: each Conv weight a ConstantOfShape of one value (over the
    256 KiB cap), the same generator twice for two Convs on one input."""
    fill = helper.make_tensor("v", TensorProto.FLOAT, [1], [0.01])
    return make_model([
        helper.make_node("ConstantOfShape", ["shape"], ["w1"], value=fill),
        helper.make_node("ConstantOfShape", ["shape"], ["w2"], value=fill),
        helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["x", "w2"], ["b"], pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["a", "b"], ["y"]),
    ], [tensor_info("x", [1, shape[1], 8, 8])], [tensor_info("y", [1, shape[0], 8, 8])],
        [const("shape", np.array(shape, np.int64))])


def test_generated_conv_weights_over_the_cap_are_folded_and_equal_convs_merge_bit_exact():
    model = generated_conv_weights()
    result = lean(model, ["fold-constants", "dedupe-nodes"])
    assert [n.op_type for n in result.model.graph.node] == ["Conv", "Add"]
    assert_same_outputs(model, result.model, random_feeds(model))


def test_a_generated_tensor_read_as_weights_and_as_data_stays_a_generator():
    model = generated_conv_weights()
    model.graph.node.append(helper.make_node("Add", ["w1", "d"], ["s"]))
    model.graph.input.append(tensor_info("d", [128, 64, 3, 3]))
    model.graph.output.append(tensor_info("s", [128, 64, 3, 3]))
    result = lean(model, ["fold-constants"])
    assert op_count(result.model, "ConstantOfShape") == 1
    assert_same_outputs(model, result.model, random_feeds(model))
