"""``onnxfit.verify()``: the engine's verify, handed the sessions ``onnxfit.session()`` plans, so that
``planned-<target>`` runtimes and ``target=`` compare what an application would really run."""

from __future__ import annotations

from onnxfit.app.session import open_planned
from onnxfit.verification import check
from onnxfit.verification.report import VerifyReport
from onnxfit.verification.runtimes import ModelSource

__all__ = ["verify"]


def verify(model: ModelSource, reference: ModelSource | None = None, **options) -> VerifyReport:
    """Verify ``model`` against ``reference`` and across runtimes: parity, cross-frame contamination,
    partitions with ``target``. Keywords as ``onnxfit.verification.check.verify`` takes them."""
    return check.verify(model, reference, open_planned=open_planned, **options)
