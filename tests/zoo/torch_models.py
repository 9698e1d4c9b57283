"""The zoo's ``kind="torch"`` architectures, written here so their published state_dicts load.

The packages that publish the weights cannot be imported in the test environment (facenet-pytorch
imports torchvision, which does not load with this torch), so each network is rewritten from its
package's source with the same parameter names: ``load_state_dict(strict=True)`` proves the
names and shapes, the parity tests prove the wiring.

- ``PNet`` / ``ONet``: facenet-pytorch 2.6.0 ``facenet_pytorch/models/mtcnn.py`` (MTCNN stages 1
  and 3; Caffe-converted weights, hence max-pools with ``ceil_mode`` and ONet's
  ``permute(0, 3, 2, 1)`` before flattening, which restores Caffe's W-major order). Outputs in the
  package's order: box regression, (landmarks,) face probability.
- ``Crepe``: torchcrepe 0.0.24 ``torchcrepe/model.py`` at the "tiny" capacity: 1024-sample frames
  in, 360 pitch-bin activations out. Each layer is pad, conv, ReLU, BatchNorm, max-pool (2, 1).

The factories (``mtcnn_pnet``, ``mtcnn_onet``, ``crepe_tiny``) return the module with the zoo's
published weights loaded; they are what ``onnxfit export torch tests/zoo/torch_models.py:mtcnn_pnet``
calls.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

# `onnxfit export torch tests/zoo/torch_models.py:FACTORY` loads this file by path with only its
# own folder on sys.path; the repository root makes `tests.zoo.fetch` importable as under pytest.
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.append(_ROOT)

__all__ = ["PNet", "ONet", "Crepe", "mtcnn_pnet", "mtcnn_onet", "crepe_tiny", "published"]


class PNet(nn.Module):
    """MTCNN proposal net: fully convolutional, 12x12 receptive field, any image size >= 12."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)
        self.softmax4_1 = nn.Softmax(dim=1)
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)

    def forward(self, image):
        x = self.pool1(self.prelu1(self.conv1(image)))
        x = self.prelu2(self.conv2(x))
        x = self.prelu3(self.conv3(x))
        return self.conv4_2(x), self.softmax4_1(self.conv4_1(x))


class ONet(nn.Module):
    """MTCNN output net: 48x48 face crops -> box regression, 5 landmarks (x5, y5), probability."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.softmax6_1 = nn.Softmax(dim=1)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, face):
        x = self.pool1(self.prelu1(self.conv1(face)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        # dense5 was trained in Caffe on a [C, W, H]-ordered flatten.
        x = x.permute(0, 3, 2, 1).contiguous()
        x = self.prelu5(self.dense5(x.view(x.shape[0], -1)))
        return self.dense6_2(x), self.dense6_3(x), self.softmax6_1(self.dense6_1(x))


CREPE_TINY_CHANNELS = (128, 16, 16, 16, 32, 64)
CREPE_FRAME = 1024  # samples at 16 kHz
CREPE_PITCH_BINS = 360  # 20-cent bins from C1 upwards


class Crepe(nn.Module):
    """CREPE pitch tracker: ``[frames, 1024]`` normalised audio -> ``[frames, 360]`` activations."""

    def __init__(self, channels=CREPE_TINY_CHANNELS):
        super().__init__()
        # The weights were converted from Keras: its BatchNorm epsilon (1e-3 as float32), frozen stats.
        batch_norm = functools.partial(nn.BatchNorm2d, eps=0.0010000000474974513, momentum=0.0)
        ins = (1, *channels[:-1])
        for i, (cin, cout) in enumerate(zip(ins, channels), start=1):
            kernel, stride = ((512, 1), (4, 1)) if i == 1 else ((64, 1), (1, 1))
            setattr(self, f"conv{i}", nn.Conv2d(cin, cout, kernel, stride))
            setattr(self, f"conv{i}_BN", batch_norm(cout))
        # Six (2, 1) pools take 1024 samples to 4 rows of the last layer's channels.
        self.in_features = channels[-1] * 4
        self.classifier = nn.Linear(self.in_features, CREPE_PITCH_BINS)

    def forward(self, frames):
        x = frames[:, None, :, None]
        # Keras "same" padding: the first layer's 512-tap kernel at stride 4, then 64 taps at stride 1.
        x = self._layer(x, self.conv1, self.conv1_BN, (254, 254))
        for i in range(2, 7):
            x = self._layer(x, getattr(self, f"conv{i}"), getattr(self, f"conv{i}_BN"), (31, 32))
        x = x.permute(0, 2, 1, 3).reshape(-1, self.in_features)
        return torch.sigmoid(self.classifier(x))

    @staticmethod
    def _layer(x, conv, batch_norm, padding):
        x = F.pad(x, (0, 0, *padding))
        x = batch_norm(F.relu(conv(x)))
        return F.max_pool2d(x, (2, 1), (2, 1))


def published(module: nn.Module, zoo_name: str) -> nn.Module:
    """``module`` with the zoo entry's state_dict loaded strictly, in eval mode."""
    from tests.zoo.fetch import fetch
    from tests.zoo.manifest import by_name

    path = fetch([by_name(zoo_name)])[zoo_name]
    module.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    return module.eval()


def mtcnn_pnet() -> PNet:
    return published(PNet(), "mtcnn_pnet_torch")


def mtcnn_onet() -> ONet:
    return published(ONet(), "mtcnn_onet_torch")


def crepe_tiny() -> Crepe:
    return published(Crepe(), "crepe_tiny_torch")
