"""ONNX Runtime versions as ``(major, minor)``: what EP rules, the cache and ``--ort-version`` compare."""

from __future__ import annotations

import re

from onnxfit.errors import OnnxfitError

__all__ = ["Version", "parse_version", "installed_ort_version", "format_version"]

Version = tuple[int, int]


def parse_version(text: str, what: str = "ONNX Runtime version") -> Version:
    """``"1.26"`` or ``"1.26.0"`` -> ``(1, 26)``; a clear error naming ``what`` for anything else."""
    match = re.fullmatch(r"\s*(\d+)\.(\d+)(?:\.\d+)?\S*\s*", str(text))
    if not match:
        raise OnnxfitError(f"bad {what} '{text}': expected X.Y, e.g. 1.26")
    return int(match.group(1)), int(match.group(2))


def installed_ort_version() -> Version:
    """The onnxruntime this process imports (imported here, on first use)."""
    import onnxruntime

    return parse_version(onnxruntime.__version__)


def format_version(version: Version) -> str:
    """``(1, 26)`` -> ``"1.26"``."""
    return f"{version[0]}.{version[1]}"
