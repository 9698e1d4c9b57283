"""How each op treats the batch axis: the one table that dynamic-batch, verify and inspect read.

``onnxfit.batch_axes`` says which axis of each graph *input* holds the frames; this module says
what every *op* does with that axis. The rewrite (``dynamic-batch``) and its proof (the static
batch flow in ``verify``'s contamination check) both read ``BATCH_OPS``, so they cannot disagree
on which ops keep frames apart. Every op has one ``Flow``:

1. ``ELEMENTWISE``: the batch is kept; broadcasting aligns axes from the right.
2. ``PER_FRAME``: the op has a batch axis of its own (N of NCHW, the batch of an LSTM); frames stay
   apart when the batch sits there, every other input is a per-model weight.
3. ``ALONG_AXES``: the op combines values along the axes it names (Softmax, Reduce*, Concat,
   Gather, ...); frames mix when the batch is one of them, elsewhere it is kept (or reduced away).
4. ``CONTRACTS``: MatMul/Gemm sum over one axis of each operand; the batch must not be it.
5. ``RESHAPES``: the batch is moved or merged (Reshape, Flatten, Squeeze, Unsqueeze, Transpose);
   the rewrite decides from shapes where it went, the proof from shapes at two batch sizes.
6. ``PER_AXIS``: a per-axis amount (pad, repeat, broadcast, scale, slice) that must leave the batch
   slot alone (Pad, Tile, Expand, Resize, Upsample, Slice).
7. ``SHAPE``: Shape and Size describe the tensor, not its data: they depend on the batch by design.

Rows. Time-distributed layers merge the batch with other axes into one and split it back
(``[N, 1, H, W, C] -> [N*H*W, C, 1, 1]`` around a 1x1 Conv, ``[N, T, C, H, W] -> [N*T, C, H, W]``).
Frames stay apart on the merged axis while each of its indices, a row, belongs to one frame (frame
i owns rows ``[i*f, (i+1)*f)``) and every op between the merge and the split is per-row, which the
flows decide with the merged axis in place of the batch axis: ``ELEMENTWISE`` when fixed operands
are 1 along the rows (a fixed tensor with one value per row would need repeating per frame);
``PER_FRAME`` ops with the rows on their batch axis (each N of a Conv is its own sample);
``ALONG_AXES`` and ``CONTRACTS`` ops that do not combine along the rows; ``PER_AXIS`` amounts that
leave them alone (a size there counts rows: N*f); ``RESHAPES`` that keep each output row inside
one frame, or split the rows back into one index per frame; ``SHAPE`` reads N*f, not N. The
batched operands of one op must hold as many rows per frame.

An op missing from the table has no known batch rule: dynamic-batch refuses it, the proof judges
it by its output shapes alone. The decoding of axes (attribute or input, opset defaults,
Softmax's pre-13 flattening) lives here too, behind ``OpFacts``: each side hands over what it
knows about a node (attributes, constant inputs) in its own graph representation.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

import numpy as np

__all__ = [
    "BATCH_OPS",
    "FULL_END",
    "REDUCE_OPS",
    "Flow",
    "OpBatch",
    "OpFacts",
    "combined_axes",
    "contracted_axes",
    "frame_axes",
    "op_axis",
    "per_frame_problem",
    "reshape_target_problem",
    "slice_keeps_axis",
    "slice_params",
]

FULL_END = 2**31 - 1  # Slice ends at or above this reach the end of any axis


class Flow(enum.Enum):
    ELEMENTWISE = "elementwise"
    PER_FRAME = "per-frame"
    ALONG_AXES = "along-axes"
    CONTRACTS = "contracts"
    RESHAPES = "reshapes"
    PER_AXIS = "per-axis"
    SHAPE = "shape"


class OpFacts(Protocol):
    """What a rule needs to know about one node, whichever graph representation holds it."""

    attrs: dict
    opset: int

    def has_input(self, index: int) -> bool: ...

    def constant(self, index: int) -> np.ndarray | None:
        """The value of input ``index`` when known before run time (and not from the batch)."""


@dataclass(frozen=True)
class OpBatch:
    """One op's batch rule. Only the fields of its ``flow`` matter.

    ALONG_AXES: ``verb`` says what the op does along its axes (for messages); ``kind`` is
    "reduces" when the combined axes disappear. The axis comes from the ``axis`` attribute
    (``default`` when absent; before opset ``legacy_before`` Softmax-like ops default to
    ``legacy_default`` and cover every axis from it on, as ``through_end`` ops always do), or from
    constant input ``axes_input``; ``many`` ops take an ``axes`` list whose absence means
    ``default_axes`` (None: every axis). ``aligned``: inputs that must all carry the batch on the
    same axis once one does (indices and updates of GatherElements/ScatterElements).
    PER_FRAME: ``frame_inputs`` maps the inputs that may carry the batch to the axis where it must
    be; ``layout`` ops (RNNs) put it on axis 1 unless ``layout=1``.
    ALONG_AXES and PER_FRAME: ``params`` are inputs that must not depend on the batch.
    """

    flow: Flow
    verb: str = ""
    kind: str = "mixes"
    default: int | None = -1
    legacy_before: int | None = None
    legacy_default: int = 1
    through_end: bool = False
    axes_input: int | None = None
    many: bool = False
    default_axes: tuple[int, ...] | None = None
    aligned: tuple[int, ...] = ()
    frame_inputs: tuple[tuple[int, int], ...] = ((0, 0),)
    layout: bool = False
    params: tuple[int, ...] = ()


_ELEMENTWISE_OPS = (
    # unary
    "Identity", "Cast", "CastLike", "Dropout", "Relu", "LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "Gelu",
    "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Softplus", "Softsign", "Mish", "Erf", "Exp", "Log", "Sqrt",
    "Reciprocal", "Abs", "Neg", "Sign", "Floor", "Ceil", "Round", "Sin", "Cos", "Not", "IsNaN", "IsInf", "Clip",
    # n-ary with numpy broadcasting
    "Add", "Sub", "Mul", "Div", "Pow", "Mod", "Max", "Min", "Sum", "Mean", "Where", "Equal", "Less",
    "LessOrEqual", "Greater", "GreaterOrEqual", "And", "Or", "Xor", "BitShift",
)
_PER_FRAME_OPS = (
    "Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool", "GlobalAveragePool", "GlobalMaxPool",
    "GlobalLpPool", "BatchNormalization", "InstanceNormalization", "GroupNormalization", "LRN",
    "DepthToSpace", "SpaceToDepth",
)
REDUCE_OPS = ("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
               "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare")
_REDUCE = OpBatch(Flow.ALONG_AXES, "reduces over", kind="reduces", axes_input=1, many=True)
# sequence_lens (4) holds one length per frame; initial_h/initial_c (5, 6) are [dirs, batch, hidden].
_RECURRENT = OpBatch(Flow.PER_FRAME, layout=True)

BATCH_OPS: dict[str, OpBatch] = {
    **{op: OpBatch(Flow.ELEMENTWISE) for op in _ELEMENTWISE_OPS},
    **{op: OpBatch(Flow.PER_FRAME) for op in _PER_FRAME_OPS},
    "GridSample": OpBatch(Flow.PER_FRAME, frame_inputs=((0, 0), (1, 0))),  # the grid is per frame
    "LSTM": _RECURRENT, "GRU": _RECURRENT, "RNN": _RECURRENT,
    **{op: _REDUCE for op in REDUCE_OPS},
    "ArgMax": OpBatch(Flow.ALONG_AXES, "takes an argmax over", kind="reduces", default=0),
    "ArgMin": OpBatch(Flow.ALONG_AXES, "takes an argmin over", kind="reduces", default=0),
    "Softmax": OpBatch(Flow.ALONG_AXES, "takes a softmax over", legacy_before=13),
    "LogSoftmax": OpBatch(Flow.ALONG_AXES, "takes a log-softmax over", legacy_before=13),
    "Hardmax": OpBatch(Flow.ALONG_AXES, "takes a hardmax over", legacy_before=13),
    "LpNormalization": OpBatch(Flow.ALONG_AXES, "normalizes over"),
    "LayerNormalization": OpBatch(Flow.ALONG_AXES, "normalizes over", through_end=True, params=(1, 2)),
    "MeanVarianceNormalization": OpBatch(Flow.ALONG_AXES, "normalizes over", many=True, default_axes=(0, 2, 3)),
    "CumSum": OpBatch(Flow.ALONG_AXES, "sums cumulatively over", axes_input=1),
    "TopK": OpBatch(Flow.ALONG_AXES, "takes top-k over"),
    "Concat": OpBatch(Flow.ALONG_AXES, "concatenates along", default=None),
    "Split": OpBatch(Flow.ALONG_AXES, "splits along", default=0),
    "Gather": OpBatch(Flow.ALONG_AXES, "gathers along", default=0),
    "GatherElements": OpBatch(Flow.ALONG_AXES, "gathers along", default=0, aligned=(0, 1)),
    "ScatterElements": OpBatch(Flow.ALONG_AXES, "scatters along", default=0, aligned=(0, 1, 2)),
    "MatMul": OpBatch(Flow.CONTRACTS), "Gemm": OpBatch(Flow.CONTRACTS),
    **{op: OpBatch(Flow.RESHAPES) for op in ("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose")},
    **{op: OpBatch(Flow.PER_AXIS) for op in ("Pad", "Tile", "Expand", "Resize", "Upsample", "Slice")},
    "Shape": OpBatch(Flow.SHAPE), "Size": OpBatch(Flow.SHAPE),
}


def op_axis(rule: OpBatch, attrs: dict, opset: int) -> int | None:
    """The single axis an ALONG_AXES op names in its ``axis`` attribute (with its opset default)."""
    if "axis" in attrs:
        return int(attrs["axis"])
    if rule.legacy_before is not None and opset < rule.legacy_before:
        return rule.legacy_default
    return rule.default


def combined_axes(rule: OpBatch, facts: OpFacts, rank: int) -> set[int] | None:
    """The axes (0..rank-1) an ALONG_AXES op combines values along; None when only known at run time."""
    given = facts.attrs.get("axes" if rule.many else "axis")
    if given is None and rule.axes_input is not None and facts.has_input(rule.axes_input):
        value = facts.constant(rule.axes_input)
        if value is None:
            return None
        given = [int(a) for a in np.ravel(value)] if rule.many else int(np.ravel(value)[0])
    if rule.many:
        axes = list(rule.default_axes) if given is None and rule.default_axes is not None else given
        if not axes:  # absent or empty: every axis, unless the op is told to do nothing
            return set() if facts.attrs.get("noop_with_empty_axes", 0) else set(range(rank))
        return {int(a) % rank for a in axes}
    axis = op_axis(rule, facts.attrs, facts.opset) if given is None else int(given)
    axis %= rank
    legacy = rule.legacy_before is not None and facts.opset < rule.legacy_before
    # Before opset 13 Softmax coerced its input to 2-D at ``axis``: one row spans the axes after it.
    return set(range(axis, rank)) if rule.through_end or legacy else {axis}


def frame_axes(rule: OpBatch, attrs: dict) -> dict[int, int]:
    """PER_FRAME ops: input index -> the axis where its batch must be; other inputs are weights."""
    if not rule.layout:
        return dict(rule.frame_inputs)
    state = 0 if attrs.get("layout", 0) else 1
    return {0: state, 4: 0, 5: state, 6: state}


def per_frame_problem(op: str, attrs: dict) -> str | None:
    """A PER_FRAME op that mixes frames whatever the axes: batch statistics in training mode."""
    if op == "BatchNormalization" and attrs.get("training_mode", 0):
        return "computes statistics over the batch (training_mode=1)"
    return None


def contracted_axes(op: str, attrs: dict, ranks: list[int | None]) -> list[int | None]:
    """The axis MatMul/Gemm sums over in each operand (None where the rank is unknown)."""
    if op == "Gemm":
        return [0 if attrs.get("transA", 0) else 1, 1 if attrs.get("transB", 0) else 0]
    a, b = (ranks + [None, None])[:2]
    return [None if a is None else a - 1, None if b is None else max(b - 2, 0)]


def slice_params(facts: OpFacts) -> tuple[list[int], list[int], list[int]] | None:
    """starts, ends, steps of a Slice when known before run time (attributes before opset 10)."""
    if facts.opset < 10:
        starts, ends = facts.attrs["starts"], facts.attrs["ends"]
        return [int(v) for v in starts], [int(v) for v in ends], [1] * len(starts)
    starts, ends, steps = (facts.constant(i) for i in (1, 2, 4))
    if starts is None or ends is None or (steps is None and facts.has_input(4)):
        return None
    steps = np.ones(np.size(starts), np.int64) if steps is None else steps
    return [int(v) for v in np.ravel(starts)], [int(v) for v in np.ravel(ends)], [int(v) for v in np.ravel(steps)]


def slice_keeps_axis(facts: OpFacts, rank: int, axis: int) -> bool | None:
    """Whether a Slice keeps all of ``axis``, in order (the batch slot of a PER_AXIS op must stay
    the identity); None when only the run time knows."""
    if facts.opset < 10:
        axes = facts.attrs.get("axes")
    elif facts.has_input(3):
        axes = facts.constant(3)
        if axes is None:
            return None
    else:
        axes = None
    params = slice_params(facts)
    if params is None:
        return True if axes is not None and axis not in [int(a) % rank for a in np.ravel(axes)] else None
    starts, ends, steps = params
    axes = list(range(len(starts))) if axes is None else [int(a) % rank for a in np.ravel(axes)]
    if axis not in axes:
        return True
    j = axes.index(axis)
    return starts[j] == 0 and ends[j] >= FULL_END and steps[j] == 1


def reshape_target_problem(target: list[int], data_rank: int | None) -> str | None:
    """What a constant Reshape target does to a leading batch, as ``inspect`` reports it."""
    if target and target[0] == -1 and data_rank is not None and len(target) < data_rank:
        return "leading -1 merges the batch into other axes"
    if target and target[0] == 1 and -1 not in target:
        return "hardcodes batch 1"
    return None
