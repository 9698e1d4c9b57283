"""The pipeline keeps what downstream code relies on, whatever the passes rewrite."""

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxfit.errors import OnnxfitError
from onnxfit.optimizer import PassContext, get_passes, pass_names, run_passes
from tests.conftest import assert_same_outputs, make_model, random_feeds, tensor_info


def _model_with_unused_emap():
    """A scalar Gather (rewritten by scalar-gather) plus inswapper's trailing, unused emap."""
    idx = helper.make_tensor("idx", TensorProto.INT64, [], [1])
    bias = numpy_helper.from_array(np.ones(4, np.float32), "bias")
    emap = numpy_helper.from_array(np.eye(8, dtype=np.float32), "emap")
    nodes = [helper.make_node("Gather", ["x", "idx"], ["g"], axis=1, name="pick", doc_string="picks a row"),
             helper.make_node("Add", ["g", "bias"], ["y"], name="add")]
    model = make_model(nodes, [tensor_info("x", [4, 3]), tensor_info("unused_input", [1])],
                       [tensor_info("y", [4])], [idx, bias, emap], ir_version=7)
    model.producer_name, model.producer_version = "pytorch", "2.13.0"
    model.doc_string = "a model"
    helper.set_model_props(model, {"author": "test", "license": "mit"})
    return model


def test_rewrite_preserves_io_order_initializers_metadata_producer_and_ir_version():
    model = _model_with_unused_emap()
    result = run_passes(model, get_passes(["scalar-gather"]), PassContext(opset=17))
    new = result.model
    assert result.changed
    assert [i.name for i in new.graph.input] == ["x", "unused_input"]
    assert [o.name for o in new.graph.output] == ["y"]
    names = [t.name for t in new.graph.initializer]
    assert names[-1] == "emap", "inswapper reads graph.initializer[-1] as its emap"
    assert names[-2] == "bias"
    assert "idx" not in names  # only the rewritten Gather used it
    assert new.ir_version == 7
    assert (new.producer_name, new.producer_version, new.doc_string) == ("pytorch", "2.13.0", "a model")
    assert {p.key: p.value for p in new.metadata_props} == {"author": "test", "license": "mit"}
    assert next(n for n in new.graph.node if n.name == "pick").doc_string == "picks a row"
    feeds = random_feeds(model)
    assert_same_outputs(model, new, feeds)


def test_shared_initializer_stays_when_another_node_uses_it():
    idx = helper.make_tensor("idx", TensorProto.INT64, [], [0])
    nodes = [helper.make_node("Gather", ["x", "idx"], ["g"], axis=0), helper.make_node("Cast", ["idx"], ["c"], to=1),
             helper.make_node("Add", ["g", "c"], ["y"])]
    model = make_model(nodes, [tensor_info("x", [3, 2])], [tensor_info("y", [2])], [idx])
    new = run_passes(model, get_passes(["scalar-gather"]), PassContext(opset=17)).model
    assert "idx" in {t.name for t in new.graph.initializer}
    assert_same_outputs(model, new, random_feeds(model))


def test_unknown_pass_lists_valid_ones():
    with pytest.raises(OnnxfitError, match="unknown pass 'no-such-pass'.*valid passes: .*scalar-gather"):
        get_passes(["no-such-pass"])


def test_every_pass_module_registers_one_pass_named_after_it_and_every_preset_pass_exists():
    import pkgutil

    from onnxfit.optimizer import passes
    from onnxfit.targets.presets import TARGETS

    modules = {m.name for m in pkgutil.iter_modules(passes.__path__)}
    assert {name: type(p).__module__ for name, p in zip(pass_names(), get_passes(pass_names()))} == {
        name.replace("_", "-"): f"onnxfit.optimizer.passes.{name}" for name in modules}
    assert "flatten-to-reshape" in pass_names()
    for target in TARGETS.values():
        assert set(target.passes) <= set(pass_names()), target.name


def test_output_shape_survives_a_shapeless_value_info_entry_and_the_checker_passes():
    # Quantization tools write value_info without a shape for graph outputs; the declared output
    # shape must survive the rewrite (the checker requires graph outputs to carry one).
    import onnx

    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Reshape", ["x", "s"], ["r"]),
             helper.make_node("Relu", ["r"], ["y"])]
    model = make_model(nodes, [tensor_info("x", [1, 3])], [tensor_info("y", [1, "seqlen"])], opset=13, ir_version=6,
                       value_info=[helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    onnx.checker.check_model(model)
    result = run_passes(model, get_passes(["fold-shapes"]), PassContext(opset=13))
    assert result.changed
    onnx.checker.check_model(result.model)
    assert [d.dim_value or d.dim_param for d in result.model.graph.output[0].type.tensor_type.shape.dim] == [1, 3]
    assert_same_outputs(model, result.model, random_feeds(model))


def test_checker_failure_after_the_passes_is_one_line_error_not_a_traceback():
    class _Breaks:
        name, version = "breaks", 1

        def run(self, graph, ctx):
            from onnxfit.optimizer import PassReport

            graph.nodes[0].op = "NoSuchOp"
            return PassReport(self.name, rewritten=1, changed=True)

    model = make_model([helper.make_node("Relu", ["x"], ["y"])], [tensor_info("x", [1, 3])], [tensor_info("y", [1, 3])])
    with pytest.raises(OnnxfitError, match=r"onnx checker rejects the result after the passes .*NoSuchOp.*onnxfit bug"):
        run_passes(model, [_Breaks()], PassContext(opset=17))


# ------------------------------------------------- explicit results, counted nodes, post-conditions


class _ReluToSigmoidTanh:
    """Replaces every Relu by Sigmoid -> Tanh and says it changed the graph, counting nothing."""

    name, version = "relu-to-sigmoid-tanh", 1

    def run(self, graph, ctx):
        from onnxfit.optimizer import PassReport
        from onnxfit.optimizer.nodes import add_node

        relus = [n for n in graph.nodes if n.op == "Relu"]
        for node in relus:
            x, y = node.inputs[0], node.outputs[0]
            node.inputs.clear()
            node.outputs.clear()
            mid = add_node(graph, "Sigmoid", "sig", [x]).outputs[0]
            add_node(graph, "Tanh", "tanh", [mid], outputs=[y])
        return PassReport(self.name, changed=bool(relus))


class _Renames:
    """Renames a node: a change no op count shows, which the pass's own word keeps."""

    name, version = "renames", 1

    def run(self, graph, ctx):
        from onnxfit.optimizer import PassReport

        graph.nodes[0].name = "renamed"
        return PassReport(self.name, changed=True)


def _relu_model():
    return make_model([helper.make_node("Relu", ["x"], ["r"], name="relu"), helper.make_node("Neg", ["r"], ["y"])],
                      [tensor_info("x", [1, 3])], [tensor_info("y", [1, 3])])


def test_pipeline_counts_added_and_removed_nodes_per_op_and_keeps_what_the_pass_says_it_changed():
    model = _relu_model()
    result = run_passes(model, [_ReluToSigmoidTanh(), _Renames()], PassContext(opset=17))
    edit, rename = result.reports
    assert (edit.changed, edit.added, edit.removed, edit.rewritten) == (True, 2, 1, 0)
    assert (rename.changed, rename.added, rename.removed) == (True, 0, 0)
    assert result.changed and result.model.graph.node[0].name == "renamed"
    assert [n.op_type for n in result.model.graph.node] == ["Sigmoid", "Tanh", "Neg"]
    feeds = random_feeds(model)
    expected = np.negative(np.tanh(1 / (1 + np.exp(-feeds["x"]))))
    from tests.conftest import run_ort

    np.testing.assert_allclose(run_ort(result.model, feeds)[0], expected, rtol=1e-6)


def test_an_edit_the_pass_does_not_report_is_kept_when_node_counts_show_it():
    class _Silent(_ReluToSigmoidTanh):
        def run(self, graph, ctx):
            report = super().run(graph, ctx)
            report.changed = False
            return report

    result = run_passes(_relu_model(), [_Silent()], PassContext(opset=17))
    assert result.reports[0].changed and (result.reports[0].added, result.reports[0].removed) == (2, 1)
    assert "Relu" not in {n.op_type for n in result.model.graph.node}


def test_dead_nodes_of_the_original_are_not_counted_as_the_first_pass_removing_them():
    model = _relu_model()
    model.graph.node.append(helper.make_node("Abs", ["x"], ["dead"]))
    result = run_passes(model, [_Renames()], PassContext(opset=17))
    assert (result.reports[0].added, result.reports[0].removed) == (0, 0)


def test_post_conditions_run_after_every_pass_and_check_each_names_the_pass_that_broke_the_model():
    from onnxfit.optimizer.pipeline import AfterPass

    class _Breaks:
        name, version = "breaks", 1

        def run(self, graph, ctx):
            from onnxfit.optimizer import PassReport

            graph.nodes[-1].op = "NoSuchOp"
            return PassReport(self.name, changed=True)

    seen: list[tuple[str, list[str]]] = []

    def record(after: AfterPass) -> None:
        seen.append((after.report.name, [n.op_type for n in after.model().graph.node]))

    run_passes(_relu_model(), [_Renames(), _ReluToSigmoidTanh()], PassContext(opset=17), post_conditions=[record])
    assert seen == [("renames", ["Relu", "Neg"]), ("relu-to-sigmoid-tanh", ["Sigmoid", "Tanh", "Neg"])]
    with pytest.raises(OnnxfitError, match=r"onnx checker rejects the result after pass breaks .*NoSuchOp"):
        run_passes(_relu_model(), [_Breaks(), _Renames()], PassContext(opset=17), check_each=True)


@pytest.mark.parametrize("target", ["coreml", "coreml-nn", "nnapi", "openvino", "cpu"])
def test_quantized_crnn_optimizes_for_every_target_and_matches(zoo_model, target):
    # com.microsoft quantized ops, opset 12, IR 6; output '387' has a shapeless value_info entry.
    import onnx

    from onnxfit.model import load_model
    from onnxfit.app.optimize import optimize_model

    model = load_model(zoo_model("crnn_ddddocr_quantized"))
    result = optimize_model(model, target, input_shapes={"input1": (1, 1, 64, 128)})
    onnx.checker.check_model(result.model)
    assert result.model.graph.output[0].type.tensor_type.HasField("shape")
    feeds = random_feeds(model, shapes={"input1": (1, 1, 64, 128)})
    assert_same_outputs(model, result.model, feeds, exact=False, atol=1e-4)


def test_the_pass_catalog_a_cache_hit_reads_is_the_registry():
    """A cache hit keys by pass versions without importing the passes: the catalog must match them."""
    from onnxfit.optimizer.catalog import PASSES

    registered = {p.name: (p.version, bool(getattr(p, "exact", True))) for p in get_passes(pass_names())}
    assert registered == {name: tuple(info) for name, info in PASSES.items()}
