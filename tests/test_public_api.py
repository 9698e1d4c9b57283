"""The public functions are plain attributes of the package: no submodule shares their names, so
importing any submodule leaves ``onnxfit.verify`` and ``onnxfit.session`` the functions users call."""

from __future__ import annotations

import inspect
import pkgutil
import subprocess
import types
import sys

import onnxfit


def test_no_submodule_is_named_like_a_public_function():
    submodules = {m.name for m in pkgutil.iter_modules(onnxfit.__path__)}
    assert submodules.isdisjoint(onnxfit.__all__), submodules & set(onnxfit.__all__)


def test_verify_and_session_stay_functions_once_the_engine_is_imported():
    code = ("import importlib, pkgutil, onnxfit\n"
            "for m in pkgutil.walk_packages(onnxfit.__path__, 'onnxfit.'):\n"
            "    if not any(p in m.name for p in ('torch', 'mobilefacenet', 'samples', '__main__')):\n"
            "        importlib.import_module(m.name)\n"
            "print(type(onnxfit.verify).__name__, type(onnxfit.session).__name__)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.split() == ["function", "function"], result.stderr


def test_every_public_name_resolves_and_keeps_its_keywords():
    for name in ("optimize", "optimize_model", "prepare", "session", "session_plan", "verify", "inspect",
                 "count_partitions", "load_model", "save_model"):
        assert callable(getattr(onnxfit, name)), name
    assert type(onnxfit) is types.ModuleType  # a plain module, no class swapped in
    for name in ("input_shapes", "fixed_inputs", "dynamic_batch", "cache_dir", "keep_inputs", "batch_axes",
                 "model_inputs"):
        assert name in inspect.signature(onnxfit.prepare).parameters, name
        assert name in inspect.signature(onnxfit.session).parameters, name
