"""onnxfit: make ONNX vision models run whole on their execution provider, and prove it.

Public API (re-exports only; see each subpackage):
    optimize, optimize_model      onnxfit.optimizer
    prepare                       onnxfit.optimizer.cache (per-machine cache)
    verify                        onnxfit.verify (parity, contamination, partitions)
    inspect                       onnxfit.inspection
    export_torch                  onnxfit.exporters.torch_onnx (needs the torch extra)
    load_model, save_model        onnxfit.model
    OnnxfitError, CheckFailed     onnxfit.errors
"""

import onnx_graphsurgeon as _gs

# graph-surgeon logs to stdout, which would corrupt `--json` output: keep it quiet.
_gs.logger.G_LOGGER.severity = _gs.logger.G_LOGGER.CRITICAL + 10
_gs.logger.G_LOGGER.colors = False

from onnxfit.errors import CheckFailed, OnnxfitError  # noqa: E402
from onnxfit.inspection import inspect  # noqa: E402
from onnxfit.model import load_model, save_model  # noqa: E402
from onnxfit.optimizer import optimize, optimize_model  # noqa: E402
from onnxfit.optimizer.cache import prepare  # noqa: E402
from onnxfit.verify import verify  # noqa: E402  (the function; submodules stay importable)
from onnxfit.exporters.torch_onnx import export_torch  # noqa: E402  (imports torch only when called)

__version__ = "0.1.0"

__all__ = ["inspect", "prepare", "verify", "export_torch", "optimize", "optimize_model", "load_model", "save_model", "OnnxfitError", "CheckFailed", "__version__"]
