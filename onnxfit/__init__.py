"""onnxfit: make ONNX vision models run whole on their execution provider, and prove it.

Public API (re-exports, imported on first use so that ``import onnxfit`` stays light):
    optimize, optimize_model      onnxfit.app.optimize
    prepare                       onnxfit.app.prepare (per-machine cache)
    session, session_plan         onnxfit.app.session (a ready onnxruntime session for the machine)
    verify                        onnxfit.app.verify (parity, contamination, partitions; the engine
                                  is the onnxfit.verification package)
    count_partitions              onnxfit.targets.partitions
    inspect                       onnxfit.app.inspection
    export_torch                  onnxfit.exporters.torch_onnx (needs the torch extra)
    load_model, save_model        onnxfit.model
    OnnxfitError, CheckFailed     onnxfit.errors
"""

import importlib

from onnxfit.errors import CheckFailed, OnnxfitError

__version__ = "0.1.0"

_LAZY = {
    "inspect": "onnxfit.app.inspection",
    "prepare": "onnxfit.app.prepare",
    "session": "onnxfit.app.session",
    "session_plan": "onnxfit.app.session",
    "verify": "onnxfit.app.verify",
    "export_torch": "onnxfit.exporters.torch_onnx",
    "optimize": "onnxfit.app.optimize",
    "optimize_model": "onnxfit.app.optimize",
    "count_partitions": "onnxfit.targets.partitions",
    "load_model": "onnxfit.model",
    "save_model": "onnxfit.model",
}

__all__ = [*_LAZY, "OnnxfitError", "CheckFailed", "__version__"]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'onnxfit' has no attribute '{name}'")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
