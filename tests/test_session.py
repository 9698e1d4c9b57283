"""onnxfit.session(): the plan (providers, EP options, CUDA graph), the opened session, the bound
runner, verify's planned runtime and `onnxfit session-plan`. The CUDA and CoreML plans are made with
simulated provider lists (the placement is then the cuda profile's estimate); sessions really open
and run on the CPU EP here, against a plain onnxruntime session."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import onnxfit
from onnxfit.app.cuda_graph import BoundRunner, buffer_specs, device_copies
from onnxfit.errors import OnnxfitError
from onnxfit.app.session import PlannedSession, open_session, plan_session, session_plan
from onnxfit.targets.support import GraphFacts
from onnxfit import verify
from tests.conftest import make_model, random_feeds, tensor_info

CUDA = ["CUDAExecutionProvider", "CPUExecutionProvider"]
COREML = ["CoreMLExecutionProvider", "CPUExecutionProvider"]


def _weight(name, shape, seed):
    return numpy_helper.from_array(np.random.default_rng(seed).standard_normal(shape).astype(np.float32) * 0.3, name)


def recurrent_head(steps=4, batch: int | str = 1, width=8) -> onnx.ModelProto:
    """A fragmented recurrent head: per step MatMul, Add, Sigmoid, Tanh, Mul, Add on [batch, width]."""
    nodes, inits, h = [], [], "x"
    for i in range(steps):
        inits += [_weight(f"w{i}", [width, width], i), _weight(f"b{i}", [width], 100 + i)]
        nodes += [
            helper.make_node("MatMul", [h, f"w{i}"], [f"m{i}"]),
            helper.make_node("Add", [f"m{i}", f"b{i}"], [f"a{i}"]),
            helper.make_node("Sigmoid", [f"a{i}"], [f"g{i}"]),
            helper.make_node("Tanh", [f"a{i}"], [f"t{i}"]),
            helper.make_node("Mul", [f"g{i}", f"t{i}"], [f"u{i}"]),
            helper.make_node("Add", [h, f"u{i}"], [f"h{i}" if i < steps - 1 else "y"]),
        ]
        h = f"h{i}"
    return make_model(nodes, [tensor_info("x", [batch, width])], [tensor_info("y", [batch, width])], inits)


def exporter_reshape(batch: int | str = "N") -> onnx.ModelProto:
    """What exporters write: Reshape to [Shape(x)[0], -1] through shape math, then Relu."""
    inits = [numpy_helper.from_array(np.array(0, np.int64), "zero"),
             numpy_helper.from_array(np.array([-1], np.int64), "minus_one")]
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "zero_axes"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus_one"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["r"]),
        helper.make_node("Relu", ["r"], ["y"]),
    ]
    inits.append(numpy_helper.from_array(np.array([0], np.int64), "zero_axes"))
    return make_model(nodes, [tensor_info("x", [batch, 2, 3])], [tensor_info("y", [batch, 6])], inits)


@pytest.fixture
def saved(tmp_path):
    def _save(model, name="model.onnx"):
        path = tmp_path / name
        onnx.save(model, path)
        return path

    return _save


# ------------------------------------------------------------------------------------- CoreML


def test_coreml_plan_is_mlprogram_with_static_shapes_required_for_a_fixed_shape_model(saved):
    plan = plan_session(saved(recurrent_head()), "coreml", available_providers=COREML)
    assert plan.providers == COREML
    assert plan.options() == {"ModelFormat": "MLProgram", "MLComputeUnits": "ALL", "RequireStaticInputShapes": "1"}
    assert plan.provider_options[1] == {} and not plan.cuda_graph and plan.ep_available


def test_coreml_nn_plan_is_neuralnetwork_and_dynamic_shapes_stay_allowed(saved):
    plan = plan_session(saved(recurrent_head(batch="N")), "coreml-nn", available_providers=COREML)
    assert plan.options()["ModelFormat"] == "NeuralNetwork"
    assert plan.options()["RequireStaticInputShapes"] == "0"
    assert plan.input_shapes == {"x": ["N", 8]} and not plan.static_inputs
    assert any("input_shapes" in r for r in plan.reasons)


def test_auto_target_follows_the_provider_list(saved):
    path = saved(recurrent_head())
    assert plan_session(path, available_providers=COREML).target == "coreml"
    assert plan_session(path, available_providers=CUDA).target == "cuda"
    assert plan_session(path, available_providers=["CPUExecutionProvider"]).providers == ["CPUExecutionProvider"]
    # onnxruntime-gpu lists TensorRT without shipping it: auto opens CUDA; TensorRT is asked for by name.
    assert plan_session(path, available_providers=["TensorrtExecutionProvider", *CUDA]).target == "cuda"


def test_openvino_plan_names_the_cpu_device(saved):
    plan = plan_session(saved(recurrent_head()), "openvino",
                        available_providers=["OpenVINOExecutionProvider", "CPUExecutionProvider"])
    assert plan.providers == ["OpenVINOExecutionProvider", "CPUExecutionProvider"]
    assert plan.options() == {"device_type": "CPU"}


def test_tensorrt_plan_chains_cuda_then_cpu(saved):
    plan = plan_session(saved(recurrent_head()), "tensorrt", available_providers=["TensorrtExecutionProvider", *CUDA])
    assert plan.providers == ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


# --------------------------------------------------------------------------------------- CUDA


def test_cuda_plan_captures_a_graph_for_a_static_fragmented_model(saved):
    plan = plan_session(saved(recurrent_head(steps=5)), "cuda", available_providers=CUDA)
    assert plan.cuda_graph
    assert plan.options() == {"device_id": "0", "enable_cuda_graph": "1"}
    expected_source = "real" if "CUDAExecutionProvider" in ort.get_available_providers() else "estimated"
    assert plan.placement["source"] == expected_source
    assert plan.placement["on_cpu"] == [] and plan.placement["device_copies"] == []
    assert plan.output_shapes == {"y": [1, 8]}


def conv_in_layout(nhwc: bool) -> onnx.ModelProto:
    """A 3x3 Conv + Relu; with ``nhwc`` in TensorFlow's layout, wrapped in Transposes as tf2onnx writes it."""
    inits = [_weight("w", [4, 4, 3, 3], 7)]
    conv = [helper.make_node("Conv", ["xc", "w"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["r"])]
    if not nhwc:
        conv[0].input[0], conv[1].output[0] = "x", "y"
        return make_model(conv, [tensor_info("x", [1, 4, 8, 8])], [tensor_info("y", [1, 4, 8, 8])], inits)
    nodes = [helper.make_node("Transpose", ["x"], ["xc"], perm=[0, 3, 1, 2]), *conv,
             helper.make_node("Transpose", ["r"], ["y"], perm=[0, 2, 3, 1])]
    return make_model(nodes, [tensor_info("x", [1, 8, 8, 4])], [tensor_info("y", [1, 8, 8, 4])], inits)


def test_cuda_plan_prefers_nhwc_for_convs_wrapped_in_layout_transposes(saved):
    plan = plan_session(saved(conv_in_layout(nhwc=True)), "cuda", available_providers=CUDA)
    assert plan.options()["prefer_nhwc"] == "1" and plan.cuda_graph
    assert any(r.startswith("prefer_nhwc=1: 1 of 1 Convs") for r in plan.reasons)
    nchw = plan_session(saved(conv_in_layout(nhwc=False), "nchw.onnx"), "cuda", available_providers=CUDA)
    assert "prefer_nhwc" not in nchw.options()
    caller = plan_session(saved(conv_in_layout(nhwc=True)), "cuda", available_providers=CUDA,
                          provider_options={"prefer_nhwc": "0"})
    assert caller.options()["prefer_nhwc"] == "0"


def test_cuda_plan_without_fixed_shapes_runs_plain_and_says_to_pass_input_shapes(saved):
    plan = plan_session(saved(recurrent_head(batch="N")), "cuda", available_providers=CUDA)
    assert not plan.cuda_graph and "enable_cuda_graph" not in plan.options()
    assert any("symbolic dims" in r and "input_shapes" in r for r in plan.reasons)


def upsample_head() -> onnx.ModelProto:
    """Relu -> ConvTranspose with asymmetric pads (no CUDA kernel for that) -> Relu."""
    return make_model(
        [helper.make_node("Relu", ["x"], ["r"]),
         helper.make_node("ConvTranspose", ["r", "w"], ["u"], pads=[0, 0, 1, 1]),
         helper.make_node("Relu", ["u"], ["y"])],
        [tensor_info("x", [1, 2, 6, 6])], [tensor_info("y", [1, 2, 7, 7])], [_weight("w", [2, 2, 3, 3], 0)])


def test_cuda_plan_refuses_a_graph_when_a_cpu_node_needs_device_copies(saved):
    plan = plan_session(saved(upsample_head()), "cuda", available_providers=CUDA)
    assert not plan.cuda_graph and "enable_cuda_graph" not in plan.options()
    assert plan.placement["device_copies"] == ["Relu -> r -> ConvTranspose -> u (device -> host)",
                                               "ConvTranspose -> u -> Relu -> y (host -> device)"]
    assert any("2 device copies" in r and "Memcpy" in r for r in plan.reasons)


def test_cuda_plan_refuses_a_graph_for_control_flow(saved):
    then_graph = helper.make_graph([helper.make_node("Relu", ["x"], ["t"])], "then", [], [tensor_info("t", [1, 4])])
    else_graph = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [], [tensor_info("e", [1, 4])])
    model = make_model([helper.make_node("If", ["c"], ["y"], then_branch=then_graph, else_branch=else_graph)],
                       [tensor_info("c", [], TensorProto.BOOL), tensor_info("x", [1, 4])], [tensor_info("y", [1, 4])])
    plan = plan_session(saved(model), "cuda", available_providers=CUDA)
    assert not plan.cuda_graph and plan.placement["control_flow"]
    assert any("control-flow" in r for r in plan.reasons)


def test_host_only_shape_math_needs_no_device_copy():
    # Exporter shape math: the CUDA Shape kernel writes host memory, Gather/Unsqueeze/Concat run on
    # the CPU on host tensors, Reshape reads its shape from host memory: ORT inserts no copy.
    graph = GraphFacts(onnx.shape_inference.infer_shapes(exporter_reshape()))
    labels = [n.op_type for n in graph.nodes]
    on_cpu = {labels.index(op) for op in ("Gather", "Unsqueeze", "Concat")}
    assert device_copies(graph, on_cpu) == []
    # The same Concat computed on the device would have to be copied to the host for Reshape.
    assert device_copies(graph, on_cpu - {labels.index("Concat")}) == [
        "Unsqueeze -> n1 -> Concat -> shape (host -> device)",
        "Concat -> shape -> Reshape -> r (device -> host)",
    ]


def test_cuda_plan_through_the_cache_fixes_shapes_and_captures(tmp_path, saved):
    path = saved(exporter_reshape())
    without = session_plan(path, "cuda", available_providers=CUDA, cache_dir=tmp_path / "cache")
    assert not without.cuda_graph
    plan = session_plan(path, "cuda", input_shapes={"x": (1, 2, 3)}, available_providers=CUDA,
                        cache_dir=tmp_path / "cache")
    assert plan.prepared["rewritten"] and plan.source == str(path)
    assert plan.static_inputs and plan.cuda_graph and plan.output_shapes == {"y": [1, 6]}


# ---------------------------------------------------------------------------------- overrides


def test_caller_options_win_and_are_recorded(saved):
    path = saved(recurrent_head())
    plan = plan_session(path, "cuda", available_providers=CUDA, provider_options={"enable_cuda_graph": "0"})
    assert not plan.cuda_graph and plan.options()["enable_cuda_graph"] == "0"
    assert plan.caller_options == {"enable_cuda_graph": "0"}
    assert any(r == "enable_cuda_graph=0: given by the caller (planned 1)" for r in plan.reasons)
    coreml = plan_session(path, "coreml", available_providers=COREML, provider_options={"MLComputeUnits": "CPUOnly"})
    assert coreml.options()["MLComputeUnits"] == "CPUOnly" and coreml.options()["ModelFormat"] == "MLProgram"


# ------------------------------------------------------------------------------ opened sessions


def test_cpu_session_opens_through_the_cache_and_matches_a_plain_session(tmp_path, saved):
    path = saved(exporter_reshape())
    opened = onnxfit.session(path, target="cpu", input_shapes={"x": (4, 2, 3)}, cache_dir=tmp_path / "cache")
    assert isinstance(opened, ort.InferenceSession) and isinstance(opened, PlannedSession)
    assert opened.get_providers() == ["CPUExecutionProvider"] and opened.plan.prepared["rewritten"]
    assert opened.runner is None and opened.plan.input_shapes == {"x": [4, 2, 3]}
    feeds = random_feeds(exporter_reshape(), shapes={"x": (4, 2, 3)})
    plain = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(opened.run(None, feeds)[0], plain.run(None, feeds)[0])


def test_a_target_whose_ep_is_missing_is_one_clear_error(saved):
    missing = [p for p in ("CoreMLExecutionProvider", "CUDAExecutionProvider") if p not in ort.get_available_providers()]
    target = {"CoreMLExecutionProvider": "coreml", "CUDAExecutionProvider": "cuda"}[missing[0]]
    plan = plan_session(saved(recurrent_head()), target)
    assert not plan.ep_available
    with pytest.raises(OnnxfitError, match=f"target '{target}' needs {missing[0]}, which this onnxruntime"):
        open_session(plan)


# --------------------------------------------------------------------------------- bound runner


def test_bound_runner_replays_on_fixed_buffers_with_parity(saved):
    path = saved(recurrent_head(steps=3, batch="N"))
    plain = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    runner = BoundRunner(ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]),
                         output_shapes={"y": (2, 8)}, input_shapes={"x": (2, 8)}, device="cpu")
    assert [(b.name, b.shape, b.dtype) for b in runner.inputs] == [("x", (2, 8), np.dtype(np.float32))]
    buffer = runner.output_values["y"]
    for seed in (1, 2):
        x = np.random.default_rng(seed).standard_normal((2, 8)).astype(np.float32)
        np.testing.assert_array_equal(runner.run({"x": x})["y"], plain.run(None, {"x": x})[0])
        assert runner.run_on_device()["y"] is buffer  # the same buffer every run
    with pytest.raises(OnnxfitError, match=r"input 'x': float32\[3, 8\] differs from the bound float32\[2, 8\]"):
        runner.run({"x": np.zeros((3, 8), np.float32)})


def test_buffer_specs_need_a_fixed_shape_and_refuse_a_contradiction(saved):
    session = ort.InferenceSession(str(saved(recurrent_head(batch="N"))), providers=["CPUExecutionProvider"])
    with pytest.raises(OnnxfitError, match="'x' has no fixed shape"):
        buffer_specs(session.get_inputs(), {})
    with pytest.raises(OnnxfitError, match="contradicts the model's"):
        buffer_specs(session.get_inputs(), {"x": (1, 9)})
    assert buffer_specs(session.get_inputs(), {"x": (5, 8)})[0].shape == (5, 8)


def test_a_session_with_a_runner_runs_every_call_through_its_buffers(saved):
    path = saved(recurrent_head(steps=2))
    opened = open_session(plan_session(path, "cpu"))
    opened.runner = BoundRunner(opened, device="cpu")  # what open_session attaches on CUDA
    feeds = random_feeds(recurrent_head(steps=2), seed=3)
    plain = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(opened.run(["y"], feeds)[0], plain.run(None, feeds)[0])


# ------------------------------------------------------------------------------------- verify


def test_verify_runs_the_planned_session_as_a_runtime(saved):
    report = verify(saved(recurrent_head(steps=3)), runtimes=["planned-cpu"])
    parity = report.checks[0]
    assert report.ok and "planned-cpu" in report.runtimes
    assert [c["runtime"] for c in parity.details["comparisons"]] == ["planned-cpu"]
    assert parity.details["comparisons"][0]["outputs"][0]["max_abs"] < 1e-5


# ---------------------------------------------------------------------------------------- CLI


def _cli(*args, cache):
    return subprocess.run([sys.executable, "-m", "onnxfit", "session-plan", *map(str, args), "--cache-dir", cache],
                          capture_output=True, text=True, check=False)


def test_cli_plans_a_named_target_without_its_ep(tmp_path, saved):
    path = saved(exporter_reshape())
    result = _cli(path, "--target", "coreml", "--input-shape", "x=1x2x3", "--json", cache=tmp_path / "c")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["target"] == "coreml" and plan["providers"][0] == "CoreMLExecutionProvider"
    assert plan["provider_options"][0]["RequireStaticInputShapes"] == "1"
    assert plan["ep_available"] == ("CoreMLExecutionProvider" in ort.get_available_providers())


def test_cli_simulated_providers_and_overrides(tmp_path, saved):
    path = saved(recurrent_head())
    result = _cli(path, "--provider", "CUDAExecutionProvider", "--option", "device_id=1", "--json", cache=tmp_path / "c")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["target"] == "cuda" and plan["cuda_graph"]
    assert plan["provider_options"][0] == {"device_id": "1", "enable_cuda_graph": "1"}
    text = _cli(path, "--provider", "CUDAExecutionProvider", cache=tmp_path / "c")
    assert text.returncode == 0 and "cuda graph: yes" in text.stdout


@pytest.mark.parametrize("args, message", [
    (["--option", "novalue"], "--option 'novalue': expected KEY=VALUE"),
    (["--target", "gpu"], "unknown target 'gpu'"),
])
def test_cli_bad_input_exits_2_with_one_line(tmp_path, saved, args, message):
    result = _cli(saved(recurrent_head()), *args, cache=tmp_path / "c")
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_cli_missing_model_exits_2(tmp_path):
    result = _cli(tmp_path / "absent.onnx", cache=tmp_path / "c")
    assert result.returncode == 2 and "no such file" in result.stderr


# ------------------------------------------------------------------------------------- CPU threads


def test_cpu_plan_runs_a_streaming_sized_model_on_one_thread(saved):
    plan = plan_session(saved(recurrent_head()), "cpu")
    assert plan.intra_op_threads == 1 and any("intra_op_num_threads=1" in r for r in plan.reasons)
    opened = open_session(plan)
    assert opened.get_session_options().intra_op_num_threads == 1


def test_cpu_plan_keeps_the_thread_pool_for_large_or_symbolic_tensors(saved):
    big = make_model([helper.make_node("Relu", ["x"], ["y"])], [tensor_info("x", [1, 3, 512, 512])],
                     [tensor_info("y", [1, 3, 512, 512])])
    assert plan_session(saved(big, "big.onnx"), "cpu").intra_op_threads is None
    assert plan_session(saved(recurrent_head(batch="N"), "dyn.onnx"), "cpu").intra_op_threads is None


def test_the_callers_thread_count_wins_over_the_plan(saved):
    plan = plan_session(saved(recurrent_head()), "cpu")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    assert open_session(plan, options).get_session_options().intra_op_num_threads == 2


# ------------------------------------------------------------------------------------- streams


def streaming_cell() -> onnx.ModelProto:
    """y, h' = tanh(x @ W + h), h' fed back as the next call's h (named state_in / state_out)."""
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Add", ["m", "state_in"], ["a"]),
             helper.make_node("Tanh", ["a"], ["state_out"]), helper.make_node("ReduceSum", ["state_out"], ["y"], axes=[1])]
    return make_model(nodes, [tensor_info("x", [1, 4]), tensor_info("state_in", [1, 8])],
                      [tensor_info("y", [1, 1]), tensor_info("state_out", [1, 8])], [_weight("w", [4, 8], 7)], opset=12)


def test_a_stream_runner_carries_states_between_calls_like_a_hand_written_loop(saved):
    path = saved(streaming_cell())
    opened = open_session(plan_session(path, "cpu"))
    stream = opened.stream()
    assert stream.carry == {"state_out": "state_in"}
    plain = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    state = np.zeros((1, 8), np.float32)
    rng = np.random.default_rng(0)
    for _ in range(7):
        x = rng.standard_normal((1, 4)).astype(np.float32)
        y, state = plain.run(None, {"x": x, "state_in": state})
        np.testing.assert_array_equal(stream.run({"x": x})["y"], y)
    np.testing.assert_array_equal(stream.states()["state_in"], state)
    stream.reset()
    assert not stream.states()["state_in"].any()


def test_a_stream_runner_needs_states_it_can_pair(saved):
    from onnxfit.app.cuda_graph import Buffer, pair_states

    opened = open_session(plan_session(saved(recurrent_head()), "cpu"))
    with pytest.raises(OnnxfitError, match="no input is named like a state"):
        opened.stream()
    lonely = [Buffer("state", (1, 3), np.dtype(np.float32))]
    with pytest.raises(OnnxfitError, match="state input 'state'.*carry="):
        pair_states(lonely, [Buffer("y", (1, 4), np.dtype(np.float32))])
