"""MobileFaceNet in torch, built from the EFM3 layer plan so that its state_dict is the file.

The architecture (``ARCHS``, ``Arch``, the layer list) is defined once, torch-free, in
:mod:`onnxfit.exporters.mobilefacenet_arch` and re-exported here: the EFM3 numpy engine must run
without torch, and the torch model must not drift from the file layout. Nothing here imports
:mod:`onnxfit.exporters.efm3` (that package calls into this module only for torch work).

Every layer is a :class:`ConvBN` (conv without bias, BatchNorm eps 1e-5, optional per-channel
PReLU) whose module path is the layer name of the plan, so ``state_dict()`` keys equal the EFM3
tensor names (plus BatchNorm's ``num_batches_tracked``, which EFM3 does not store).

``forward`` returns the L2-normalised embedding, as the FaceX engine does before similarity:
the model, its ONNX export and the numpy engine are then compared on the same unit vectors.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from onnxfit.errors import OnnxfitError, first_line
from onnxfit.exporters.mobilefacenet_arch import (
    ARCHS,
    BN_EPS,
    INPUT_SIZE,
    L2_EPS,
    Arch,
    Layer,
    Stage,
    plan,
)
from onnxfit.model import save_model

if TYPE_CHECKING:
    from onnxfit.exporters.efm3.fileformat import Efm3File

__all__ = [
    "ARCHS",
    "Arch",
    "ConvBN",
    "InvertedResidual",
    "MobileFaceNet",
    "embed_with_torch",
    "export_onnx",
    "from_efm3",
    "load_checkpoint",
    "randomize_",
]


class ConvBN(nn.Module):
    """conv (no bias) -> BatchNorm -> PReLU (only where the plan has one)."""

    def __init__(self, layer: Layer):
        super().__init__()
        self.conv = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel, layer.stride, layer.padding,
                              groups=layer.groups, bias=False)
        self.bn = nn.BatchNorm2d(layer.out_channels, eps=BN_EPS)
        self.act = nn.PReLU(layer.out_channels) if layer.prelu else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return self.act(x) if self.act is not None else x


class InvertedResidual(nn.Module):
    """expand 1x1 + PReLU, depthwise 3x3 + PReLU, linear project 1x1; residual add when shapes allow."""

    def __init__(self, expand: Layer, dw: Layer, project: Layer, residual: bool):
        super().__init__()
        self.expand = ConvBN(expand)
        self.dw = ConvBN(dw)
        self.project = ConvBN(project)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.dw(self.expand(x)))
        return x + y if self.residual else y


class MobileFaceNet(nn.Module):
    """``[N,3,112,112]`` aligned faces, ``(pixel - 127.5) / 128`` -> ``[N, embedding]`` unit rows."""

    def __init__(self, arch: Arch | str):
        super().__init__()
        self.arch = ARCHS[arch] if isinstance(arch, str) else arch
        layers = plan(self.arch)
        # Attribute order is registration order is state_dict order is EFM3 file order.
        self.stem = ConvBN(layers.stem)
        self.dw_stem = ConvBN(layers.dw_stem)
        self.stages = nn.ModuleList(
            nn.Sequential(*(InvertedResidual(b.expand, b.dw, b.project, b.residual) for b in stage))
            for stage in layers.stages
        )
        self.final_conv = ConvBN(layers.final_conv)
        self.gdconv = ConvBN(layers.gdconv)
        self.embed_proj = ConvBN(layers.embed_proj)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dw_stem(self.stem(x))
        for stage in self.stages:
            x = stage(x)
        x = self.embed_proj(self.gdconv(self.final_conv(x)))
        return F.normalize(x.flatten(1), dim=1, eps=L2_EPS)


def randomize_(model: nn.Module, seed: int) -> nn.Module:
    """Seeded random weights and BatchNorm statistics (in place; the global RNG is untouched).

    Convs get He-normal weights (gain 2 before a PReLU, 1 before nothing) so activations
    neither vanish nor explode through ~50 layers; BatchNorm gets non-trivial gamma/beta/mean/var
    so that any error in BN folding shows.
    """
    generator = torch.Generator().manual_seed(seed)

    def uniform(shape, low, high):
        return torch.rand(shape, generator=generator) * (high - low) + low

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, ConvBN):
                weight = module.conv.weight
                gain = 2.0 if module.act is not None else 1.0
                weight.copy_(torch.randn(weight.shape, generator=generator) * (gain / weight[0].numel()) ** 0.5)
            elif isinstance(module, nn.BatchNorm2d):
                c = module.num_features
                module.weight.copy_(uniform(c, 0.5, 1.5))
                module.bias.copy_(torch.randn(c, generator=generator) * 0.1)
                module.running_mean.copy_(torch.randn(c, generator=generator) * 0.1)
                module.running_var.copy_(uniform(c, 0.5, 2.0))
            elif isinstance(module, nn.PReLU):
                module.weight.copy_(uniform(module.weight.shape, 0.05, 0.3))
    return model


def from_efm3(efm3: Efm3File) -> MobileFaceNet:
    """A torch MobileFaceNet in eval mode holding the file's tensors (BatchNorm raw, unfolded)."""
    model = MobileFaceNet(efm3.arch)
    state = {name: torch.from_numpy(value.copy()) for name, value in efm3.tensors.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    # Only BatchNorm's step counters may be missing: EFM3 does not store them.
    assert not unexpected and all(name.endswith("num_batches_tracked") for name in missing), (missing, unexpected)
    return model.eval()


def embed_with_torch(efm3: Efm3File, images: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return from_efm3(efm3)(torch.from_numpy(np.ascontiguousarray(images, np.float32))).numpy()


def export_onnx(model: MobileFaceNet, path: str | os.PathLike) -> Path:
    """TorchScript export (``dynamo=False``), opset 17, input ``input`` ``[N,3,112,112]`` with a
    dynamic batch, output ``embedding``. Eval mode with constant folding folds BatchNorm into
    the convs, which is the form the EFM3 ONNX reader maps back to identity BatchNorms."""
    from onnxfit.exporters.samples import torchscript_export

    proto = torchscript_export(model, (torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE),), ["input"], ["embedding"],
                               {"input": {0: "batch"}, "embedding": {0: "batch"}})
    return save_model(proto, path)


# Classes a pickled MobileFaceNet refers to; torch.load(weights_only=True) refuses any other.
_SAFE_GLOBALS = [MobileFaceNet, InvertedResidual, ConvBN, Arch, Stage, nn.Conv2d, nn.BatchNorm2d, nn.PReLU,
                 nn.Sequential, nn.ModuleList]


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """A state_dict (bare or under ``"state_dict"``) or a pickled onnxfit MobileFaceNet saved with
    ``torch.save``; returns the state_dict and, for a module, the eps of each BatchNorm by path.

    Always ``weights_only=True``: unpickling arbitrary classes runs arbitrary code, so only the
    classes of this module are allowed. Other modules: save their ``state_dict()`` instead.
    """
    try:
        with torch.serialization.safe_globals(_SAFE_GLOBALS):
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise OnnxfitError(
            f"{path}: torch.load(weights_only=True) refused it ({first_line(exc)[:200]}); "
            "save model.state_dict() instead of the module"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as exc:
        raise OnnxfitError(f"{path}: not a readable torch checkpoint ({first_line(exc)[:200]})") from None
    if isinstance(loaded, nn.Module):
        eps = {name: m.eps for name, m in loaded.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)}
        return loaded.state_dict(), eps
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise OnnxfitError(f"{path}: holds a {type(loaded).__name__}, expected a state_dict or a MobileFaceNet")
    return loaded, {}
