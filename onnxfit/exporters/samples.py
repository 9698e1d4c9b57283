"""The sample models in ``weights/``: small look-alikes of the face models onnxfit is made for.

Each builder makes a torch module with seeded random weights and exports it with torch's
TorchScript exporter (``dynamo=False``), the exporter the real models were made with, so the
graphs carry the same op patterns the optimizer passes exist for:

1. ``inswapper_like``: InsightFace inswapper_128 (face swap generator). Reflection pads
   everywhere (reflect-pad), AdaIN modulation from the source identity latent, and the unused
   512x512 ``emap`` initializer that InsightFace reads as ``graph.initializer[-1]``.
2. ``scrfd_like``: InsightFace SCRFD face detector. Three FPN levels whose top-down resize
   sizes come from Shape->Gather chains (fold-shapes) and heads that flatten the batch with
   ``Reshape [-1, k]`` (dynamic-batch); 9 outputs like the real one.
3. ``gfpgan_like``: GFPGAN face restorer. SFT conditions split with ``Split`` (split-to-slice)
   and a StyleGAN style code read per layer with ``style[:, i]``, a scalar Gather (scalar-gather).

``width`` scales the channels: the defaults give files of a few MB for ``weights/``; a benchmark
raises it to get real-model sizes (``build_inswapper_like(width=256)`` is 552 MB like
inswapper_128, ``build_gfpgan_like(width=128, size=512)`` 341 MB like GFPGAN v1.4; see
``weights/README.md``). Builders return the ``onnx.ModelProto``; ``build_samples`` writes files.

Run ``python -m onnxfit.exporters.samples weights/`` to (re)build the committed samples.
"""

from __future__ import annotations

import argparse
import io
import logging
import math
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper
from torch import nn

from onnxfit.model import save_model

__all__ = [
    "OPSET",
    "IR_VERSION",
    "SAMPLES",
    "build_inswapper_like",
    "build_scrfd_like",
    "build_gfpgan_like",
    "build_samples",
    "main",
]

log = logging.getLogger(__name__)

OPSET = 17
# IR 8 is the lowest IR that allows opset 17 and one every onnxruntime build since 1.10 reads;
# pinned so that a newer torch/onnx writing a newer IR does not change the committed files.
IR_VERSION = 8
LATENT = 512  # inswapper's identity latent (ArcFace embedding projected by emap)
STRIDES = (8, 16, 32)  # SCRFD's FPN levels


# ---------------------------------------------------------------------------------- export


def torchscript_export(
    module: nn.Module,
    args: tuple[torch.Tensor, ...],
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic_axes: dict[str, dict[int, str]] | None = None,
) -> onnx.ModelProto:
    """Export with the TorchScript exporter at opset 17 and return the model (IR pinned).

    The exporter the real face models were made with; also used for the EFM3 ONNX twin.
    """
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of dynamo, and the tracer warns about
        # shapes turned into constants; both are expected here and only add noise to test logs.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        # Reflection pads export as a Slice with step -1 that the exporter cannot fold; it says so.
        warnings.filterwarnings("ignore", message="Constant folding", category=UserWarning)
        torch.onnx.export(
            module.eval(),
            args,
            buffer,
            dynamo=False,
            opset_version=OPSET,
            input_names=list(input_names),
            output_names=list(output_names),
            dynamic_axes=dynamic_axes,
            do_constant_folding=True,
        )
    model = onnx.load_from_string(buffer.getvalue())
    model.ir_version = IR_VERSION
    return model


def _seeded(seed: int, make: Callable[[], nn.Module]) -> nn.Module:
    """Build a module under a fixed seed without disturbing the caller's global torch RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make()


def _set_dims(value_info: onnx.ValueInfoProto, dims: Sequence[int]) -> None:
    shape = value_info.type.tensor_type.shape
    shape.ClearField("dim")
    for value in dims:
        shape.dim.add().dim_value = value


# ------------------------------------------------------------------------------- inswapper


class _AdaIN(nn.Module):
    """Instance norm whose per-channel scale and shift come from the source identity latent."""

    def __init__(self, channels: int):
        super().__init__()
        self.scale = nn.Linear(LATENT, channels)
        self.shift = nn.Linear(LATENT, channels)

    def forward(self, x: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(2, 3), keepdim=True)
        centered = x - mean
        normalized = centered / torch.sqrt(centered.pow(2).mean(dim=(2, 3), keepdim=True) + 1e-8)
        # unsqueeze rather than view(1, C, 1, 1): no batch-pinning Reshape in this sample.
        scale = self.scale(latent).unsqueeze(2).unsqueeze(3)
        shift = self.shift(latent).unsqueeze(2).unsqueeze(3)
        return normalized * (1 + scale) + shift


class _StyleBlock(nn.Module):
    """inswapper's bottleneck block: two reflect-padded 3x3 convs, each modulated by AdaIN."""

    def __init__(self, channels: int):
        super().__init__()
        self.pad1 = nn.ReflectionPad2d(1)
        self.conv1 = nn.Conv2d(channels, channels, 3)
        self.norm1 = _AdaIN(channels)
        self.pad2 = nn.ReflectionPad2d(1)
        self.conv2 = nn.Conv2d(channels, channels, 3)
        self.norm2 = _AdaIN(channels)

    def forward(self, x: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.norm1(self.conv1(self.pad1(x)), latent))
        y = self.norm2(self.conv2(self.pad2(y)), latent)
        return x + y


def _reflect_conv(c_in: int, c_out: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(nn.ReflectionPad2d(kernel // 2), nn.Conv2d(c_in, c_out, kernel))


class _InswapperLike(nn.Module):
    def __init__(self, width: int, blocks: int):
        super().__init__()
        w = width
        self.stem = nn.Sequential(_reflect_conv(3, w, 7), nn.LeakyReLU(0.2))
        # Strided convs pad with zeros inside the Conv, as inswapper's do: only reflection
        # padding needs a Pad node.
        self.down = nn.Sequential(
            nn.Conv2d(w, 2 * w, 3, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(2 * w, 4 * w, 3, 2, 1),
            nn.LeakyReLU(0.2),
        )
        self.blocks = nn.ModuleList(_StyleBlock(4 * w) for _ in range(blocks))
        self.up = nn.Sequential(
            nn.Upsample(scale_factor=2.0, mode="nearest"),
            _reflect_conv(4 * w, 2 * w, 3),
            nn.LeakyReLU(0.2),
            nn.Upsample(scale_factor=2.0, mode="nearest"),
            _reflect_conv(2 * w, w, 3),
            nn.LeakyReLU(0.2),
        )
        self.head = nn.Sequential(_reflect_conv(w, 3, 7), nn.Tanh())

    def forward(self, target: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        x = self.down(self.stem(target))
        for block in self.blocks:
            x = block(x, source)
        return self.head(self.up(x))


def build_inswapper_like(width: int = 6, blocks: int = 6, seed: int = 0) -> onnx.ModelProto:
    """inswapper_128 look-alike: ``target`` [1,3,128,128] + ``source`` [1,512] -> ``output`` [1,3,128,128].

    Has ``2 * blocks + 4`` Pad(reflect) nodes and an unused ``emap`` [512,512] initializer as the
    last initializer. ``width=256`` (bottleneck 1024 channels, like inswapper) gives ~550 MB.
    """
    module = _seeded(seed, lambda: _InswapperLike(width, blocks))
    model = torchscript_export(
        module,
        (torch.zeros(1, 3, 128, 128), torch.zeros(1, LATENT)),
        input_names=["target", "source"],
        output_names=["output"],
    )
    # Shape inference in the exporter loses the dims at the computed Pad pads; state them.
    _set_dims(model.graph.output[0], (1, 3, 128, 128))
    # InsightFace reads graph.initializer[-1] as emap (the ArcFace->latent projection); the graph
    # itself never uses it, so it is appended after export and must stay last.
    generator = torch.Generator().manual_seed(seed)
    emap = torch.randn(LATENT, LATENT, generator=generator) / math.sqrt(LATENT)
    model.graph.initializer.append(numpy_helper.from_array(emap.numpy(), name="emap"))
    return model


# ----------------------------------------------------------------------------------- scrfd


def _conv3x3(c_in: int, c_out: int, activation: nn.Module, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1), activation)


class _ScrfdLike(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        w = width
        fpn = 4 * w
        # stride 4 stem, then one stage per FPN level (strides 8, 16, 32)
        self.stem = nn.Sequential(_conv3x3(3, w, nn.ReLU(), 2), _conv3x3(w, 2 * w, nn.ReLU(), 2))
        stage_channels = (4 * w, 8 * w, 8 * w)
        c_in = 2 * w
        self.stages = nn.ModuleList()
        for c_out in stage_channels:
            self.stages.append(nn.Sequential(_conv3x3(c_in, c_out, nn.ReLU(), 2), _conv3x3(c_out, c_out, nn.ReLU())))
            c_in = c_out
        self.laterals = nn.ModuleList(nn.Conv2d(c, fpn, 1) for c in stage_channels)
        self.smooth = nn.ModuleList(nn.Conv2d(fpn, fpn, 3, 1, 1) for _ in STRIDES)
        self.towers = nn.ModuleList(_conv3x3(fpn, fpn, nn.ReLU()) for _ in STRIDES)
        self.scores = nn.ModuleList(nn.Conv2d(fpn, 2, 1) for _ in STRIDES)
        self.bboxes = nn.ModuleList(nn.Conv2d(fpn, 4, 1) for _ in STRIDES)
        self.kps = nn.ModuleList(nn.Conv2d(fpn, 10, 1) for _ in STRIDES)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = self.stem(image)
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        laterals = [conv(f) for conv, f in zip(self.laterals, features)]
        # Top-down: upsample to the lateral's own size (as mmdet's FPN does); traced with dynamic
        # H/W this becomes Shape->Gather->Unsqueeze->Concat feeding Resize's sizes.
        for level in (1, 0):
            laterals[level] = laterals[level] + F.interpolate(
                laterals[level + 1], size=laterals[level].shape[2:], mode="nearest"
            )
        scores, bboxes, kps = [], [], []
        for level, lateral in enumerate(laterals):
            head = self.towers[level](self.smooth[level](lateral))
            # permute + reshape(-1, k) flattens the batch into the rows, as SCRFD's export does.
            scores.append(torch.sigmoid(self.scores[level](head)).permute(0, 2, 3, 1).reshape(-1, 2))
            bboxes.append(self.bboxes[level](head).permute(0, 2, 3, 1).reshape(-1, 4))
            kps.append(self.kps[level](head).permute(0, 2, 3, 1).reshape(-1, 10))
        return (*scores, *bboxes, *kps)


def build_scrfd_like(width: int = 8, size: int = 320, seed: int = 0) -> onnx.ModelProto:
    """SCRFD look-alike: ``input.1`` [1,3,size,size] -> 9 outputs ``score_8`` [(size/8)^2, 2] ...
    ``bbox_8`` [.., 4] ... ``kps_32`` [(size/32)^2, 10], ordered scores, bboxes, kps by stride.
    """
    if size % STRIDES[-1]:
        raise ValueError(f"size must be a multiple of {STRIDES[-1]}, got {size}")
    module = _seeded(seed, lambda: _ScrfdLike(width))
    outputs = [f"{kind}_{stride}" for kind in ("score", "bbox", "kps") for stride in STRIDES]
    # H and W are exported dynamic (as the real det_10g.onnx is), otherwise the exporter folds the
    # lateral sizes into constants and the Shape->Gather chains this sample exists for vanish.
    model = torchscript_export(
        module,
        (torch.zeros(1, 3, size, size),),
        input_names=["input.1"],
        output_names=outputs,
        dynamic_axes={"input.1": {2: "height", 3: "width"}},
    )
    # Then pin the input to the sample's size (batch 1, like SCRFD) and state the output shapes.
    _set_dims(model.graph.input[0], (1, 3, size, size))
    columns = {"score": 2, "bbox": 4, "kps": 10}
    for output in model.graph.output:
        kind, stride = output.name.split("_")
        _set_dims(output, ((size // int(stride)) ** 2, columns[kind]))
    return model


# ---------------------------------------------------------------------------------- gfpgan


def _gfpgan_channels(width: int, size: int) -> dict[int, int]:
    """Channels per resolution: ``width`` at full size, doubling per halving up to 4x width."""
    channels = {}
    resolution, c = size, width
    while resolution >= 4:
        channels[resolution] = c
        resolution //= 2
        c = min(2 * c, 4 * width)
    return channels


class _GfpganLike(nn.Module):
    def __init__(self, width: int, size: int):
        super().__init__()
        ch = _gfpgan_channels(width, size)
        self.decoder_sizes = [r for r in sorted(ch) if r >= 8]  # 8, 16, ..., size
        # Split sizes must be Python ints: sizes read from tensor shapes are traced, and the
        # exporter then emits one Slice per piece instead of a Split.
        self.halves = [ch[r] // 2 for r in self.decoder_sizes]
        self.style_dim = ch[4]
        self.n_latent = len(self.decoder_sizes) + 1  # one per styled conv + to_rgb
        # U-Net encoder: size -> 8 with strided convs, then 8 -> 4 for the style code
        self.body_first = nn.Conv2d(3, ch[size], 1)
        self.down = nn.ModuleList(
            _conv3x3(ch[r], ch[r // 2], nn.LeakyReLU(0.2), stride=2) for r in sorted(ch, reverse=True) if r > 4
        )
        self.final_linear = nn.Linear(ch[4] * 4 * 4, self.n_latent * self.style_dim)
        # U-Net decoder: 8 -> size; at each resolution one conv makes the SFT scale and shift
        # together, split apart later (GFPGAN's condition_scale/condition_shift pair).
        self.up = nn.ModuleList(_conv3x3(ch[r // 2], ch[r], nn.LeakyReLU(0.2)) for r in self.decoder_sizes[1:])
        self.conditions = nn.ModuleList(nn.Conv2d(ch[r], ch[r], 3, 1, 1) for r in self.decoder_sizes)
        # StyleGAN decoder: a learned constant at 8x8, one modulated conv per resolution.
        self.constant = nn.Parameter(torch.randn(1, ch[8], 8, 8))
        self.modulations = nn.ModuleList(
            nn.Linear(self.style_dim, ch[r // 2] if r > 8 else ch[8]) for r in self.decoder_sizes
        )
        self.styled_convs = nn.ModuleList(
            nn.Conv2d(ch[r // 2] if r > 8 else ch[8], ch[r], 3, 1, 1) for r in self.decoder_sizes
        )
        self.rgb_modulation = nn.Linear(self.style_dim, ch[size])
        self.to_rgb = nn.Conv2d(ch[size], 3, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.body_first(image), 0.2)
        skips = []
        for conv in self.down:
            skips.append(x)
            x = conv(x)
        style = self.final_linear(x.flatten(1)).view(-1, self.n_latent, self.style_dim)

        feature = skips[-1]  # 8x8
        conditions = []
        for level in range(len(self.decoder_sizes)):
            if level:
                feature = self.up[level - 1](F.interpolate(feature, scale_factor=2.0, mode="bilinear"))
                feature = feature + skips[-1 - level]
            half = self.halves[level]
            # torch.split with int sizes exports as Split with the sizes as an input (opset >= 13);
            # torch.chunk would export as Shape->Gather->Slice instead.
            conditions.append(torch.split(self.conditions[level](feature), [half, half], dim=1))

        out = self.constant
        for level, (scale, shift) in enumerate(conditions):
            if level:
                out = F.interpolate(out, scale_factor=2.0, mode="bilinear")
            # style[:, level] selects with a Python int: Gather with a rank-0 index, as StyleGAN does.
            modulation = self.modulations[level](style[:, level]).unsqueeze(2).unsqueeze(3)
            out = F.leaky_relu(self.styled_convs[level](out * modulation), 0.2)
            # SFT on half of the channels (GFPGAN's sft_half): out * scale + shift
            same, sft = torch.split(out, [self.halves[level]] * 2, dim=1)
            out = torch.cat([same, sft * scale + shift], dim=1)
        rgb_modulation = self.rgb_modulation(style[:, self.n_latent - 1]).unsqueeze(2).unsqueeze(3)
        return self.to_rgb(out * rgb_modulation)


def build_gfpgan_like(width: int = 8, size: int = 128, seed: int = 0) -> onnx.ModelProto:
    """GFPGAN look-alike: ``input`` [1,3,size,size] -> ``output`` [1,3,size,size].

    Splits: two per decoder resolution (condition scale/shift, SFT half). Scalar Gathers: one
    per style layer (``style[:, i]``). ``size`` is a power of two >= 16.
    """
    if size < 16 or size & (size - 1):
        raise ValueError(f"size must be a power of two >= 16, got {size}")
    module = _seeded(seed, lambda: _GfpganLike(width, size))
    return torchscript_export(module, (torch.zeros(1, 3, size, size),), input_names=["input"], output_names=["output"])


# ------------------------------------------------------------------------------- samples

# The committed samples: file stem -> builder called with its defaults.
SAMPLES: dict[str, Callable[[], onnx.ModelProto]] = {
    "inswapper_like": build_inswapper_like,
    "scrfd_like": build_scrfd_like,
    "gfpgan_like": build_gfpgan_like,
}


def build_samples(out_dir: str | os.PathLike) -> dict[str, Path]:
    """Build every sample with its defaults into ``out_dir/<name>.onnx``; return name -> path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, build in SAMPLES.items():
        paths[name] = save_model(build(), out_dir / f"{name}.onnx")
        log.info("wrote %s (%d bytes)", paths[name], paths[name].stat().st_size)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m onnxfit.exporters.samples", description="Build the sample models of weights/."
    )
    parser.add_argument("out_dir", help="directory to write inswapper_like.onnx, scrfd_like.onnx, gfpgan_like.onnx")
    args = parser.parse_args(argv)
    for name, path in build_samples(args.out_dir).items():
        print(f"{name}: {path} ({path.stat().st_size / 2**20:.2f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
