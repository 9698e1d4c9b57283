"""Target presets: for each deployment EP, the passes that remove what it cannot take.

A target is data: the EP it stands for and the passes `optimize --target` runs by default.
`--dynamic-batch` adds `dynamic-batch`; `--passes` replaces the list.

Why these lists (see ../targets/*.py profiles and EP_RULES.md for the per-op rules):
- CoreML (MLProgram, NeuralNetwork) and NNAPI reject Pad edge/wrap (and reflect before ORT 1.26 /
  always for NeuralNetwork), scalar Gather indices, Split forms with non-constant sizes, and
  builders refuse ops whose shape inputs are computed at run time: all passes apply.
- OpenVINO, CUDA, TensorRT and CPU take Pad/Split/Gather as they are; folding shape chains still
  removes Shape->Gather round trips (TensorRT and CUDA pay a host sync for each).
"""

from __future__ import annotations

from dataclasses import dataclass

from onnxfit.errors import OnnxfitError

__all__ = ["Target", "TARGETS", "get_target", "target_names"]


@dataclass(frozen=True)
class Target:
    name: str
    ep: str  # ONNX Runtime provider name
    passes: tuple[str, ...]
    description: str


_MOBILE = ("scalar-gather", "reflect-pad", "split-to-slice", "fold-shapes")

TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("coreml", "CoreMLExecutionProvider", _MOBILE, "CoreML EP, MLProgram format (macOS/iOS)"),
        Target("coreml-nn", "CoreMLExecutionProvider", _MOBILE, "CoreML EP, NeuralNetwork format"),
        Target("nnapi", "NnapiExecutionProvider", _MOBILE, "Android NNAPI EP"),
        Target("openvino", "OpenVINOExecutionProvider", ("fold-shapes",), "OpenVINO EP"),
        Target("cuda", "CUDAExecutionProvider", ("fold-shapes",), "CUDA EP"),
        Target("tensorrt", "TensorrtExecutionProvider", ("fold-shapes",), "TensorRT EP"),
        Target("cpu", "CPUExecutionProvider", ("fold-shapes",), "ONNX Runtime CPU"),
    )
}


def target_names() -> list[str]:
    return list(TARGETS)


def get_target(name: str) -> Target:
    if name not in TARGETS:
        raise OnnxfitError(f"unknown target '{name}'; valid targets: {', '.join(TARGETS)}")
    return TARGETS[name]
