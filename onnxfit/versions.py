"""ONNX Runtime releases as a typed ``OrtRelease(major, minor)``: what EP rules, the cache and
``--ort-version`` compare. It is a tuple, so ``release >= (1, 26)`` reads as the rules are written,
and ``str(release)`` is ``"1.26"``: parsed once where a user gives it, never formatted back and
parsed again."""

from __future__ import annotations

import importlib.metadata
import re
import sys
from typing import NamedTuple

from onnxfit.errors import OnnxfitError

__all__ = ["OrtRelease", "Version", "parse_version", "installed_ort_text", "installed_ort_version", "format_version"]


class OrtRelease(NamedTuple):
    major: int
    minor: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    @classmethod
    def parse(cls, value: str | tuple[int, int] | OrtRelease | None, what: str = "--ort-version") -> OrtRelease | None:
        """``"1.26"``, ``"1.26.0"``, ``(1, 26)`` or a release -> the release; None stays None."""
        if value is None or isinstance(value, OrtRelease):
            return value
        if isinstance(value, tuple):
            return cls(int(value[0]), int(value[1]))
        return parse_version(value, what)


Version = OrtRelease  # the name the EP profiles use


def parse_version(text: str, what: str = "ONNX Runtime version") -> OrtRelease:
    """``"1.26"`` or ``"1.26.0"`` -> ``OrtRelease(1, 26)``; a clear error naming ``what`` for anything else."""
    match = re.fullmatch(r"\s*(\d+)\.(\d+)(?:\.\d+)?\S*\s*", str(text))
    if not match:
        raise OnnxfitError(f"bad {what} '{text}': expected X.Y, e.g. 1.26")
    return OrtRelease(int(match.group(1)), int(match.group(2)))


# onnxruntime ships under several distribution names, one package: ``onnxruntime``.
_ORT_DISTRIBUTIONS = ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino", "onnxruntime-directml",
                      "onnxruntime-qnn", "onnxruntime-silicon", "onnxruntime-training")


def installed_ort_text() -> str:
    """The installed onnxruntime's version string (``onnxruntime.__version__``), read from its package
    metadata when it is not imported yet: a cache hit names the release without importing it."""
    if "onnxruntime" not in sys.modules:
        for name in _ORT_DISTRIBUTIONS:
            try:
                return importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                continue
    import onnxruntime

    return onnxruntime.__version__


def installed_ort_version() -> OrtRelease:
    """The onnxruntime this process imports."""
    return parse_version(installed_ort_text())


def format_version(version: tuple[int, int]) -> str:
    """``(1, 26)`` -> ``"1.26"``."""
    return str(OrtRelease.parse(version))
