"""The `onnxfit` command: a typer app whose verbs live one module each in this package.

The CLI only parses, calls the same API a script would, and renders (rich tables or --json).
Exit codes for every verb: 0 success, 1 a check failed, 2 bad input or usage.
"""

from __future__ import annotations

import importlib

from onnxfit.cli.common import app, main

# Each module registers its commands on `app` (Polygraphy-style: one tool, one module).
for _verb in ("optimize", "inspect", "verify", "partitions", "cache", "session", "export_torch", "efm3"):
    try:
        importlib.import_module(f"onnxfit.cli.{_verb}")
    except ModuleNotFoundError as _exc:
        if _exc.name != f"onnxfit.cli.{_verb}":
            raise

__all__ = ["app", "main"]
