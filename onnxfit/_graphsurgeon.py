"""onnx-graphsurgeon with its logger silenced (it logs to stdout, which would corrupt ``--json``),
and ``import_graph`` / ``export_graph``: its importer and exporter with what they cannot carry
themselves (string constants, values that are not tensors, type attributes, lazy weights).

Imported by the packages that use graph-surgeon (optimizer, inspection) rather than by
``import onnxfit``, which stays light.
"""

import onnx
import onnx_graphsurgeon as gs
from onnx_graphsurgeon.ir.tensor import LazyValues

__all__ = ["export_graph", "import_graph"]

_VALUE_TYPES = "onnxfit_value_types"  # the attribute of an imported graph that keeps them

gs.logger.G_LOGGER.severity = gs.logger.G_LOGGER.CRITICAL + 10
gs.logger.G_LOGGER.colors = False


class _SourceValues(LazyValues):
    """A weight ``load_model`` left in its source file (``lazy_io``): read from there. Through
    onnx, its absolute location is refused ("should be a relative path")."""

    def load(self):
        from onnxfit.lazy_io import read_lazy

        return read_lazy(self.tensor)


def import_graph(model: onnx.ModelProto) -> gs.Graph:
    """``gs.import_onnx`` that keeps what graph-surgeon 0.6 drops or cannot type:

    1. type attributes (Optional's ``type``): an empty Optional would lose what it is empty of;
    2. the types of values that are not tensors (``optional(...)``, ``seq(map(...))`` as
       skl2onnx's ZipMap writes): kept by name for ``export_graph``;
    3. weights ``load_model`` left in their file: read from there when a pass asks for values.
    """
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
    setattr(graph, _VALUE_TYPES, {info.name: info.type for g in iter_graphs(model.graph)
                                  for info in (*g.input, *g.output, *g.value_info)
                                  if info.type.WhichOneof("value") not in (None, "tensor_type")})
    return graph


def export_graph(graph: gs.Graph) -> onnx.ModelProto:
    """``gs.export_onnx`` that also writes what graph-surgeon 0.6 cannot:

    1. string constants (a vocabulary table, a fixed string input): it writes every array as raw
       data, which strings cannot be; they go back to a TensorProto it copies as it is;
    2. weights read into memory from external data: written inline (it would mark their raw data
       as stored externally, which the checker refuses);
    3. values that are not tensors (optional, sequence, map): its exporter has no optional type
       (UnboundLocalError) and writes a sequence of maps as one of tensors; they are written
       untyped, then given the type ``import_graph`` kept (an optional's, where it did not, from
       the element ``TypeProto`` graph-surgeon's importer leaves in ``dtype``).
    """
    from onnxfit.graphs import iter_graphs

    types: dict[str, onnx.TypeProto] = dict(getattr(graph, _VALUE_TYPES, {}))
    for g in iter_graphs(graph):
        for tensor in g.tensors().values():
            if isinstance(tensor, gs.Constant) and not isinstance(tensor._values, LazyValues):
                # Values read into memory are written inline, wherever the source kept them.
                tensor.data_location = None
                if tensor.values.dtype.kind in "OUS":
                    tensor.values = LazyValues(onnx.numpy_helper.from_array(tensor.values.astype(object), tensor.name))
            elif getattr(tensor, "type", None) == "optional_type" and isinstance(tensor.dtype, onnx.TypeProto):
                types.setdefault(tensor.name, onnx.helper.make_optional_type_proto(tensor.dtype))
    untyped = [(t, t.dtype) for g in iter_graphs(graph) for t in g.tensors().values()
               if t.name in types and isinstance(t, gs.Variable)]
    for tensor, _ in untyped:
        tensor.dtype = None
    try:
        model = gs.export_onnx(graph, do_type_check=False)
    finally:
        for tensor, dtype in untyped:
            tensor.dtype = dtype
    for g in iter_graphs(model.graph):
        for info in (*g.input, *g.output, *g.value_info):
            if info.name in types:
                info.type.CopyFrom(types[info.name])
    return model
