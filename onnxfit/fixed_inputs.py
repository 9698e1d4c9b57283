"""Fixed inputs: a graph input the caller always feeds the same value becomes a constant.

Speech and vision models branch on settings (a voice-activity detector's sample rate ``sr``) and
ship hand-made "if-less" exports for EPs without If. ``--fix-input sr=16000`` turns the input
into an initializer and removes it from the graph inputs; fold-shapes and inline-if then remove
the branches it decides. The value takes the input's declared element type and shape:

- ``sr=16000`` a scalar, ``scale=0.5,0.5`` a vector, ``mask=@mask.npy`` any array from a file;
- the value's rank must match the declared one (a scalar fits a declared ``[1]``); its dims must
  match the declared fixed dims (symbolic dims take the value's size).

The optimized model records the values in its metadata (``onnxfit.fixed_inputs``), so ``verify``
against the original feeds the original the same value.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import onnx

from onnxfit.errors import OnnxfitError
from onnxfit.shapes import proto_shape

__all__ = ["METADATA_KEY", "parse_fixed_inputs", "resolve_fixed_inputs", "fixed_inputs_metadata",
           "read_fixed_inputs"]

METADATA_KEY = "onnxfit.fixed_inputs"
_MAX_METADATA_ELEMENTS = 4096  # larger values are fixed in the model but not recorded for verify


def parse_fixed_inputs(specs: Iterable[str]) -> dict[str, np.ndarray]:
    """``["sr=16000", "mask=@mask.npy"]`` -> name -> array (dtype and shape bound later)."""
    values: dict[str, np.ndarray] = {}
    for spec in specs:
        name, sep, text = spec.partition("=")
        name, text = name.strip(), text.strip()
        if not sep or not name or not text:
            raise OnnxfitError(f"--fix-input '{spec}': expected NAME=VALUE, e.g. sr=16000, scale=0.5,0.5 or mask=@mask.npy")
        values[name] = _parse_value(name, text)
    return values


def _parse_value(name: str, text: str) -> np.ndarray:
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise OnnxfitError(f"--fix-input {name}: cannot read {path} as a .npy array ({exc})") from None
    try:
        numbers = [float(part) for part in text.split(",")]
    except ValueError:
        raise OnnxfitError(f"--fix-input {name}={text}: not a number list; use e.g. {name}=16000, "
                           f"{name}=0.5,0.5 or {name}=@{name}.npy") from None
    array = np.asarray(numbers)
    return array.reshape(()) if array.size == 1 and "," not in text else array


def resolve_fixed_inputs(model: onnx.ModelProto, values: Mapping[str, np.ndarray] | None) -> dict[str, np.ndarray]:
    """Bind values to the model's inputs: the declared element type and shape, checked."""
    from onnx.helper import tensor_dtype_to_np_dtype

    if not values:
        return {}
    initializers = {t.name for t in model.graph.initializer}
    inputs = {i.name: i for i in model.graph.input if i.name not in initializers}
    resolved: dict[str, np.ndarray] = {}
    for name, value in values.items():
        if name not in inputs:
            raise OnnxfitError(f"--fix-input names '{name}', which is not a model input ({', '.join(inputs)})")
        info = inputs[name]
        elem_type = info.type.tensor_type.elem_type
        if not info.type.HasField("tensor_type") or not elem_type:
            raise OnnxfitError(f"input '{name}' is not a tensor of a known element type; it cannot be fixed")
        array = np.asarray(value)
        dtype = tensor_dtype_to_np_dtype(elem_type)
        if np.issubdtype(dtype, np.integer) and array.dtype.kind == "f" and not np.all(np.mod(array, 1) == 0):
            raise OnnxfitError(f"--fix-input {name}: input '{name}' holds integers, not {array.reshape(-1)[:4].tolist()}")
        array = array.astype(dtype)
        dims = proto_shape(info)
        if dims is not None:
            if array.ndim != len(dims) and array.size == 1:
                array = array.reshape([1] * len(dims))
            if array.ndim != len(dims):
                raise OnnxfitError(f"--fix-input {name}: input '{name}' has rank {len(dims)}, the value has rank {array.ndim}")
            for declared, size in zip(dims, array.shape):
                if isinstance(declared, int) and declared != size:
                    raise OnnxfitError(f"--fix-input {name}: input '{name}' is declared {list(dims)}, "
                                       f"the value has shape {list(array.shape)}")
        resolved[name] = array
    return resolved


def fixed_inputs_metadata(values: Mapping[str, np.ndarray]) -> str | None:
    """The JSON recorded in the model's metadata: dtype, shape and values of each fixed input."""
    recorded = {name: {"dtype": str(v.dtype), "shape": list(v.shape), "values": v.reshape(-1).tolist()}
                for name, v in values.items() if v.size <= _MAX_METADATA_ELEMENTS}
    return json.dumps(recorded, sort_keys=True) if recorded else None


def read_fixed_inputs(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Fixed inputs an optimized model recorded; empty when it recorded none (or garbage)."""
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            try:
                data = json.loads(prop.value)
                return {name: np.asarray(v["values"], dtype=v["dtype"]).reshape(v["shape"]) for name, v in data.items()}
            except (ValueError, KeyError, TypeError):
                return {}
    return {}
