"""The MobileFaceNet architectures of EFM3 and their layer list, torch-free.

:data:`ARCHS` holds the four shipped sizes; :func:`plan` turns an :class:`Arch` into the layer
list in EFM3 file order. The file format (:mod:`onnxfit.exporters.efm3`) and the torch model
(:mod:`onnxfit.exporters.mobilefacenet`) are both built from this module and import nothing
of each other's here, so neither can drift from the layout and the numpy engine never needs
torch. Choices 1, 2 and 4 of :mod:`onnxfit.exporters.efm3` (channel rounding, stage channels,
the GDConv kernel) are made here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ARCHS",
    "BASE_STAGES",
    "BN_EPS",
    "INPUT_SIZE",
    "L2_EPS",
    "Arch",
    "Block",
    "Layer",
    "Plan",
    "Stage",
    "feature_size",
    "make_arch",
    "plan",
    "scale_channels",
    "tensor_specs",
]

BN_EPS = 1e-5
INPUT_SIZE = 112
L2_EPS = 1e-12



@dataclass(frozen=True)
class Stage:
    """One stage of inverted-residual blocks: expansion ``t``, ``n`` blocks, first stride ``s``."""

    t: int
    n: int
    s: int


@dataclass(frozen=True)
class Arch:
    """What the arch header and its JSON copy describe."""

    name: str
    width: float
    stem_channels: int
    block_channels: int
    final_channels: int
    embedding: int
    stages: tuple[Stage, ...]
    stem_kernel: int = 3
    stem_stride: int = 2
    gdc_kernel: int = 7

    @property
    def channels(self) -> tuple[int, int, int]:
        return self.stem_channels, self.block_channels, self.final_channels

    def to_json_dict(self) -> dict[str, Any]:
        """The JSON copy, keys in the contract's order."""
        return {
            "name": self.name,
            "width_mult": self.width,
            "stem_channels": self.stem_channels,
            "block_channels": self.block_channels,
            "final_channels": self.final_channels,
            "embedding_dim": self.embedding,
            "gdc_kernel": self.gdc_kernel,
            "stages": [{"t": s.t, "n": s.n, "s": s.s} for s in self.stages],
        }


BASE_STAGES = (Stage(2, 5, 2), Stage(4, 1, 2), Stage(2, 6, 1), Stage(4, 1, 2), Stage(2, 2, 1))


def scale_channels(base: int, width: float) -> int:
    """``max(8, round(base * width / 8) * 8)``, half away from zero like C ``roundf``.

    Choice 1 of :mod:`onnxfit.exporters.efm3`.
    """
    return max(8, math.floor(base * width / 8 + 0.5) * 8)


def make_arch(name: str, width: float, embedding: int) -> Arch:
    return Arch(
        name=name,
        width=width,
        stem_channels=scale_channels(64, width),
        block_channels=scale_channels(128, width),
        final_channels=scale_channels(512, width),
        embedding=embedding,
        stages=BASE_STAGES,
    )


ARCHS: dict[str, Arch] = {
    "nano": make_arch("nano", 0.36, 256),
    "tiny": make_arch("tiny", 0.55, 512),
    "standard": make_arch("standard", 0.90, 512),
    "xs": make_arch("xs", 1.35, 512),
}


@dataclass(frozen=True)
class Layer:
    """One conv + BatchNorm (+ PReLU) unit; ``name`` is its torch module path."""

    name: str
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    padding: int
    groups: int
    prelu: bool

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        return (self.out_channels, self.in_channels // self.groups, self.kernel, self.kernel)

    def tensor_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        """This layer's tensors in file order, named like the torch model's state_dict."""
        channel = (self.out_channels,)
        shapes = [(f"{self.name}.conv.weight", self.weight_shape)]
        shapes += [(f"{self.name}.bn.{field}", channel) for field in ("weight", "bias", "running_mean", "running_var")]
        if self.prelu:
            shapes.append((f"{self.name}.act.weight", channel))
        return shapes


@dataclass(frozen=True)
class Block:
    expand: Layer
    dw: Layer
    project: Layer
    residual: bool  # stride 1 and input channels == output channels


@dataclass(frozen=True)
class Plan:
    stem: Layer
    dw_stem: Layer
    stages: tuple[tuple[Block, ...], ...]
    final_conv: Layer
    gdconv: Layer
    embed_proj: Layer

    def layers(self) -> list[Layer]:
        """Every layer in file order."""
        inner = [layer for stage in self.stages for block in stage for layer in (block.expand, block.dw, block.project)]
        return [self.stem, self.dw_stem, *inner, self.final_conv, self.gdconv, self.embed_proj]


def plan(arch: Arch) -> Plan:
    """The layer list of the contract, for ``arch``."""
    stem_c, block_c, final_c = arch.channels
    stem = Layer("stem", 3, stem_c, arch.stem_kernel, arch.stem_stride, arch.stem_kernel // 2, 1, True)
    dw_stem = Layer("dw_stem", stem_c, stem_c, 3, 1, 1, stem_c, True)
    stages = []
    channels = stem_c
    for i, stage in enumerate(arch.stages):
        out = stem_c if i == 0 else block_c
        blocks = []
        for j in range(stage.n):
            stride = stage.s if j == 0 else 1
            hidden = channels * stage.t
            name = f"stages.{i}.{j}"
            blocks.append(Block(
                expand=Layer(f"{name}.expand", channels, hidden, 1, 1, 0, 1, True),
                dw=Layer(f"{name}.dw", hidden, hidden, 3, stride, 1, hidden, True),
                project=Layer(f"{name}.project", hidden, out, 1, 1, 0, 1, False),
                residual=stride == 1 and channels == out,
            ))
            channels = out
        stages.append(tuple(blocks))
    final_conv = Layer("final_conv", channels, final_c, 1, 1, 0, 1, True)
    gdconv = Layer("gdconv", final_c, final_c, arch.gdc_kernel, 1, 0, final_c, False)
    embed_proj = Layer("embed_proj", final_c, arch.embedding, 1, 1, 0, 1, False)
    return Plan(stem, dw_stem, tuple(stages), final_conv, gdconv, embed_proj)


def tensor_specs(arch: Arch) -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) of every tensor in file order."""
    return [spec for layer in plan(arch).layers() for spec in layer.tensor_shapes()]


def feature_size(arch: Arch, size: int = INPUT_SIZE) -> int:
    """Spatial size that reaches the GDConv for a ``size`` x ``size`` input."""
    size = (size + 2 * (arch.stem_kernel // 2) - arch.stem_kernel) // arch.stem_stride + 1
    for stage in arch.stages:
        size = (size + 2 - 3) // stage.s + 1  # the first block's 3x3 depthwise, padding 1
    return size
