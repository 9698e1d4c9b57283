"""Target presets: for each deployment EP, the passes that remove what it cannot take.

A target is data: the EP it stands for and the passes `optimize --target` runs by default.
`--dynamic-batch` adds `dynamic-batch`; `--passes` replaces the list.

Why these lists (see the profiles in this package and docs/ep-rules.md for the per-op rules):
- CoreML (MLProgram, NeuralNetwork) and NNAPI reject Pad edge/wrap (and reflect before ORT 1.26 /
  always for NeuralNetwork), scalar Gather indices and opset-11 Splits (CoreML before ORT 1.27),
  Split forms with non-constant sizes, and builders refuse ops whose shape inputs are computed at
  run time: all passes apply; scalar-gather and split-to-slice leave each node the target's
  profile says the EP takes at `--ort-version` (docs/ep-rules.md). Neither has
  an LSTM/GRU builder: a one-step recurrence (streaming VADs) becomes its cell math (rnn-step).
  Their builders also refuse any input of unknown rank, but infer-shapes is not in their lists:
  the shapes it adds are symbolic, the Reshape builder still refuses data of a symbolic shape, so
  more nodes on the EP came with more partitions on the zoo (ppocr_v4_rec 4 -> 7, SLANet 4 -> 5),
  and with `--input-shape` fold-shapes already infers everything. `--passes` adds it. MLProgram has no BatchNormalization builder and ONNX
  Runtime fuses BN only into a Conv: fold-batchnorm folds the rest (NeuralNetwork and NNAPI have a
  BN builder, and take the folded form as well).
- NNAPI takes rank <= 4 and CoreML rank <= 5 (the profiles' max_rank): lower-rank runs their
  element-wise regions above it on fewer dims, the axes of size 1 dropped (tf2onnx's
  time-distributed layers are rank 5).
- Every target: weights that old exporters list as graph inputs are not constant to ONNX Runtime
  (IR >= 4), so builders that need constant weights refuse their nodes and no fusion touches
  them: initializer-inputs makes them constants (exact).
- OpenVINO, CUDA, TensorRT and CPU take Pad/Split/Gather as they are; folding shape chains still
  removes Shape->Gather round trips (TensorRT and CUDA pay a host sync for each).
"""

from __future__ import annotations

from dataclasses import dataclass

from onnxfit.errors import OnnxfitError

__all__ = ["MOBILE_TARGETS", "SIMPLIFICATION_RULES", "Target", "TARGETS", "auto_target", "get_target", "target_names"]


@dataclass(frozen=True)
class Target:
    name: str
    ep: str  # ONNX Runtime provider name
    passes: tuple[str, ...]
    description: str


# fold-shapes first: shape chains it folds need no scalar-gather or Split rewrites of their own.
# inline-if with it: fold-shapes inlines decided Ifs inside its fixpoint when inline-if is listed.
# initializer-inputs before all: weights listed as graph inputs are overridable, so neither the
# passes nor ONNX Runtime's own folding and fusions would treat them as constants.
# The simplification rules (docs/passes.md): they run in the pipeline's fixpoint rounds, after the
# shape chains are folded and decided Ifs inlined, before the EP rewrites see the graph.
_LEAN = ("fold-constants", "eliminate-noops", "dedupe-nodes", "reshape-chains", "reshape-own-shape", "slice-chains", "concat-chains",
         "split-reshapes", "transpose-chains", "transpose-to-reshape", "select-to-where", "constant-chains", "fold-into-conv",
         "matmul-add-to-gemm", "reduce-sum-to-matmul", "hard-swish", "native-functions", "merge-siblings")
SIMPLIFICATION_RULES = _LEAN
# Targets whose EPs lack If/Loop and run dynamic shapes on the CPU: a node they refuse is a CPU
# island between partitions, so rewrites there weigh partitions over node counts.
MOBILE_TARGETS = ("coreml", "coreml-nn", "nnapi")
# dense-conv-to-gemm joins the simplification rules' fixpoint rounds (the next listed), so that
# reshape-chains merges its Reshapes with the exporter's. Not on the mobile targets: its gain is
# measured on ONNX Runtime's CPU and CUDA kernels only.
_KERNEL = ("initializer-inputs", "fold-shapes", "inline-if", *_LEAN, "dense-conv-to-gemm", "fold-batchnorm")
# rnn-step after them: it needs the sequence length that fixed shapes and inlined branches reveal.
# fold-batchnorm after fold-shapes: BNs on folded or constant weights fold into the op before them.
# lower-rank after the simplification rules: it sees the final ops, and folds its Reshapes into the
# Reshapes next to each region, so none pairs up after the fixpoint group (FacePhys: none). Before
# reciprocal-to-div and reduce-sum-to-mean: an EP with a rank limit takes their ops on lowered values.
# gather-flat-indices after the simplification rules too: they turn the unit-axis Transpose between a
# sliding-window Gather and its Reshape into a Reshape merged into the next one (gtcrn_simple).
_MOBILE = ("initializer-inputs", "fold-shapes", "inline-if", *_LEAN, "fold-batchnorm", "rnn-step", "scalar-gather",
           "reflect-pad", "split-to-slice", "scatter-to-concat", "flatten-to-reshape", "floor-to-ceil", "neg-to-mul",
           "sum-to-add", "gather-flat-indices", "lower-rank", "reciprocal-to-div", "reduce-sum-to-mean")

TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        # MLProgram's Pad builder takes reflect from onnxruntime 1.26 (PR #28073).
        Target("coreml", "CoreMLExecutionProvider", _MOBILE, "CoreML EP, MLProgram format (macOS/iOS)"),
        Target("coreml-nn", "CoreMLExecutionProvider", _MOBILE, "CoreML EP, NeuralNetwork format"),
        Target("nnapi", "NnapiExecutionProvider", _MOBILE, "Android NNAPI EP"),
        Target("openvino", "OpenVINOExecutionProvider", _KERNEL, "OpenVINO EP"),
        Target("cuda", "CUDAExecutionProvider", _KERNEL, "CUDA EP"),
        Target("tensorrt", "TensorrtExecutionProvider", _KERNEL, "TensorRT EP"),
        Target("cpu", "CPUExecutionProvider", _KERNEL, "ONNX Runtime CPU"),
    )
}


def target_names() -> list[str]:
    return list(TARGETS)


def get_target(name: str) -> Target:
    if name not in TARGETS:
        raise OnnxfitError(f"unknown target '{name}'; valid targets: {', '.join(TARGETS)}")
    return TARGETS[name]


def auto_target(providers: list[str] | None = None) -> str:
    """The target for the EPs this onnxruntime has: CoreML, CUDA, TensorRT, OpenVINO, else CPU.

    CUDA goes before TensorRT: onnxruntime-gpu lists the TensorRT EP without shipping TensorRT,
    and TensorRT engines take minutes to build on first use; ``target="tensorrt"`` asks for it.
    """
    if providers is None:
        import onnxruntime  # deferred: naming a target must not cost onnxruntime's import

        providers = onnxruntime.get_available_providers()
    for provider, target in (("CoreMLExecutionProvider", "coreml"), ("CUDAExecutionProvider", "cuda"),
                             ("TensorrtExecutionProvider", "tensorrt"), ("OpenVINOExecutionProvider", "openvino")):
        if provider in providers:
            return target
    return "cpu"
