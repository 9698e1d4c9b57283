"""The EFM3 byte layout (docs/efm3.md): tensors -> bytes, and a validating reader.

The reader refuses anything the contract does not allow with an ``OnnxfitError``. Every length
field is checked against the bytes that remain before anything is sliced, so no field can size
an allocation. Choices 7 and 8 of :mod:`onnxfit.exporters.efm3` (the JSON copy, header sanity)
live here.
"""

from __future__ import annotations

import json
import logging
import math
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from onnxfit.errors import OnnxfitError
from onnxfit.exporters.mobilefacenet_arch import (
    INPUT_SIZE,
    Arch,
    Stage,
    feature_size,
    tensor_specs,
)
from onnxfit.files import write_atomic

__all__ = [
    "HEADER_SIZE",
    "HEADER_VERSION",
    "MAGIC",
    "MAX_STAGES",
    "VERSION",
    "Efm3File",
    "efm3_bytes",
    "parse_efm3",
    "read_efm3",
    "write_efm3",
]

log = logging.getLogger(__name__)

MAGIC = b"EFM3"
VERSION = 3
HEADER_VERSION = 1
MAX_STAGES = 8

_HEAD = struct.Struct("<4sI")  # magic, version
_ARCH = struct.Struct("<BBBBHHHHB3s")  # 16 bytes: the fixed part of the arch header
_STAGE = struct.Struct("<BBBB4s")  # 8 bytes per stage record
_U32 = struct.Struct("<I")
HEADER_SIZE = _ARCH.size + MAX_STAGES * _STAGE.size  # 80
_JSON_KEYS = ("name", "width_mult", "stem_channels", "block_channels", "final_channels",
              "embedding_dim", "gdc_kernel", "stages")

@dataclass(frozen=True)
class Efm3File:
    """A parsed EFM3 file: the arch, the JSON copy as written, the tensors by name in file order."""

    arch: Arch
    json: dict[str, Any]
    tensors: dict[str, np.ndarray]
    file_size: int


def _header_bytes(arch: Arch) -> bytes:
    if len(arch.stages) > MAX_STAGES:
        raise OnnxfitError(f"arch {arch.name}: {len(arch.stages)} stages, EFM3 holds at most {MAX_STAGES}")
    fixed = _ARCH.pack(HEADER_VERSION, len(arch.stages), arch.stem_kernel, arch.stem_stride, arch.stem_channels,
                       arch.block_channels, arch.final_channels, arch.embedding, arch.gdc_kernel, bytes(3))
    stages = [_STAGE.pack(s.t, s.n, s.s, 0, bytes(4)) for s in arch.stages]
    stages += [bytes(_STAGE.size)] * (MAX_STAGES - len(arch.stages))
    return fixed + b"".join(stages)


def efm3_bytes(arch: Arch, tensors: Mapping[str, np.ndarray]) -> bytes:
    """Serialise ``tensors`` (exactly the names and shapes of :func:`tensor_specs`) as EFM3."""
    specs = tensor_specs(arch)
    if set(tensors) != {name for name, _ in specs}:
        missing = [name for name, _ in specs if name not in tensors]
        extra = [name for name in tensors if name not in dict(specs)]
        raise OnnxfitError(f"arch {arch.name}: tensors missing {missing[:3]} / unexpected {extra[:3]}")
    text = json.dumps(arch.to_json_dict(), separators=(",", ":")).encode("utf-8")
    parts = [_HEAD.pack(MAGIC, VERSION), _header_bytes(arch), _U32.pack(len(text)), text, _U32.pack(len(specs))]
    for name, shape in specs:
        value = np.asarray(tensors[name])
        if value.shape != shape:
            raise OnnxfitError(f"arch {arch.name}: tensor {name} has shape {list(value.shape)}, expected {list(shape)}")
        data = np.ascontiguousarray(value, dtype="<f4").tobytes()
        parts += [_U32.pack(len(data)), data]
    return b"".join(parts)


def write_efm3(path: str | os.PathLike, arch: Arch, tensors: Mapping[str, np.ndarray]) -> Path:
    """Write atomically (temporary file beside ``path``, then rename); return the path."""
    path = Path(path)
    data = efm3_bytes(arch, tensors)
    write_atomic(path, data)
    log.info("wrote %s (%s, %d bytes)", path, arch.name, len(data))
    return path


# ------------------------------------------------------------------------------------ reader


class _Cursor:
    """Reads fields off the file bytes; every read is checked against what remains."""

    def __init__(self, data: bytes, source: str):
        self.data = memoryview(data)
        self.pos = 0
        self.source = source

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def take(self, size: int, what: str) -> memoryview:
        if size > self.remaining:
            raise OnnxfitError(
                f"{self.source}: truncated: {what} needs {size} bytes at offset {self.pos}, "
                f"but the file has only {self.remaining} left"
            )
        view = self.data[self.pos:self.pos + size]
        self.pos += size
        return view

    def u32(self, what: str) -> int:
        return _U32.unpack(self.take(4, what))[0]


def read_efm3(path: str | os.PathLike) -> Efm3File:
    """Read and validate an EFM3 file; ``OnnxfitError`` for anything the contract does not allow."""
    path = Path(path)
    if not path.is_file():
        raise OnnxfitError(f"{path}: no such file" if not path.exists() else f"{path}: not a regular file")
    # The whole file is read at once: its size is the only allocation, and it is not a header field.
    return parse_efm3(path.read_bytes(), str(path))


def parse_efm3(data: bytes, source: str = "<bytes>") -> Efm3File:
    cursor = _Cursor(data, source)
    if len(data) < _HEAD.size or data[:4] != MAGIC:
        raise OnnxfitError(f"{source}: not an EFM3 file (magic {bytes(data[:4])!r}, expected {MAGIC!r})")
    _, version = _HEAD.unpack(cursor.take(_HEAD.size, "magic and version"))
    if version != VERSION:
        raise OnnxfitError(f"{source}: EFM3 version {version}, this reader knows version {VERSION}")
    arch = _parse_arch_header(cursor.take(HEADER_SIZE, "the 80-byte arch header"), source)
    json_len = cursor.u32("json_len")
    raw_json = cursor.take(json_len, f"the JSON copy (json_len {json_len})")
    document = _parse_json(bytes(raw_json), arch, source)
    arch = replace(arch, name=document["name"], width=float(document["width_mult"]))
    n_tensors = cursor.u32("n_tensors")
    specs = tensor_specs(arch)
    if n_tensors != len(specs):
        raise OnnxfitError(f"{source}: n_tensors is {n_tensors}, but the arch in the header implies {len(specs)}")
    tensors: dict[str, np.ndarray] = {}
    for index, (name, shape) in enumerate(specs):
        size = cursor.u32(f"the size of tensor {index} ({name})")
        expected = 4 * math.prod(shape)
        if size != expected:
            raise OnnxfitError(
                f"{source}: tensor {index} ({name}) is {size} bytes, but its shape {list(shape)} needs {expected}"
            )
        raw = cursor.take(size, f"tensor {index} ({name})")
        tensors[name] = np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)
    if cursor.remaining:
        raise OnnxfitError(f"{source}: {cursor.remaining} trailing bytes after the last tensor")
    return Efm3File(arch=arch, json=document, tensors=tensors, file_size=len(data))


def _parse_arch_header(header: memoryview, source: str) -> Arch:
    (header_version, n_stages, stem_kernel, stem_stride, stem_c, block_c, final_c, embedding, gdc_kernel,
     padding) = _ARCH.unpack(header[:_ARCH.size])
    where = f"{source}: arch header"
    if header_version != HEADER_VERSION:
        raise OnnxfitError(f"{where}: header version {header_version}, expected {HEADER_VERSION}")
    if not 1 <= n_stages <= MAX_STAGES:
        raise OnnxfitError(f"{where}: n_stages is {n_stages}, expected 1 to {MAX_STAGES}")
    if stem_kernel % 2 == 0 or stem_stride not in (1, 2):
        raise OnnxfitError(
            f"{where}: stem kernel {stem_kernel} / stride {stem_stride}: need an odd kernel, stride 1 or 2")
    if 0 in (stem_c, block_c, final_c, embedding, gdc_kernel):
        raise OnnxfitError(f"{where}: a channel count, the embedding dim or the GDConv kernel is 0")
    if any(padding):
        raise OnnxfitError(f"{where}: padding bytes 13-15 are not zero")
    stages = []
    for i in range(MAX_STAGES):
        offset = _ARCH.size + i * _STAGE.size
        t, n, s, pad, reserved = _STAGE.unpack(header[offset:offset + _STAGE.size])
        if i >= n_stages:
            if (t, n, s, pad) != (0, 0, 0, 0) or any(reserved):
                raise OnnxfitError(f"{where}: unused stage record {i} is not all zero")
            continue
        if t == 0 or n == 0 or s not in (1, 2) or pad or any(reserved):
            raise OnnxfitError(f"{where}: stage {i} (t={t}, n={n}, s={s}): need t, n >= 1, s 1 or 2, zero padding")
        stages.append(Stage(t, n, s))
    arch = Arch("", 0.0, stem_c, block_c, final_c, embedding, tuple(stages), stem_kernel, stem_stride, gdc_kernel)
    reached = feature_size(arch)
    if reached != gdc_kernel:
        raise OnnxfitError(
            f"{where}: the arch reduces a {INPUT_SIZE}x{INPUT_SIZE} input to {reached}x{reached}, "
            f"but the GDConv kernel is {gdc_kernel}"
        )
    return arch


def _parse_json(raw: bytes, arch: Arch, source: str) -> dict[str, Any]:
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OnnxfitError(f"{source}: the JSON copy of the arch is not valid UTF-8 JSON ({exc})") from None
    if not isinstance(document, dict) or any(key not in document for key in _JSON_KEYS):
        raise OnnxfitError(f"{source}: the JSON copy of the arch must be an object with keys {', '.join(_JSON_KEYS)}")
    if not isinstance(document["name"], str) or not isinstance(document["width_mult"], (int, float)):
        raise OnnxfitError(f"{source}: the JSON copy needs a string name and a numeric width_mult")
    expected = arch.to_json_dict()
    for key in _JSON_KEYS[2:]:
        if document[key] != expected[key]:
            raise OnnxfitError(f"{source}: the JSON copy says {key}={document[key]}, the header {expected[key]}")
    return document
