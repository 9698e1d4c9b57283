"""simplify: onnxsim's simplifier as a pass (constant folding, Conv+BatchNormalization fusion,
Identity and dead-node removal, shape chains folded by its shape inference).

Why: exporters leave constant subgraphs, Identity chains and BatchNormalization after Conv that
ONNX Runtime folds for the CPU EP at load time, but that the EP builders see one op at a time;
onnxsim removes them from the file, so the EP passes and the EP get a smaller graph. Rules:
1. The pass runs first, or right after dynamic-batch (``select_passes``): a batch that
   dynamic-batch made symbolic stays symbolic (onnxsim is told to leave axis 0 of that input
   alone), so onnxsim cannot fold the batch back into constants; and the EP passes see the
   simplified graph.
2. ``--input-shape`` dims (``ctx.input_shapes``) go to onnxsim's ``overwrite_input_shapes``, so
   shape chains fold at those shapes; axis 0 named ``ctx.batch_dim`` stays symbolic with
   ``ctx.dynamic_batch``, as in fold-shapes.
3. If/Loop/Scan bodies are simplified too (``include_subgraph``).
4. Graph input and output names and order are checked to be unchanged (onnxsim keeps them; an
   input it dropped is an error, not a silently narrower interface). The IR version stays the
   original's; the pipeline restores initializer order, metadata_props (onnxsim's own
   ``onnxsim.*`` entries are dropped) and opset imports.
5. A model whose tensors do not fit one protobuf message (2 GB) goes to onnxsim without its large
   weights: they become graph inputs of the same name, dtype and dims, so onnxsim treats them as
   run-time values and nothing folds or fuses through them. That is exact, only less is
   simplified (no Conv+BatchNormalization fusion on those weights); they come back as the same
   initializers, their bytes never loaded. Below 2 GB onnxsim sees every weight.
6. onnxsim failing (an exception, or its own check rejecting its result) is one error line naming
   the pass; nothing is written.
7. Large weights that come back from onnxsim byte for byte (same name, dtype, dims and bytes) point
   at the source file again, as loaded: the rest of the pipeline streams them to the output
   instead of holding a copy (on a 552 MB model that halves the time after onnxsim and keeps the
   save from adding a serialized copy; see reports/SIMPLIFY.md).
8. Initializers the model lists as graph inputs are defaults the caller may override (IR >= 4);
   onnxsim folds them as constants, as the other passes do, except those kept with
   ``--keep-input`` (``ctx.overridable_inputs``): onnxsim gets them without their initializer, and
   the pipeline writes the default back.
Not exact: fused Conv weights and folded float constants differ from the original by float
rounding; ``--verify`` (and the tests) compare outputs within float-noise tolerance. Needs the
``simplify`` extra: ``pip install 'onnxfit[simplify]'``.
"""

from __future__ import annotations

import importlib.util
import logging
from collections import Counter

import onnx

from onnxfit import lazy_io
from onnxfit.errors import OnnxfitError, first_line
from onnxfit.graphs import iter_graphs, op_histogram
from onnxfit.model import TWO_GB, model_data_size
from onnxfit.optimizer.pipeline import PassContext, PassReport, register_pass
from onnxfit.shapes import proto_shape

__all__ = ["SimplifyPass", "INSTALL_HINT"]

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'onnxfit[simplify]'"
# Room for the graph itself next to the tensor bytes when deciding whether a model fits 2 GB.
_GRAPH_HEADROOM = 64 * 2**20


@register_pass
class SimplifyPass:
    name = "simplify"
    version = 1

    def __init__(self):
        # Checked when the pass is chosen, before any model is loaded: the CLI fails at once.
        if importlib.util.find_spec("onnxsim") is None:
            raise OnnxfitError(f"the simplify pass needs onnxsim: {INSTALL_HINT}")

    def run_model(self, model: onnx.ModelProto, ctx: PassContext) -> tuple[onnx.ModelProto, PassReport]:
        report = PassReport(self.name)
        _drop_defaults(model, ctx.overridable_inputs)
        fits = model_data_size(model) + _GRAPH_HEADROOM <= TWO_GB
        if fits:
            lazy = {t.name: _copy(t) for t in lazy_io.lazy_tensors(model)}
            # The model is the pipeline's own export: reading the lazy weights into it is safe.
            source, stripped, stand_ins = lazy_io.materialize(model), {}, set()
        else:
            source, stripped, stand_ins = _without_large_weights(model)
            report.notes.append(f"the model is over 2 GB: its {len(stripped)} large weights stayed out of "
                                "onnxsim (nothing folds or fuses through them)")
        simplified = _simplify(source, _shape_overrides(source, ctx))
        _check_interface(source, simplified)
        # onnxsim writes its own IR version; older runtimes refuse a newer one (rule 4).
        simplified.ir_version = model.ir_version
        if stripped:
            _restore_weights(simplified, stripped, stand_ins)
        else:
            _relink_unchanged_weights(simplified, lazy)
        _count_changes(model, simplified, report)
        return simplified, report


def _onnxsim():  # the module: imported on use, it takes seconds (it imports torch)
    try:
        import onnxsim
    except ImportError as exc:
        raise OnnxfitError(f"the simplify pass needs onnxsim ({first_line(exc)}): {INSTALL_HINT}") from None
    return onnxsim


def _simplify(model: onnx.ModelProto, shapes: dict[str, list[int]]) -> onnx.ModelProto:
    onnxsim = _onnxsim()
    try:
        simplified, ok = onnxsim.simplify(model, check_n=0, overwrite_input_shapes=shapes or None,
                                          include_subgraph=True)
    # onnxsim's C++ core raises RuntimeError, its Python layer ValueError or onnx's errors: each
    # becomes one line naming the pass, never a traceback, and no output is written.
    except Exception as exc:  # noqa: BLE001
        raise OnnxfitError(f"simplify: onnxsim failed ({first_line(exc)}); nothing was written. "
                           "Run without the simplify pass") from None
    if not ok:
        raise OnnxfitError("simplify: onnxsim rejects its own result; nothing was written. "
                           "Run without the simplify pass")
    return simplified


def _shape_overrides(model: onnx.ModelProto, ctx: PassContext) -> dict[str, list[int]]:
    """``ctx.input_shapes`` for onnxsim: -1 leaves a dim as it is (the symbolic batch, rule 2)."""
    initializers = {t.name for t in model.graph.initializer}
    shapes = {}
    for vi in model.graph.input:
        shape = ctx.input_shapes.get(vi.name)
        if shape is None or vi.name in initializers:
            continue
        dims = [int(d) for d in shape]
        declared = proto_shape(vi)
        if ctx.dynamic_batch and declared and dims and declared[0] == ctx.batch_dim:
            dims[0] = -1
        shapes[vi.name] = dims
    return shapes


def _without_large_weights(model: onnx.ModelProto) -> tuple[onnx.ModelProto, dict[str, onnx.TensorProto], set[str]]:
    """A copy of ``model`` whose large (lazy) initializers are graph inputs instead (rule 5).

    Returns the copy, the weights taken out by name, and the graph inputs added to stand in for
    them (IR < 4 models already list every initializer as an input).
    """
    light = onnx.ModelProto()
    light.CopyFrom(model)  # lazy tensors hold no bytes: a copy of the graph, not of the weights
    declared = {vi.name for vi in light.graph.input}
    stripped = {t.name: t for t in light.graph.initializer if lazy_io.is_lazy(t)}
    kept = [t for t in light.graph.initializer if t.name not in stripped]
    del light.graph.initializer[:]
    light.graph.initializer.extend(kept)
    stand_ins = set()
    for name, tensor in stripped.items():
        if name not in declared:
            light.graph.input.append(onnx.helper.make_tensor_value_info(name, tensor.data_type, list(tensor.dims)))
            stand_ins.add(name)
    return light, stripped, stand_ins


def _restore_weights(model: onnx.ModelProto, stripped: dict[str, onnx.TensorProto], stand_ins: set[str]) -> None:
    """The weights taken out become initializers again (those still used); their stand-ins go."""
    inputs = [vi for vi in model.graph.input if vi.name not in stand_ins]
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    used = {name for g in iter_graphs(model.graph) for node in g.node for name in node.input}
    model.graph.initializer.extend(t for name, t in stripped.items() if name in used)


def _drop_defaults(model: onnx.ModelProto, names: frozenset[str]) -> None:
    """Rule 8: --keep-input initializers reach onnxsim as plain inputs, so it cannot fold them."""
    if not names:
        return
    kept = [t for t in model.graph.initializer if t.name not in names]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)


def _copy(tensor: onnx.TensorProto) -> onnx.TensorProto:
    copy = onnx.TensorProto()
    copy.CopyFrom(tensor)  # a lazy tensor: name, dims and where its bytes are, not the bytes
    return copy


def _relink_unchanged_weights(model: onnx.ModelProto, lazy: dict[str, onnx.TensorProto]) -> None:
    """Rule 7: weights onnxsim returns byte for byte point at the source file again (lazy)."""
    for tensor in model.graph.initializer:
        ref = lazy.get(tensor.name)
        if ref is None or tensor.data_type != ref.data_type or list(tensor.dims) != list(ref.dims):
            continue
        location, offset, length = lazy_io.lazy_ref(ref)
        if len(tensor.raw_data) != length:
            continue
        with open(location, "rb") as handle:
            handle.seek(offset)
            if handle.read(length) != tensor.raw_data:
                continue
        tensor.CopyFrom(ref)


def _interface(model: onnx.ModelProto) -> tuple[list[str], list[str]]:
    initializers = {t.name for t in model.graph.initializer}
    return [vi.name for vi in model.graph.input if vi.name not in initializers], [vi.name for vi in model.graph.output]


def _check_interface(before: onnx.ModelProto, after: onnx.ModelProto) -> None:
    """Rule 4: callers feed inputs and read outputs by name; onnxsim must not change either."""
    inputs_before, outputs_before = _interface(before)
    inputs_after, outputs_after = _interface(after)
    if outputs_after != outputs_before:
        raise OnnxfitError(f"simplify: onnxsim changed the graph outputs {outputs_before} -> {outputs_after}; "
                           "nothing was written. Run without the simplify pass")
    missing = [n for n in inputs_before if n not in inputs_after]
    if missing:
        raise OnnxfitError(f"simplify: onnxsim dropped the graph inputs {missing}; nothing was written. "
                           "Run without the simplify pass")


def _count_changes(before: onnx.ModelProto, after: onnx.ModelProto, report: PassReport) -> None:
    """Whether onnxsim changed the ops or computed constants (``folded``); the pipeline counts
    the nodes added and removed."""
    ops_before, ops_after = op_histogram(before), op_histogram(after)
    known = {t.name for t in before.graph.initializer}
    report.folded = sum(1 for t in after.graph.initializer if t.name not in known)
    report.changed = ops_before != ops_after or bool(report.folded)
    if report.changed:
        report.notes.append(f"{sum(ops_before.values())} -> {sum(ops_after.values())} nodes"
                            + _removed_ops_text(ops_before - ops_after))


def _removed_ops_text(removed: Counter) -> str:
    top = ", ".join(f"{op} {n}" for op, n in removed.most_common(4))
    return f" (removed {top})" if top else ""
