"""onnx-graphsurgeon with its logger silenced (it logs to stdout, which would corrupt ``--json``),
and ``export_graph``, its exporter for the values it cannot write itself.

Imported by the packages that use graph-surgeon (optimizer, inspection) rather than by
``import onnxfit``, which stays light.
"""

import onnx
import onnx_graphsurgeon as gs
from onnx_graphsurgeon.ir.tensor import LazyValues

__all__ = ["export_graph", "import_graph"]

gs.logger.G_LOGGER.severity = gs.logger.G_LOGGER.CRITICAL + 10
gs.logger.G_LOGGER.colors = False


class _SourceValues(LazyValues):
    """A weight ``load_model`` left in its source file (``lazy_io``): read from there. Through
    onnx, its absolute location is refused ("should be a relative path")."""

    def load(self):
        from onnxfit.lazy_io import read_lazy

        return read_lazy(self.tensor)


def import_graph(model: onnx.ModelProto) -> gs.Graph:
    """``gs.import_onnx`` that keeps type attributes (Optional's ``type``), which graph-surgeon
    0.6 drops (an empty Optional would lose the type it is an empty one of), and reads the weights
    ``load_model`` left in their file from there when a pass asks for their values."""
    from onnxfit.graphs import iter_graphs
    from onnxfit.lazy_io import is_lazy

    graph = gs.import_onnx(model)
    for tensor in graph.tensors().values():
        if isinstance(tensor, gs.Constant) and isinstance(tensor._values, LazyValues) and is_lazy(tensor._values.tensor):
            tensor.values = _SourceValues(tensor._values.tensor)
    typed = {node.output[0]: [a for a in node.attribute if a.type in (onnx.AttributeProto.TYPE_PROTO,
                                                                       onnx.AttributeProto.TYPE_PROTOS)]
             for g in iter_graphs(model.graph) for node in g.node if node.output}
    typed = {name: attrs for name, attrs in typed.items() if attrs}
    if typed:
        for g in iter_graphs(graph):
            for node in g.nodes:
                for attr in typed.get(node.outputs[0].name if node.outputs else "", []):
                    node.attrs[attr.name] = onnx.helper.get_attribute_value(attr)
    return graph


def export_graph(graph: gs.Graph) -> onnx.ModelProto:
    """``gs.export_onnx`` that also writes what graph-surgeon 0.6 cannot:

    1. string constants (a vocabulary table, a fixed string input): it writes every array as raw
       data, which strings cannot be; they go back to a TensorProto it copies as it is;
    2. weights read into memory from external data: written inline (it would mark their raw data
       as stored externally, which the checker refuses);
    3. optional values (``optional(tensor)``, ``optional(seq)``): its exporter has no optional
       type (UnboundLocalError); they are written untyped, then given back their type, which its
       importer keeps as the element's ``TypeProto`` in ``dtype``.
    """
    from onnxfit.graphs import iter_graphs

    optionals: dict[str, onnx.TypeProto] = {}
    for g in iter_graphs(graph):
        for tensor in g.tensors().values():
            if isinstance(tensor, gs.Constant) and not isinstance(tensor._values, LazyValues):
                # Values read into memory are written inline, wherever the source kept them.
                tensor.data_location = None
                if tensor.values.dtype.kind in "OUS":
                    tensor.values = LazyValues(onnx.numpy_helper.from_array(tensor.values.astype(object), tensor.name))
            elif getattr(tensor, "type", None) == "optional_type" and isinstance(tensor.dtype, onnx.TypeProto):
                optionals[tensor.name] = tensor.dtype
    untyped = [(t, t.dtype) for g in iter_graphs(graph) for t in g.tensors().values() if t.name in optionals]
    for tensor, _ in untyped:
        tensor.dtype = None
    try:
        model = gs.export_onnx(graph, do_type_check=False)
    finally:
        for tensor, dtype in untyped:
            tensor.dtype = dtype
    if optionals:
        for g in iter_graphs(model.graph):
            for info in (*g.input, *g.output, *g.value_info):
                if info.name in optionals and info.type.WhichOneof("value") is None:
                    info.type.optional_type.elem_type.CopyFrom(optionals[info.name])
    return model
