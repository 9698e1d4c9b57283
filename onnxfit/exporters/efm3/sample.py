"""The sample files under weights/: a seeded random MobileFaceNet as EFM3 and as its ONNX twin.

Run as ``python -m onnxfit.exporters.efm3 make-sample DIRECTORY``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from onnxfit.exporters.efm3.fileformat import write_efm3
from onnxfit.exporters.efm3.sources import tensors_from_state_dict
from onnxfit.exporters.mobilefacenet_arch import ARCHS

__all__ = ["main", "make_sample"]



def make_sample(directory: str | os.PathLike, arch: str = "nano", seed: int = 0) -> tuple[Path, Path]:
    """Write ``facex_<arch>.bin`` and its ONNX twin ``facex_<arch>.onnx`` from a seeded random init.

    BatchNorm statistics are randomised too, so the twin (BN folded by the exporter) and the
    .bin (BN stored raw, folded by the engine) only agree if both foldings are right.
    """
    from onnxfit.exporters.mobilefacenet import MobileFaceNet, export_onnx, randomize_

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model = randomize_(MobileFaceNet(ARCHS[arch]), seed).eval()
    found, tensors = tensors_from_state_dict(model.state_dict(), arch=ARCHS[arch])
    bin_path = write_efm3(directory / f"facex_{arch}.bin", found, tensors)
    onnx_path = export_onnx(model, directory / f"facex_{arch}.onnx")
    return bin_path, onnx_path


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m onnxfit.exporters.efm3")
    commands = parser.add_subparsers(dest="command", required=True)
    sample = commands.add_parser("make-sample", help="write facex_<arch>.bin and facex_<arch>.onnx")
    sample.add_argument("directory")
    sample.add_argument("--arch", default="nano", choices=list(ARCHS))
    sample.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for path in make_sample(args.directory, args.arch, args.seed):
        sys.stdout.write(f"{path} ({path.stat().st_size} bytes)\n")
    return 0
