"""The engine: graph-rewrite passes, the pipeline that runs them on a model given a pass context.

It never sees a job, the cache or advice: those are the application's (``onnxfit.app``). The names
below are imported on first use: ``onnxfit.optimizer.catalog`` (pass versions, read by a cache
hit) must not cost graph-surgeon's import.
"""

import importlib

_LAZY = {
    "select_passes": "onnxfit.optimizer.selection",
    **dict.fromkeys(["Pass", "PassContext", "PassReport", "get_passes", "pass_names", "register_pass", "run_passes"],
                    "onnxfit.optimizer.pipeline"),
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'onnxfit.optimizer' has no attribute '{name}'")
    return getattr(importlib.import_module(_LAZY[name]), name)
