"""The pass pipeline: import once, run passes on the graph, clean up once, export once.

A pass never does I/O and never checks the whole model (docs/architecture.md); this module does both, and
restores what downstream code relies on that onnx-graphsurgeon's export does not keep: IR version,
opset imports, metadata_props, producer, doc strings, graph input order and initializer order
(InsightFace's inswapper reads ``graph.initializer[-1]`` as its emap, so unused initializers stay
and the original last initializer stays last).
"""

from __future__ import annotations

import functools
import gc
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import Protocol, runtime_checkable

import numpy as np
import onnx
import onnx_graphsurgeon as gs

import onnxfit._graphsurgeon  # noqa: F401  (graph-surgeon quiet before any pass runs)

from onnxfit.errors import OnnxfitError
from onnxfit.graphs import cleanup, default_opset, iter_graphs, op_histogram, toposort
from onnxfit.fixed_inputs import METADATA_KEY, fixed_inputs_metadata
from onnxfit.optimizer.load_guard import check_inference, check_model, check_runtime_loads
from onnxfit.optimizer.roundtrip import export_model, import_graph, initializer_inputs
from onnxfit.shapes import weightless_copy

__all__ = [
    "Pass",
    "ModelPass",
    "PassContext",
    "PassReport",
    "PipelineResult",
    "AfterPass",
    "PostCondition",
    "checker_post_condition",
    "register_pass",
    "is_exact",
    "pass_names",
    "get_passes",
    "run_passes",
]

log = logging.getLogger(__name__)


@dataclass
class PassContext:
    """What a pass may know about the run: opset, fixed input shapes, target."""

    opset: int
    input_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    target: str = "cpu"
    ort_version: tuple[int, int] | None = None
    batch_dim: str = "batch"
    # dynamic-batch runs in this pipeline: axis 0 named batch_dim stays symbolic under input_shapes.
    dynamic_batch: bool = False
    # --batch-axis NAME=AXIS: where an input's dim names do not say which axis holds the batch.
    batch_axes: dict[str, int | None] = field(default_factory=dict)
    # --fix-input NAME=VALUE: inputs that become constants before the first pass.
    fixed_inputs: dict[str, np.ndarray] = field(default_factory=dict)
    # inline-if runs in this pipeline: fold-shapes inlines decided Ifs inside its fixpoint.
    inline_if: bool = False
    # Initializers the model lists among its graph inputs (run_passes fills it): from IR 4 on,
    # defaults the caller may override; before IR 4, every initializer.
    initializer_inputs: tuple[str, ...] = ()
    # --keep-input NAME: listed initializers that stay overridable. The pipeline gives passes these
    # as graph-input Variables (never folded) and writes the initializer back as their default.
    overridable_inputs: frozenset[str] = frozenset()


@dataclass
class PassReport:
    """What one pass did, in numbers the CLI and reports print.

    The pass's own words: ``changed`` (it edited the graph: the pipeline keeps the result),
    ``rewritten`` (nodes matched and replaced), ``folded`` (tensors turned into constants),
    ``skipped`` (one line per node left alone and why) and ``notes``. ``added`` / ``removed`` are
    the pipeline's: nodes per op type before and after the pass (and cleanup), graph and subgraphs.
    """

    name: str
    rewritten: int = 0
    added: int = 0
    removed: int = 0
    folded: int = 0
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Listed initializers the pass took off the graph inputs (initializer-inputs): the pipeline
    # lists them no more. A pass that needs a newer IR version for that raises graph.ir_version.
    unlisted_inputs: list[str] = field(default_factory=list)
    # None: the pass did not say; the pipeline then reads its counters (passes not yet saying it).
    changed: bool | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@runtime_checkable
class Pass(Protocol):
    """A pass edits the graph in place and returns its report, ``changed`` said explicitly.
    Node-local passes are ``optimizer.rewrite.RewriteRule`` subclasses (match, then rewrite)."""

    name: str  # kebab-case, part of the CLI and the cache key
    version: int  # bump on any behaviour change: it is part of the cache key

    def run(self, graph: gs.Graph, ctx: PassContext) -> PassReport: ...


@runtime_checkable
class ModelPass(Protocol):
    """A pass backed by a tool that works on protobuf (onnxsim): it gets the model exported as the
    pipeline would save it, and returns a new model that the pipeline imports for the next pass
    when its report says ``changed``."""

    name: str
    version: int

    def run_model(self, model: onnx.ModelProto, ctx: PassContext) -> tuple[onnx.ModelProto, PassReport]: ...


_REGISTRY: dict[str, Callable[[], Pass | ModelPass]] = {}


def register_pass(cls):
    """Class decorator: make a pass available by its ``name``."""
    _REGISTRY[cls.name] = cls
    return cls


def _load_builtin_passes() -> None:
    # Importing the package registers every built-in pass module; here, not at the top: each pass
    # module imports this one for register_pass.
    import onnxfit.optimizer.passes  # noqa: F401


def pass_names() -> list[str]:
    _load_builtin_passes()
    return sorted(_REGISTRY)


def is_exact(name: str) -> bool:
    """Whether the pass keeps every value bit for bit (a pass that does not say is taken as exact)."""
    _load_builtin_passes()
    return bool(getattr(_REGISTRY[name], "exact", True)) if name in _REGISTRY else True


def get_passes(names: Iterable[str]) -> list[Pass]:
    """Instantiate passes by name; unknown names are a usage error listing the valid ones."""
    _load_builtin_passes()
    names = [n.strip() for n in names if n.strip()]
    unknown = [n for n in names if n not in _REGISTRY]
    if unknown:
        raise OnnxfitError(f"unknown pass {', '.join(repr(n) for n in unknown)}; valid passes: {', '.join(pass_names())}")
    return [_REGISTRY[n]() for n in names]


@dataclass
class PipelineResult:
    model: onnx.ModelProto
    reports: list[PassReport]
    ops_before: Counter
    ops_after: Counter

    @property
    def changed(self) -> bool:
        return any(r.changed for r in self.reports)


@dataclass
class AfterPass:
    """What a post-condition sees after each pass: the graph (cleaned up) and the pass's report."""

    graph: gs.Graph
    report: PassReport
    original: onnx.ModelProto
    unlisted: frozenset[str]

    def model(self) -> onnx.ModelProto:
        """The graph exported as the pipeline would save it."""
        return export_model(self.graph, self.original, self.unlisted)


PostCondition = Callable[[AfterPass], None]


def checker_post_condition(after: AfterPass) -> None:
    """``--check-each``: the onnx checker after every pass, to find the pass that broke a model."""
    check_model(weightless_copy(after.model()), f"after pass {after.report.name}", after.original)


def _collector_paused(run):
    """Python's cyclic garbage collector paused for the call: graph-surgeon makes tens of thousands
    of small linked objects, and each collection they trigger scans every object of the process
    (a caller holding other models pays 0.1-0.2 s per full collection on a 100-node model). The
    cycles the pass leaves are collected after it, once the collector runs again."""
    @functools.wraps(run)
    def paused(*args, **kwargs):
        enabled = gc.isenabled()
        gc.disable()
        try:
            return run(*args, **kwargs)
        finally:
            if enabled:
                gc.enable()
    return paused


@_collector_paused
def run_passes(
    model: onnx.ModelProto,
    passes: list[Pass],
    ctx: PassContext | None = None,
    check_each: bool = False,
    post_conditions: Iterable[PostCondition] = (),
) -> PipelineResult:
    """Run ``passes`` in order on ``model`` (not modified) and return the rewritten model.

    Each pass says whether it changed the graph; the pipeline counts the nodes it added and removed
    and runs ``post_conditions`` after it (``check_each`` adds the onnx checker to them). The
    checker runs once on the result (on a weightless copy: cheap for any model size).
    """
    ctx = ctx or PassContext(opset=default_opset(model))
    hooks = [*post_conditions, *([checker_post_condition] if check_each else [])]
    ops_before = op_histogram(model)
    ctx = replace(ctx, initializer_inputs=initializer_inputs(model.graph),
                  inline_if=ctx.inline_if or any(p.name == "inline-if" for p in passes))
    graph = import_graph(model, model, ctx.overridable_inputs)
    reports = [_fix_inputs(graph, ctx.fixed_inputs)] if ctx.fixed_inputs else []
    # Dead nodes the model brings are cleanup's, not the first pass's to count as removed.
    ops = _graph_ops(graph.copy().cleanup(remove_unused_graph_inputs=False)) if passes else Counter()
    for group in _rounds(passes):
        by_name: dict[str, PassReport] = {}
        for _ in range(_MAX_ROUNDS if getattr(group[0], "fixpoint", False) else 1):
            changed = False
            for p in group:
                log.info("running pass %s", p.name)
                if isinstance(p, ModelPass):
                    rewritten, report = p.run_model(export_model(graph, model, _unlisted(reports)), ctx)
                    if _says_changed(report):
                        graph = import_graph(rewritten, model, ctx.overridable_inputs)
                else:
                    report = p.run(graph, ctx)
                # A simplification rule that found nothing left the graph as it was (their driver
                # says changed only on a rewrite): no cleanup and count for it in every round.
                if not (report.changed is False and getattr(p, "fixpoint", False)):
                    toposort(cleanup(graph))
                    ops = _settle(report, ops, _graph_ops(graph))
                changed |= bool(report.changed)
                if p.name in by_name:
                    _merge(by_name[p.name], report)
                else:
                    by_name[p.name] = report
                    reports.append(report)
                for hook in hooks:
                    hook(AfterPass(graph, report, model, _unlisted(reports)))
            if not changed:
                break
    if not any(r.changed for r in reports):
        return PipelineResult(model, reports, ops_before, ops_before)
    new = export_model(graph, model, _unlisted(reports))
    _record_fixed_inputs(new, ctx.fixed_inputs)
    light = weightless_copy(new)  # the checks run on the graph, not the weights
    check_model(light, "after the passes", model)
    check_inference(light, model, ctx.input_shapes, ctx.fixed_inputs)
    check_runtime_loads(light, model, ctx.fixed_inputs)
    return PipelineResult(new, reports, ops_before, op_histogram(new))


_MAX_ROUNDS = 8  # fixpoint rounds of the simplification rules; real models settle in 2-4


def _rounds(passes: list[Pass]) -> list[list[Pass]]:
    """Passes in run order, consecutive simplification rules (``fixpoint = True``) grouped: a
    group runs again while any of its rules changed the graph, since one rule's rewrite (a folded
    constant, a bypassed Cast) makes another's pattern appear."""
    groups: list[list[Pass]] = []
    for p in passes:
        if getattr(p, "fixpoint", False) and groups and getattr(groups[-1][0], "fixpoint", False):
            groups[-1].append(p)
        else:
            groups.append([p])
    return groups


def _merge(total: PassReport, more: PassReport) -> None:
    """One report per pass over all fixpoint rounds."""
    total.rewritten += more.rewritten
    total.folded += more.folded
    total.added += more.added
    total.removed += more.removed
    total.changed = bool(total.changed or more.changed)
    total.skipped = list(dict.fromkeys(total.skipped + more.skipped))
    total.notes = list(dict.fromkeys(total.notes + more.notes))
    total.unlisted_inputs += [n for n in more.unlisted_inputs if n not in total.unlisted_inputs]


def _graph_ops(graph: gs.Graph) -> Counter:
    """op -> count over the graph-surgeon graph and its subgraphs."""
    return Counter(node.op for g in iter_graphs(graph) for node in g.nodes)


def _says_changed(report: PassReport) -> bool:
    """The pass's word; a pass that does not say is judged by its own counters, as before."""
    if report.changed is None:
        return bool(report.rewritten or report.added or report.removed or report.folded)
    return report.changed


def _settle(report: PassReport, before: Counter, after: Counter) -> Counter:
    """Fill in what the pipeline knows of a pass: nodes added and removed, per op type.

    A pass whose node counts moved changed the graph, whatever it said: that edit is kept.
    """
    said = _says_changed(report)
    report.added = sum((after - before).values())
    report.removed = sum((before - after).values())
    report.changed = said or bool(report.added or report.removed)
    return after


def _fix_inputs(graph: gs.Graph, values: dict[str, np.ndarray]) -> PassReport:
    """Turn the fixed graph inputs into constants (``--fix-input``), before any pass sees them."""
    report = PassReport("fix-input", changed=False)
    for tensor in list(graph.inputs):
        if tensor.name in values and isinstance(tensor, gs.Variable):
            tensor.to_constant(values[tensor.name])
            graph.inputs.remove(tensor)
            report.folded += 1
            report.changed = True
            report.notes.append(f"input '{tensor.name}' fixed to {values[tensor.name].reshape(-1)[:8].tolist()}")
    return report


def _record_fixed_inputs(model: onnx.ModelProto, values: dict[str, np.ndarray]) -> None:
    """Metadata that lets ``verify`` feed the original model what the optimized one fixed."""
    recorded = fixed_inputs_metadata(values)
    if recorded is None:
        return
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            prop.value = recorded
            return
    model.metadata_props.add(key=METADATA_KEY, value=recorded)


def _unlisted(reports: list[PassReport]) -> frozenset[str]:
    return frozenset(name for r in reports for name in r.unlisted_inputs)
