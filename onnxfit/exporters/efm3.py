"""EFM3: the FaceX MobileFaceNet weight file. Writer, validating reader, numpy reference engine.

EFM3 is the self-describing fp32 weight file that the FaceX C engine (``facex_mfn.c``) loads;
its contract (``docs/efm3.md``; the sample files are described in ``weights/README.md``)
gives the byte layout, the architectures and the tensor order. This module is torch-free so that reading, inspecting
and running a file never imports torch; the torch model lives in
:mod:`onnxfit.exporters.mobilefacenet` and reuses :class:`Arch` and :func:`plan` from here.

Pieces:

1. :data:`ARCHS`, :class:`Arch`, :func:`plan`: the four sizes and the layer list in file order.
2. :func:`efm3_bytes` / :func:`write_efm3`: tensors (named as in the torch model's state_dict)
   -> file. :func:`tensors_from_onnx` and :func:`tensors_from_state_dict` take them from an ONNX
   MobileFaceNet or a torch state_dict by structure, not by name; :func:`export_efm3` does
   the ``onnxfit export efm3`` command.
3. :func:`parse_efm3` / :func:`read_efm3`: file -> :class:`Efm3File`, refusing anything the
   contract does not allow with an ``OnnxfitError``. Every length field is checked against
   the bytes that remain before anything is sliced, so no field can size an allocation.
4. :class:`Efm3Engine`: runs a file with numpy the way the C engine does (BatchNorm folded at
   load in fp32 with eps 1e-5, NHWC layout, PReLU, depthwise convs, GDConv, residual adds,
   L2 normalisation). :func:`verify_efm3` compares it with ONNX Runtime or torch.

Choices where the contract is silent (keep the C engine and this module in step):

1. Channel rounding: ``max(8, floor(c * width / 8 + 0.5) * 8)``, i.e. round half away from
   zero like C ``roundf``, not Python's ``round()`` (half to even). The four shipped widths
   never hit a tie (nano 24/48/184, tiny 32/72/280, standard 56/112/464, xs 88/176/688), so
   both rules agree on them; the choice only matters for a custom width.
2. Stage output channels: stage 1 outputs the stem channels, every later stage the block
   channels (stages 3-5 included); hidden channels = block input channels x t.
3. PReLU slopes are per channel, stored ``[Cout]``. A source model with one shared slope
   (``nn.PReLU()``) is written with the slope repeated per channel; ONNX's ``[C,1,1]``
   slope initializers are flattened.
4. The GDConv kernel must equal the feature map size that the arch leaves of a 112x112 input
   (7 for the shipped stride schedule); the reader refuses headers where it does not, since
   the engine's output would then not be 1x1.
5. BatchNorm folding happens in fp32 (as in the C engine). A source that has no BatchNorm
   after a conv (torch.onnx.export in eval mode with constant folding folds BN into the conv's
   weight and bias) is written as an identity BN: gamma = 1, beta = conv bias (0 without one),
   mean = 0, var = fp32(1 - 1e-5) = 0.99999. In fp32, ``0.99999 + 1e-5 == 1.0`` exactly, so the
   folded scale is exactly 1 and the folded bias exactly the conv bias. A conv bias before a
   real BN goes into the mean (``mean - bias``); a BN eps other than 1e-5 goes into the
   variance (``var + eps - 1e-5``). torch state_dicts do not record eps: 1e-5 (torch's
   default) is assumed unless a module is given, whose BatchNorm eps values are used.
6. The embedding is L2-normalised as ``x / max(||x||, 1e-12)`` (torch ``F.normalize``), so the
   engine, the torch model and its ONNX export all return unit vectors.
7. The JSON copy must parse, be an object with the contract's keys, and agree with the
   header; the arch name and width are taken from it (the header holds neither).
8. Header fields beyond the contract's list are checked for sanity: odd stem kernel, strides
   1 or 2, non-zero channels and t/n for used stages, zero padding and unused stage records.
"""

from __future__ import annotations

import heapq
import json
import logging
import math
import os
import struct
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from onnxfit.errors import OnnxfitError, first_line
from onnxfit.model import write_atomic

__all__ = [
    "MAGIC",
    "VERSION",
    "BN_EPS",
    "INPUT_SIZE",
    "TOLERANCE",
    "L2_EPS",
    "Stage",
    "Arch",
    "ARCHS",
    "make_arch",
    "scale_channels",
    "Layer",
    "Block",
    "Plan",
    "plan",
    "tensor_specs",
    "Efm3File",
    "efm3_bytes",
    "write_efm3",
    "parse_efm3",
    "read_efm3",
    "tensors_from_onnx",
    "tensors_from_state_dict",
    "export_efm3",
    "Efm3Engine",
    "face_like_inputs",
    "Efm3Verification",
    "verify_efm3",
    "inspect_efm3",
    "make_sample",
]

log = logging.getLogger(__name__)

MAGIC = b"EFM3"
VERSION = 3
HEADER_VERSION = 1
MAX_STAGES = 8
BN_EPS = 1e-5
INPUT_SIZE = 112
TOLERANCE = 1e-5  # max abs error of unit-length embeddings that `efm3 verify` accepts
L2_EPS = 1e-12
# fp32(1 - eps) + fp32(eps) == 1.0 exactly in fp32: an identity BatchNorm folds to scale 1.
IDENTITY_VAR = np.float32(1.0 - BN_EPS)

_HEAD = struct.Struct("<4sI")  # magic, version
_ARCH = struct.Struct("<BBBBHHHHB3s")  # 16 bytes: the fixed part of the arch header
_STAGE = struct.Struct("<BBBB4s")  # 8 bytes per stage record
_U32 = struct.Struct("<I")
HEADER_SIZE = _ARCH.size + MAX_STAGES * _STAGE.size  # 80
_JSON_KEYS = ("name", "width_mult", "stem_channels", "block_channels", "final_channels",
              "embedding_dim", "gdc_kernel", "stages")


# ----------------------------------------------------------------------------- architectures


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
    """``max(8, round(base * width / 8) * 8)`` with half away from zero (C ``roundf``), see choice 1."""
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


def _feature_size(arch: Arch, size: int = INPUT_SIZE) -> int:
    """Spatial size that reaches the GDConv for a ``size`` x ``size`` input."""
    size = (size + 2 * (arch.stem_kernel // 2) - arch.stem_kernel) // arch.stem_stride + 1
    for stage in arch.stages:
        size = (size + 2 - 3) // stage.s + 1  # the first block's 3x3 depthwise, padding 1
    return size


# ------------------------------------------------------------------------------------ writer


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
    reached = _feature_size(arch)
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


# ------------------------------------------------------------- sources: ONNX and torch models


@dataclass
class _SourceLayer:
    """One conv unit as found in a source model, before it is matched to a layer of the plan."""

    origin: str  # where it came from, for error messages
    weight: np.ndarray
    bias: np.ndarray | None
    bn: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float] | None  # gamma, beta, mean, var, eps
    slope: np.ndarray | None
    geometry: tuple[int, int, int] | None = None  # stride, padding, groups where the source says


def tensors_from_onnx(model, source: str = "<onnx>", arch: Arch | None = None) -> tuple[Arch, dict[str, np.ndarray]]:
    """EFM3 tensors of an ONNX MobileFaceNet, found by graph structure; ``arch`` None: inferred.

    Conv nodes are walked in topological order; each takes its BatchNormalization (if its
    only consumer is one) and then its PRelu (if the next only consumer is one).
    """
    layers = _onnx_source_layers(model, source)
    arch = arch or _infer_arch(layers, source)
    return arch, _match_plan(layers, arch, source)


def tensors_from_state_dict(
    state_dict: Mapping[str, Any],
    source: str = "<state_dict>",
    arch: Arch | None = None,
    bn_eps: Mapping[str, float] | None = None,
) -> tuple[Arch, dict[str, np.ndarray]]:
    """EFM3 tensors of a torch state_dict, walked in order; ``arch`` None: inferred.

    Names do not matter, order does: each layer is a 4-D conv weight, its optional bias, then
    a BatchNorm's weight, bias, running_mean, running_var, then an optional 1-D PReLU weight
    (the order torch registers conv, bn, act). ``bn_eps`` maps BatchNorm module paths to eps.
    """
    layers = _state_dict_source_layers(state_dict, source, bn_eps or {})
    arch = arch or _infer_arch(layers, source)
    return arch, _match_plan(layers, arch, source)


_SHAPE_ONLY_OPS = ("Identity", "Unsqueeze", "Squeeze", "Reshape", "Flatten")


def _onnx_source_layers(model, source: str) -> list[_SourceLayer]:
    from onnx import helper, numpy_helper

    graph = model.graph
    constants = {t.name: t for t in graph.initializer}
    consumers: dict[str, list] = {}
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    constants[node.output[0]] = attr.t
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def constant(name: str, what: str) -> np.ndarray:
        if name not in constants:
            raise OnnxfitError(f"{source}: {what} '{name}' is not an initializer or Constant")
        return numpy_helper.to_array(constants[name]).astype(np.float32)

    producers = {name: node for node in graph.node for name in node.output}

    def slope_values(name: str, what: str) -> np.ndarray:
        # Without constant folding the exporter leaves Unsqueeze(slope) -> [C,1,1]; the values
        # are all that matter for a slope, so walk back through shape-only ops to the constant.
        while name not in constants and name in producers and producers[name].op_type in _SHAPE_ONLY_OPS:
            name = producers[name].input[0]
        return constant(name, what).reshape(-1)

    def only_consumer(name: str, op_type: str):
        users = consumers.get(name, [])
        return users[0] if len(users) == 1 and users[0].op_type == op_type else None

    layers = []
    for node in _toposorted(graph.node):
        if node.op_type != "Conv":
            continue
        origin = f"Conv node '{node.name or node.output[0]}'"
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if any(d != 1 for d in attrs.get("dilations", [1, 1])) or attrs.get("auto_pad", b"NOTSET") != b"NOTSET":
            raise OnnxfitError(f"{source}: {origin} uses dilation or auto_pad, which EFM3 has no field for")
        weight = constant(node.input[1], f"{origin} weight")
        bias = constant(node.input[2], f"{origin} bias") if len(node.input) > 2 and node.input[2] else None
        strides = attrs.get("strides", [1, 1])
        pads = attrs.get("pads", [0, 0, 0, 0])
        if len(set(strides)) != 1 or len(set(pads)) != 1:
            raise OnnxfitError(f"{source}: {origin} has unequal strides {strides} or pads {pads}")
        geometry = (strides[0], pads[0], attrs.get("group", 1))
        output = node.output[0]
        bn = None
        if (norm := only_consumer(output, "BatchNormalization")) is not None:
            params = [constant(name, f"{origin} BatchNormalization input") for name in norm.input[1:5]]
            # 1e-5 is ONNX's default epsilon for BatchNormalization.
            eps = float(next((helper.get_attribute_value(a) for a in norm.attribute if a.name == "epsilon"), 1e-5))
            bn = (*params, eps)
            output = norm.output[0]
        slope = None
        if (prelu := only_consumer(output, "PRelu")) is not None:
            slope = slope_values(prelu.input[1], f"{origin} PRelu slope")
        layers.append(_SourceLayer(origin, weight, bias, bn, slope, geometry))
    return layers


def _toposorted(nodes) -> list:
    """Kahn's order, ties broken by position; ONNX graphs are sorted already, but need not be."""
    produced_by = {name: i for i, node in enumerate(nodes) for name in node.output if name}
    waiting = [0] * len(nodes)
    users: dict[int, list[int]] = {i: [] for i in range(len(nodes))}
    for i, node in enumerate(nodes):
        for producer in {produced_by[name] for name in node.input if name in produced_by}:
            waiting[i] += 1
            users[producer].append(i)
    ready = [i for i, count in enumerate(waiting) if count == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(nodes[i])
        for user in users[i]:
            waiting[user] -= 1
            if waiting[user] == 0:
                heapq.heappush(ready, user)
    return order


def _state_dict_source_layers(
    state_dict: Mapping[str, Any], source: str, bn_eps: Mapping[str, float]
) -> list[_SourceLayer]:
    items = [(key, _as_numpy(value, source, key)) for key, value in state_dict.items()
             if not key.endswith("num_batches_tracked")]
    layers = []
    i = 0
    while i < len(items):
        key, weight = items[i]
        if weight.ndim != 4:
            raise OnnxfitError(
                f"{source}: tensor '{key}' {list(weight.shape)} is where a 4-D conv weight should be; "
                "layers must be registered in EFM3 file order (conv, batchnorm, prelu)"
            )
        prefix = key.rpartition(".")[0]
        i += 1
        bias = None
        if i < len(items) and items[i][0] == f"{prefix}.bias":
            bias = items[i][1]
            i += 1
        bn = None
        if i + 3 < len(items) and items[i + 2][0].endswith("running_mean"):
            names = [name for name, _ in items[i:i + 4]]
            bn_prefix = names[0].rpartition(".")[0]
            if names != [f"{bn_prefix}.{field}" for field in ("weight", "bias", "running_mean", "running_var")]:
                raise OnnxfitError(
                    f"{source}: BatchNorm tensors {names} are not weight, bias, running_mean, running_var")
            bn = (*(value for _, value in items[i:i + 4]), float(bn_eps.get(bn_prefix, BN_EPS)))
            i += 4
        slope = None
        if i < len(items) and items[i][1].ndim == 1 and items[i][0].endswith("weight"):
            slope = items[i][1]
            i += 1
        layers.append(_SourceLayer(f"tensor '{key}'", weight, bias, bn, slope))
    return layers


def _as_numpy(value: Any, source: str, key: str) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor; torch itself is not imported here
        value = value.detach().cpu()
        if not value.is_floating_point():
            raise OnnxfitError(f"{source}: tensor '{key}' has dtype {value.dtype}, expected floating point")
        value = value.float().numpy()
    value = np.asarray(value)
    if value.dtype.kind != "f":
        raise OnnxfitError(f"{source}: tensor '{key}' has dtype {value.dtype}, expected floating point")
    return value.astype(np.float32)


def _infer_arch(layers: list[_SourceLayer], source: str) -> Arch:
    shapes = [layer.weight.shape for layer in layers]
    for arch in ARCHS.values():
        if shapes == [layer.weight_shape for layer in plan(arch).layers()]:
            return arch
    raise OnnxfitError(
        f"{source}: {len(layers)} conv layers whose weight shapes match none of the MobileFaceNet archs "
        f"({', '.join(ARCHS)}); pass --arch to see the first difference"
    )


def _match_plan(layers: list[_SourceLayer], arch: Arch, source: str) -> dict[str, np.ndarray]:
    expected = plan(arch).layers()
    if len(layers) != len(expected):
        raise OnnxfitError(f"{source}: {len(layers)} conv layers, but arch {arch.name} has {len(expected)}")
    tensors: dict[str, np.ndarray] = {}
    for found, layer in zip(layers, expected):
        where = f"{source}: {found.origin} (layer {layer.name} of {arch.name})"
        if found.weight.shape != layer.weight_shape:
            raise OnnxfitError(f"{where}: weight shape {list(found.weight.shape)}, expected {list(layer.weight_shape)}")
        if found.geometry and found.geometry != (layer.stride, layer.padding, layer.groups):
            expected_geometry = (layer.stride, layer.padding, layer.groups)
            raise OnnxfitError(f"{where}: stride/padding/groups {found.geometry}, expected {expected_geometry}")
        if layer.prelu != (found.slope is not None):
            raise OnnxfitError(f"{where}: {'no' if layer.prelu else 'a'} PReLU follows it, the arch says the opposite")
        channels = layer.out_channels
        for value in (found.bias, *(found.bn[:4] if found.bn else ())):
            if value is not None and value.shape != (channels,):
                raise OnnxfitError(
                    f"{where}: bias or BatchNorm parameter of shape {list(value.shape)}, expected [{channels}]")
        names = [name for name, _ in layer.tensor_shapes()]
        tensors[names[0]] = found.weight
        tensors.update(zip(names[1:5], _batchnorm(found, channels)))
        if layer.prelu:
            slope = found.slope.reshape(-1)
            if slope.size not in (1, channels):
                raise OnnxfitError(f"{where}: PReLU slope of {slope.size} values, expected 1 or {channels}")
            tensors[names[5]] = np.broadcast_to(slope, (channels,)).astype(np.float32)
    return tensors


def _batchnorm(found: _SourceLayer, channels: int) -> tuple[np.ndarray, ...]:
    """gamma, beta, mean, var for the file (choice 5 of the module docstring)."""
    bias = found.bias if found.bias is not None else np.zeros(channels, np.float32)
    if found.bn is None:
        return (np.ones(channels, np.float32), bias.astype(np.float32), np.zeros(channels, np.float32),
                np.full(channels, IDENTITY_VAR, np.float32))
    gamma, beta, mean, var, eps = found.bn
    # BN(conv + b) uses (conv + b - mean): the conv bias moves into the mean.
    mean = mean.astype(np.float64) - bias
    if eps != BN_EPS:
        # The engine adds 1e-5; keep var + eps unchanged.
        var = var.astype(np.float64) + (eps - BN_EPS)
    return gamma, beta, mean.astype(np.float32), np.asarray(var, np.float32)


def export_efm3(source: str | os.PathLike, output: str | os.PathLike, arch: str | None = None) -> Efm3File:
    """``onnxfit export efm3``: an ONNX model (.onnx) or a torch checkpoint (.pt/.pth) -> EFM3 file.

    The file is read back and validated after writing; returns what was read.
    """
    source = Path(source)
    if not source.is_file():
        raise OnnxfitError(f"{source}: no such file")
    with open(source, "rb") as handle:
        is_efm3 = handle.read(4) == MAGIC
    if is_efm3:
        raise OnnxfitError(f"{source}: is already an EFM3 file; export takes an .onnx model or a torch checkpoint")
    if arch is not None and arch not in ARCHS:
        raise OnnxfitError(f"unknown arch '{arch}': choose one of {', '.join(ARCHS)}")
    wanted = ARCHS[arch] if arch else None
    if source.suffix.lower() == ".onnx":
        from onnxfit.model import load_model

        found, tensors = tensors_from_onnx(load_model(source), str(source), wanted)
    elif source.suffix.lower() in (".pt", ".pth", ".ckpt", ".bin"):
        from onnxfit.exporters.mobilefacenet import load_checkpoint

        state_dict, bn_eps = load_checkpoint(source)
        found, tensors = tensors_from_state_dict(state_dict, str(source), wanted, bn_eps)
    else:
        raise OnnxfitError(f"{source}: expected an .onnx model or a torch checkpoint (.pt, .pth)")
    write_efm3(output, found, tensors)
    return read_efm3(output)


# ------------------------------------------------------------------------- reference engine


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


# --------------------------------------------------------------------------------- verifying


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
    from onnxruntime.capi.onnxruntime_pybind11_state import Fail, InvalidArgument, InvalidGraph, RuntimeException

    from onnxfit.model import load_model

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


# -------------------------------------------------------------------------------- the sample


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


if __name__ == "__main__":
    raise SystemExit(main())
