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

Why Pad(reflect) is versioned: up to ONNX Runtime 1.25 the MLProgram Pad builder accepted only
`mode="constant"`; PR #28073 (released in 1.26) added `reflect`, mapping it to MIL `pad` with
mode "reflect". A reflect Pad therefore splits an MLProgram graph on ORT <= 1.25 and not on
>= 1.26, and the estimate has to know which release the user deploys (`--ort-version`). The
NeuralNetwork builder accepts `constant` only, on every release; `edge` and `wrap` are never
accepted. onnxfit's reflect-pad pass exists for the releases and formats that refuse reflect.

Where ORT's usability checker (onnxruntime.tools.mobile_helpers.usability_checker, driven by
coreml_supported_{mlprogram,neuralnetwork}_ops.md) disagrees with this profile:
1. MLProgram Pad: the .md has no Pad row (the list lags pad_op_builder.cc, which supports
   MLProgram); the checker calls every Pad unsupported, this profile applies the builder's rules.
2. MLProgram Gather: no row in the .md either; gather_op_builder.cc supports MLProgram and rejects
   scalar (rank-0) indices (upstream issue #28180). The checker calls every Gather unsupported.
3. The checker only looks at op types (plus rank <= 5 and, with fixed sizes required, static
   shapes); it does not check the caveats it prints (constant inputs, modes, 2D-only pools and
   convs, dtypes). This profile checks them, so a node the checker counts as supported can be
   unsupported here, with the reason listed.
4. The checker requires every input of a node to have a fixed shape (it runs with
   require_fixed_input_sizes=True); the CoreML EP itself accepts symbolic dims by default.
5. NeuralNetwork Unsqueeze: the .md has Squeeze but no Unsqueeze row; op_builder_factory.cc
   registers the Squeeze builder for both, so Unsqueeze is supported here.
6. The checker counts an omitted optional input ('' as in Resize(X, '', '', sizes)) as a value
   without a fixed shape and rejects the node; ORT's IsInputSupported skips inputs that do not
   exist. (Applies to its NNAPI check too.)
7. The checker links producers to consumers in one pass over graph.node, so it needs the nodes in
   topological order; ORT's C++ builds edges for any order. onnxfit groups over real edges.
The fidelity tests compare on models where none of these apply, and test each one apart.
"""

from __future__ import annotations

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
    attr_in,
    const_input,
    format_shape,
    input_dtype,
    input_rank,
    optional_const_input,
    ort_partition_groups,
)

__all__ = ["MLPROGRAM", "NEURALNETWORK", "MAX_DIM", "pad_facts"]

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
        if len(shape) > MAX_RANK:
            return f"input '{name}' has rank {len(shape)} (CoreML supports rank <= {MAX_RANK})"
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


def pad_facts(facts: NodeFacts) -> tuple[list[int], list[int], list[int]] | str:
    """Decode Pad-11+ inputs into (begin, end, axes) per padded axis, or a rejection reason."""
    shape = facts.shape(0)
    if shape is None:
        return "input shape is unknown"
    rank = len(shape)
    if not facts.is_const(1):
        return "input 'pads' must be a constant initializer"
    pads = facts.value(1)
    if pads is None:
        return "input 'pads' could not be read"
    pads = [int(p) for p in pads.reshape(-1)]
    if any(p < 0 for p in pads):
        return f"negative pads {pads} are not supported"
    if facts.input(3):
        if not facts.is_const(3):
            return "input 'axes', if given, must be a constant initializer"
        axes = [int(a) % rank for a in facts.value(3).reshape(-1)]
    else:
        axes = list(range(rank))
    if len(pads) != 2 * len(axes):
        return f"pads {pads} do not match {len(axes)} axes"
    return pads[: len(axes)], pads[len(axes) :], axes


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


# Split-13+ takes its sizes, Squeeze/Unsqueeze-13+ their axes, as input 1; before that they are
# attributes, which are always constant.
_SPLIT_SIZES_CONSTANT = optional_const_input(1, "split")
_AXES_CONSTANT = optional_const_input(1, "axes")


# ------------------------------------------------------------------------ other op checks


def _gather_indices_not_scalar(facts: NodeFacts) -> str | None:
    shape = facts.shape(1)
    if shape is not None and len(shape) == 0:
        return "scalar (rank-0) indices are not supported (onnxfit's scalar-gather pass widens them)"
    return None


def _split_axis_known(facts: NodeFacts) -> str | None:
    if facts.input(1) or "split" in facts.attrs:
        return None
    shape = facts.shape(0)
    axis = facts.attr("axis", 0)
    if shape is None or shape[axis % len(shape)] is None:
        return "equal split of an axis whose size is unknown"
    return None


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
    if not facts.is_const(1):
        return "input 'shape' must be a constant initializer"
    shape = facts.value(1)
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
        rule("ReduceSum", f, src="reduction_op_builder.cc"),
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
        rule("Split", f, _SPLIT_SIZES_CONSTANT, _split_axis_known, src="split_op_builder.cc"),
        rule("Squeeze", with_ints, _AXES_CONSTANT, src="squeeze_op_builder.cc"),
        rule("Transpose", with_ints, src="transpose_op_builder.cc"),
        rule("Gather", input_dtype(0, floats + (INT32, INT64)), _gather_indices_not_scalar,
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
    return tuple(common) + (
        rule("PRelu", f, src="activation_op_builder.cc"),
        rule("Unsqueeze", with_ints, _AXES_CONSTANT, src="squeeze_op_builder.cc"),
        *(rule(op, f, src="activation_op_builder.cc") for op in ("Gelu", "Elu", "HardSigmoid", "Softplus")),
        *(rule(op, f, src="unary_op_builder.cc") for op in ("Erf", "Round", "Exp", "Cos", "Sin", "Ceil")),
        rule("Max", f, src="binary_op_builder.cc"),
        rule("ReduceMean", f, src="reduction_op_builder.cc"),
        rule("ReduceMax", f, src="reduction_op_builder.cc"),
        rule("Conv", f, input_rank(0, (3, 4)), optional_const_input(2, "B"), src="conv_op_builder.cc"),
        rule("ConvTranspose", f, const_input(1, "W"), optional_const_input(2, "B"), _conv_transpose_rule,
             src="convtranspose_op_builder.cc"),
        rule("DepthToSpace", f, _depth_to_space_crd_static, src="depthtospace_op_builder.cc"),
        rule("GatherND", f, attr_in("batch_dims", (0,), 0), src="gather_nd_op_builder.cc"),
        rule("GridSample", f, input_rank(0, (4,)), _grid_sample, src="gridsample_op_builder.cc"),
        *(rule(op, f, src="norm_ln_in_gn_op_builder.cc")
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


MLPROGRAM = Profile(
    name="CoreML MLProgram",
    ep=EP,
    rules=_rules(neural_network=False),
    node_checks=(_inputs_supported,),
    group=ort_partition_groups,
    description="CoreML EP with ModelFormat=MLProgram (macOS 12+/iOS 15+)",
)

NEURALNETWORK = Profile(
    name="CoreML NeuralNetwork",
    ep=EP,
    rules=_rules(neural_network=True),
    node_checks=(_inputs_supported,),
    group=ort_partition_groups,
    description="CoreML EP with ModelFormat=NeuralNetwork",
)
