"""The engine: graph-rewrite passes, the pipeline that runs them on a model given a pass context.

It never sees a job, the cache or advice: those are the application's (``onnxfit.app``).
"""

import onnxfit._graphsurgeon  # noqa: F401  (graph-surgeon quiet before any pass runs)

from onnxfit.optimizer.pipeline import Pass, PassContext, PassReport, get_passes, pass_names, register_pass, run_passes
from onnxfit.optimizer.selection import select_passes

__all__ = [
    "select_passes",
    "Pass", "PassContext", "PassReport", "get_passes", "pass_names", "register_pass", "run_passes",
]
