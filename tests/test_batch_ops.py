"""The batch-op table (onnxfit.batch_ops) read by the rewrite and by its proof, op by op.

For every op in the table, a one-node model at batch 1 goes through dynamic-batch and through the
contamination check's static batch flow, and both must say what the table says:

- frames independent: dynamic-batch rewrites the model, and on ONNX Runtime each frame of a batch
  of 3 equals that frame run alone (atol/rtol 1e-5, NaN equal to NaN); the static flow of the
  rewritten model finds nothing that blocks;
- frames mixed: dynamic-batch refuses, naming the node, and the static flow of the model names
  the same node among its problems.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxfit.batch_ops import BATCH_OPS, Flow, reshape_target_problem
from onnxfit.errors import OnnxfitError
from onnxfit.optimizer import PassContext, get_passes, run_passes
from onnxfit.optimizer.passes.dynamic_batch.rules import RULES
from onnxfit.verification.batch_flow import batch_flow
from onnxfit.verification.parity import frame_axis
from tests.conftest import make_model, run_ort

F, I64, BOOL = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL
N = 3
NAME = "op_under_test"
RNG = np.random.default_rng(0)


@dataclass
class Case:
    """One node over graph inputs (all batched) and constants; ``mixes``: the table says frames meet."""

    id: str
    op: str
    inputs: list[tuple]  # (name, shape at batch 1, dtype[, generator(rng, shape)]); "" keeps a slot empty
    attrs: dict = field(default_factory=dict)
    consts: dict = field(default_factory=dict)  # name -> array, fed to the node in ``order``
    order: list[str] | None = None  # node input names, when constants come first or in between
    outputs: int = 1
    mixes: bool = False
    opset: int = 18
    axes: dict | None = None  # input -> batch axis where it is not axis 0


def _w(*shape):
    return (RNG.standard_normal(shape) * 0.5).astype(np.float32)


def _i(*values):
    return np.array(values, np.int64)


def _x(*shape, dtype=F):
    return ("x", [1, *shape], dtype)


def _unary(op, **attrs):
    return Case(op, op, [_x(4, 5)], attrs)


def _binary(op, const=None, dtype=F, **attrs):
    const = _w(5) if const is None else const
    return Case(op, op, [_x(4, 5, dtype=dtype)], attrs, {"c": const})


def _axis_pair(op, inputs, consts=None, attr="axis", free=1, batch=0, **attrs):
    """One case along a per-frame axis, one along the batch axis."""
    consts = consts or {}
    return [Case(f"{op}-axis{free}", op, inputs, {attr: free, **attrs}, consts),
            Case(f"{op}-batch-axis", op, inputs, {attr: batch, **attrs}, consts, mixes=True)]


def _reduce_pair(op):
    return [Case(f"{op}-axis1", op, [_x(4, 5)], {"keepdims": 0}, {"axes": _i(1)}),
            Case(f"{op}-batch-axis", op, [_x(4, 5)], {"keepdims": 0}, {"axes": _i(0)}, mixes=True)]


_INDICES = ("indices", [1, 4], I64, lambda rng, shape: rng.integers(0, 4, shape))
_SCATTER_AT = ("indices", [1, 2], I64, lambda rng, shape: np.stack([rng.permutation(4)[:2] for _ in range(shape[0])]))
_RNN_WEIGHTS = {"LSTM": 4, "GRU": 3, "RNN": 1}


def _rnn(op, layout_batch, mixes):
    gates = _RNN_WEIGHTS[op]
    return Case(f"{op}-batch-on-{layout_batch}", op, [("x", [2, 1, 3] if layout_batch == 1 else [1, 2, 3], F)],
                {"hidden_size": 2}, {"w": _w(1, gates * 2, 3), "r": _w(1, gates * 2, 2)}, outputs=2,
                mixes=mixes, axes={"x": layout_batch})


CASES = [
    *[_unary(op) for op in ("Identity", "Dropout", "Relu", "Elu", "Selu", "Celu", "Sigmoid", "HardSigmoid",
                            "HardSwish", "Tanh", "Softplus", "Softsign", "Mish", "Erf", "Exp", "Log", "Sqrt",
                            "Reciprocal", "Abs", "Neg", "Sign", "Floor", "Ceil", "Round", "Sin", "Cos", "IsNaN",
                            "IsInf")],
    _unary("LeakyRelu", alpha=0.1), Case("Gelu", "Gelu", [_x(4, 5)], opset=20), _unary("Cast", to=TensorProto.INT32),
    Case("Not", "Not", [_x(4, 5, dtype=BOOL)]),
    Case("Clip", "Clip", [_x(4, 5)], {}, {"lo": np.float32(0.7), "hi": np.float32(1.5)}),
    Case("CastLike", "CastLike", [_x(4, 5)], {}, {"like": np.zeros((), np.float16)}),
    *[_binary(op) for op in ("Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "Equal", "Less",
                             "LessOrEqual", "Greater", "GreaterOrEqual", "PRelu")],
    _binary("Mod", fmod=1),
    *[_binary(op, np.array([True, False, True, False, True]), BOOL) for op in ("And", "Or", "Xor")],
    Case("BitShift", "BitShift", [("x", [1, 4, 5], TensorProto.UINT8, lambda rng, s: rng.integers(0, 16, s))],
         {"direction": "LEFT"}, {"c": np.array([1, 2, 0, 1, 2], np.uint8)}),
    Case("Where", "Where", [_x(4, 5, dtype=BOOL)], {}, {"a": _w(5), "b": _w(4, 5)}),
    # Per-frame ops: the batch is axis 0 of the data (and of GridSample's grid).
    Case("Conv", "Conv", [_x(3, 5, 5)], {"pads": [1, 1, 1, 1]}, {"w": _w(2, 3, 3, 3)}),
    Case("ConvTranspose", "ConvTranspose", [_x(3, 4, 4)], {}, {"w": _w(3, 2, 3, 3)}),
    *[Case(op, op, [_x(3, 4, 4)], {"kernel_shape": [2, 2]}) for op in ("MaxPool", "AveragePool", "LpPool")],
    *[Case(op, op, [_x(3, 4, 4)]) for op in ("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool")],
    Case("BatchNormalization", "BatchNormalization", [_x(3, 4, 4)], {},
         {"s": _w(3), "b": _w(3), "m": _w(3), "v": np.abs(_w(3)) + 0.5}),
    Case("BatchNormalization-training", "BatchNormalization", [_x(3, 4, 4)], {"training_mode": 1},
         {"s": _w(3), "b": _w(3), "m": _w(3), "v": np.abs(_w(3)) + 0.5}, outputs=3, mixes=True),
    Case("InstanceNormalization", "InstanceNormalization", [_x(3, 4, 4)], {}, {"s": _w(3), "b": _w(3)}),
    Case("GroupNormalization", "GroupNormalization", [_x(3, 4, 4)], {"num_groups": 3}, {"s": _w(3), "b": _w(3)}),
    Case("LRN", "LRN", [_x(3, 4, 4)], {"size": 3}),
    Case("DepthToSpace", "DepthToSpace", [_x(4, 2, 2)], {"blocksize": 2}),
    Case("SpaceToDepth", "SpaceToDepth", [_x(1, 4, 4)], {"blocksize": 2}),
    Case("GridSample", "GridSample", [_x(2, 4, 4), ("grid", [1, 3, 3, 2], F, lambda rng, s: rng.uniform(-1, 1, s))]),
    *[_rnn(op, 1, False) for op in _RNN_WEIGHTS], *[_rnn(op, 0, True) for op in _RNN_WEIGHTS],
    # Ops along named axes: frames stay apart unless the batch is one of them.
    *[case for op in ("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
                      "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare") for case in _reduce_pair(op)],
    *[case for op in ("ArgMax", "ArgMin", "Softmax", "LogSoftmax", "Hardmax", "LpNormalization")
      for case in _axis_pair(op, [_x(4, 5)])],
    Case("LayerNormalization", "LayerNormalization", [_x(4, 5)], {"axis": -1}, {"s": _w(5)}),
    Case("LayerNormalization-from-batch", "LayerNormalization", [_x(4, 5)], {"axis": 0}, {"s": _w(1, 4, 5)},
         mixes=True),
    Case("MeanVarianceNormalization", "MeanVarianceNormalization", [_x(3, 4, 4)], {"axes": [2, 3]}),
    Case("MeanVarianceNormalization-default", "MeanVarianceNormalization", [_x(3, 4, 4)], mixes=True),
    Case("CumSum", "CumSum", [_x(4, 5)], {}, {"axis": _i(1)}),
    Case("CumSum-batch-axis", "CumSum", [_x(4, 5)], {}, {"axis": _i(0)}, mixes=True),
    Case("TopK", "TopK", [_x(4, 5)], {"axis": 1}, {"k": _i(2)}, outputs=2),
    Case("TopK-batch-axis", "TopK", [_x(4, 5)], {"axis": 0}, {"k": _i(1)}, outputs=2, mixes=True),
    *_axis_pair("Concat", [_x(4), ("y", [1, 4], F)]),
    Case("Split", "Split", [_x(4)], {"axis": 1}, {"split": _i(1, 3)}, outputs=2),
    Case("Split-batch-axis", "Split", [_x(4)], {"axis": 0}, {"split": _i(1)}, mixes=True),
    Case("Gather", "Gather", [_x(4, 5)], {"axis": 1}, {"i": _i(0, 2)}),
    Case("Gather-batch-axis", "Gather", [_x(4, 5)], {"axis": 0}, {"i": _i(0)}, mixes=True),
    Case("GatherElements", "GatherElements", [_x(4), _INDICES], {"axis": 1}),
    Case("GatherElements-fixed-indices", "GatherElements", [_x(4)], {"axis": 1}, {"i": _i(0, 3).reshape(1, 2)},
         mixes=True),
    Case("ScatterElements", "ScatterElements", [_x(4), _SCATTER_AT, ("u", [1, 2], F)], {"axis": 1}),
    Case("ScatterElements-fixed-updates", "ScatterElements", [_x(4)], {"axis": 1},
         {"i": _i(0, 3).reshape(1, 2), "u": _w(1, 2)}, mixes=True),
    # Contractions: the batch must not be the summed axis.
    Case("MatMul", "MatMul", [_x(4)], {}, {"w": _w(4, 3)}),
    Case("MatMul-batch-contracted", "MatMul", [_x(4)], {}, {"w": _w(2, 1)}, order=["w", "x"], mixes=True),
    Case("Gemm", "Gemm", [_x(4)], {}, {"w": _w(4, 3)}),
    Case("Gemm-batch-contracted", "Gemm", [_x(4)], {"transA": 1}, {"w": _w(1, 3)}, mixes=True),
    Case("Gemm-batched-bias", "Gemm", [_x(4), ("c", [1, 3], F)], {}, {"w": _w(4, 3)}, order=["x", "w", "c"]),
    Case("Gemm-bias-batched-across", "Gemm", [_x(3), ("c", [1], F)], {}, {"w": _w(3, 3)}, order=["x", "w", "c"],
         mixes=True),
    # Reshapes: a kept or leading batch is followed (and repaired); one merged from inside is refused.
    Case("Reshape", "Reshape", [_x(4, 5)], {}, {"shape": _i(1, 20)}),
    Case("Reshape-merges-inner-batch", "Reshape", [("x", [2, 1, 3], F)], {}, {"shape": _i(6)}, mixes=True,
         axes={"x": 1}),
    Case("Flatten", "Flatten", [_x(4, 5)], {"axis": 1}),
    Case("Flatten-merges-inner-batch", "Flatten", [("x", [2, 1, 3], F)], {"axis": 2}, mixes=True, axes={"x": 1}),
    Case("Squeeze", "Squeeze", [_x(4, 1)], {}, {"axes": _i(2)}),
    Case("Squeeze-drops-inner-batch", "Squeeze", [("x", [2, 1, 3], F)], {}, {"axes": _i(1)}, mixes=True,
         axes={"x": 1}),
    Case("Unsqueeze", "Unsqueeze", [_x(4)], {}, {"axes": _i(1)}),
    Case("Transpose", "Transpose", [_x(4, 5)], {"perm": [2, 0, 1]}),
    # Per-axis amounts: the batch slot must stay the identity.
    Case("Pad", "Pad", [_x(4)], {}, {"pads": _i(0, 1, 0, 2)}),
    Case("Pad-batch-axis", "Pad", [_x(4)], {}, {"pads": _i(1, 0, 0, 0)}, mixes=True),
    Case("Tile", "Tile", [_x(4)], {}, {"repeats": _i(1, 2)}),
    Case("Tile-batch-axis", "Tile", [_x(4)], {}, {"repeats": _i(2, 1)}, mixes=True),
    Case("Expand", "Expand", [_x(1, 4)], {}, {"shape": _i(1, 3, 4)}),
    Case("Resize", "Resize", [_x(2, 3, 3)], {}, {"roi": np.zeros(0, np.float32), "scales": np.float32([1, 1, 2, 2])}),
    Case("Resize-batch-axis", "Resize", [_x(2, 3, 3)], {},
         {"roi": np.zeros(0, np.float32), "scales": np.float32([2, 1, 1, 1])}, mixes=True),
    Case("Upsample", "Upsample", [_x(2, 3, 3)], {}, {"scales": np.float32([1, 1, 2, 2])}, opset=9),
    Case("Upsample-batch-axis", "Upsample", [_x(2, 3, 3)], {}, {"scales": np.float32([2, 1, 1, 1])}, opset=9,
         mixes=True),
    Case("Slice", "Slice", [_x(4)], {}, {"starts": _i(1), "ends": _i(3), "axes": _i(1)}),
    Case("Slice-batch-axis", "Slice", [_x(4)], {}, {"starts": _i(0), "ends": _i(1), "axes": _i(0)}, mixes=True),
    Case("Slice-reverses-frames", "Slice", [_x(4)], {},
         {"starts": _i(-1), "ends": _i(-(2**31)), "axes": _i(0), "steps": _i(-1)}, mixes=True),
    # Shape ops describe the tensor: they depend on the batch by design and never carry frames.
    Case("Shape", "Shape", [_x(4)]),
    Case("Size", "Size", [_x(4)]),
]


def _batch_on_height(case: Case) -> Case:
    """The same per-frame op with the frames on axis 2 of its data (not the op's batch axis), its
    other inputs unbatched."""
    return Case(f"{case.id}-batch-on-axis-2", case.op, case.inputs, case.attrs, case.consts, case.order,
                case.outputs, mixes=True, opset=case.opset, axes={i[0]: 2 if i[0] == "x" else None for i in case.inputs})


CASES += [_batch_on_height(c) for c in CASES if BATCH_OPS[c.op].flow is Flow.PER_FRAME and not BATCH_OPS[c.op].layout
          and not c.mixes]


def _model(case: Case) -> onnx.ModelProto:
    inputs = [helper.make_tensor_value_info(i[0], i[2], i[1]) for i in case.inputs]
    order = case.order or [i[0] for i in case.inputs] + list(case.consts)
    outputs = [f"y{k}" for k in range(case.outputs)]
    node = helper.make_node(case.op, order, outputs, name=NAME, **case.attrs)
    consts = [numpy_helper.from_array(np.asarray(v), k) for k, v in case.consts.items()]
    typed = onnx.shape_inference.infer_shapes(make_model([node], inputs, [], consts, opset=case.opset))
    types = {vi.name: vi.type.tensor_type.elem_type for vi in typed.graph.value_info}
    model = make_model([node], inputs, [helper.make_tensor_value_info(o, types.get(o, F), None) for o in outputs],
                       consts, opset=case.opset)
    return model


def _feeds(case: Case, batch: int) -> dict[str, np.ndarray]:
    feeds = {}
    for name, shape, dtype, *gen in case.inputs:
        axis = (case.axes or {}).get(name, 0)
        shape = [*shape[:axis], batch, *shape[axis + 1:]]
        if gen:
            value = gen[0](RNG, shape)
        elif dtype == BOOL:
            value = RNG.random(shape) < 0.5
        else:
            value = RNG.uniform(0.5, 2.0, shape)
        feeds[name] = np.asarray(value).astype(helper.tensor_dtype_to_np_dtype(dtype))
    return feeds


def _frame(case: Case, feeds: dict[str, np.ndarray], j: int) -> dict[str, np.ndarray]:
    return {k: np.take(v, [j], axis=(case.axes or {}).get(k, 0)) for k, v in feeds.items()}


def _shapes(case: Case) -> dict[str, tuple[int, ...]]:
    return {i[0]: tuple(i[1]) for i in case.inputs}


def _axes(case: Case) -> dict[str, int]:
    axes = {i[0]: (case.axes or {}).get(i[0], 0) for i in case.inputs}
    return {k: v for k, v in axes.items() if v is not None}


def test_every_op_in_the_table_has_a_case_and_a_rewrite_rule():
    assert {c.op for c in CASES} == set(BATCH_OPS)
    assert set(RULES) == {op for op, rule in BATCH_OPS.items() if rule.flow is not Flow.SHAPE}


def test_every_op_that_can_mix_frames_by_its_axes_has_a_mixing_case():
    can_mix = {op for op, rule in BATCH_OPS.items()
               if rule.flow in (Flow.ALONG_AXES, Flow.PER_FRAME, Flow.CONTRACTS)}
    assert can_mix <= {c.op for c in CASES if c.mixes}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_rewrite_and_proof_agree_with_the_batch_op_table(case):
    model = _model(case)
    ctx = PassContext(opset=case.opset, batch_axes=dict(case.axes or {}))
    if case.mixes:
        with pytest.raises(OnnxfitError, match=f"node '{NAME}'"):
            run_passes(model, get_passes(["dynamic-batch"]), ctx)
        flow = batch_flow(model, _shapes(case), _axes(case))
        assert any(NAME in problem for problem in flow.problems), flow.to_dict()
        return
    rewritten = run_passes(model, get_passes(["dynamic-batch"]), ctx).model
    flow = batch_flow(rewritten, _shapes(case), _axes(case))
    assert flow.ok, flow.to_dict()
    feeds = _feeds(case, N)
    batched = run_ort(rewritten, feeds)
    alone = [run_ort(rewritten, _frame(case, feeds, j)) for j in range(N)]
    for k, whole in enumerate(batched):
        axis = frame_axis(whole.shape, alone[0][k].shape, N)
        if BATCH_OPS[case.op].flow is Flow.SHAPE:
            assert axis is None  # a shape, not frames
            continue
        assert axis is not None, f"output {k}: {whole.shape} at batch {N}, {alone[0][k].shape} alone"
        for j in range(N):
            np.testing.assert_allclose(np.take(whole, [j], axis=axis), alone[j][k], rtol=1e-5, atol=1e-5,
                                       equal_nan=True)


@pytest.mark.parametrize(("target", "rank", "problem"), [
    ([-1, 2], 4, "leading -1 merges the batch into other axes"),
    ([1, 512, 20, 20], 4, "hardcodes batch 1"),
    ([-1, 512, 20, 20], 4, None),
    ([1, -1], 2, None),
])
def test_reshape_targets_that_inspect_reports(target, rank, problem):
    assert reshape_target_problem(target, rank) == problem
