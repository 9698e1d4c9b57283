"""Model I/O: load and save ONNX files safely, parse shape specs, hash model files.

Why this module exists: every user error about a file (missing, empty, truncated, not ONNX,
external data escaping its directory, a cycle, an opset newer than this onnx) must surface as
one ``OnnxfitError`` naming the file, and every save must be atomic so that a failure never
leaves a partial output behind.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError

from onnxfit import lazy_io
from onnxfit.errors import OnnxfitError, first_line
from onnxfit.files import file_digest, write_atomic
from onnxfit.graphs import attribute_graphs, iter_graphs
from onnxfit.model_inputs import parse_input_shapes, parse_shape  # noqa: F401  (their old home)
from onnxfit.shapes import proto_shape

__all__ = [
    "load_model",
    "save_model",
    "write_atomic",
    "parse_shape",
    "parse_input_shapes",
    "resolve_input_shapes",
    "iter_all_tensors",
    "model_data_size",
    "external_data_files",
    "keeps_weights_outside",
    "file_digest",
    "node_inputs_with_subgraphs",
    "TWO_GB",
]

log = logging.getLogger(__name__)

TWO_GB = 2**31 - 1  # protobuf's hard limit on one serialized message


# ---------------------------------------------------------------------------------- loading


def load_model(path: str | os.PathLike, load_external_data: bool = True, lazy_weights: bool = False) -> onnx.ModelProto:
    """Load and sanity-check a model; raise ``OnnxfitError`` for anything a user can fix.

    ``lazy_weights``: leave large initializer bytes in the file (see ``onnxfit.lazy_io``): the
    rewrite path loads a 550 MB model in a fraction of the time and memory, and ``save_model``
    streams the bytes back. Code that runs the model (verify, partitions) loads it fully.
    """
    path = Path(path)
    if not path.exists():
        raise OnnxfitError(f"{path}: no such file")
    if path.is_dir():
        raise OnnxfitError(f"{path}: is a directory, expected an .onnx file")
    if path.stat().st_size == 0:
        raise OnnxfitError(f"{path}: empty file, not an ONNX model")
    try:
        if lazy_weights:
            model = lazy_io.load_skeleton(path)
        else:
            model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, RuntimeWarning, ValueError, OSError, EOFError) as exc:
        raise OnnxfitError(f"{path}: not a valid ONNX model (protobuf parse failed: {first_line(exc)})") from None
    _check_is_model(path, model)
    _check_opsets(path, model)
    _check_external_data(path, model)
    if load_external_data and not lazy_weights and external_data_files(model):
        try:
            onnx.external_data_helper.load_external_data_for_model(model, str(path.parent))
        except (OSError, ValueError) as exc:
            raise OnnxfitError(f"{path}: cannot read external data ({first_line(exc)})") from None
    _check_acyclic(path, model.graph)
    return model


def _check_is_model(path: Path, model: onnx.ModelProto) -> None:
    # Random bytes often parse as a protobuf with only unknown fields: demand the fields a model has.
    if model.ir_version <= 0 or not model.HasField("graph") or not model.opset_import:
        raise OnnxfitError(f"{path}: not an ONNX model (no IR version, graph or opset) or truncated")
    if not model.graph.output:
        raise OnnxfitError(f"{path}: the graph has no outputs (truncated or not an ONNX model)")


def _check_opsets(path: Path, model: onnx.ModelProto) -> None:
    newest = onnx.defs.onnx_opset_version()
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx") and opset.version > newest:
            raise OnnxfitError(
                f"{path}: opset {opset.version} is newer than this onnx supports ({newest}); "
                f"upgrade onnx or re-export with opset <= {newest}"
            )
        if opset.domain in ("", "ai.onnx") and opset.version < 1:
            raise OnnxfitError(f"{path}: invalid opset version {opset.version}")


def _check_external_data(path: Path, model: onnx.ModelProto) -> None:
    base = path.parent.resolve()
    for tensor in iter_all_tensors(model):
        if tensor.data_location != onnx.TensorProto.EXTERNAL or lazy_io.is_lazy(tensor):
            continue
        location = {e.key: e.value for e in tensor.external_data}.get("location", "")
        target = (base / location).resolve()
        if not location or os.path.isabs(location) or not target.is_relative_to(base):
            raise OnnxfitError(
                f"{path}: external data '{location}' of tensor '{tensor.name}' points outside the model directory"
            )
        if not target.is_file():
            raise OnnxfitError(f"{path}: external data file '{location}' of tensor '{tensor.name}' is missing")


def _check_acyclic(path: Path, graph: onnx.GraphProto) -> None:
    """Kahn's algorithm over the node list; names the nodes on a cycle."""
    producer: dict[str, int] = {}
    for index, node in enumerate(graph.node):
        for name in node.output:
            if name:
                producer[name] = index
    consumers: dict[int, list[int]] = {i: [] for i in range(len(graph.node))}
    indegree = [0] * len(graph.node)
    for index, node in enumerate(graph.node):
        for name in set(node_inputs_with_subgraphs(node)):
            if name in producer and producer[name] != index:
                consumers[producer[name]].append(index)
                indegree[index] += 1
            elif name in producer:  # a node feeding itself
                indegree[index] += 1
    ready = [i for i, d in enumerate(indegree) if d == 0]
    seen = 0
    while ready:
        current = ready.pop()
        seen += 1
        for nxt in consumers[current]:
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                ready.append(nxt)
    if seen != len(graph.node):
        stuck = [graph.node[i].name or graph.node[i].op_type for i, d in enumerate(indegree) if d > 0]
        raise OnnxfitError(f"{path}: the graph has a cycle through nodes {', '.join(stuck[:5])}")


def node_inputs_with_subgraphs(node: onnx.NodeProto) -> Iterator[str]:
    """Inputs of a node plus outer-scope names its subgraphs read (real dependencies: ONNX
    Runtime treats them as implicit inputs)."""
    yield from (name for name in node.input if name)
    for attr in node.attribute:
        for sub in attribute_graphs(attr):
            local = {i.name for i in sub.input} | {t.name for t in sub.initializer}
            for sub_node in sub.node:
                local.update(sub_node.output)
            for sub_node in sub.node:
                for name in node_inputs_with_subgraphs(sub_node):
                    if name not in local:
                        yield name


def iter_all_tensors(model: onnx.ModelProto) -> Iterator[onnx.TensorProto]:
    """Initializers of every graph and subgraph, and tensors in Constant node attributes."""
    for graph in iter_graphs(model.graph):
        yield from graph.initializer
        for node in graph.node:
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.TENSOR:
                    yield attr.t


def external_data_files(model: onnx.ModelProto) -> list[str]:
    """Relative locations of the external data files a model refers to, in first-use order."""
    files: dict[str, None] = {}
    for tensor in iter_all_tensors(model):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            files[{e.key: e.value for e in tensor.external_data}.get("location", "")] = None
    return list(files)


def keeps_weights_outside(model: onnx.ModelProto, path: str | os.PathLike) -> bool:
    """Whether ``model``, loaded with ``lazy_weights`` from ``path``, keeps weights in data files
    beside it (``model.onnx.data``): its optimized copy is written the same way."""
    source = str(Path(path).resolve())
    return any(lazy_io.lazy_ref(t)[0] != source for t in lazy_io.lazy_tensors(model))


def model_data_size(model: onnx.ModelProto) -> int:
    """Bytes of tensor data held in memory (what decides whether the 2 GB limit is crossed)."""
    return sum(lazy_io.lazy_ref(t)[2] if lazy_io.is_lazy(t) else len(t.raw_data) for t in iter_all_tensors(model))


# ----------------------------------------------------------------------------------- saving


def save_model(
    model: onnx.ModelProto,
    path: str | os.PathLike,
    external_data: bool | None = None,
) -> Path:
    """Write ``model`` atomically to ``path``; return the path.

    External data is written next to the output as ``<name>.data`` when ``external_data`` is
    True, or when it is None and the model would not fit a 2 GB protobuf. Both files are first
    written into a temporary directory beside the output and then renamed into place, so an
    interrupted save leaves the previous output (or nothing) behind, never a partial file.
    Note: saving with external data moves tensor bytes out of ``model`` (onnx does so in place).
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OnnxfitError(f"{path}: output directory '{parent}' does not exist")
    if external_data is None:
        external_data = model_data_size(model) + 64 * 2**20 > TWO_GB
    try:
        tmp_dir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=parent))
    except OSError as exc:
        raise OnnxfitError(f"{path}: cannot write to '{parent}' ({first_line(exc)})") from None
    try:
        tmp_model = tmp_dir / path.name
        data_name = f"{path.name}.data"
        if lazy_io.lazy_tensors(model):
            data_path = tmp_dir / data_name if external_data else None
            lazy_io.write_model_streaming(model, tmp_model, data_path, data_name)
            if data_path is not None:
                os.replace(data_path, parent / data_name)
        elif external_data:
            onnx.save_model(
                model,
                str(tmp_model),
                save_as_external_data=True,
                all_tensors_to_one_file=True,
                location=data_name,
                size_threshold=1024,
            )
            if (tmp_dir / data_name).exists():
                os.replace(tmp_dir / data_name, parent / data_name)
        else:
            with open(tmp_model, "wb") as handle:
                handle.write(model.SerializeToString())
        os.replace(tmp_model, path)
    except OSError as exc:
        raise OnnxfitError(f"{path}: cannot write ({first_line(exc)})") from None
    finally:
        for leftover in tmp_dir.iterdir() if tmp_dir.exists() else ():
            leftover.unlink()
        if tmp_dir.exists():
            tmp_dir.rmdir()
    return path


# ------------------------------------------------------------------------------ shape specs


def resolve_input_shapes(
    model: onnx.ModelProto, shapes: dict[str | None, tuple[int, ...]] | None
) -> dict[str, tuple[int, ...]]:
    """Bind shape specs to the model's real inputs (initializers excluded); check rank and names.

    Only a dim_value > 0 is fixed; a dim_value <= 0 (Paddle's -1), an empty dim, a name and a
    missing shape are symbolic, and any positive size may replace them.
    """
    if not shapes:
        return {}
    initializers = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    by_name = {i.name: i for i in inputs}
    resolved: dict[str, tuple[int, ...]] = {}
    for name, shape in shapes.items():
        if name is None:
            if len(inputs) != 1:
                raise OnnxfitError(
                    f"the model has {len(inputs)} inputs ({', '.join(by_name)}): name one, e.g. --input-shape "
                    f"{inputs[0].name if inputs else 'input'}={'x'.join(map(str, shape))}"
                )
            name = inputs[0].name
        if name not in by_name:
            raise OnnxfitError(f"--input-shape names '{name}', which is not a model input ({', '.join(by_name)})")
        dims = proto_shape(by_name[name])
        if dims is not None and len(dims) != len(shape):
            raise OnnxfitError(f"input '{name}' has rank {len(dims)}, but --input-shape gives {len(shape)} dims")
        if dims is not None and any(isinstance(d, int) and d != value for d, value in zip(dims, shape)):
            shown = [d if d is not None else "?" for d in dims]
            raise OnnxfitError(
                f"input '{name}' has fixed dims {shown}; --input-shape {'x'.join(map(str, shape))} contradicts them"
            )
        resolved[name] = shape
    return resolved
