"""CoreML EP support profiles: MLProgram (`coreml`) and NeuralNetwork (`coreml-nn`).

Source: microsoft/onnxruntime onnxruntime/core/providers/coreml/
- builders/helper.cc `IsInputSupported`: every present input needs a known rank; no dim > 16384
  (coremltools#1003), no zero-sized dim (except Resize's `roi`), rank <= 5. Dynamic (symbolic) dims
  are allowed unless the session sets `RequireStaticInputShapes` (not modelled: off by default).
- builders/impl/base_op_builder.cc: an op without `SupportsMLProgram` is refused in MLProgram
  mode; `HasSupportedOpSet`; by default only input 0's dtype is checked: float, plus float16 in
  MLProgram (`IsInputDtypeSupport`).
- builders/op_builder_factory.cc: which ops have a builder at all.
- builders/impl/<op>_op_builder.cc: the per-op rules below (pad, gather, split, slice, resize,
  reshape, squeeze, conv, convtranspose, gemm, pool, shape, depthtospace, clip, activation).
- coreml_execution_provider.cc: partitions are formed by `CreateSupportedPartitions`
  (partitioning_utils.cc), replicated in support.ort_partition_groups.

Rules follow ONNX Runtime releases (Rule.since/until; `--ort-version` picks the release):
- Pad(reflect), MLProgram: from 1.26 (PR #28073); before, `constant` only. NeuralNetwork takes
  `constant` only on every release; `edge` and `wrap` never.
- Split: until 1.26 the builder's minimum opset is 13, so the attribute form (opset < 13) falls
  back; from 1.27 (PR #28270) any opset, with sizes that are positive, add up to a static axis,
  and an equal split (no sizes) only where the axis divides by the output count.
- Gather: scalar (rank-0) indices fall back until 1.26; from 1.27 (PR #28278) they are taken when
  `data` is fully static and of rank <= 4, in both formats.
- GatherND (PR #28598), Identity/Ceil/Tile (PR #28293), Cos/Sin: MLProgram from 1.27; Where/And
  (PR #28597): from 1.28; the other MLProgram ops added after 1.20 are in ML_SINCE.
The first release of each change was read from the released macOS wheels (what the release tag
contains), not from merge dates; docs/ep-rules.md lists them. Not modelled: from 1.27 (PR #28293)
the EP drops partitions made only of "trivial" ops (the builders overriding IsTrivial: Cast,
Flatten, Identity, Reshape, Squeeze/Unsqueeze, Tile, Transpose and some unary ops).

Where ORT's usability checker (onnxruntime.tools.mobile_helpers.usability_checker) disagrees with
this profile, tests/targets/test_usability_checker.py says why and tests each case.
"""

from __future__ import annotations

from dataclasses import replace

from onnxfit.targets.support import (
    BOOL,
    FLOAT,
    FLOAT16,
    INT32,
    INT64,
    Check,
    NodeFacts,
    Profile,
    Rule,
    const_input,
    format_shape,
    input_dtype,
    input_rank,
    optional_const_input,
    pad_facts,
    ort_partition_groups,
)
from onnxfit.versions import parse_version

__all__ = ["MLPROGRAM", "NEURALNETWORK", "MAX_DIM"]

EP = "CoreMLExecutionProvider"
MAX_DIM = 16384  # coremltools#1003: CoreML fails to load a model with a larger input dim
MAX_RANK = 5

_ML_FLOATS = (FLOAT, FLOAT16)
_NN_FLOATS = (FLOAT,)


def _inputs_supported(facts: NodeFacts) -> str | None:
    """helper.cc IsInputSupported, applied to every present input of every node."""
    for i, name in enumerate(facts.inputs):
        if not name:
            continue
        shape = facts.shape(i)
        if shape is None:
            return f"input '{name}' has no shape information (rank unknown)"
        for dim in shape:
            if dim is not None and dim > MAX_DIM:
                return f"input '{name}' has a dim of {dim} (CoreML fails to load dims > {MAX_DIM})"
            # Resize's roi is ignored by the builder and is often an empty initializer.
            if dim == 0 and not (facts.op == "Resize" and i == 1):
                return f"input '{name}' has a zero-sized dim {format_shape(shape)}"
    return None


def _first_input_dtype(allowed: tuple[int, ...]) -> Check:
    return input_dtype(0, allowed)


# ---------------------------------------------------------------------------------- Pad


def _pad_rule(modes: tuple[str, ...], neural_network: bool) -> Check:
    def check(facts: NodeFacts) -> str | None:
        shape = facts.shape(0)
        if shape is None:
            return "input shape is unknown"
        if neural_network and len(shape) < 2:
            return f"input rank {len(shape)} < 2"
        mode = facts.attr("mode", "constant")
        if mode not in modes:
            return f"mode '{mode}' is not supported (supported: {', '.join(modes)})"
        if facts.input(2) and not facts.is_const(2):
            return "input 'constant_value', if given, must be a constant initializer"
        if neural_network and not facts.input(2):
            return "NeuralNetwork Pad needs a constant 'constant_value' input"
        decoded = pad_facts(facts)
        if isinstance(decoded, str):
            return decoded
        begin, end, axes = decoded
        last_two_only = neural_network or mode != "constant"
        for b, e, axis in zip(begin, end, axes):
            if last_two_only and axis < len(shape) - 2 and (b or e):
                return f"{mode} padding on axis {axis}: only the last two dims may be padded"
            if mode == "reflect" and shape[axis] is not None and max(b, e) >= shape[axis]:
                return f"reflect pad {max(b, e)} >= size {shape[axis]} of axis {axis}"
        return None

    return check


# Squeeze/Unsqueeze-13+ take their axes as input 1; before that they are an attribute (constant).
_AXES_CONSTANT = optional_const_input(1, "axes")


# ------------------------------------------------------------------------------ Gather, Split


def _gather_rule(scalar_indices: bool) -> Check:
    """gather_op_builder.cc: output rank <= 5; scalar indices refused before 1.27, and from 1.27
    (PR #28278) taken when `data` is fully static and of rank <= 4 (both formats)."""

    def check(facts: NodeFacts) -> str | None:
        data, indices = facts.shape(0), facts.shape(1)
        if data is None or indices is None:
            return "data or indices shape is unknown"
        if len(data) + len(indices) - 1 > 5:
            return f"output rank {len(data) + len(indices) - 1} > 5"
        if indices:
            return None
        if not scalar_indices:
            return "scalar (rank-0) indices are not supported before ONNX Runtime 1.27 (PR #28278)"
        if None in data:
            return f"scalar indices need a fully static 'data' shape, got {format_shape(data)}"
        if len(data) > 4:
            return f"scalar indices need 'data' rank <= 4, got {len(data)}"
        return None

    return check


def _gather_nd_rule(facts: NodeFacts) -> str | None:
    """gather_nd_op_builder.cc (PR #28598): batch_dims 0, constant int indices, static indexed dims."""
    if facts.attr("batch_dims", 0) != 0:
        return f"batch_dims={facts.attr('batch_dims')} is not supported (0 only)"
    if facts.dtype(0) not in (FLOAT, FLOAT16, INT32, INT64, BOOL):
        return "data must be float, float16, int32, int64 or bool"
    if not facts.is_const(1):
        return "input 'indices' must be a constant initializer"
    data, indices = facts.shape(0), facts.shape(1)
    if data is None or not indices or indices[-1] is None:
        return "data or indices shape is unknown"
    depth = indices[-1]
    if depth > len(data):
        return f"index tuple depth {depth} exceeds data rank {len(data)}"
    if None in data[:depth]:
        return f"indexed data dims must be static, got {format_shape(data)}"
    return None


def _split_sizes(facts: NodeFacts) -> list[int] | None | str:
    """The constant sizes of a Split (input or attribute), None when it has none, or a reason."""
    if facts.input(1):
        if not facts.is_const(1):
            return "input 'split' must be a constant initializer"
        value = facts.value(1)
        return None if value is None else [int(v) for v in value.reshape(-1)]
    if "split" in facts.attrs:
        return [int(v) for v in facts.attrs["split"]]
    return None


def _split_rule(attribute_form: bool) -> Check:
    """split_op_builder.cc. Before 1.27 the builder's minimum opset is 13 (the attribute form
    always falls back, see the Rule's min_opset); PR #28270 (1.27) reads the attribute with the
    input's rules and requires an equal split (no sizes, opset < 18) to divide the axis."""

    def check(facts: NodeFacts) -> str | None:
        shape = facts.shape(0)
        if shape is None:
            return "input shape is unknown"
        axis = facts.attr("axis", 0)
        if not -len(shape) <= axis < len(shape):
            return f"axis {axis} is out of range"
        dim = shape[axis % len(shape)]
        outputs = len(facts.node.output)
        sizes = _split_sizes(facts)
        if isinstance(sizes, str):
            return sizes
        if sizes is not None or facts.input(1) or "split" in facts.attrs:
            if sizes is None:
                return "input 'split' could not be read"
            if len(sizes) < 2:
                return "Split must produce at least 2 outputs"
            if dim is None:
                return "the split axis must have a static size"
            if sum(sizes) != dim:
                return f"split sizes {sizes} do not add up to the axis size {dim}"
            if any(size <= 0 for size in sizes):
                return f"split sizes {sizes} must be positive"
            return None
        if (facts.since_version() or 0) >= 18:
            n = facts.attr("num_outputs")
            if n is None:
                return "attribute 'num_outputs' is required"
            if n < 2 or n != outputs or dim is None or n > dim:
                return f"num_outputs={n} must be >= 2, match the outputs and be <= the axis size"
            return None
        if outputs < 2:
            return "Split must produce at least 2 outputs"
        if attribute_form and (dim is None or dim % outputs):
            return f"equal split needs a static axis size divisible by {outputs}, got {format_shape(shape)}"
        return None

    return check


def _slice_inputs_constant(facts: NodeFacts) -> str | None:
    for i, what in ((1, "starts"), (2, "ends"), (3, "axes"), (4, "steps")):
        if facts.input(i) and not facts.is_const(i):
            return f"input '{what}' must be a constant initializer"
    return None


def _resize_rule(neural_network: bool) -> Check:
    coordinate_modes = ("asymmetric", "align_corners") if neural_network else (
        "asymmetric", "align_corners", "half_pixel", "pytorch_half_pixel")

    def check(facts: NodeFacts) -> str | None:
        shape = facts.shape(0)
        if shape is None or len(shape) != 4:
            return "input must be 4D"
        mode = facts.attr("mode", "nearest")
        if mode not in ("nearest", "linear"):
            return f"mode '{mode}' is not supported (nearest, linear)"
        coord = facts.attr("coordinate_transformation_mode", "half_pixel")
        if coord not in coordinate_modes:
            return f"coordinate_transformation_mode '{coord}' is not supported ({', '.join(coordinate_modes)})"
        if mode == "nearest" and facts.attr("nearest_mode", "round_prefer_floor") != "floor":
            return "nearest Resize needs nearest_mode='floor'"
        if facts.attr("exclude_outside", 0):
            return "exclude_outside=1 is not supported"
        scales_given = facts.input(2) and (facts.shape(2) or (0,))[0] != 0
        source = 2 if scales_given else 3
        if not facts.input(source) or not facts.is_const(source):
            return "'scales' or 'sizes' must be a constant initializer"
        values = facts.value(source)
        if values is not None and len(values) == 4:
            untouched = (1.0, 1.0) if source == 2 else tuple(shape[:2])
            if tuple(float(v) for v in values[:2]) != tuple(float(v) if v is not None else -1.0 for v in untouched):
                return "only the last two dims (H, W) may be resized"
        return None

    return check


def _reshape_shape_constant(facts: NodeFacts) -> str | None:
    """reshape_op_builder.cc: a constant, non-empty target of rank <= 5, and the data's shape fully
    static (`GetStaticShape`): a symbolic batch keeps a Reshape on the CPU even with a constant target."""
    if not facts.is_const(1):
        return "input 'shape' must be a constant initializer"
    data = facts.shape(0)
    if data is None or any(not isinstance(d, int) or d < 0 for d in data):
        return f"input 'data' must have a static shape, got {format_shape(data)}"
    shape = facts.value(1)
    if shape is not None and (shape.size == 0 or shape.size > 5):
        return f"the target shape must have 1 to 5 dims, got {shape.size}"
    if shape is not None and facts.attr("allowzero", 0) and 0 in shape.tolist():
        return "allowzero with a 0 in 'shape' is not supported"
    return None


def _shape_full(facts: NodeFacts) -> str | None:
    if facts.attr("start", 0) != 0:
        return "attribute 'start' with a non-default value is not supported"
    if "end" in facts.attrs:
        return "attribute 'end' is not supported"
    return None


def _conv_transpose_rule(facts: NodeFacts) -> str | None:
    if facts.attr("auto_pad", "NOTSET") in ("SAME_UPPER", "SAME_LOWER"):
        return "auto_pad SAME_UPPER/SAME_LOWER is not supported"
    if "output_shape" in facts.attrs:
        return "attribute 'output_shape' is not supported"
    if any(facts.attr("output_padding", [])):
        return "non-zero output_padding is not supported"
    return None


def _prelu_slope(facts: NodeFacts) -> str | None:
    shape = facts.shape(1)
    if shape is None:
        return "slope shape unknown"
    size = 1
    for d in shape:
        size *= d or 0
    if size == 1 or (len(shape) == 3 and shape[1:] == (1, 1)):
        return None
    return f"slope shape {format_shape(shape)} must be [C, 1, 1] or have one element"


def _depth_to_space_dcr(facts: NodeFacts) -> str | None:
    return None if facts.attr("mode", "DCR") == "DCR" else "only DCR mode is supported"


def _depth_to_space_crd_static(facts: NodeFacts) -> str | None:
    shape = facts.shape(0)
    if facts.attr("mode", "DCR") == "CRD" and (shape is None or None in shape):
        return "CRD mode needs a fixed input shape"
    return None


def _both_fp32(facts: NodeFacts) -> str | None:
    if facts.dtype(0) != FLOAT or facts.dtype(1) != FLOAT:
        return "both inputs must be float32"
    return None


def _grid_sample(facts: NodeFacts) -> str | None:
    if facts.attr("mode", "linear") not in ("linear", "bilinear"):
        return "only linear mode is supported"
    if facts.attr("padding_mode", "zeros") == "reflection" and not facts.attr("align_corners", 0):
        return "padding_mode=reflection with align_corners=0 is not supported"
    return None


def _where_branches_float(facts: NodeFacts) -> str | None:
    for i in (1, 2):
        if facts.dtype(i) not in _ML_FLOATS:
            return "X/Y must be float or float16"
    return None


def _and_bool(facts: NodeFacts) -> str | None:
    return None if facts.dtype(0) == BOOL and facts.dtype(1) == BOOL else "both inputs must be bool"


_SRC = "onnxruntime/core/providers/coreml/builders/impl/"


def _rules(neural_network: bool) -> tuple[Rule, ...]:
    floats = _NN_FLOATS if neural_network else _ML_FLOATS
    f = _first_input_dtype(floats)
    with_ints = input_dtype(0, floats + (INT32, INT64))

    def rule(op: str, *checks: Check, src: str, **kw) -> Rule:
        return Rule(op, checks, source=_SRC + src, **kw)

    common = [
        *(rule(op, f, src="activation_op_builder.cc") for op in ("Sigmoid", "Tanh", "Relu", "LeakyRelu")),
        *(rule(op, f, src="binary_op_builder.cc") for op in ("Add", "Sub", "Mul", "Div")),
        rule("Pow", _both_fp32, src="binary_op_builder.cc"),
        *(rule(op, f, input_rank(0, (4,)), src="pool_op_builder.cc")
          for op in ("AveragePool", "MaxPool", "GlobalAveragePool", "GlobalMaxPool")),
        # reduction_op_builder.cc: Sum and Mean in both formats (NeuralNetwork refuses Max/Min/Prod),
        # `axes` given as an input must be a constant initializer.
        *(rule(op, f, optional_const_input(1, "axes"), src="reduction_op_builder.cc") for op in ("ReduceSum", "ReduceMean")),
        rule("ArgMax", f, src="argmax_op_builder.cc"),
        rule("Cast", src="cast_op_builder.cc"),
        rule("Clip", f, optional_const_input(1, "min"), optional_const_input(2, "max"), src="clip_op_builder.cc"),
        rule("Concat", with_ints if not neural_network else f, src="concat_op_builder.cc"),
        rule("Gemm", f, const_input(1, "B"), src="gemm_op_builder.cc"),
        rule("Reciprocal", f, src="unary_op_builder.cc"),
        rule("Sqrt", f, src="unary_op_builder.cc"),
        rule("Reshape", with_ints, _reshape_shape_constant, src="reshape_op_builder.cc"),
        rule("Resize", f, _resize_rule(neural_network), src="resize_op_builder.cc"),
        rule("Shape", _shape_full, src="shape_op_builder.cc"),
        rule("Slice", with_ints, _slice_inputs_constant, src="slice_op_builder.cc"),
        rule("Softmax", f, src="softmax_op_builder.cc"),
        # Split: opset >= 13 only until 1.26; the attribute form (opset < 13) from 1.27 (PR #28270).
        rule("Split", f, _split_rule(attribute_form=False), min_opset=13, until="1.27", src="split_op_builder.cc"),
        rule("Split", f, _split_rule(attribute_form=True), since="1.27", src="split_op_builder.cc"),
        rule("Squeeze", with_ints, _AXES_CONSTANT, src="squeeze_op_builder.cc"),
        rule("Transpose", with_ints, src="transpose_op_builder.cc"),
        # Gather: data float (float16 in MLProgram) or int64, not int32 (HasSupportedInputsImpl);
        # scalar indices from 1.27 (PR #28278).
        rule("Gather", input_dtype(0, floats + (INT64,)), _gather_rule(scalar_indices=False), until="1.27",
             src="gather_op_builder.cc"),
        rule("Gather", input_dtype(0, floats + (INT64,)), _gather_rule(scalar_indices=True), since="1.27",
             src="gather_op_builder.cc"),
    ]
    if neural_network:
        return tuple(common) + (
            rule("PRelu", f, const_input(1, "slope"), _prelu_slope, src="activation_op_builder.cc"),
            rule("Unsqueeze", with_ints, _AXES_CONSTANT, src="squeeze_op_builder.cc"),
            rule("BatchNormalization", f, src="batch_norm_op_builder.cc"),
            rule("Conv", f, input_rank(0, (3, 4)), const_input(1, "W"), optional_const_input(2, "B"),
                 src="conv_op_builder.cc"),
            rule("DepthToSpace", f, _depth_to_space_dcr, src="depthtospace_op_builder.cc"),
            rule("Flatten", f, src="flatten_op_builder.cc"),
            rule("LRN", f, src="LRN_op_builder.cc"),
            rule("MatMul", f, const_input(1, "B"), src="gemm_op_builder.cc"),
            rule("Pad", f, _pad_rule(("constant",), neural_network=True), min_opset=11, src="pad_op_builder.cc"),
        )
    ml = tuple(common) + (
        rule("PRelu", f, src="activation_op_builder.cc"),
        rule("Unsqueeze", with_ints, _AXES_CONSTANT, src="squeeze_op_builder.cc"),
        *(rule(op, f, src="activation_op_builder.cc") for op in ("Gelu", "Elu", "HardSigmoid", "Softplus")),
        *(rule(op, f, src="unary_op_builder.cc") for op in ("Erf", "Round", "Exp", "Cos", "Sin", "Ceil")),
        rule("Max", f, src="binary_op_builder.cc"),
        rule("ReduceMax", f, optional_const_input(1, "axes"), src="reduction_op_builder.cc"),
        rule("Conv", f, input_rank(0, (3, 4)), optional_const_input(2, "B"), src="conv_op_builder.cc"),
        rule("ConvTranspose", f, const_input(1, "W"), optional_const_input(2, "B"), _conv_transpose_rule,
             src="convtranspose_op_builder.cc"),
        rule("DepthToSpace", f, _depth_to_space_crd_static, src="depthtospace_op_builder.cc"),
        rule("GatherND", _gather_nd_rule, src="gather_nd_op_builder.cc"),
        rule("GridSample", f, input_rank(0, (4,)), _grid_sample, src="gridsample_op_builder.cc"),
        *(rule(op, f, src="normalization_op_builder.cc")
          for op in ("GroupNormalization", "InstanceNormalization", "LayerNormalization")),
        rule("Identity", src="identity_op_builder.cc"),
        rule("MatMul", f, src="gemm_op_builder.cc"),
        rule("Tile", f, input_rank(0, (1, 2, 3, 4, 5)), src="tile_op_builder.cc"),
        rule("Where", _where_branches_float, src="where_op_builder.cc"),
        rule("And", _and_bool, src="logical_op_builder.cc"),
        # The builder's history, as a field: constant only up to 1.25, reflect from 1.26 (PR #28073).
        rule("Pad", f, _pad_rule(("constant",), neural_network=False), min_opset=11, until="1.26",
             src="pad_op_builder.cc"),
        rule("Pad", f, _pad_rule(("constant", "reflect"), neural_network=False), min_opset=11, since="1.26",
             src="pad_op_builder.cc"),
    )
    return tuple(_with_ml_since(r) for r in ml)


# First ONNX Runtime release whose MLProgram format takes each op, where that is after 1.20 (the
# oldest release profiled). Read from the released macOS arm64 wheels of 1.20-1.32 (the builder
# classes and log strings compiled into the CoreML EP, and the coreml_supported_mlprogram_ops.md
# list each wheel ships), so a change merged upstream counts from the release that contains it.
# Ops not listed here are taken from 1.20 on. docs/ep-rules.md has the same table.
ML_SINCE: dict[str, tuple[str, str]] = {
    # 1.21: new MIL lowerings (gelu, erf, round, maximum, reduce_*, softmax, expand_dims/squeeze,
    # shape, cast, prelu) and the normalization builder; PR #22480 ("ML Program more ops (2/N)")
    # for the norms, the others not attributed to one PR.
    **{op: ("1.21", "PR #22480 and others") for op in (
        "Gelu", "Erf", "Round", "Max", "ReduceMean", "ReduceMax", "ReduceSum", "ArgMax", "Cast", "Softmax",
        "Squeeze", "Unsqueeze", "Shape", "PRelu", "GroupNormalization", "InstanceNormalization",
        "LayerNormalization")},
    "Gather": ("1.22", "MLProgram gather lowering; PR not identified"),
    **{op: ("1.24", "supported-ops list; PR not identified") for op in ("Elu", "Exp", "Softplus")},
    "HardSigmoid": ("1.26", "PR not identified"),
    **{op: ("1.27", "PR #28293") for op in ("Identity", "Ceil", "Tile")},
    **{op: ("1.27", "supported-ops list; PR not identified") for op in ("Cos", "Sin")},
    "GatherND": ("1.27", "PR #28598"),
    **{op: ("1.28", "PR #28597") for op in ("Where", "And")},
}


def _with_ml_since(rule: Rule) -> Rule:
    first = ML_SINCE.get(rule.op)
    if first is None or (rule.since and parse_version(rule.since) >= parse_version(first[0])):
        return rule
    return replace(rule, since=first[0])


MLPROGRAM = Profile(
    name="CoreML MLProgram",
    ep=EP,
    rules=_rules(neural_network=False),
    node_checks=(_inputs_supported,),
    max_rank=MAX_RANK,
    group=ort_partition_groups,
    description="CoreML EP with ModelFormat=MLProgram (macOS 12+/iOS 15+)",
)

NEURALNETWORK = Profile(
    name="CoreML NeuralNetwork",
    ep=EP,
    rules=_rules(neural_network=True),
    node_checks=(_inputs_supported,),
    max_rank=MAX_RANK,
    group=ort_partition_groups,
    description="CoreML EP with ModelFormat=NeuralNetwork",
)
