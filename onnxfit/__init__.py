"""onnxfit: make ONNX vision models run whole on their execution provider, and prove it.

Public API (re-exports only; see each subpackage):
    optimize, optimize_model      onnxfit.optimizer
    load_model, save_model        onnxfit.model
    OnnxfitError                  onnxfit.errors
"""

from onnxfit.errors import CheckFailed, OnnxfitError
from onnxfit.inspection import inspect
from onnxfit.model import load_model, save_model
from onnxfit.optimizer import optimize, optimize_model

__version__ = "0.1.0"

__all__ = ["inspect", "optimize", "optimize_model", "load_model", "save_model", "OnnxfitError", "CheckFailed", "__version__"]
