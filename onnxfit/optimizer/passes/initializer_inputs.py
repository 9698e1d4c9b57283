"""initializer-inputs: weights listed among the graph inputs become plain constants.

Exports from older torch releases (IR <= 4) list every weight among the graph inputs. From IR 4 on,
ONNX Runtime takes such an initializer for a default the caller may override: it is no constant,
so constant folding and fusions skip it and EP builders that need constant weights refuse the
node (CoreML: "input 'B' must be a constant initializer", ConvTranspose "'W' ... computed at run
time"): the centerface export splits into 50 CoreML partitions. Rules:
1. every initializer listed as a graph input is taken off the input list; real inputs keep their
   order and the initializers stay where they are (no node changes);
2. names the caller keeps overridable (``--keep-input NAME``, ``PassContext.overridable_inputs``)
   stay graph inputs with their initializer as the default; the pipeline hands every pass those
   as run-time inputs, so none folds them;
3. IR < 4 requires every initializer to be a graph input, so such a model is raised to IR 4, the
   first version that allows otherwise (ONNX Runtime treats IR < 4 initializers as constants
   already: the raise only lets the list go).
Exact: the same tensors and nodes. A caller that fed a dropped name now gets ONNX Runtime's
"invalid input name" error; keep that name overridable instead.
"""

from __future__ import annotations

import logging

import onnx_graphsurgeon as gs

from onnxfit.optimizer.pipeline import PassContext, PassReport, register_pass

__all__ = ["InitializerInputsPass"]

log = logging.getLogger(__name__)

# The first IR version in which an initializer need not be a graph input.
_UNLISTED_INITIALIZERS_IR = 4


@register_pass
class InitializerInputsPass:
    name = "initializer-inputs"
    version = 1

    def run(self, graph: gs.Graph, ctx: PassContext) -> PassReport:
        report = PassReport(self.name)
        report.unlisted_inputs = [n for n in ctx.initializer_inputs if n not in ctx.overridable_inputs]
        # Graph-surgeon keeps listed initializers off graph.inputs; IR 3 passes (dynamic-batch) list
        # the constants they add there, which would make those overridable under IR 4.
        graph.inputs = [t for t in graph.inputs if not isinstance(t, gs.Constant)]
        report.folded = len(report.unlisted_inputs)
        report.changed = bool(report.folded)
        if not report.folded:
            return report
        report.notes.append(f"{report.folded} initializers are no longer graph inputs")
        if graph.ir_version is not None and graph.ir_version < _UNLISTED_INITIALIZERS_IR:
            report.notes.append(f"IR {graph.ir_version} -> {_UNLISTED_INITIALIZERS_IR} (below IR 4 every "
                                "initializer must be a graph input)")
            graph.ir_version = _UNLISTED_INITIALIZERS_IR
        kept = sorted(ctx.overridable_inputs & set(ctx.initializer_inputs))
        if kept:
            report.notes.append(f"kept overridable: {', '.join(kept)}")
        log.debug("initializer-inputs unlisted %d initializers", report.folded)
        return report
