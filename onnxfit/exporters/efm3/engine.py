"""A numpy engine that runs an EFM3 file the way the FaceX C engine does.

BatchNorm is folded at load in fp32 with eps 1e-5, layout is NHWC; PReLU, depthwise convs,
GDConv, residual adds, L2 normalisation (choice 6 of :mod:`onnxfit.exporters.efm3`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from onnxfit.errors import OnnxfitError
from onnxfit.exporters.efm3.fileformat import Efm3File
from onnxfit.exporters.mobilefacenet_arch import BN_EPS, INPUT_SIZE, L2_EPS, Layer, plan

__all__ = ["Efm3Engine"]



@dataclass(frozen=True)
class _FoldedConv:
    """A conv with BatchNorm folded in, laid out for NHWC numpy."""

    weight: np.ndarray  # 1x1: [Cin, Cout]; depthwise: [K, K, C]; dense KxK: [Cout, Cin, K, K]
    bias: np.ndarray  # [Cout]
    layer: Layer
    slope: np.ndarray | None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        layer = self.layer
        if layer.groups == layer.in_channels and layer.groups > 1:
            y = _depthwise(x, self.weight, layer.stride, layer.padding)
        elif layer.kernel == 1 and layer.stride == 1:
            y = (x.reshape(-1, x.shape[-1]) @ self.weight).reshape(*x.shape[:-1], -1)
        else:
            y = _dense(x, self.weight, layer.stride, layer.padding)
        y += self.bias
        if self.slope is not None:
            y = np.where(y > 0, y, y * self.slope)
        return y


def _depthwise(x: np.ndarray, weight: np.ndarray, stride: int, padding: int) -> np.ndarray:
    """Per-channel KxK conv as K*K shifted multiply-adds over the whole batch (NHWC)."""
    n, h, w, c = x.shape
    k = weight.shape[0]
    xp = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0))) if padding else x
    ho = (h + 2 * padding - k) // stride + 1
    wo = (w + 2 * padding - k) // stride + 1
    out = np.zeros((n, ho, wo, c), np.float32)
    for i in range(k):
        for j in range(k):
            out += xp[:, i:i + stride * (ho - 1) + 1:stride, j:j + stride * (wo - 1) + 1:stride, :] * weight[i, j]
    return out


def _dense(x: np.ndarray, weight: np.ndarray, stride: int, padding: int) -> np.ndarray:
    """Full KxK conv by im2col: a strided window view contracted with the weight (NHWC)."""
    k = weight.shape[-1]
    xp = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(1, 2))[:, ::stride, ::stride]
    # windows: [N, Ho, Wo, Cin, K, K]; weight: [Cout, Cin, K, K]
    return np.tensordot(windows, weight, axes=([3, 4, 5], [1, 2, 3])).astype(np.float32, copy=False)


class Efm3Engine:
    """Runs an EFM3 file with numpy as the C engine does; input ``[N,3,112,112]`` -> ``[N,E]`` unit rows."""

    input_name = "input"
    output_name = "embedding"

    def __init__(self, efm3: Efm3File):
        self.arch = efm3.arch
        self.plan = plan(efm3.arch)
        self.convs = {layer.name: _fold(layer, efm3.tensors) for layer in self.plan.layers()}

    def embed(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images, np.float32)
        if images.ndim != 4 or images.shape[1:] != (3, INPUT_SIZE, INPUT_SIZE):
            raise OnnxfitError(f"EFM3 engine input must be [N,3,{INPUT_SIZE},{INPUT_SIZE}], got {list(images.shape)}")
        convs, p = self.convs, self.plan
        x = np.ascontiguousarray(images.transpose(0, 2, 3, 1))
        x = convs[p.dw_stem.name](convs[p.stem.name](x))
        for stage in p.stages:
            for block in stage:
                y = convs[block.project.name](convs[block.dw.name](convs[block.expand.name](x)))
                x = x + y if block.residual else y
        x = convs[p.embed_proj.name](convs[p.gdconv.name](convs[p.final_conv.name](x)))
        x = x.reshape(x.shape[0], -1)
        norm = np.sqrt(np.sum(x * x, axis=1, keepdims=True))
        return x / np.maximum(norm, np.float32(L2_EPS))

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The runtime interface: ``{"input": images}`` -> ``{"embedding": ...}``."""
        return {self.output_name: self.embed(feeds[self.input_name])}


def _fold(layer: Layer, tensors: Mapping[str, np.ndarray]) -> _FoldedConv:
    names = [name for name, _ in layer.tensor_shapes()]
    weight, gamma, beta, mean, var = (tensors[name] for name in names[:5])
    # fp32 like the C engine: inv = gamma / sqrt(var + eps), W' = W * inv, b' = beta - mean * inv.
    inv = gamma / np.sqrt(var + np.float32(BN_EPS))
    folded = weight * inv[:, None, None, None]
    bias = (beta - mean * inv).astype(np.float32)
    if layer.groups > 1:
        folded = folded[:, 0].transpose(1, 2, 0)  # [K, K, C]
    elif layer.kernel == 1 and layer.stride == 1:
        folded = folded[:, :, 0, 0].T  # [Cin, Cout]
    slope = tensors[names[5]] if layer.prelu else None
    return _FoldedConv(np.ascontiguousarray(folded, np.float32), bias, layer, slope)
