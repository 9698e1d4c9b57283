"""onnxfit: make ONNX vision models run whole on their execution provider, and prove it.

Public API (re-exports only; see each subpackage):
    optimize, optimize_model      onnxfit.optimizer
    load_model, save_model        onnxfit.model
    OnnxfitError                  onnxfit.errors
"""

import onnx_graphsurgeon as _gs

# graph-surgeon logs to stdout, which would corrupt `--json` output: keep it quiet.
_gs.logger.G_LOGGER.severity = _gs.logger.G_LOGGER.CRITICAL + 10
_gs.logger.G_LOGGER.colors = False

from onnxfit.errors import CheckFailed, OnnxfitError  # noqa: E402
from onnxfit.inspection import inspect  # noqa: E402
from onnxfit.model import load_model, save_model  # noqa: E402
from onnxfit.optimizer import optimize, optimize_model  # noqa: E402

__version__ = "0.1.0"

__all__ = ["inspect", "optimize", "optimize_model", "load_model", "save_model", "OnnxfitError", "CheckFailed", "__version__"]
