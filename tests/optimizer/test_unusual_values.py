"""Values graph-surgeon cannot write on its own go through every target: string tensors (a
vocabulary table, a fixed string input) and optional values (``optional(tensor)``,
``optional(seq)``; Identity, If, Loop over them, as in ONNX's own operator tests)."""

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxfit.app.optimize import optimize_model
from tests.cli.test_contract import onnxfit
from tests.conftest import make_model, run_ort, tensor_info
from tests.optimizer.conformance import same_outputs

TARGETS = ["cpu", "coreml", "nnapi"]  # the two pass lists, and a second mobile profile


def _vocabulary_model():
    """A vocabulary table: ``y = vocab[idx]`` on a STRING initializer, then an Identity to fold."""
    vocab = numpy_helper.from_array(np.array(["<pad>", "hello", "wörld"], dtype=object), "vocab")
    nodes = [helper.make_node("Gather", ["vocab", "idx"], ["w"]), helper.make_node("Identity", ["w"], ["y"])]
    return make_model(nodes, [tensor_info("idx", [2], TensorProto.INT64)], [tensor_info("y", [2], TensorProto.STRING)],
                      [vocab])


def _string_concat_model():
    nodes = [helper.make_node("StringConcat", ["x", "suffix"], ["z"])]
    inputs = [tensor_info("x", [2], TensorProto.STRING), tensor_info("suffix", [2], TensorProto.STRING)]
    return make_model(nodes, inputs, [tensor_info("z", [2], TensorProto.STRING)], opset=20, ir_version=9)


def _optional_type(elem: onnx.TypeProto) -> onnx.TypeProto:
    return helper.make_optional_type_proto(elem)


def _identity_optional_model():
    """``Identity`` over an ``optional(tensor)`` input, then ``OptionalGetElement``: the rest of
    the graph (an ``Add`` of constants) gives the passes something to fold."""
    opt = helper.make_value_info("opt", _optional_type(helper.make_tensor_type_proto(TensorProto.FLOAT, [3])))
    nodes = [helper.make_node("Identity", ["opt"], ["same"]), helper.make_node("OptionalGetElement", ["same"], ["x"]),
             helper.make_node("Add", ["one", "one"], ["two"]), helper.make_node("Mul", ["x", "two"], ["y"])]
    return make_model(nodes, [opt], [tensor_info("y", [3])], [numpy_helper.from_array(np.ones(3, np.float32), "one")],
                      opset=18)


def _if_optional_sequence_model():
    """An If whose branches return ``optional(seq(float))``: an empty one (Optional's ``type``
    attribute, which graph-surgeon drops) or one holding a sequence; an Identity after it to remove."""
    seq = helper.make_sequence_type_proto(helper.make_tensor_type_proto(TensorProto.FLOAT, [5]))
    out = lambda name: helper.make_value_info(name, _optional_type(seq))  # noqa: E731
    empty = helper.make_graph([helper.make_node("Optional", [], ["none"], type=seq)], "then", [], [out("none")])
    values = numpy_helper.from_array(np.arange(5, dtype=np.float32), "values")
    full = helper.make_graph([helper.make_node("SequenceConstruct", ["values"], ["s"]),
                              helper.make_node("Optional", ["s"], ["some"])], "else", [], [out("some")], [values])
    nodes = [helper.make_node("If", ["cond"], ["picked"], then_branch=empty, else_branch=full),
             helper.make_node("Identity", ["picked"], ["result"])]
    return make_model(nodes, [tensor_info("cond", [], TensorProto.BOOL)], [out("result")], opset=18)


def _loop_optional_model():
    """A Loop carrying an ``optional(tensor)`` state: each step wraps ``state + 1`` anew (its ``one``
    the sum of two constants, to fold)."""
    opt = _optional_type(helper.make_tensor_type_proto(TensorProto.FLOAT, [2]))
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("OptionalGetElement", ["state_in"], ["x"]),
         helper.make_node("Add", ["half", "half"], ["one"]),
         helper.make_node("Add", ["x", "one"], ["x1"]), helper.make_node("Optional", ["x1"], ["state_out"])],
        "body", [tensor_info("i", [], TensorProto.INT64), tensor_info("cond_in", [], TensorProto.BOOL),
                 helper.make_value_info("state_in", opt)],
        [tensor_info("cond_out", [], TensorProto.BOOL), helper.make_value_info("state_out", opt)],
        [numpy_helper.from_array(np.full(2, 0.5, np.float32), "half")])
    nodes = [helper.make_node("Optional", ["x0"], ["start"]),
             helper.make_node("Loop", ["trips", "", "start"], ["end"], body=body),
             helper.make_node("OptionalGetElement", ["end"], ["y"])]
    inputs = [tensor_info("x0", [2]), tensor_info("trips", [], TensorProto.INT64)]
    return make_model(nodes, inputs, [tensor_info("y", [2])], opset=18)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("fix", [False, True])
def test_string_initializer_vocabulary_table_keeps_its_outputs(target, fix):
    model = _vocabulary_model()
    feeds = {"idx": np.array([2, 1], np.int64)}
    result = optimize_model(model, target=target, fixed_inputs=feeds if fix else None)
    assert result.changed  # the Identity goes; with idx fixed, the Gather folds into a string constant
    actual = run_ort(result.model, {} if fix else feeds)
    assert actual[0].tolist() == ["wörld", "hello"] == run_ort(model, feeds)[0].tolist()


@pytest.mark.parametrize("target", TARGETS)
def test_fix_input_with_a_string_tensor_from_npy(target, tmp_path):
    model = _string_concat_model()
    result = optimize_model(model, target=target, fixed_inputs={"suffix": np.array(["-a", "-b"])})
    assert [vi.name for vi in result.model.graph.input] == ["x"]
    feeds = {"x": np.array(["p", "q"], dtype=object)}
    assert run_ort(result.model, feeds)[0].tolist() == ["p-a", "q-b"]
    path, npy = tmp_path / "concat.onnx", tmp_path / "strings.npy"
    onnx.save(model, path)
    np.save(npy, np.array(["-a", "-b"]))
    run = onnxfit("optimize", path, "-o", tmp_path / "out.onnx", "--target", target, "--fix-input", f"suffix=@{npy}")
    assert run.returncode == 0, run.stderr
    assert run_ort(onnx.load(tmp_path / "out.onnx"), feeds)[0].tolist() == ["p-a", "q-b"]


@pytest.mark.parametrize("build, feeds", [
    (_identity_optional_model, {"opt": np.array([1, 2, 3], np.float32)}),
    (_if_optional_sequence_model, {"cond": np.array(True)}),
    (_if_optional_sequence_model, {"cond": np.array(False)}),
    (_loop_optional_model, {"x0": np.array([1, 2], np.float32), "trips": np.array(3, np.int64)}),
], ids=["identity", "if-empty", "if-full", "loop"])
@pytest.mark.parametrize("target", TARGETS)
def test_optional_values_keep_their_types_and_outputs(build, feeds, target):
    model = build()
    result = optimize_model(model, target=target)
    assert result.changed
    types = {vi.name: vi.type for g in [model.graph] for vi in (*g.input, *g.output)}
    assert {vi.name: vi.type for vi in (*result.model.graph.input, *result.model.graph.output)} == types
    assert same_outputs(run_ort(model, feeds), run_ort(result.model, feeds))


def test_inspect_target_and_directory_run_take_a_string_model(tmp_path):
    from tests.models import scalar_gather_model

    onnx.save(_vocabulary_model(), tmp_path / "vocab.onnx")
    onnx.save(scalar_gather_model(batch=2), tmp_path / "gather.onnx")
    inspected = onnxfit("inspect", tmp_path / "vocab.onnx", "--target", "coreml")
    assert inspected.returncode == 0 and "Traceback" not in inspected.stderr, inspected.stderr
    run = onnxfit("optimize", tmp_path, "-o", tmp_path / "out", "--target", "nnapi", "--json")
    assert run.returncode == 0, run.stderr
    assert {m["model"].rsplit("/", 1)[-1] for m in json.loads(run.stdout)["models"] if m["changed"]} == {
        "vocab.onnx", "gather.onnx"}
    assert (tmp_path / "out" / "vocab.onnx").exists() and (tmp_path / "out" / "gather.onnx").exists()


def test_a_bug_on_one_model_is_that_models_error_line(monkeypatch, tmp_path):
    from onnxfit.app import flow
    from onnxfit.app.job import OptimizeJob
    from onnxfit.cli import optimize as command

    def broken(job):
        raise TypeError("Can not use raw_data to store string type.")

    monkeypatch.setattr(flow, "run_job", broken)  # the command imports it when it runs
    result = command._optimize_one(OptimizeJob.create(tmp_path / "m.onnx", tmp_path / "o.onnx"))
    assert result["error"].startswith(f"{tmp_path / 'm.onnx'}: onnxfit failed (TypeError: Can not use raw_data")
    assert "onnxfit bug" in result["error"] and "Traceback" in result["traceback"]
