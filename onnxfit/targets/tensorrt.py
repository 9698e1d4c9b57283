"""TensorRT EP support profile (`tensorrt`): a conservative estimate, not checked against a real EP.

The TensorRT EP hands ONNX Runtime's graph to TensorRT's ONNX parser (onnx/onnx-tensorrt) and
takes the pieces the parser accepts; the rest falls to the CUDA EP (or the CPU). What is known of
the parser's limits (onnx-tensorrt docs/operators.md for TensorRT 10, opsets 9-20):

1. ops the parser has no importer for (the "N" rows: sequences, strings, random sampling
   besides RandomNormal/Uniform, integer convolutions and matmuls of dynamic quantization,
   Unique, Det, DFT/STFT, Col2Im, ai.onnx.ml);
2. ops ONNX Runtime's TensorRT EP leaves out by default (`trt_op_types_to_exclude`:
   NonMaxSuppression, NonZero, RoiAlign): TensorRT runs them slower than the CUDA EP does;
3. float64 and string tensors (TensorRT casts double down where it can; counted as unsupported
   here, so the estimate errs toward more partitions);
4. opsets outside 9-20.

The supported nodes are grouped like ORT groups them (`ort_partition_groups`); each group is one
TensorRT engine. The onnxruntime-gpu build this project measured with ships the TensorRT EP but
not TensorRT's libraries, so unlike `cuda` this profile has no real placement to agree with:
take its figure as an upper bound on what TensorRT takes whole.
"""

from __future__ import annotations

from dataclasses import dataclass

from onnx import TensorProto

from onnxfit.targets.support import NodeFacts, Profile, Verdict
from onnxfit.versions import Version

__all__ = ["TENSORRT"]

EP = "TensorrtExecutionProvider"

_NO_IMPORTER = frozenset("""
Bernoulli BitShift ConcatFromSequence ConvInteger Col2Im DFT Det DynamicQuantizeLinear ImageDecoder MatMulInteger
MelWeightMatrix Multinomial Optional OptionalGetElement OptionalHasElement QLinearConv QLinearMatMul RegexFullMatch
SequenceAt SequenceConstruct SequenceEmpty SequenceErase SequenceInsert SequenceLength SequenceMap SplitToSequence
STFT StringConcat StringNormalizer StringSplit TfIdfVectorizer Unique
""".split())
_EXCLUDED_BY_DEFAULT = frozenset({"NonMaxSuppression", "NonZero", "RoiAlign"})
_OPSETS = (9, 20)
_NO_TENSORRT_TYPES = frozenset({TensorProto.DOUBLE, TensorProto.STRING, TensorProto.COMPLEX64, TensorProto.COMPLEX128})


def _reason(facts: NodeFacts) -> str | None:
    if facts.domain:
        return f"TensorRT's ONNX parser has no importer for {facts.domain}:{facts.op}"
    if facts.op in _NO_IMPORTER:
        return f"TensorRT's ONNX parser has no importer for {facts.op}"
    if facts.op in _EXCLUDED_BY_DEFAULT:
        return f"ONNX Runtime's TensorRT EP leaves {facts.op} to the CUDA EP by default (trt_op_types_to_exclude)"
    opset = facts.graph.opsets.get("", 0)
    if not _OPSETS[0] <= opset <= _OPSETS[1]:
        return f"opset {opset} is outside what TensorRT 10's parser reads ({_OPSETS[0]}-{_OPSETS[1]})"
    for name in (*facts.inputs, *facts.node.output):
        dtype = facts.graph.dtype(name) if name else None
        if dtype in _NO_TENSORRT_TYPES:
            return f"'{name}' is {TensorProto.DataType.Name(dtype).lower()}, which TensorRT does not compute in"
    return None


@dataclass(frozen=True)
class ParserProfile(Profile):
    """An EP whose support is a parser's: one predicate over every node."""

    def judge(self, facts: NodeFacts, version: Version) -> Verdict:
        reason = _reason(facts)
        op = f"{facts.domain}:{facts.op}" if facts.domain else facts.op
        return Verdict(facts.index, facts.name, op, not reason, reason or "")


TENSORRT = ParserProfile(
    name="TensorRT (conservative)",
    ep=EP,
    rules=(),
    description="TensorRT EP: TensorRT 10 ONNX parser limits, ORT's default op exclusions; not checked on a real EP",
)
