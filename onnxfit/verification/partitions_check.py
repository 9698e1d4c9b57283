"""The verify check on partitions: the model runs as one partition on the target (counted by
``targets/partitions.py``), and in no more partitions than its reference."""

from __future__ import annotations

from onnxfit.targets.partitions import count_partitions
from onnxfit.verification.report import Check
from onnxfit.versions import OrtRelease

__all__ = ["partitions_check"]


def partitions_check(target: str, ort_version: OrtRelease | str | None = None):
    """A verify check: the model must run as one partition on ``target``, and (with a reference)
    in no more partitions than the reference."""
    def check(ctx) -> Check:
        report = count_partitions(ctx.source, target, ort_version)
        details = {"model": report.to_dict()}
        if report.compile_error is not None:
            return Check("partitions", False, report.compile_error, details)
        problems = []
        if report.partitions > 1:
            problems.append(f"{report.partitions} partitions on {target} (want 1)")
        if ctx.reference_source is not None:
            reference = count_partitions(ctx.reference_source, target, ort_version)
            details["reference"] = reference.to_dict()
            if reference.compile_error is None and report.partitions > reference.partitions:
                problems.append(f"more partitions than the reference ({report.partitions} > {reference.partitions})")
        figure = f"{report.partitions} partition(s), {report.nodes_on_ep}/{report.total_nodes} nodes on {report.ep} " \
                 f"({report.source}, onnxruntime {report.ort_version})"
        if report.unsupported:
            first = report.unsupported[0]
            figure += f"; first node left off: {first.name} ({first.op}: {first.reason})"
        return Check("partitions", not problems, "; ".join(problems) or figure, details)

    return check
