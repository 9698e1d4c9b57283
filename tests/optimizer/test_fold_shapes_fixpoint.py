"""fold-shapes reaches a fixpoint: on a static model no shape math is left that ONNX Runtime's own
level-1 optimizer (ORT_ENABLE_BASIC, constant folding included) would remove.

"Shape math" is every node computed from tensor shapes and constants alone: a Shape/Size op and
whatever reads only its results and constants (If/Loop/Scan bodies included).
"""

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from onnxfit.model import load_model
from onnxfit.optimizer import PassContext, get_passes, run_passes
from onnxfit.app.optimize import optimize_model
from tests.conftest import assert_same_outputs, make_model, op_count, random_feeds, tensor_info

I64 = TensorProto.INT64
_SHAPE_OPS = ("Shape", "Size", "Gather", "Range", "ConstantOfShape", "Unsqueeze", "Squeeze", "Concat", "Expand",
              "Equal", "If")


def _shape_math(model: onnx.ModelProto) -> list[str]:
    """Labels of the nodes computed from shapes and constants only, in every graph and subgraph."""
    found = []

    def walk(graph, data):
        data = set(data) | {i.name for i in graph.input} - {t.name for t in graph.initializer}
        derived = set()
        for node in graph.node:
            subgraphs = [g for a in node.attribute for g in ([a.g] if a.type == onnx.AttributeProto.GRAPH else a.graphs)]
            for sub in subgraphs:
                walk(sub, data)
            inputs = [i for i in node.input if i]
            if node.op_type in ("Shape", "Size") or (not any(i in data for i in inputs)
                                                     and any(i in derived for i in inputs)):
                derived.update(node.output)
                found.append(f"{node.op_type} {node.name or node.output[0]}")
            elif subgraphs or any(i in data for i in inputs):
                data.update(node.output)

    walk(model.graph, set())
    return found


def _ort_basic(model: onnx.ModelProto, tmp_path) -> onnx.ModelProto:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(tmp_path / "ort_basic.onnx")
    options.log_severity_level = 3
    ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return onnx.load(tmp_path / "ort_basic.onnx")


def _fix_inputs(model: onnx.ModelProto, shapes: dict) -> onnx.ModelProto:
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    for vi in fixed.graph.input:
        if vi.name in shapes:
            vi.type.tensor_type.ClearField("shape")
            for d in shapes[vi.name]:
                vi.type.tensor_type.shape.dim.add().dim_value = d
    return fixed


def _assert_no_more_shape_math_than_ort(folded, static_original, tmp_path):
    assert _shape_math(folded) == []
    basic = _ort_basic(static_original, tmp_path)
    for op in _SHAPE_OPS:
        assert op_count(folded, op) <= op_count(basic, op), op


def _anchor_head():
    """YOLOv8's anchor grid on a static [1, 2, 4, 6] map: Shape -> Gather -> Range -> Add ->
    Expand -> Concat -> Shape -> Reshape, then added to the map's features."""
    scalar = lambda name, v: helper.make_tensor(name, I64, [], [v])  # noqa: E731
    ints = lambda name, v: helper.make_tensor(name, I64, [len(v)], v)  # noqa: E731
    inits = [scalar("i0", 0), scalar("i1", 1), scalar("i2", 2), scalar("i3", 3), ints("ax0", [0]), ints("ax1", [1]),
             ints("ax2", [2]), ints("two", [2]), helper.make_tensor("half", TensorProto.FLOAT, [], [0.5])]
    n = helper.make_node
    nodes = [n("Shape", ["x"], ["s"]), n("Gather", ["s", "i2"], ["h"], axis=0), n("Gather", ["s", "i3"], ["w"], axis=0),
             n("Range", ["i0", "w", "i1"], ["rw"]), n("Cast", ["rw"], ["fw"], to=TensorProto.FLOAT),
             n("Add", ["fw", "half"], ["gx0"]),
             n("Range", ["i0", "h", "i1"], ["rh"]), n("Cast", ["rh"], ["fh"], to=TensorProto.FLOAT),
             n("Add", ["fh", "half"], ["gy0"]), n("Unsqueeze", ["gy0", "ax1"], ["gy1"]),
             n("Unsqueeze", ["h", "ax0"], ["hu"]), n("Unsqueeze", ["w", "ax0"], ["wu"]),
             n("Concat", ["hu", "wu"], ["hw"], axis=0),
             n("Expand", ["gx0", "hw"], ["gx"]), n("Expand", ["gy1", "hw"], ["gy"]),
             n("Unsqueeze", ["gx", "ax2"], ["gx2"]), n("Unsqueeze", ["gy", "ax2"], ["gy2"]),
             n("Concat", ["gx2", "gy2"], ["grid"], axis=2),
             n("Shape", ["grid"], ["gs"]), n("Gather", ["gs", "i0"], ["gh"], axis=0),
             n("Gather", ["gs", "i1"], ["gw"], axis=0), n("Mul", ["gh", "gw"], ["cells"]),
             n("Unsqueeze", ["cells", "ax0"], ["cu"]), n("Concat", ["cu", "two"], ["flat_shape"], axis=0),
             n("Reshape", ["grid", "flat_shape"], ["anchors"]),
             n("Transpose", ["x"], ["xt"], perm=[0, 2, 3, 1]), n("Shape", ["anchors"], ["as"]),
             n("Reshape", ["xt", "as"], ["feat"]), n("Add", ["feat", "anchors"], ["y"])]
    return make_model(nodes, [tensor_info("x", [1, 2, 4, 6])], [tensor_info("y", [24, 2])], inits, opset=17)


def test_static_anchor_grid_head_folds_to_a_fixpoint_no_worse_than_ort_basic(tmp_path):
    model = _anchor_head()
    assert op_count(model, "Shape") == 3
    result = run_passes(model, get_passes(["fold-shapes"]), PassContext(opset=17))
    folded = result.model
    onnx.checker.check_model(folded)
    assert [n.op_type for n in folded.graph.node] == ["Transpose", "Reshape", "Add"]
    _assert_no_more_shape_math_than_ort(folded, model, tmp_path)
    assert_same_outputs(model, folded, random_feeds(model), exact=True)


def test_if_with_a_condition_from_static_shapes_is_inlined_and_the_shapes_after_it_fold(tmp_path):
    # The branches disagree on the output shape, so Shape(If output) is unknown until the If goes.
    then_graph = helper.make_graph([helper.make_node("Flatten", ["x"], ["t"], axis=1)], "then", [],
                                   [tensor_info("t", None)])
    else_graph = helper.make_graph([helper.make_node("Identity", ["x"], ["e"])], "else", [], [tensor_info("e", None)])
    n = helper.make_node
    nodes = [n("Shape", ["x"], ["s"]), n("Size", ["s"], ["rank"]), n("Equal", ["rank", "three"], ["cond"]),
             n("If", ["cond"], ["b"], then_branch=then_graph, else_branch=else_graph),
             n("Shape", ["b"], ["bs"]), n("Reshape", ["x", "bs"], ["y"])]
    model = make_model(nodes, [tensor_info("x", [2, 3, 4])], [tensor_info("y", None)],
                       [helper.make_tensor("three", I64, [], [3])], opset=17)
    result = run_passes(model, get_passes(["fold-shapes", "inline-if"]), PassContext(opset=17))
    folded = result.model
    onnx.checker.check_model(folded)
    assert op_count(folded, "If") == 0 and op_count(folded, "Shape") == 0
    _assert_no_more_shape_math_than_ort(folded, model, tmp_path)
    assert_same_outputs(model, folded, random_feeds(model), exact=True)


def test_yolov8_nudenet_at_a_fixed_input_shape_keeps_no_shape_math(zoo_model, tmp_path):
    model = load_model(zoo_model("yolov8n_nudenet"))
    shapes = {"images": (1, 3, 320, 320)}
    folded = optimize_model(model, "cpu", input_shapes=shapes).model
    assert op_count(model, "Shape") == 10 and op_count(folded, "Shape") == 0
    _assert_no_more_shape_math_than_ort(folded, _fix_inputs(model, shapes), tmp_path)
    assert_same_outputs(model, folded, random_feeds(model, shapes=shapes), exact=False, atol=1e-4)


def test_silero_vad_if_subgraph_shape_math_folds_once_its_inputs_are_static(zoo_model, tmp_path):
    # silero's LSTM state handling sits in If branches chosen by Shape -> Gather -> Equal.
    model = load_model(zoo_model("silero_vad_16k_op15"))
    shapes = {"input": (1, 512), "state": (2, 1, 128)}
    folded = optimize_model(model, "cpu", input_shapes=shapes).model
    assert _shape_math(_fix_inputs(model, shapes)) != []
    _assert_no_more_shape_math_than_ort(folded, _fix_inputs(model, shapes), tmp_path)
    feeds = random_feeds(model, shapes=shapes)
    feeds["sr"] = np.array(16000, dtype=np.int64)
    assert_same_outputs(model, folded, feeds, exact=False, atol=1e-5)
