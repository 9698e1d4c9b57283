"""Graph-rewrite passes chosen per target EP, the pipeline that runs them, and the per-machine cache."""

import onnxfit._graphsurgeon  # noqa: F401  (graph-surgeon quiet before any pass runs)

from onnxfit.optimizer.job import JobResult, OptimizeJob, run_job
from onnxfit.optimizer.optimize import OptimizeResult, optimize, optimize_model, rewrite_model, select_passes
from onnxfit.optimizer.pipeline import Pass, PassContext, PassReport, get_passes, pass_names, register_pass, run_passes

__all__ = [
    "optimize", "optimize_model", "OptimizeResult", "select_passes", "rewrite_model",
    "OptimizeJob", "JobResult", "run_job",
    "Pass", "PassContext", "PassReport", "get_passes", "pass_names", "register_pass", "run_passes",
]
