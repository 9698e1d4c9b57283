"""Between the model and graph-surgeon: import, export that keeps what downstream code relies on
(IR version, opsets, metadata, input and initializer order, doc strings). The checks a result must
pass before anything is written live in ``load_guard``."""

from __future__ import annotations

import onnx
import onnx_graphsurgeon as gs

from onnxfit import _graphsurgeon as graphsurgeon
from onnxfit.errors import OnnxfitError
from onnxfit.graphs import iter_graphs
from onnxfit.optimizer.nodes import share_name_registry
from onnxfit.shapes import proto_shape

__all__ = ["export_model", "import_graph", "initializer_inputs"]


def import_graph(model: onnx.ModelProto, original: onnx.ModelProto, overridable: frozenset[str]) -> gs.Graph:
    graph = graphsurgeon.import_graph(model)  # keeps string constants and non-tensor types
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


def export_model(graph: gs.Graph, original: onnx.ModelProto, unlisted: frozenset[str] = frozenset()) -> onnx.ModelProto:
    new = graphsurgeon.export_graph(graph)
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
