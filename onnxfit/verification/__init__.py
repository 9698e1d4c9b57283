"""verification, the engine behind ``onnxfit.verify``: prove an (optimized) model computes what its
reference computes, frame by frame.

    report = onnxfit.verify("model.onnx", reference="original.onnx")
    report.ok, report.checks            # Check(name, ok, summary, details) per check
    write_report(report, "out/")        # report.json, report.md, report.html

Pieces, Polygraphy-style: ``inputs`` makes data, ``runtimes`` run it (one interface per
backend), ``parity`` and ``contamination`` judge outputs, ``report`` holds and renders results.
"""

from onnxfit.verification.check import VerifyContext, verify, verify_models
from onnxfit.verification.report import Check, VerifyReport, write_report
from onnxfit.verification.runtimes import REFERENCE, OrtRuntime, ReferenceRuntime, Runtime, TorchRuntime, available_runtimes

__all__ = [
    "verify",
    "verify_models",
    "VerifyContext",
    "VerifyReport",
    "Check",
    "write_report",
    "Runtime",
    "OrtRuntime",
    "ReferenceRuntime",
    "TorchRuntime",
    "available_runtimes",
    "REFERENCE",
]
