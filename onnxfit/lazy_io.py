"""Load a model without its weight bytes, and save it by streaming them from the source file.

Why: ``onnx.load`` + ``onnx.save`` of a 550 MB generator peaks at ~3x the model size in RSS
(file bytes, parsed message, serialized copy) and spends most of its time copying weights that no
pass reads. Passes only need small constants (pads, split sizes, shapes), so onnxfit loads a
*skeleton*: every large initializer of the main graph keeps its name, dtype and dims, but its
bytes stay in the source file and the tensor records where (an external-data reference marked
``onnxfit_lazy``). Saving writes the protobuf wire format directly and copies each lazy tensor's
bytes file-to-file (``os.copy_file_range``/``sendfile``), so they never enter Python.

Rules:
1. Only top-level ``graph.initializer`` tensors with ``raw_data`` >= ``LAZY_THRESHOLD`` bytes, or
   with external data, become lazy; everything else is parsed normally.
2. A lazy tensor's ``external_data`` holds ``location`` (absolute source path), ``offset``,
   ``length`` and ``onnxfit_lazy=1``; it is never written to disk in that form.
3. ``materialize`` loads lazy tensors into memory for code that needs a complete model.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import onnx.numpy_helper

__all__ = ["LAZY_THRESHOLD", "load_skeleton", "is_lazy", "lazy_ref", "read_lazy", "write_model_streaming", "materialize",
           "lazy_tensors"]

# Above what any pass reads: constant_value() reads at most 65,536 elements (512 KiB at 8 bytes),
# so a lazy tensor is never one a pass needs the values of.
LAZY_THRESHOLD = 1024 * 1024

_WIRE_VARINT, _WIRE_I64, _WIRE_LEN, _WIRE_I32 = 0, 1, 2, 5
_MODEL_GRAPH = 7
_GRAPH_INITIALIZER = 5
_TENSOR_RAW_DATA = 9
_TENSOR_EXTERNAL_DATA = 13
_TENSOR_DATA_LOCATION = 14


# ------------------------------------------------------------------------------ wire format
def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(handle) -> int:
    shift = result = 0
    while True:
        byte = handle.read(1)
        if not byte:
            raise EOFError("truncated varint")
        result |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return result
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _varint_at(data: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if pos >= len(data):
            raise EOFError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(handle, end: int) -> Iterator[tuple[int, int, int, int]]:
    """Yield (field, wire type, start of the field's tag, start of its payload) up to ``end``.

    For LEN fields the payload starts after the length varint and the handle is left there;
    the caller must seek to the field's end itself (``_skip``).
    """
    while handle.tell() < end:
        tag_start = handle.tell()
        tag = _read_varint(handle)
        field, wire = tag >> 3, tag & 7
        yield field, wire, tag_start, handle.tell()


def _skip(handle, wire: int) -> int:
    """Skip one field's payload (handle just after the tag); return the LEN payload size or 0."""
    if wire == _WIRE_VARINT:
        _read_varint(handle)
    elif wire == _WIRE_I64:
        handle.seek(8, os.SEEK_CUR)
    elif wire == _WIRE_I32:
        handle.seek(4, os.SEEK_CUR)
    elif wire == _WIRE_LEN:
        size = _read_varint(handle)
        handle.seek(size, os.SEEK_CUR)
        return size
    else:
        raise ValueError(f"unsupported wire type {wire}")
    return 0


def _len_field(field: int, payload_size: int) -> bytes:
    return _encode_varint(field << 3 | _WIRE_LEN) + _encode_varint(payload_size)


# ------------------------------------------------------------------------------------ load
def load_skeleton(path: Path) -> onnx.ModelProto:
    """Parse ``path`` leaving large main-graph initializer bytes in the file (see module doc)."""
    path = Path(path)
    size = path.stat().st_size
    source = str(path.resolve())
    with open(path, "rb", buffering=1 << 20) as handle:
        model_bytes = bytearray()
        for field, wire, tag_start, _ in _fields(handle, size):
            if field == _MODEL_GRAPH and wire == _WIRE_LEN:
                graph_size = _read_varint(handle)
                graph_bytes = _skeleton_graph(handle, handle.tell() + graph_size, source)
                model_bytes += _len_field(_MODEL_GRAPH, len(graph_bytes)) + graph_bytes
            else:
                _skip(handle, wire)
                model_bytes += _copy_range(handle, tag_start, handle.tell())
        if handle.tell() != size:
            raise EOFError("model ends inside a field")
    model = onnx.ModelProto.FromString(bytes(model_bytes))
    _resolve_external_locations(model, path.parent.resolve())
    return model


def _copy_range(handle, start: int, end: int) -> bytes:
    here = handle.tell()
    handle.seek(start)
    data = handle.read(end - start)
    handle.seek(here)
    if len(data) != end - start:
        raise EOFError("truncated field")
    return data


def _skeleton_graph(handle, end: int, source: str) -> bytes:
    out = bytearray()
    for field, wire, tag_start, _ in _fields(handle, end):
        if field == _GRAPH_INITIALIZER and wire == _WIRE_LEN:
            tensor_size = _read_varint(handle)
            body_start = handle.tell()
            if tensor_size >= LAZY_THRESHOLD:
                tensor = _skeleton_tensor(handle, body_start + tensor_size, source)
                out += _len_field(_GRAPH_INITIALIZER, len(tensor)) + tensor
                handle.seek(body_start + tensor_size)
                continue
            handle.seek(body_start + tensor_size)
        else:
            _skip(handle, wire)
        out += _copy_range(handle, tag_start, handle.tell())
    if handle.tell() != end:
        raise EOFError("graph ends inside a field")
    return bytes(out)


def _skeleton_tensor(handle, end: int, source: str) -> bytes:
    """The tensor's fields without raw_data, plus a lazy external reference to the bytes."""
    out = bytearray()
    raw: tuple[int, int] | None = None
    for field, wire, tag_start, _ in _fields(handle, end):
        if field == _TENSOR_RAW_DATA and wire == _WIRE_LEN:
            length = _read_varint(handle)
            raw = (handle.tell(), length)
            handle.seek(length, os.SEEK_CUR)
            continue
        _skip(handle, wire)
        out += _copy_range(handle, tag_start, handle.tell())
    if raw is None:
        return bytes(out)  # typed data fields (float_data, ...): kept inline as they were
    extra = onnx.TensorProto()
    extra.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", source), ("offset", str(raw[0])), ("length", str(raw[1])), ("onnxfit_lazy", "1")):
        extra.external_data.add(key=key, value=value)
    return bytes(out) + extra.SerializeToString()


def _resolve_external_locations(model: onnx.ModelProto, base: Path) -> None:
    """Turn the model's own external-data references (main graph) into lazy ones."""
    for tensor in model.graph.initializer:
        if tensor.data_location != onnx.TensorProto.EXTERNAL or is_lazy(tensor):
            continue
        info = {e.key: e.value for e in tensor.external_data}
        location = (base / info.get("location", "")).resolve()
        if not info.get("location") or not location.is_relative_to(base) or not location.is_file():
            continue  # left as it is: load_model refuses it with a clear message
        offset = int(info.get("offset", 0))
        length = int(info["length"]) if "length" in info else location.stat().st_size - offset
        _set_lazy(tensor, str(location), offset, length)


def _set_lazy(tensor: onnx.TensorProto, location: str, offset: int, length: int) -> None:
    del tensor.external_data[:]
    tensor.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", str(offset)), ("length", str(length)), ("onnxfit_lazy", "1")):
        tensor.external_data.add(key=key, value=value)


def is_lazy(tensor: onnx.TensorProto) -> bool:
    return tensor.data_location == onnx.TensorProto.EXTERNAL and any(
        e.key == "onnxfit_lazy" for e in tensor.external_data)


def lazy_ref(tensor: onnx.TensorProto) -> tuple[str, int, int]:
    info = {e.key: e.value for e in tensor.external_data}
    return info["location"], int(info["offset"]), int(info["length"])


def read_lazy(tensor: onnx.TensorProto) -> np.ndarray:
    """The values of a lazy tensor, read from its file; the tensor itself stays lazy."""
    location, offset, length = lazy_ref(tensor)
    proto = onnx.TensorProto()
    proto.CopyFrom(tensor)
    del proto.external_data[:]
    proto.ClearField("data_location")
    with open(location, "rb") as handle:
        handle.seek(offset)
        proto.raw_data = handle.read(length)
    return onnx.numpy_helper.to_array(proto)


def lazy_tensors(model: onnx.ModelProto) -> list[onnx.TensorProto]:
    return [t for t in model.graph.initializer if is_lazy(t)]


def materialize(model: onnx.ModelProto) -> onnx.ModelProto:
    """Read every lazy tensor's bytes into the model (in place) and return it."""
    for tensor in lazy_tensors(model):
        location, offset, length = lazy_ref(tensor)
        with open(location, "rb") as handle:
            handle.seek(offset)
            data = handle.read(length)
        del tensor.external_data[:]
        tensor.ClearField("data_location")
        tensor.raw_data = data
    return model


# ----------------------------------------------------------------------------------- save
def write_model_streaming(model: onnx.ModelProto, path: Path, data_path: Path | None = None,
                          data_location: str | None = None) -> None:
    """Write ``model`` to ``path``; lazy tensors are copied from their source file.

    With ``data_path``, every lazy tensor (and every inline initializer >= LAZY_THRESHOLD) goes to
    that external data file instead, referenced as ``data_location`` relative to the model.
    The model proto itself is not modified.
    """
    if data_path is not None:
        _write_with_external_data(model, path, data_path, data_location or data_path.name)
        return
    # The skeleton is small (lazy tensors hold no bytes), so these copies are cheap.
    graph_rest = onnx.GraphProto()
    graph_rest.CopyFrom(model.graph)
    graph_rest.ClearField("initializer")
    rest_bytes = graph_rest.SerializeToString()
    pieces: list[tuple[bytes, tuple[str, int, int] | None]] = []  # (header bytes, lazy payload)
    graph_size = len(rest_bytes)
    for tensor in model.graph.initializer:
        if is_lazy(tensor):
            location, offset, length = lazy_ref(tensor)
            body = _tensor_without_external(tensor).SerializeToString()
            raw_header = _len_field(_TENSOR_RAW_DATA, length)
            header = _len_field(_GRAPH_INITIALIZER, len(body) + len(raw_header) + length) + body + raw_header
            pieces.append((header, (location, offset, length)))
            graph_size += len(header) + length
        else:
            encoded = tensor.SerializeToString()
            header = _len_field(_GRAPH_INITIALIZER, len(encoded)) + encoded
            pieces.append((header, None))
            graph_size += len(header)
    model_rest = onnx.ModelProto()
    model_rest.CopyFrom(model)
    model_rest.ClearField("graph")
    with open(path, "wb") as out:
        out.write(model_rest.SerializeToString())
        out.write(_len_field(_MODEL_GRAPH, graph_size))
        out.write(rest_bytes)
        _write_pieces(out, pieces)


def _tensor_without_external(tensor: onnx.TensorProto) -> onnx.TensorProto:
    copy = onnx.TensorProto()
    copy.CopyFrom(tensor)
    del copy.external_data[:]
    copy.ClearField("data_location")
    return copy


def _write_pieces(out, pieces) -> None:
    for header, payload in pieces:
        out.write(header)
        if payload is not None:
            out.flush()
            _copy_file_range(payload, out)


def _copy_file_range(payload: tuple[str, int, int], out) -> None:
    """Copy ``length`` bytes at ``offset`` of ``location`` to the current end of ``out``."""
    location, offset, length = payload
    with open(location, "rb") as source:
        remaining = length
        position = offset
        copy = getattr(os, "copy_file_range", None)
        while remaining:
            try:
                if copy is None:
                    raise OSError
                sent = copy(source.fileno(), out.fileno(), remaining, position)
            except OSError:
                source.seek(position)
                chunk = source.read(min(remaining, 16 * 2**20))
                out.write(chunk)
                out.flush()
                sent = len(chunk)
            if sent == 0:
                raise OSError(f"{location}: ends before the tensor data it should hold")
            remaining -= sent
            position += sent
        out.seek(0, os.SEEK_END)


def _write_with_external_data(model: onnx.ModelProto, path: Path, data_path: Path, data_location: str) -> None:
    skeleton = onnx.ModelProto()
    skeleton.CopyFrom(model)  # lazy tensors carry no bytes: this copy is small unless tensors are inline
    with open(data_path, "wb") as data:
        for tensor in skeleton.graph.initializer:
            if is_lazy(tensor):
                payload = lazy_ref(tensor)
            elif len(tensor.raw_data) >= LAZY_THRESHOLD:
                payload = None
            else:
                continue
            # Align each tensor to 4 KiB so readers may memory-map it.
            data.seek(0, os.SEEK_END)
            offset = data.tell()
            padding = (-offset) % 4096
            data.write(b"\0" * padding)
            offset += padding
            if payload is None:
                data.write(tensor.raw_data)
                length = len(tensor.raw_data)
                tensor.ClearField("raw_data")
            else:
                data.flush()
                _copy_file_range(payload, data)
                length = payload[2]
            del tensor.external_data[:]
            tensor.data_location = onnx.TensorProto.EXTERNAL
            for key, value in (("location", data_location), ("offset", str(offset)), ("length", str(length))):
                tensor.external_data.add(key=key, value=value)
    with open(path, "wb") as out:
        out.write(skeleton.SerializeToString())
