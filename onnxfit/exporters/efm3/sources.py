"""EFM3 tensors from a source model: an ONNX MobileFaceNet or a torch state_dict.

Layers are found by structure (conv, then BatchNorm, then PReLU), not by name, and matched to
the layer list of :func:`onnxfit.exporters.mobilefacenet_arch.plan`. Choices 3 and 5 of
:mod:`onnxfit.exporters.efm3` (PReLU slopes, BatchNorm folding into the file) live here.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from onnxfit.errors import OnnxfitError
from onnxfit.exporters.efm3.fileformat import MAGIC, Efm3File, read_efm3, write_efm3
from onnxfit.exporters.mobilefacenet_arch import ARCHS, BN_EPS, Arch, plan
from onnxfit.model import load_model

__all__ = ["IDENTITY_VAR", "export_efm3", "tensors_from_onnx", "tensors_from_state_dict"]

# fp32(1 - eps) + fp32(eps) == 1.0 exactly in fp32: an identity BatchNorm folds to scale 1.
IDENTITY_VAR = np.float32(1.0 - BN_EPS)

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
    """gamma, beta, mean, var for the file (choice 5 of :mod:`onnxfit.exporters.efm3`)."""
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
        found, tensors = tensors_from_onnx(load_model(source), str(source), wanted)
    elif source.suffix.lower() in (".pt", ".pth", ".ckpt", ".bin"):
        from onnxfit.exporters.mobilefacenet import load_checkpoint

        state_dict, bn_eps = load_checkpoint(source)
        found, tensors = tensors_from_state_dict(state_dict, str(source), wanted, bn_eps)
    else:
        raise OnnxfitError(f"{source}: expected an .onnx model or a torch checkpoint (.pt, .pth)")
    write_efm3(output, found, tensors)
    return read_efm3(output)
