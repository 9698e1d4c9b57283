"""FacePhys on one CPU thread: ONNX Runtime (published and optimized model) vs LiteRT, interleaved.

    .venv/bin/python reports/facephys_cpu.py                       # writes reports/facephys_cpu.json
    .venv/bin/python reports/facephys_cpu.py --optimized OUT.onnx --rounds 40 --frames 25
    .venv/bin/python reports/facephys_report.py                    # FACEPHYS.md from the JSON files

In one process, states carried frame to frame (host numpy arrays), batch 1, `dt` = 1/30:
- `ort_original`: ONNX Runtime CPU EP on tests/zoo/facephys/model.onnx, intra_op_num_threads=1,
  inter_op_num_threads=1, sequential, graph_optimization_level ALL;
- `ort_optimized`: the same options on the model `onnxfit.optimize(..., target="cpu")` wrote
  (reports/_work/facephys_cpu.onnx unless --optimized names one);
- `litert`: LiteRT (`ai-edge-litert`, pinned below; XNNPACK, its default CPU delegate) with
  num_threads=1 on ../shared/models/facephys/model.tflite;
- `ort_convolutions`: ONNX Runtime, the same options, on the optimized model's Conv nodes alone
  (same input shapes, weights and attributes; inputs random): the float floor under ORT's frame;
- `onnxfit_session_cpu`: `onnxfit.session(model, target="cpu")` as a user opens it: the model
  `prepare()` rewrote for target cpu (same passes as `ort_optimized`), ONNX Runtime's default thread
  count (see "session_threads" in the JSON).
Rounds alternate the runners (the order rotates each round); each round times `--frames` calls per
runner; the figure is the median per call over all timed calls (>= 200 per runner by default).
Also: outputs of the runners on the same 64 frames from zero states (parity), and node counts as
published and after ONNX Runtime's optimizations (CPU EP, level ALL).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "reports"))

import numpy as np  # noqa: E402

from facephys_common import (ORIGINAL, OrtStream, cpu_info, error_text, git_state, interleave,  # noqa: E402
                             ort_node_counts, ort_options, state_index, thread_count)

TFLITE = ROOT.parent / "shared" / "models" / "facephys" / "model.tflite"  # beside the repository; --tflite elsewhere
WORK = ROOT / "reports" / "_work"
LITERT_PIN = "ai-edge-litert==2.3.0"  # installed into .venv with `pip install ai-edge-litert==2.3.0`


class LiteRTStream:
    """LiteRT interpreter fed frame by frame, outputs `Identity_k` fed back as `state_in_{k-1}`."""

    def __init__(self, path: Path, threads: int = 1, seed: int = 0) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
        self.interpreter.allocate_tensors()
        inputs = {d["name"]: d for d in self.interpreter.get_input_details()}
        outputs = {d["name"]: d for d in self.interpreter.get_output_details()}
        self.input_index = inputs["input"]["index"]
        self.dt_index = inputs["dt"]["index"]
        self.pulse_index = outputs["Identity"]["index"]
        states = sorted((n for n in inputs if n.startswith("state_in_")), key=state_index)
        # Identity_{k+1} is the new state_in_k (shapes checked).
        self.pairs = []
        for name in states:
            out = outputs[f"Identity_{state_index(name) + 1}"]
            if list(out["shape"]) != list(inputs[name]["shape"]):
                raise ValueError(f"{out['name']} {out['shape']} does not match {name} {inputs[name]['shape']}")
            self.pairs.append((inputs[name]["index"], out["index"], inputs[name]))
        self.states = [np.zeros(d["shape"], np.float32) for _, _, d in self.pairs]
        rng = np.random.default_rng(seed)
        self.frames = [rng.random(inputs["input"]["shape"], dtype=np.float32) for _ in range(16)]
        self.dt = np.array([1 / 30], np.float32)
        self.count = 0

    def step(self) -> np.ndarray:
        it = self.interpreter
        it.set_tensor(self.input_index, self.frames[self.count % len(self.frames)])
        self.count += 1
        it.set_tensor(self.dt_index, self.dt)
        for (index, _, _), state in zip(self.pairs, self.states):
            it.set_tensor(index, state)
        it.invoke()
        self.states = [it.get_tensor(out) for _, out, _ in self.pairs]
        return it.get_tensor(self.pulse_index)

    def reset(self) -> None:
        self.states = [np.zeros_like(s) for s in self.states]
        self.count = 0


def tflite_weights(path: Path) -> dict:
    """Which ops of the .tflite read int8 weights (dynamic-range quantization: the ONNX export is float32)."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        it = Interpreter(model_path=str(path))
        tensors = {d["index"]: d for d in it.get_tensor_details()}
        int8 = {i for i, d in tensors.items() if d["dtype"] == np.int8}
        ops: dict[str, int] = {}
        users: dict[str, int] = {}
        for op in it._get_ops_details():  # noqa: SLF001 - the only op listing the interpreter has
            ops[op["op_name"]] = ops.get(op["op_name"], 0) + 1
            if any(i in int8 for i in op["inputs"]):
                users[op["op_name"]] = users.get(op["op_name"], 0) + 1
        return {"ops": sum(ops.values()), "int8_weight_tensors": len(int8), "ops_reading_int8_weights": users,
                "conv_ops": {k: v for k, v in ops.items() if "CONV" in k}}
    except Exception as exc:  # noqa: BLE001
        return {"weights_error": error_text(exc)}


def optimized_model(original: Path, given: Path | None) -> tuple[Path, dict]:
    if given is not None:
        return given, {"given": str(given)}
    import onnxfit

    WORK.mkdir(parents=True, exist_ok=True)
    out = WORK / "facephys_cpu.onnx"
    result = onnxfit.optimize(original, out, target="cpu")
    info = result.to_dict()
    return out, {"written_by": f"onnxfit.optimize({_rel(original)!r}, {_rel(out)!r}, target='cpu')",
                 "changed": info["changed"], "nodes_before": info["nodes_before"], "nodes_after": info["nodes_after"],
                 "passes": [{k: p.get(k) for k in ("name", "changed", "rewritten", "folded", "notes")}
                            for p in info["passes"]]}


class ConvolutionsAlone:
    """The optimized model's Conv nodes alone, each reading a random input of its shape: how long the
    float convolutions take on their own, and at how many GFLOP/s (2 per multiply-add)."""

    def __init__(self, model: Path, threads: int = 1) -> None:
        import onnx
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper, shape_inference

        source = onnx.load(str(model))
        graph = shape_inference.infer_shapes(source).graph
        shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in (*graph.value_info, *graph.input)}
        weights = {t.name: t for t in graph.initializer}
        convs = [n for n in graph.node if n.op_type == "Conv"]
        nodes, inputs, outputs, used, self.macs = [], [], [], {}, 0
        for k, conv in enumerate(convs):
            nodes.append(helper.make_node("Conv", [f"x{k}", *conv.input[1:]], [f"y{k}"]))
            nodes[-1].attribute.extend(conv.attribute)
            inputs.append(helper.make_tensor_value_info(f"x{k}", TensorProto.FLOAT, shapes[conv.input[0]]))
            outputs.append(helper.make_tensor_value_info(f"y{k}", TensorProto.FLOAT, None))
            used.update({name: weights[name] for name in conv.input[1:] if name in weights})
            kernel = numpy_helper.to_array(weights[conv.input[1]]).shape
            self.macs += int(np.prod(shapes[conv.output[0]])) * int(np.prod(kernel[1:]))
        self.count = len(convs)
        proto = helper.make_model(helper.make_graph(nodes, "convolutions", inputs, outputs, list(used.values())),
                                  opset_imports=[o for o in source.opset_import if o.domain in ("", "ai.onnx")])
        self.session = ort.InferenceSession(proto.SerializeToString(), ort_options(threads=threads),
                                            providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(0)
        self.feeds = {i.name: rng.standard_normal(i.shape).astype(np.float32) for i in self.session.get_inputs()}

    def step(self) -> list:
        return self.session.run(None, self.feeds)


def matmul_gflops(size: int = 768, calls: int = 20) -> float:
    """GFLOP/s of ONNX Runtime's one-thread float MatMul on ``size``-square matrices (best call): what
    a compute-bound float kernel reaches on this core, to set the convolutions' rate against."""
    from onnx import TensorProto, helper

    square = [size, size]
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "matmul",
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, square) for n in "ab"],
                              [helper.make_tensor_value_info("c", TensorProto.FLOAT, square)])
    a = np.random.default_rng(0).standard_normal(square).astype(np.float32)
    return round(2 * size ** 3 / _best_call(graph, {"a": a, "b": a}, calls) / 1e9, 1)


def dispatch_us(nodes: int = 1000, calls: int = 50) -> float:
    """ONNX Runtime's one-thread cost per node where a node computes almost nothing: a chain of
    ``nodes`` Mul/Add on 4 floats (best call, microseconds per node)."""
    from onnx import TensorProto, helper, numpy_helper

    chain, value = [], "x"
    for k in range(nodes):
        chain.append(helper.make_node("Mul" if k % 2 else "Add", [value, "c"], [f"v{k}"]))
        value = f"v{k}"
    graph = helper.make_graph(chain, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info(value, TensorProto.FLOAT, [1, 4])],
                              [numpy_helper.from_array(np.full([4], 1.0001, np.float32), "c")])
    return round(_best_call(graph, {"x": np.ones([1, 4], np.float32)}, calls) / nodes * 1e6, 3)


def _best_call(graph, feeds: dict, calls: int) -> float:
    """Seconds of the fastest of ``calls`` runs of ``graph`` (opset 13) on ONNX Runtime, one thread."""
    import onnxruntime as ort
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    session = ort.InferenceSession(model.SerializeToString(), ort_options(threads=1), providers=["CPUExecutionProvider"])
    best = float("inf")
    for _ in range(calls):
        start = time.perf_counter()
        session.run(None, feeds)
        best = min(best, time.perf_counter() - start)
    return best


def _rel(path: Path) -> str:
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def session_threads(model: Path) -> tuple[dict, object]:
    """What `onnxfit.session(model, target="cpu")` does about threads: the options it opens the
    session with, and the threads ONNX Runtime starts for it (counted in /proc/self/task)."""
    import onnxfit

    before = thread_count()
    session = onnxfit.session(model, target="cpu", cache_dir=WORK / "cache")
    started = thread_count() - before
    options = session.get_session_options()
    info = cpu_info()
    entry = {
        "call": f"onnxfit.session({_rel(model)!r}, target='cpu')",
        "intra_op_num_threads_option": options.intra_op_num_threads,
        "inter_op_num_threads_option": options.inter_op_num_threads,
        "execution_mode": str(options.execution_mode),
        "threads_started_by_session": started,
        # ORT's intra-op pool has intra_op_num_threads - 1 threads; the caller's thread is the other one.
        "effective_intra_op_threads": started + 1,
        "physical_cores": info["physical_cores"], "logical_cpus": info["logical_cpus"],
        "plan_reasons": session.plan.reasons, "provider_options": session.plan.provider_options,
        "prepared": session.plan.prepared, "model_loaded": session.plan.model,
    }
    entry["is_one_thread"] = entry["effective_intra_op_threads"] == 1
    entry["all_cores"] = entry["effective_intra_op_threads"] >= (info["physical_cores"] or info["logical_cpus"] or 1)
    return entry, session


def parity(streams: dict, frames: int = 64) -> dict:
    """The pulse output of each runner over the same ``frames`` frames from zero states vs ort_original."""
    pulses = {}
    for name, stream in streams.items():
        stream.reset()
        try:
            pulses[name] = np.array([np.asarray(stream.step()).reshape(-1)[0] for _ in range(frames)], np.float64)
        except Exception as exc:  # noqa: BLE001
            pulses[name] = error_text(exc)
        stream.reset()
    ref = pulses.get("ort_original")
    result = {"frames": frames, "reference": "ort_original"}
    for name, values in pulses.items():
        if isinstance(values, str) or isinstance(ref, str) or ref is None:
            result[name] = {"error": values if isinstance(values, str) else "no reference"}
            continue
        diff = np.abs(values - ref)
        result[name] = {"max_abs": float(diff.max()), "first_frame_abs": float(diff[0]),
                        "correlation": round(float(np.corrcoef(values, ref)[0, 1]), 6) if diff.max() > 0 else 1.0,
                        "pulse_range": [round(float(values.min()), 4), round(float(values.max()), 4)]}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--original", type=Path, default=ORIGINAL)
    parser.add_argument("--optimized", type=Path, default=None,
                        help="default: onnxfit.optimize(original, reports/_work/facephys_cpu.onnx, target='cpu')")
    parser.add_argument("--tflite", type=Path, default=TFLITE)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--frames", type=int, default=20, help="timed calls per runner per round")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--no-session-timing", action="store_true",
                        help="skip timing onnxfit.session(target='cpu') (ORT's default thread pool)")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "facephys_cpu.json")
    args = parser.parse_args()

    import onnxruntime as ort

    ort.set_default_logger_severity(3)
    command = "python reports/facephys_cpu.py " + " ".join(sys.argv[1:])
    result: dict = {"command": command.strip(), "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": cpu_info(),
                    "onnxruntime": ort.__version__, "numpy": np.__version__, "original": _rel(args.original),
                    "git": git_state()}
    optimized, result["optimize"] = optimized_model(args.original, args.optimized)
    result["optimized"] = _rel(optimized)
    try:
        import ai_edge_litert

        result["litert"] = {"package": LITERT_PIN, "version": getattr(ai_edge_litert, "__version__", None),
                            "model": str(args.tflite), **tflite_weights(args.tflite)}
    except Exception as exc:  # noqa: BLE001
        result["litert"] = {"error": error_text(exc)}

    cpu = ["CPUExecutionProvider"]
    result["node_counts"] = {}
    for label, path in (("original", args.original), ("optimized", optimized)):
        try:
            result["node_counts"][label] = ort_node_counts(path, cpu)
        except Exception as exc:  # noqa: BLE001
            result["node_counts"][label] = {"error": error_text(exc)}

    streams: dict = {
        "ort_original": OrtStream(ort.InferenceSession(str(args.original), ort_options(threads=1), providers=cpu)),
        "ort_optimized": OrtStream(ort.InferenceSession(str(optimized), ort_options(threads=1), providers=cpu)),
    }
    if "error" not in result["litert"]:
        try:
            streams["litert"] = LiteRTStream(args.tflite, threads=1)
        except Exception as exc:  # noqa: BLE001
            result["litert"]["error"] = error_text(exc)
    try:
        result["session_threads"], planned = session_threads(args.original)
        if not args.no_session_timing:
            streams["onnxfit_session_cpu"] = OrtStream(planned)
    except Exception as exc:  # noqa: BLE001
        result["session_threads"] = {"error": error_text(exc)}

    result["parity"] = parity(streams)
    timed = {name: s.step for name, s in streams.items()}
    try:
        convolutions = ConvolutionsAlone(optimized)
        timed["ort_convolutions"] = convolutions.step
        result["convolutions"] = {"model": _rel(optimized), "convs": convolutions.count,
                                  "multiply_adds": convolutions.macs}
    except Exception as exc:  # noqa: BLE001
        result["convolutions"] = {"error": error_text(exc)}
    result["timing"] = {"rounds": args.rounds, "frames_per_round": args.frames, "warmup": args.warmup,
                        "order": list(timed), "threads": {"ort_original": 1, "ort_optimized": 1, "litert": 1,
                                                          "ort_convolutions": 1, "onnxfit_session_cpu": "ORT default"}}
    load_before = os.getloadavg()
    result["latency"] = interleave(timed, args.rounds, args.frames, warmup=args.warmup)
    # Other work on the machine shows here: a 1-minute load above the core count means contended cores.
    result["load_average_1min"] = {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)}
    lat = result["latency"]
    if "median_ms" in lat.get("ort_convolutions", {}):
        ms = lat["ort_convolutions"]["median_ms"]
        result["convolutions"]["gflops"] = round(2 * result["convolutions"]["multiply_adds"] / (ms * 1e-3) / 1e9, 1)
        result["convolutions"]["matmul_gflops"] = matmul_gflops()
        result["convolutions"]["dispatch_us_per_node"] = dispatch_us()
    if "median_ms" in lat.get("ort_original", {}) and "median_ms" in lat.get("litert", {}):
        result["ratios"] = {"ort_original_over_litert": round(lat["ort_original"]["median_ms"] / lat["litert"]["median_ms"], 2)}
        if "median_ms" in lat.get("ort_optimized", {}):
            result["ratios"]["ort_optimized_over_litert"] = round(
                lat["ort_optimized"]["median_ms"] / lat["litert"]["median_ms"], 2)
            result["ratios"]["ort_original_over_optimized"] = round(
                lat["ort_original"]["median_ms"] / lat["ort_optimized"]["median_ms"], 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("latency", "session_threads", "parity") if k in result}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
