"""NNAPI EP support profile (`nnapi`).

Source: microsoft/onnxruntime onnxruntime/core/providers/nnapi/nnapi_builtin/
- builders/helper.cc: NNAPI has no dynamic shapes: every non-initializer input of a node must
  have a fully known shape; tensors of rank > 4 are not supported by most NNAPI operations.
- builders/impl/*_op_builder.cc and op_builder_factory.cc: the per-op rules below.
- nnapi_execution_provider.cc: partitions come from `CreateSupportedPartitions`
  (partitioning_utils.cc), replicated in support.ort_partition_groups.

Where ORT's usability checker (driven by nnapi_supported_ops.md) disagrees with this profile:
1. The checker checks op types and fixed shapes only; it prints but does not apply the caveats
   (constant weights, constant pads, 2D-only convs and pools, DCR-only DepthToSpace, constant
   Squeeze/Unsqueeze axes, Gather indices). This profile applies them.
2. The checker has no rank limit for NNAPI; this profile rejects inputs of rank > 4.
3. As for CoreML (targets/coreml.py, items 6 and 7): the checker treats an omitted optional input
   as dynamic-shaped, and needs graph.node in topological order.
The NNAPI EP is in no PyPI wheel, so its rules were read from the builder sources only; its
supported-ops list (nnapi_supported_ops.md) is the same in every release 1.20-1.32 and no rule here
is versioned. Gather takes scalar indices when they are constant (PR #16279, before 1.20): the
builder widens them and squeezes the result, so scalar-gather leaves those to the EP.
Not modelled: the builders' maximum opset (GetMaxSupportedOpSet), the Android API level of the
device (some ops need API 29+), and the NNAPI EP's `NNAPI_FLAG_CPU_DISABLED`/`CPU_ONLY` flags,
which change placement on the device only.
"""

from __future__ import annotations

from onnxfit.targets.support import (
    FLOAT,
    INT32,
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

__all__ = ["NNAPI"]

MAX_RANK = 4  # helper.cc: tensors of rank > 4 are not supported by most NNAPI operations


def _static_inputs(facts: NodeFacts) -> str | None:
    for i, name in enumerate(facts.inputs):
        if not name:
            continue
        shape = facts.shape(i)
        if shape is None:
            return f"input '{name}' has no shape information (rank unknown; NNAPI needs fixed shapes)"
        if None in shape:
            return f"input '{name}' has a dynamic shape {format_shape(shape)} (NNAPI needs fixed shapes)"
    return None


def _pad_constant(facts: NodeFacts) -> str | None:
    if facts.attr("mode", "constant") != "constant":
        return f"mode '{facts.attr('mode')}' is not supported (constant only)"
    if not facts.is_const(1):
        return "input 'pads' must be a constant initializer"
    if facts.input(2) and not facts.is_const(2):
        return "input 'constant_value' must be a constant initializer"
    pads = facts.value(1)
    if pads is not None and (pads < 0).any():
        return "negative pads are not supported"
    return None


def _gather_indices(facts: NodeFacts) -> str | None:
    if facts.dtype(1) != INT32 and not facts.is_const(1):
        return "indices must be constant unless they are int32"
    return None


def _gemm_b(facts: NodeFacts) -> str | None:
    if not facts.is_const(1) and not facts.attr("transB", 0):
        return "input B must be constant unless transB=1"
    return None


def _split_even(facts: NodeFacts) -> str | None:
    """split_op_builder.cc: NNAPI SPLIT makes equal pieces only. Given sizes must be constant, all
    equal and add up to the axis; without sizes (or with num_outputs) the count must divide it."""
    shape = facts.shape(0)
    axis = facts.attr("axis", 0)
    dim = None if shape is None else shape[axis % len(shape)]
    outputs = len(facts.node.output)
    if facts.input(1):
        if not facts.is_const(1):
            return "input 'split' must be a constant initializer"
        sizes = facts.value(1)
        if sizes is None:
            return "input 'split' could not be read"
        sizes = [int(v) for v in sizes.reshape(-1)]
        if sum(sizes) != dim:
            return f"split sizes {sizes} do not add up to the axis size {dim}"
        if len(set(sizes)) > 1:
            return f"unequal split sizes {sizes}: NNAPI splits evenly only"
        return None
    if facts.attr("num_outputs") is not None and (facts.attr("num_outputs") != outputs or dim is None
                                                   or facts.attr("num_outputs") > dim):
        return f"num_outputs={facts.attr('num_outputs')} must match the outputs and be <= the axis size"
    if dim is None or dim % outputs:
        return f"{outputs} splits must evenly divide the split axis"
    return None


# Squeeze/Unsqueeze-13+ take their axes as input 1; before that they are an attribute.
_AXES_CONSTANT = optional_const_input(1, "axes")


_SRC = "onnxruntime/core/providers/nnapi/nnapi_builtin/builders/impl/"


def _rules() -> tuple[Rule, ...]:
    f = input_dtype(0, (FLOAT,))

    def rule(op: str, *checks: Check, src: str, **kw) -> Rule:
        return Rule(op, checks, source=_SRC + src, **kw)

    elementwise = ("Abs", "Exp", "Floor", "Log", "Neg", "Sin", "Sqrt", "Relu", "Sigmoid", "Tanh", "Elu",
                   "LeakyRelu", "PRelu", "Identity")
    return (
        *(rule(op, f, src="unary_op_builder.cc") for op in elementwise),
        *(rule(op, f, src="binary_op_builder.cc") for op in ("Add", "Sub", "Mul", "Div", "Pow", "Max", "Min")),
        *(rule(op, f, input_rank(0, (4,)), src="pool_op_builder.cc")
          for op in ("AveragePool", "MaxPool", "GlobalAveragePool", "GlobalMaxPool")),
        rule("BatchNormalization", f, src="batchnorm_op_builder.cc"),
        rule("Cast", src="cast_op_builder.cc"),
        rule("Clip", f, optional_const_input(1, "min"), optional_const_input(2, "max"), src="clip_op_builder.cc"),
        rule("Concat", src="concat_op_builder.cc"),
        rule("Conv", f, input_rank(0, (4,)), const_input(1, "W"), optional_const_input(2, "B"),
             src="conv_op_builder.cc"),
        rule("DepthToSpace", f, attr_in("mode", ("DCR",), "DCR"), src="depthtospace_op_builder.cc"),
        rule("Flatten", f, src="flatten_op_builder.cc"),
        rule("Gather", _gather_indices, src="gather_op_builder.cc"),
        rule("Gemm", f, _gemm_b, src="gemm_op_builder.cc"),
        rule("LRN", f, src="LRN_op_builder.cc"),
        rule("MatMul", f, src="gemm_op_builder.cc"),
        rule("Pad", f, _pad_constant, min_opset=11, src="pad_op_builder.cc"),
        rule("ReduceMean", f, src="reduction_op_builder.cc"),
        rule("Reshape", const_input(1, "shape"), src="reshape_op_builder.cc"),
        rule("Resize", f, input_rank(0, (4,)), src="resize_op_builder.cc"),
        rule("Slice", src="slice_op_builder.cc"),
        rule("Softmax", f, src="softmax_op_builder.cc"),
        # GetMinSupportedOpSet is 13: the attribute form (opset < 13) always falls back.
        rule("Split", _split_even, min_opset=13, src="split_op_builder.cc"),
        rule("Squeeze", _AXES_CONSTANT, src="squeeze_op_builder.cc"),
        rule("Unsqueeze", _AXES_CONSTANT, src="unsqueeze_op_builder.cc"),
        rule("Transpose", src="transpose_op_builder.cc"),
    )


NNAPI = Profile(
    name="NNAPI",
    ep="NnapiExecutionProvider",
    rules=_rules(),
    node_checks=(_static_inputs,),
    group=ort_partition_groups,
    description="Android NNAPI EP",
    max_rank=MAX_RANK,
)
