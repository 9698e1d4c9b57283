"""Checking EFM3 files: the numpy engine against ONNX Runtime or torch, and what `efm3 inspect` shows."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from onnxfit.errors import OnnxfitError, first_line
from onnxfit.exporters.efm3.engine import Efm3Engine
from onnxfit.exporters.efm3.fileformat import HEADER_VERSION, VERSION, read_efm3
from onnxfit.exporters.mobilefacenet_arch import INPUT_SIZE, L2_EPS, plan
from onnxfit.model import load_model

__all__ = ["TOLERANCE", "Efm3Verification", "face_like_inputs", "inspect_efm3", "verify_efm3"]

TOLERANCE = 1e-5  # max abs error of unit-length embeddings that `efm3 verify` accepts



def face_like_inputs(batch: int, seed: int) -> np.ndarray:
    """Deterministic aligned-face-like inputs: ``(pixel - 127.5) / 128`` of random uint8 RGB, NCHW."""
    pixels = np.random.default_rng(seed).integers(0, 256, size=(batch, INPUT_SIZE, INPUT_SIZE, 3), dtype=np.uint8)
    return ((pixels.astype(np.float32) - 127.5) / 128.0).transpose(0, 3, 1, 2).copy()


@dataclass(frozen=True)
class Efm3Verification:
    file: str
    reference: str  # "torch" or the ONNX path
    arch: str
    batch: int
    seed: int
    max_abs_err: float
    tolerance: float
    min_cosine: float  # lowest engine-vs-reference cosine over the batch, for humans

    @property
    def passed(self) -> bool:
        return self.max_abs_err <= self.tolerance

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "passed": self.passed}


def verify_efm3(
    path: str | os.PathLike,
    onnx_path: str | os.PathLike | None = None,
    batch: int = 4,
    seed: int = 0,
    tolerance: float = TOLERANCE,
) -> Efm3Verification:
    """Run the numpy engine and a reference (ONNX Runtime on ``onnx_path``, else torch built from
    the file's own tensors) on the same inputs; report the max abs error of the embeddings."""
    if batch < 1:
        raise OnnxfitError(f"--batch must be at least 1, got {batch}")
    efm3 = read_efm3(path)
    images = face_like_inputs(batch, seed)
    ours = Efm3Engine(efm3).embed(images)
    if onnx_path is None:
        from onnxfit.exporters.mobilefacenet import embed_with_torch

        theirs, reference = embed_with_torch(efm3, images), "torch"
    else:
        theirs, reference = _embed_with_onnxruntime(Path(onnx_path), images), str(onnx_path)
    if theirs.shape != ours.shape:
        raise OnnxfitError(f"{reference}: output shape {list(theirs.shape)}, but {path} gives {list(ours.shape)}")
    cosine = np.sum(ours * theirs, axis=1) / np.maximum(
        np.linalg.norm(ours, axis=1) * np.linalg.norm(theirs, axis=1), L2_EPS)
    return Efm3Verification(
        file=str(path), reference=reference, arch=efm3.arch.name, batch=batch, seed=seed,
        max_abs_err=float(np.max(np.abs(ours - theirs))), tolerance=tolerance, min_cosine=float(np.min(cosine)),
    )


def _embed_with_onnxruntime(path: Path, images: np.ndarray) -> np.ndarray:
    import onnxruntime as ort
    from onnxruntime.capi.onnxruntime_pybind11_state import (
        Fail,
        InvalidArgument,
        InvalidGraph,
        RuntimeException,
    )

    model = load_model(path)
    initializers = {t.name for t in model.graph.initializer}
    inputs = [i.name for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise OnnxfitError(f"{path}: expected one input (an image batch), found {len(inputs)}")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        output = session.run(None, {inputs[0]: images})[0]
    except (Fail, InvalidArgument, InvalidGraph, RuntimeException) as exc:
        reason = first_line(exc)
        raise OnnxfitError(f"{path}: ONNX Runtime cannot run it on [N,3,112,112] images ({reason})") from None
    return np.asarray(output, np.float32).reshape(images.shape[0], -1)


# --------------------------------------------------------------------------------- inspecting


def inspect_efm3(path: str | os.PathLike) -> dict[str, Any]:
    """What `onnxfit efm3 inspect` shows: header fields, JSON copy, tensors, layer shapes, sizes."""
    efm3 = read_efm3(path)
    arch = efm3.arch
    layers = []
    for layer in plan(arch).layers():
        layers.append({
            "name": layer.name,
            "conv": list(layer.weight_shape),
            "stride": layer.stride,
            "groups": layer.groups,
            "bn": [layer.out_channels],
            "prelu": [layer.out_channels] if layer.prelu else None,
        })
    return {
        "file": str(path),
        "file_size": efm3.file_size,
        "version": VERSION,
        "header": {
            "header_version": HEADER_VERSION,
            "n_stages": len(arch.stages),
            "stem_kernel": arch.stem_kernel,
            "stem_stride": arch.stem_stride,
            "stem_channels": arch.stem_channels,
            "block_channels": arch.block_channels,
            "final_channels": arch.final_channels,
            "embedding_dim": arch.embedding,
            "gdc_kernel": arch.gdc_kernel,
            "stages": [{"t": s.t, "n": s.n, "s": s.s} for s in arch.stages],
        },
        "json": efm3.json,
        "n_tensors": len(efm3.tensors),
        # Every stored fp32 value, BatchNorm running statistics included.
        "parameters": int(sum(t.size for t in efm3.tensors.values())),
        "layers": layers,
    }
