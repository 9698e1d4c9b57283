"""Between the model and graph-surgeon: import, export that keeps what downstream code relies on
(IR version, opsets, metadata, input and initializer order, doc strings), and the checks a result
must pass before anything is written."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

import onnx
import onnx_graphsurgeon as gs

from onnxfit.errors import OnnxfitError, first_line
from onnxfit.graphs import iter_graphs
from onnxfit.optimizer.nodes import share_name_registry
from onnxfit.shapes import proto_shape, setting_inputs_deciding_ifs, weightless_copy

__all__ = ["check_inference", "check_model", "export_model", "import_graph", "initializer_inputs"]

log = logging.getLogger(__name__)


def import_graph(model: onnx.ModelProto, original: onnx.ModelProto, overridable: frozenset[str]) -> gs.Graph:
    graph = gs.import_onnx(model)
    _keep_declared_output_shapes(original.graph, graph)
    _keep_overridable(graph, overridable, initializer_inputs(original.graph))
    share_name_registry(graph)
    return graph


def initializer_inputs(graph: onnx.GraphProto) -> tuple[str, ...]:
    initializers = {t.name for t in graph.initializer}
    return tuple(vi.name for vi in graph.input if vi.name in initializers)


def _keep_overridable(graph: gs.Graph, names: frozenset[str], listed: tuple[str, ...]) -> None:
    """--keep-input: graph-surgeon imports a listed initializer as a Constant; these stay inputs.

    As Variables no pass folds them; ``export_model`` writes their initializer back as the default.
    """
    unknown = sorted(names - set(listed) - {t.name for t in graph.inputs})
    if unknown:
        raise OnnxfitError(f"--keep-input {', '.join(unknown)}: not an input of the model "
                           f"(it lists {len(listed)} initializers among its graph inputs)")
    if not names:
        return
    for tensor in graph.tensors().values():
        if tensor.name in names and isinstance(tensor, gs.Constant):
            tensor.to_variable(dtype=tensor.dtype, shape=list(tensor.shape))
            tensor.type = "tensor_type"  # what Variable() sets and to_variable() leaves out
            graph.inputs.append(tensor)


def _keep_declared_output_shapes(original: onnx.GraphProto, graph: gs.Graph) -> None:
    """Graph outputs keep the shape their declaration gives when a value_info entry has none.

    graph-surgeon takes a tensor's type from ``value_info`` over ``graph.output``, and quantization
    tools write shapeless value_info for outputs (crnn_ddddocr_quantized's ``387``): the exported
    output would then lack the shape the checker requires of graph outputs.
    """
    declared = {vi.name: proto_shape(vi) for vi in original.output}
    for tensor in graph.outputs:
        if tensor.shape is None and declared.get(tensor.name) is not None:
            tensor.shape = list(declared[tensor.name])


def check_model(light: onnx.ModelProto, when: str, original: onnx.ModelProto) -> None:
    """A pass that produced an invalid graph is a bug in onnxfit: fail loudly, never save it.
    ``light`` is the result without its weights (``weightless_copy``).

    Exporters write models the checker rejects but ONNX Runtime runs (outputs without a shape,
    for one); when the original already fails the checker, a failing result is only logged.
    The failure is an ``OnnxfitError`` (one line, no traceback) that names the model's state.
    """
    try:
        onnx.checker.check_model(light)
    except onnx.checker.ValidationError as exc:
        try:
            onnx.checker.check_model(weightless_copy(original))
        except onnx.checker.ValidationError:
            log.warning("onnx checker rejects the model %s, as it rejected the original: %s", when, exc)
            return
        raise OnnxfitError(f"onnx checker rejects the result {when} ({first_line(exc)}); nothing was written. "
                           "This is an onnxfit bug: please report it with the model") from None


def check_inference(light: onnx.ModelProto, original: onnx.ModelProto, input_shapes: Mapping,
                    fixed_inputs: Mapping) -> None:
    """ONNX Runtime runs onnx shape inference through every If branch when it loads a model: a
    result that fails it (where the original did not) would not load. Fixed input shapes can do
    that on their own: silero-vad's 8 kHz branch cannot take the 576-sample chunks of 16 kHz, so
    with ``--input-shape input=1x576`` it only loads once ``--fix-input sr=16000`` removes it."""
    def fails(m: onnx.ModelProto) -> str | None:
        try:
            onnx.shape_inference.infer_shapes(m, strict_mode=True)
        except (onnx.shape_inference.InferenceError, ValueError) as exc:
            return first_line(exc)
        return None

    reason = fails(light)
    if reason is None or fails(weightless_copy(original)) is not None:
        return
    reason = re.sub(r"\s+", " ", reason)[:300]
    if input_shapes:
        deciding = [n for n in setting_inputs_deciding_ifs(original) if n not in fixed_inputs]
        hint = ("a branch of the model cannot take the input shapes given"
                + (f"; fix the input that picks the branch: {', '.join(f'--fix-input {n}=VALUE' for n in deciding)}"
                   if deciding else ""))
        raise OnnxfitError(f"the result would not load in ONNX Runtime: shape inference fails ({reason}): {hint}; "
                           "nothing was written")
    raise OnnxfitError(f"the result would not load in ONNX Runtime: shape inference fails ({reason}); nothing was "
                       "written. This is an onnxfit bug: please report it with the model")


def export_model(graph: gs.Graph, original: onnx.ModelProto, unlisted: frozenset[str] = frozenset()) -> onnx.ModelProto:
    new = gs.export_onnx(graph, do_type_check=False)
    _restore_model_fields(original, new)
    # A pass may raise the IR version (initializer-inputs: 4), never lower it.
    new.ir_version = max(original.ir_version, graph.ir_version or 0)
    _restore_input_defaults(original.graph, new.graph)
    _restore_initializer_order(original.graph, new.graph)
    _restore_graph_inputs(original.graph, new.graph, lists_initializers=new.ir_version < 4, unlisted=unlisted)
    _restore_node_doc_strings(original.graph, new.graph)
    return new


def _restore_model_fields(original: onnx.ModelProto, new: onnx.ModelProto) -> None:
    new.ir_version = original.ir_version
    new.producer_name = original.producer_name
    new.producer_version = original.producer_version
    new.domain = original.domain
    new.model_version = original.model_version
    new.doc_string = original.doc_string
    new.graph.name = original.graph.name
    new.graph.doc_string = original.graph.doc_string
    del new.opset_import[:]
    new.opset_import.extend(original.opset_import)
    del new.metadata_props[:]
    new.metadata_props.extend(original.metadata_props)


def _restore_input_defaults(original: onnx.GraphProto, new: onnx.GraphProto) -> None:
    """Inputs kept overridable (``_keep_overridable``) get their initializer back as the default."""
    missing = {vi.name for vi in new.input} - {t.name for t in new.initializer}
    new.initializer.extend(t for t in original.initializer if t.name in missing)


def _restore_graph_inputs(original: onnx.GraphProto, new: onnx.GraphProto, lists_initializers: bool,
                          unlisted: frozenset[str] = frozenset()) -> None:
    """Keep the original input order. IR < 4 requires every initializer to be a graph input too:
    initializers a pass added (folded weights, new shape constants) are listed after the others,
    and those a pass dropped are no longer listed (ORT would ask the caller to feed them).
    Initializers the original listed stay listed unless a pass took them off (``unlisted``)."""
    current = {vi.name: vi for vi in new.input}
    initializers = {t.name: t for t in new.initializer}
    # An input that only now has an initializer was fixed (--fix-input): it is no input any more.
    was_initializer = {t.name for t in original.initializer}
    ordered = []
    for vi in original.input:
        if vi.name in current:
            ordered.append(current.pop(vi.name))
        elif vi.name in initializers and vi.name in was_initializer and vi.name not in unlisted:
            ordered.append(vi)
    ordered.extend(current.values())
    if lists_initializers:
        listed = {vi.name for vi in ordered}
        ordered += [onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
                    for t in new.initializer if t.name not in listed]
    if [vi.name for vi in ordered] != [vi.name for vi in new.input]:
        copies = [onnx.ValueInfoProto.FromString(vi.SerializeToString()) for vi in ordered]
        del new.input[:]
        new.input.extend(copies)


def _used_names(graph: onnx.GraphProto) -> set[str]:
    used = {o.name for o in graph.output}
    for g in iter_graphs(graph):
        for node in g.node:
            used.update(node.input)
        used.update(o.name for o in g.output)
    return used


def _restore_initializer_order(original: onnx.GraphProto, new: onnx.GraphProto) -> None:
    """New initializers first, then the original ones in original order, unused ones included.

    Initializers that only a rewritten node used are dropped; those the original model never used
    (inswapper's emap) are kept, so ``initializer[-1]`` still names the same tensor.
    """
    new_by_name = {t.name: t for t in new.initializer}
    originally_unused = {t.name for t in original.initializer} - _used_names(original)
    original_names = [t.name for t in original.initializer]
    order = [n for n in new_by_name if n not in set(original_names)]
    order += [n for n in original_names if n in new_by_name or n in originally_unused]
    if order == list(new_by_name):
        return
    original_by_name = {t.name: t for t in original.initializer}
    tensors = [new_by_name.get(n) or original_by_name[n] for n in order]
    del new.initializer[:]
    new.initializer.extend(tensors)


def _restore_node_doc_strings(original: onnx.GraphProto, new: onnx.GraphProto) -> None:
    docs = {n.name: n.doc_string for n in original.node if n.name and n.doc_string}
    if not docs:
        return
    for node in new.node:
        if node.name in docs and not node.doc_string:
            node.doc_string = docs[node.name]
