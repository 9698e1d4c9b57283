"""rnn-step: one time step of LSTM/GRU rewritten into its cell math, checked against ORT's kernels.

Every model is built here with random weights and run on ONNX Runtime CPU before and after; ORT's
LSTM/GRU kernels are the reference. Tolerance (float32): 1e-5 absolute and relative, the rounding
of GEMMs accumulated in another order; states and inputs are O(1), as in trained models.
"""

from __future__ import annotations

import itertools

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from onnxfit.optimizer import PassContext, get_passes, run_passes
from onnxfit.optimizer.passes.rnn_step import RnnPlan, Skip, _matches
from tests.conftest import make_model, op_count, run_ort, tensor_info

ATOL = RTOL = 1e-5
INPUT, HIDDEN, BATCH = 5, 4, 3
GATES = {"LSTM": 4, "GRU": 3}


def _rnn_model(op="LSTM", direction="forward", layout=0, bias=True, state=True, read=("Y", "Y_h", "Y_c"),
               seq=1, batch="batch", peepholes=False, weights_as="initializer", opset=14, unread="named",
               sequence_lens=None, seed=0, **attrs):
    """X (and initial states) as graph inputs -> one LSTM/GRU -> the outputs in ``read``.

    Outputs not read are named but consumed by nothing (``unread="named"``) or left out (``""``).
    ``sequence_lens``: None, ``"ones"`` (an initializer, fixed batch) or ``"input"``.
    """
    rng = np.random.default_rng(seed)
    dirs = 2 if direction == "bidirectional" else 1
    g = GATES[op]

    def weight(name, shape):
        return helper.make_tensor(name, TensorProto.FLOAT, shape, rng.uniform(-0.6, 0.6, shape).astype(np.float32).ravel())

    x_shape = [seq, batch, INPUT] if layout == 0 else [batch, seq, INPUT]
    state_shape = [dirs, batch, HIDDEN] if layout == 0 else [batch, dirs, HIDDEN]
    inputs = [tensor_info("X", x_shape)]
    tensors = [weight("W", [dirs, g * HIDDEN, INPUT]), weight("R", [dirs, g * HIDDEN, HIDDEN])]
    names = ["X", "W", "R", "B" if bias else ""]
    if bias:
        tensors.append(weight("B", [dirs, 2 * g * HIDDEN]))
    if sequence_lens == "ones":
        tensors.append(helper.make_tensor("lens", TensorProto.INT32, [batch], [1] * batch))
    elif sequence_lens == "input":
        inputs.append(tensor_info("lens", [batch], TensorProto.INT32))
    names.append("lens" if sequence_lens else "")
    if state:
        inputs.append(tensor_info("h0", state_shape))
        names.append("h0")
        if op == "LSTM":
            inputs.append(tensor_info("c0", state_shape))
            names.append("c0")
    elif peepholes:
        names += ["", ""]
    if peepholes:
        tensors.append(weight("P", [dirs, 3 * HIDDEN]))
        names += [""] * (7 - len(names)) + ["P"]
    if weights_as == "input":  # computed at run time: sliced and transposed by nodes
        inputs += [helper.make_tensor_value_info(t.name, TensorProto.FLOAT, list(t.dims)) for t in tensors]
        tensors = []
    while names and names[-1] == "":
        names.pop()
    y_shape = [seq, dirs, batch, HIDDEN] if layout == 0 else [batch, seq, dirs, HIDDEN]
    all_outputs = ["Y", "Y_h", "Y_c"][: 3 if op == "LSTM" else 2]
    node_outputs = [o if o in read or unread == "named" else "" for o in all_outputs]
    while node_outputs and node_outputs[-1] == "":
        node_outputs.pop()
    if op == "GRU":
        attrs.setdefault("linear_before_reset", 0)
    if opset >= 14:
        attrs["layout"] = layout
    node = helper.make_node(op, names, node_outputs, name="rnn", hidden_size=HIDDEN, direction=direction, **attrs)
    outputs = [tensor_info(o, y_shape if o == "Y" else state_shape) for o in all_outputs if o in read]
    return make_model([node], inputs, outputs, tensors, opset=opset)


def _feeds(model, batch=BATCH, seq=1, seed=1):
    """Inputs O(1) for every graph input, symbolic dims set to ``batch`` (or ``seq`` on X's seq axis)."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for vi in model.graph.input:
        dims = [d.dim_value if d.HasField("dim_value") else batch for d in vi.type.tensor_type.shape.dim]
        feeds[vi.name] = rng.uniform(-1, 1, dims).astype(np.float32)
    return feeds


def _expected(model, feeds):
    """ORT's LSTM/GRU kernel output. ORT runs layout 0 only: a layout-1 model is run as its layout-0
    twin on inputs with batch and sequence/direction axes swapped, and its outputs swapped back."""
    node = model.graph.node[0]
    if node.op_type not in GATES or all(a.name != "layout" or a.i == 0 for a in node.attribute):
        return run_ort(model, feeds)
    twin = onnx.ModelProto()
    twin.CopyFrom(model)
    for attr in twin.graph.node[0].attribute:
        if attr.name == "layout":
            attr.i = 0
    for vi in [*twin.graph.input, *twin.graph.output]:
        vi.type.tensor_type.ClearField("shape")
    swapped = {k: np.swapaxes(v, 0, 1) if k in ("X", "h0", "c0") else v for k, v in feeds.items()}
    outputs = run_ort(twin, swapped)
    return [np.transpose(o, (2, 0, 1, 3)) if o.ndim == 4 else np.swapaxes(o, 0, 1) for o in outputs]


def _rewrite(model, **ctx):
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    return run_passes(model, get_passes(["rnn-step"]), PassContext(opset=opset, **ctx))


def _assert_rewritten_close(model, feeds=None, **ctx):
    result = _rewrite(model, **ctx)
    report = result.reports[0]
    assert report.skipped == [] and report.rewritten == 1 and report.removed == 1
    rewritten = result.model
    onnx.checker.check_model(rewritten)
    assert op_count(rewritten, "LSTM") + op_count(rewritten, "GRU") == 0
    if [n.op_type for n in model.graph.node] in (["LSTM"], ["GRU"]):  # report counts what outlives cleanup
        assert report.added == len(rewritten.graph.node)
    feeds = feeds or _feeds(model)
    expected, actual = _expected(model, feeds), run_ort(rewritten, feeds)
    assert [o.name for o in rewritten.graph.output] == [o.name for o in model.graph.output]
    for name, e, a in zip([o.name for o in model.graph.output], expected, actual):
        assert e.shape == a.shape, (name, e.shape, a.shape)
        np.testing.assert_allclose(a, e, atol=ATOL, rtol=RTOL, err_msg=name)
    return rewritten


DIRECTIONS = ("forward", "reverse", "bidirectional")
LSTM_READS = (("Y", "Y_h", "Y_c"), ("Y",), ("Y_h",), ("Y_c",), ("Y_h", "Y_c"))


@pytest.mark.parametrize("read", LSTM_READS, ids="+".join)
@pytest.mark.parametrize("direction,layout,bias,state", list(itertools.product(DIRECTIONS, (0, 1), (True, False),
                                                                                  (True, False))))
def test_lstm_one_step_matches_ort_kernel(direction, layout, bias, state, read):
    _assert_rewritten_close(_rnn_model("LSTM", direction, layout, bias, state, read))


@pytest.mark.parametrize("read", (("Y", "Y_h"), ("Y",), ("Y_h",)), ids="+".join)
@pytest.mark.parametrize("linear_before_reset", (0, 1))
@pytest.mark.parametrize("direction,layout,bias,state", list(itertools.product(DIRECTIONS, (0, 1), (True, False),
                                                                                  (True, False))))
def test_gru_one_step_matches_ort_kernel(direction, layout, bias, state, linear_before_reset, read):
    _assert_rewritten_close(_rnn_model("GRU", direction, layout, bias, state, read,
                                       linear_before_reset=linear_before_reset))


@pytest.mark.parametrize("op", ("LSTM", "GRU"))
def test_unread_outputs_left_out_of_the_node_are_not_computed(op):
    model = _rnn_model(op, "bidirectional", read=("Y_h",), unread="")
    rewritten = _assert_rewritten_close(model)
    # Y_h alone: one Concat joins the two directions; nothing builds Y's [1, 2, batch, hidden].
    assert op_count(rewritten, "Concat") == 1


@pytest.mark.parametrize("state", (True, False))
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_lstm_peepholes_match_ort_kernel(direction, state):
    _assert_rewritten_close(_rnn_model("LSTM", direction, state=state, peepholes=True))


@pytest.mark.parametrize("op", ("LSTM", "GRU"))
def test_batch_stays_symbolic_and_runs_at_any_batch(op):
    model = _rnn_model(op, "bidirectional", layout=1)
    rewritten = _assert_rewritten_close(model, _feeds(model, batch=1))
    for batch in (2, 7):
        feeds = _feeds(model, batch=batch, seed=batch)
        for e, a in zip(_expected(model, feeds), run_ort(rewritten, feeds)):
            assert a.shape[0] == batch
            np.testing.assert_allclose(a, e, atol=ATOL, rtol=RTOL)
    assert rewritten.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


@pytest.mark.parametrize("op", ("LSTM", "GRU"))
def test_fixed_batch_above_one(op):
    _assert_rewritten_close(_rnn_model(op, "bidirectional", batch=4))


@pytest.mark.parametrize("op", ("LSTM", "GRU"))
def test_weights_computed_at_run_time_are_sliced_by_nodes(op):
    model = _rnn_model(op, "bidirectional", weights_as="input", peepholes=op == "LSTM")
    rewritten = _assert_rewritten_close(model)
    # Per direction W_d^T and R_d^T; GRU's R in two (z, r apart from h, which reads r * H).
    assert op_count(rewritten, "Transpose") == {"LSTM": 4, "GRU": 6}[op]


@pytest.mark.parametrize("op", ("LSTM", "GRU"))
def test_opset_7_without_layout_uses_attribute_squeeze(op):
    _assert_rewritten_close(_rnn_model(op, "bidirectional", opset=7))


def test_explicit_default_activations_and_constant_unit_sequence_lens_are_rewritten():
    model = _rnn_model("LSTM", "bidirectional", batch=2, sequence_lens="ones",
                       activations=["Sigmoid", "Tanh", "Tanh"] * 2)
    _assert_rewritten_close(model)


def test_symbolic_sequence_fixed_by_input_shapes_is_rewritten():
    model = _rnn_model("GRU", "forward", seq="time", batch="batch")
    result = _rewrite(model, input_shapes={"X": (1, 2, INPUT)})
    assert result.reports[0].rewritten == 1
    feeds = _feeds(model, batch=2)
    feeds["X"] = feeds["X"][:1]
    for e, a in zip(run_ort(model, feeds), run_ort(result.model, feeds)):
        np.testing.assert_allclose(a, e, atol=ATOL, rtol=RTOL)


def test_lstm_inside_an_if_branch_is_rewritten():
    inner = _rnn_model("LSTM", "forward", read=("Y_h",))
    branch = helper.make_graph(list(inner.graph.node), "then", [], list(inner.graph.output),
                               list(inner.graph.initializer))
    other = helper.make_graph([helper.make_node("Identity", ["h0"], ["h_else"])], "else", [],
                              [tensor_info("h_else", [1, "batch", HIDDEN])])
    node = helper.make_node("If", ["cond"], ["out"], then_branch=branch, else_branch=other)
    model = make_model([node], [tensor_info("cond", [], TensorProto.BOOL), *inner.graph.input],
                       [tensor_info("out", [1, "batch", HIDDEN])], opset=14)
    feeds = _feeds(inner)
    feeds["cond"] = np.array(True)
    _assert_rewritten_close(model, feeds)


@pytest.mark.parametrize("op", ("LSTM", "GRU"))
def test_longer_sequence_is_left_alone_with_a_reason(op):
    model = _rnn_model(op, "bidirectional", seq=6)
    result = _rewrite(model)
    assert not result.changed and result.model is model
    reason = f"{op} 'rnn': sequence length 6 (X [6, batch, 5]): only a single time step is rewritten"
    assert result.reports[0].skipped == [reason]


def test_unknown_sequence_length_is_left_alone_with_a_reason():
    result = _rewrite(_rnn_model("LSTM", seq="time"))
    assert not result.changed
    assert "sequence length not known to be 1 (X [time, batch, 5])" in result.reports[0].skipped[0]


@pytest.mark.parametrize("attrs,reason", [
    ({"clip": 3.0}, "clip=3.0 is not rewritten"),
    ({"input_forget": 1}, "input_forget=1 is not rewritten"),
    ({"activations": ["Sigmoid", "Relu", "Tanh"]}, "activations ['sigmoid', 'relu', 'tanh'] are not the defaults"),
    ({"activation_alpha": [0.5]}, "activation_alpha [0.5] is not rewritten"),
])
def test_unsupported_attributes_are_left_alone_with_a_reason(attrs, reason):
    result = _rewrite(_rnn_model("LSTM", **attrs))
    assert not result.changed
    assert len(result.reports[0].skipped) == 1 and reason in result.reports[0].skipped[0]


def test_sequence_lens_computed_at_run_time_is_left_alone():
    result = _rewrite(_rnn_model("GRU", sequence_lens="input"))
    assert not result.changed
    assert "sequence_lens is given" in result.reports[0].skipped[0]


def test_matches_decodes_layout_direction_and_reset_mode():
    import onnx_graphsurgeon as gs

    graph = gs.import_onnx(_rnn_model("GRU", "bidirectional", layout=1, linear_before_reset=1))
    assert _matches(graph.nodes[0], 14, 1) == RnnPlan("GRU", 2, HIDDEN, 1, True)
    assert isinstance(_matches(graph.nodes[0], 14, None), Skip)


# ------------------------------------------------------------------------------------------ zoo


# Fixed by the model (openvino_16k) or by --input-shape (the time-axis exports: one 576-sample chunk).
SILERO_STEPS = {"silero_vad_openvino_16k": {}, "silero_vad_16k_sequence": {"input": (1, 576)},
                "silero_vad_v6_whisper": {"input": (1, 576)}}


@pytest.mark.parametrize("name", SILERO_STEPS)
def test_silero_vad_streaming_lstm_runs_whole_on_coreml(name, zoo_model, tmp_path):
    """silero-vad's LSTM step through the coreml target's passes: same outputs on ORT, no LSTM left,
    and a CoreML estimate no worse (measured: 2 partitions -> 1 on each, every node on the EP)."""
    from onnxfit.targets.presets import get_target
    from onnxfit.targets.partitions import estimate_partitions
    from onnxfit.versions import installed_ort_version
    from tests.zoo.manifest import by_name

    path = zoo_model(name)
    original = onnx.load(path)
    passes = get_target("coreml").passes
    assert "rnn-step" in passes
    opset = next(o.version for o in original.opset_import if o.domain in ("", "ai.onnx"))
    result = run_passes(original, get_passes(passes), PassContext(opset, SILERO_STEPS[name], target="coreml"))
    report = next(r for r in result.reports if r.name == "rnn-step")
    assert report.rewritten == op_count(original, "LSTM") == 1 and report.skipped == []
    assert op_count(result.model, "LSTM") == 0
    feeds = by_name(name).feeds(1)
    rng = np.random.default_rng(3)
    for trial in range(2):  # the zero state of a first call, then a state carried from earlier calls
        if trial:
            feeds = {k: rng.uniform(-1, 1, v.shape).astype(v.dtype) if v.dtype == np.float32 else v
                     for k, v in feeds.items()}
        for e, a in zip(run_ort(original, feeds), run_ort(result.model, feeds)):
            np.testing.assert_allclose(a, e, atol=ATOL, rtol=RTOL)
    out = tmp_path / "vad.onnx"
    onnx.save(result.model, out)
    version = installed_ort_version()
    before = estimate_partitions(path, "coreml", version)
    after = estimate_partitions(out, "coreml", version)
    assert after.partitions <= before.partitions
    assert "LSTM" not in [u.op for u in after.unsupported]
